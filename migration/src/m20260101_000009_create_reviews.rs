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
                    .table(Reviews::Table)
                    .col(dialect::uuid_pk(Reviews::Id))
                    .col(ColumnDef::new(Reviews::UserId).uuid().not_null())
                    .col(ColumnDef::new(Reviews::BookId).uuid().not_null())
                    .col(
                        ColumnDef::new(Reviews::Rating)
                            .small_integer()
                            .not_null()
                            .check(Expr::col(Reviews::Rating).between(1, 5)),
                    )
                    .col(
                        ColumnDef::new(Reviews::Title)
                            .string_len(200)
                            .null()
                            .check(Expr::cust("length(title) BETWEEN 1 AND 200")),
                    )
                    .col(ColumnDef::new(Reviews::Body).text().not_null())
                    .col(dialect::timestamp(backend, Reviews::CreatedAt)?)
                    .col(dialect::timestamp(backend, Reviews::UpdatedAt)?)
                    .col(ColumnDef::new(Reviews::DeletedAt).timestamp_with_time_zone().null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_reviews_user_id")
                            .from(Reviews::Table, Reviews::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_reviews_book_id")
                            .from(Reviews::Table, Reviews::BookId)
                            .to(Books::Table, Books::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // "A user's recent reviews": also serves every lookup by user_id.
        manager
            .create_index(
                Index::create()
                    .name("idx_reviews_user_id_created_at")
                    .table(Reviews::Table)
                    .col(Reviews::UserId)
                    .col((Reviews::CreatedAt, IndexOrder::Desc))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_reviews_book_id_created_at")
                    .table(Reviews::Table)
                    .col(Reviews::BookId)
                    .col((Reviews::CreatedAt, IndexOrder::Desc))
                    .to_owned(),
            )
            .await?;
        // One live review per user and book; a soft-deleted one does not block a new one.
        manager
            .create_index(
                Index::create()
                    .name("uq_reviews_live_user_book")
                    .table(Reviews::Table)
                    .col(Reviews::UserId)
                    .col(Reviews::BookId)
                    .unique()
                    .and_where(Expr::col(Reviews::DeletedAt).is_null())
                    .to_owned(),
            )
            .await?;
        dialect::create_updated_at_trigger(manager, "reviews").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Reviews::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
enum Reviews {
    Table,
    Id,
    UserId,
    BookId,
    Rating,
    Title,
    Body,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
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
