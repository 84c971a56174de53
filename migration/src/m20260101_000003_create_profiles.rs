//! One profile per user, sharing the user's id as its primary key.

use sea_orm_migration::prelude::*;

use crate::dialect;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(Profiles::Table)
                    .col(dialect::uuid_pk(Profiles::UserId))
                    .col(
                        ColumnDef::new(Profiles::DisplayName)
                            .string_len(100)
                            .not_null()
                            .check(Expr::cust("length(display_name) BETWEEN 1 AND 100")),
                    )
                    .col(ColumnDef::new(Profiles::Bio).text().null())
                    // Ciphertext envelope written by the application (AEAD); never plaintext.
                    .col(ColumnDef::new(Profiles::Phone).text().null())
                    .col(dialect::timestamp(backend, Profiles::CreatedAt)?)
                    .col(dialect::timestamp(backend, Profiles::UpdatedAt)?)
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_profiles_user_id")
                            .from(Profiles::Table, Profiles::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        dialect::create_updated_at_trigger(manager, "profiles").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Profiles::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Profiles {
    Table,
    UserId,
    DisplayName,
    Bio,
    Phone,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
