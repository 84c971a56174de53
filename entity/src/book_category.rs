use sea_orm::entity::prelude::*;

/// Junction of books and categories.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "book_categories")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub book_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub category_id: Uuid,
    #[sea_orm(belongs_to, from = "book_id", to = "id", on_delete = "Cascade")]
    pub book: BelongsTo<super::book::Entity>,
    #[sea_orm(belongs_to, from = "category_id", to = "id", on_delete = "Cascade")]
    pub category: BelongsTo<super::category::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
