//! The category tree: an adjacency list. Deleting a category orphans its children
//! (they become roots) rather than deleting a whole subtree by accident.

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
                    .table(Categories::Table)
                    .col(dialect::uuid_pk(Categories::Id))
                    .col(ColumnDef::new(Categories::ParentId).uuid().null())
                    .col(
                        ColumnDef::new(Categories::Name)
                            .string_len(100)
                            .not_null()
                            .check(Expr::cust("length(name) BETWEEN 1 AND 100")),
                    )
                    .col(dialect::timestamp(backend, Categories::CreatedAt)?)
                    .col(dialect::timestamp(backend, Categories::UpdatedAt)?)
                    .check(Expr::cust("parent_id IS NULL OR parent_id <> id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_categories_parent_id")
                            .from(Categories::Table, Categories::ParentId)
                            .to(Categories::Table, Categories::Id)
                            .on_delete(ForeignKeyAction::SetNull),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_categories_parent_id")
                    .table(Categories::Table)
                    .col(Categories::ParentId)
                    .to_owned(),
            )
            .await?;
        // Unique name among siblings. A plain UNIQUE (parent_id, name) would let roots
        // repeat (NULLs are distinct), and NULLS NOT DISTINCT is PostgreSQL-only, so
        // two partial indexes say it on both backends.
        manager
            .create_index(
                Index::create()
                    .name("uq_categories_sibling_name")
                    .table(Categories::Table)
                    .col(Categories::ParentId)
                    .col(Categories::Name)
                    .unique()
                    .and_where(Expr::col(Categories::ParentId).is_not_null())
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_categories_root_name")
                    .table(Categories::Table)
                    .col(Categories::Name)
                    .unique()
                    .and_where(Expr::col(Categories::ParentId).is_null())
                    .to_owned(),
            )
            .await?;
        dialect::create_updated_at_trigger(manager, "categories").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Categories::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Categories {
    Table,
    Id,
    ParentId,
    Name,
    CreatedAt,
    UpdatedAt,
}
