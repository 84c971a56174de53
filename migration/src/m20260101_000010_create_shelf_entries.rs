//! A reader's shelf: users <-> books with a reading status. The primary key
//! (user_id, book_id) indexes the user side; a second index serves the book side.

use sea_orm_migration::prelude::*;

use crate::dialect;

#[derive(DeriveMigrationName)]
pub struct Migration;

const STATUS_TYPE: &str = "shelf_status";
const STATUSES: &[&str] = &["want_to_read", "reading", "read"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        dialect::create_enum(manager, STATUS_TYPE, STATUSES).await?;
        manager
            .create_table(
                Table::create()
                    .table(ShelfEntries::Table)
                    .col(ColumnDef::new(ShelfEntries::UserId).uuid().not_null())
                    .col(ColumnDef::new(ShelfEntries::BookId).uuid().not_null())
                    .col(dialect::enum_column(
                        backend,
                        ShelfEntries::Status,
                        STATUS_TYPE,
                        STATUSES,
                    )?)
                    .col(dialect::timestamp(backend, ShelfEntries::AddedAt)?)
                    .col(dialect::timestamp(backend, ShelfEntries::UpdatedAt)?)
                    .primary_key(Index::create().col(ShelfEntries::UserId).col(ShelfEntries::BookId))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_shelf_entries_user_id")
                            .from(ShelfEntries::Table, ShelfEntries::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_shelf_entries_book_id")
                            .from(ShelfEntries::Table, ShelfEntries::BookId)
                            .to(Books::Table, Books::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_shelf_entries_book_id")
                    .table(ShelfEntries::Table)
                    .col(ShelfEntries::BookId)
                    .to_owned(),
            )
            .await?;
        dialect::create_updated_at_trigger(manager, "shelf_entries").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ShelfEntries::Table).to_owned())
            .await?;
        dialect::drop_enum(manager, STATUS_TYPE).await
    }
}

#[derive(DeriveIden)]
enum ShelfEntries {
    Table,
    UserId,
    BookId,
    Status,
    AddedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Books {
    Table,
    Id,
}
