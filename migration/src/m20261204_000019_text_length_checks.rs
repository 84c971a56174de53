//! The long texts had their limits only in the service: an author's and a reader's
//! bio, a book's description, a review's body. Like every other limit they now hold
//! for any writer. This migration adds the rules for new writes only (PostgreSQL: `NOT
//! VALID`, a brief lock and no scan); migration 20 checks the rows already there, in
//! a transaction of its own, under a lock that does not stop reads or writes.

use sea_orm_migration::prelude::*;

use crate::dialect::LengthCheck;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The service's limits (`service::{authors, books, reviews}`, `service::accounts::Bio`).
pub(crate) const LIMITS: &[LengthCheck] = &[
    LengthCheck {
        table: "authors",
        column: "bio",
        min: 0,
        max: 10_000,
    },
    LengthCheck {
        table: "books",
        column: "description",
        min: 0,
        max: 20_000,
    },
    LengthCheck {
        table: "profiles",
        column: "bio",
        min: 0,
        max: 2_000,
    },
    LengthCheck {
        table: "reviews",
        column: "body",
        min: 1,
        max: 20_000,
    },
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for check in LIMITS {
            check.add(manager).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for check in LIMITS.iter().rev() {
            check.drop(manager).await?;
        }
        Ok(())
    }
}
