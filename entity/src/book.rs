use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "books")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub author_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    #[sea_orm(unique)]
    pub isbn: Option<String>,
    pub published_year: Option<i32>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
    #[sea_orm(belongs_to, from = "author_id", to = "id", on_delete = "Cascade")]
    pub author: BelongsTo<super::author::Entity>,
    #[sea_orm(has_many)]
    pub reviews: HasMany<super::review::Entity>,
    #[sea_orm(has_many, via = "book_category")]
    pub categories: HasMany<super::category::Entity>,
    #[sea_orm(has_many, via = "shelf_entry")]
    pub readers: HasMany<super::user::Entity>,
}

crate::uuid_v7_primary_key!();
