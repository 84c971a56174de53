//! The shared `updated_at` trigger function (PostgreSQL). Later migrations attach a
//! trigger per table; SQLite needs no function.

use sea_orm_migration::prelude::*;

use crate::dialect;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        dialect::create_updated_at_function(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        dialect::drop_updated_at_function(manager).await
    }
}
