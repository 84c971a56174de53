//! Checks the rows that were there before migration 19's rules. On PostgreSQL
//! `VALIDATE CONSTRAINT` scans each table under a SHARE UPDATE EXCLUSIVE lock, which
//! lets reads and writes go on; a row over the limit stops the migration by the
//! constraint's name, and nothing is lost.

use sea_orm_migration::prelude::*;

use crate::m20261204_000019_text_length_checks::LIMITS;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for check in LIMITS {
            check.validate(manager).await?;
        }
        Ok(())
    }

    /// A validated constraint cannot be marked `NOT VALID` again; it is added again
    /// as migration 19 left it.
    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for check in LIMITS {
            check.drop(manager).await?;
            check.add(manager).await?;
        }
        Ok(())
    }
}
