//! The long texts had their limits only in the service: an author's and a reader's
//! bio, a book's description, a review's body. Like every other limit they now hold
//! for any writer. This migration adds the rules for new writes only (PostgreSQL: `NOT
//! VALID`, a brief lock and no scan); migration 20 checks the rows already there, in
//! a transaction of its own, under a lock that does not stop reads or writes.

use sea_orm_migration::prelude::*;

use crate::dialect;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// (table, column, min, max): the service's limits (`service::{authors, books,
/// reviews}`, `service::accounts::Bio`).
pub(crate) const LIMITS: &[(&str, &str, usize, usize)] = &[
    ("authors", "bio", 0, 10_000),
    ("books", "description", 0, 20_000),
    ("profiles", "bio", 0, 2_000),
    ("reviews", "body", 1, 20_000),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column, min, max) in LIMITS {
            dialect::add_length_check(manager, table, column, *min, *max).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (table, column, _, _) in LIMITS.iter().rev() {
            dialect::drop_length_check(manager, table, column).await?;
        }
        Ok(())
    }
}
