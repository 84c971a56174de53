//! Emails are lower-cased by the service before they are stored; now the database
//! guarantees that two accounts never differ only in case, whoever writes. The unique
//! index is on `lower(email)`, and the service looks accounts up by the same
//! expression, so that index serves logins too. It replaces, on PostgreSQL, the
//! unique constraint on `email` (a second index on the same column) and, on both
//! backends, `idx_users_active_email`: a partial index for active accounts that
//! duplicated the unique one, as every lookup by email finds at most one row anyway.
//! SQLite cannot drop a column's inline UNIQUE without rebuilding the table, so there
//! it stays beside the new index, redundant and harmless.
//!
//! The index is built CONCURRENTLY on PostgreSQL (the table is in use), so this
//! migration runs outside a transaction; every step is idempotent, so a run that
//! stopped half-way is finished by the next.

use sea_orm_migration::prelude::*;

use crate::dialect;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "uq_users_email_lower";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(false)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        dialect::create_index_on_existing_table(manager, INDEX, true, "users (lower(email))").await?;
        dialect::postgres_only(
            manager,
            &["-- uq_users_email_lower keeps the guarantee, case-insensitively.
               -- squawk-ignore ban-drop-constraint
               ALTER TABLE users DROP CONSTRAINT IF EXISTS users_email_key"],
        )
        .await?;
        dialect::drop_index_on_existing_table(manager, "idx_users_active_email").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // As migration 2 built it, so that the schema is the same again to the letter.
        manager
            .create_index(
                Index::create()
                    .name("idx_users_active_email")
                    .table(Users::Table)
                    .col(Users::Email)
                    .and_where(Expr::col(Users::DeletedAt).is_null())
                    .to_owned(),
            )
            .await?;
        dialect::postgres_only(
            manager,
            &["ALTER TABLE users ADD CONSTRAINT users_email_key UNIQUE (email)"],
        )
        .await?;
        dialect::drop_index_on_existing_table(manager, INDEX).await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Email,
    DeletedAt,
}
