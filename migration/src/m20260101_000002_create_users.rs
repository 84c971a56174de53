use sea_orm_migration::prelude::*;

use crate::dialect;

#[derive(DeriveMigrationName)]
pub struct Migration;

const ROLE_TYPE: &str = "user_role";
const ROLES: &[&str] = &["admin", "user", "guest"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        dialect::create_enum(manager, ROLE_TYPE, ROLES).await?;
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .col(dialect::uuid_pk(Users::Id))
                    .col(
                        ColumnDef::new(Users::Email)
                            .string_len(255)
                            .not_null()
                            .unique_key()
                            // varchar(255) is not enforced by SQLite; this is, on both.
                            .check(Expr::cust("length(email) BETWEEN 3 AND 255")),
                    )
                    .col(ColumnDef::new(Users::PasswordHash).string_len(255).not_null())
                    .col(
                        dialect::enum_column(backend, Users::Role, ROLE_TYPE, ROLES)?
                            .default("user")
                            .to_owned(),
                    )
                    .col(dialect::timestamp(backend, Users::CreatedAt)?)
                    .col(dialect::timestamp(backend, Users::UpdatedAt)?)
                    .col(ColumnDef::new(Users::DeletedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        // Login looks up active accounts by email; the partial index stays small and
        // serves exactly that query.
        manager
            .create_index(
                Index::create()
                    .name("idx_users_active_email")
                    .table(Users::Table)
                    .col(Users::Email)
                    .and_where(Expr::col(Users::DeletedAt).is_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_users_deleted_at")
                    .table(Users::Table)
                    .col(Users::DeletedAt)
                    .to_owned(),
            )
            .await?;
        dialect::create_updated_at_trigger(manager, "users").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Users::Table).to_owned()).await?;
        dialect::drop_enum(manager, ROLE_TYPE).await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    Role,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}
