//! Books <-> categories. The primary key (book_id, category_id) already indexes the
//! book side; the second index serves "books in this category".

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(BookCategories::Table)
                    .col(ColumnDef::new(BookCategories::BookId).uuid().not_null())
                    .col(ColumnDef::new(BookCategories::CategoryId).uuid().not_null())
                    .primary_key(
                        Index::create()
                            .col(BookCategories::BookId)
                            .col(BookCategories::CategoryId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_book_categories_book_id")
                            .from(BookCategories::Table, BookCategories::BookId)
                            .to(Books::Table, Books::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_book_categories_category_id")
                            .from(BookCategories::Table, BookCategories::CategoryId)
                            .to(Categories::Table, Categories::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_book_categories_category_id")
                    .table(BookCategories::Table)
                    .col(BookCategories::CategoryId)
                    .col(BookCategories::BookId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BookCategories::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum BookCategories {
    Table,
    BookId,
    CategoryId,
}

#[derive(DeriveIden)]
enum Books {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Categories {
    Table,
    Id,
}
