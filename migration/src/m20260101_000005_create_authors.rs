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
                    .table(Authors::Table)
                    .col(dialect::uuid_pk(Authors::Id))
                    .col(
                        ColumnDef::new(Authors::Name)
                            .string_len(255)
                            .not_null()
                            .check(Expr::cust("length(name) BETWEEN 1 AND 255")),
                    )
                    .col(ColumnDef::new(Authors::Bio).text().null())
                    .col(dialect::timestamp(backend, Authors::CreatedAt)?)
                    .col(dialect::timestamp(backend, Authors::UpdatedAt)?)
                    .col(ColumnDef::new(Authors::DeletedAt).timestamp_with_time_zone().null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_authors_name")
                    .table(Authors::Table)
                    .col(Authors::Name)
                    .to_owned(),
            )
            .await?;
        dialect::create_updated_at_trigger(manager, "authors").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Authors::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Authors {
    Table,
    Id,
    Name,
    Bio,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}
