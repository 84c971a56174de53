//! Per-reader review statistics. A plain table for now, rebuilt by a refresh call;
//! on PostgreSQL a later migration replaces it with a materialized view.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(UserStats::Table)
                    .col(ColumnDef::new(UserStats::UserId).uuid().not_null().primary_key())
                    .col(
                        ColumnDef::new(UserStats::ReviewCount)
                            .big_integer()
                            .not_null()
                            .default(0)
                            .check(Expr::col(UserStats::ReviewCount).gte(0)),
                    )
                    .col(ColumnDef::new(UserStats::AverageRating).double().null())
                    .col(
                        ColumnDef::new(UserStats::LastReviewAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_user_stats_user_id")
                            .from(UserStats::Table, UserStats::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(UserStats::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum UserStats {
    Table,
    UserId,
    ReviewCount,
    AverageRating,
    LastReviewAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}
