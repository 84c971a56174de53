//! Checks the rows that were there before migration 19's rules. On PostgreSQL
//! `VALIDATE CONSTRAINT` scans each table under a SHARE UPDATE EXCLUSIVE lock, which
//! lets reads and writes go on; a row over the limit stops the migration by the
//! constraint's name, and nothing is lost.

use sea_orm_migration::prelude::*;

use crate::dialect;
use crate::m20261204_000019_text_length_checks::LIMITS;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column, min, max) in LIMITS {
            dialect::validate_length_check(manager, table, column, *min, *max).await?;
        }
        Ok(())
    }

    /// A validated constraint cannot be marked `NOT VALID` again; it is added again
    /// as migration 19 left it.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column, min, max) in LIMITS {
            dialect::drop_length_check(manager, table, column).await?;
            dialect::add_length_check(manager, table, column, *min, *max).await?;
        }
        Ok(())
    }
}
