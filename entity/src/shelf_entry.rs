use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Stored as the PostgreSQL enum `shelf_status`; a CHECK-constrained text on SQLite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize)]
#[sea_orm(rs_type = "String", db_type = "Enum", enum_name = "shelf_status")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ShelfStatus {
    #[sea_orm(string_value = "want_to_read")]
    WantToRead,
    #[sea_orm(string_value = "reading")]
    Reading,
    #[sea_orm(string_value = "read")]
    Read,
}

/// A book on a reader's shelf: the users <-> books link with a payload.
#[sea_orm::model]
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "shelf_entries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub book_id: Uuid,
    pub status: ShelfStatus,
    pub added_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    #[sea_orm(belongs_to, from = "user_id", to = "id", on_delete = "Cascade")]
    pub user: BelongsTo<super::user::Entity>,
    #[sea_orm(belongs_to, from = "book_id", to = "id", on_delete = "Cascade")]
    pub book: BelongsTo<super::book::Entity>,
}

impl ActiveModelBehavior for ActiveModel {}
