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
                    .table(Books::Table)
                    .col(dialect::uuid_pk(Books::Id))
                    .col(ColumnDef::new(Books::AuthorId).uuid().not_null())
                    .col(
                        ColumnDef::new(Books::Title)
                            .string_len(500)
                            .not_null()
                            .check(Expr::cust("length(title) BETWEEN 1 AND 500")),
                    )
                    .col(ColumnDef::new(Books::Description).text().null())
                    // ISBN-13 digits only; NULL for books without one (NULLs never collide).
                    .col(
                        ColumnDef::new(Books::Isbn)
                            .string_len(13)
                            .null()
                            .unique_key()
                            .check(Expr::cust("length(isbn) = 13")),
                    )
                    .col(
                        ColumnDef::new(Books::PublishedYear)
                            .integer()
                            .null()
                            .check(Expr::cust("published_year BETWEEN -3000 AND 3000")),
                    )
                    .col(dialect::timestamp(backend, Books::CreatedAt)?)
                    .col(dialect::timestamp(backend, Books::UpdatedAt)?)
                    .col(ColumnDef::new(Books::DeletedAt).timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_books_author_id")
                            .from(Books::Table, Books::AuthorId)
                            .to(Authors::Table, Authors::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_books_author_id")
                    .table(Books::Table)
                    .col(Books::AuthorId)
                    .to_owned(),
            )
            .await?;
        // The default list order is newest first, keyset on (created_at, id).
        manager
            .create_index(
                Index::create()
                    .name("idx_books_created_at_id")
                    .table(Books::Table)
                    .col(Books::CreatedAt)
                    .col(Books::Id)
                    .to_owned(),
            )
            .await?;
        dialect::create_updated_at_trigger(manager, "books").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Books::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Books {
    Table,
    Id,
    AuthorId,
    Title,
    Description,
    Isbn,
    PublishedYear,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum Authors {
    Table,
    Id,
}
