use sea_orm::entity::prelude::*;

#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reviews")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub user_id: Uuid,
    pub book_id: Uuid,
    /// 1 to 5, enforced by a CHECK constraint.
    pub rating: i16,
    pub title: Option<String>,
    pub body: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub deleted_at: Option<DateTimeUtc>,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::user::Entity>,
    #[sea_orm(belongs_to, from = "book_id", to = "id", on_delete = "Cascade")]
    pub book: BelongsTo<super::book::Entity>,
    /// The reviewer's public profile (profiles share their user's id), so a page of
    /// reviews can load its reviewers in one statement.
    #[sea_orm(belongs_to, relation_enum = "Reviewer", from = "user_id", to = "user_id", skip_fk)]
    pub reviewer: BelongsTo<super::profile::Entity>,
}

crate::uuid_v7_primary_key!();
