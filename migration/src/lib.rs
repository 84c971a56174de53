//! Bookworm's schema history, one migration per file.
//!
//! Migrations are frozen history: they declare their own identifiers instead of
//! importing the `entity` crate, so changing an entity can never rewrite a schema
//! that production databases already have. Backend differences live in [`dialect`]
//! and nowhere else.

pub use sea_orm_migration::prelude::*;

mod dialect;
mod m20260101_000001_create_updated_at_function;
mod m20260101_000002_create_users;
mod m20260101_000003_create_profiles;
mod m20260101_000004_create_api_tokens;
mod m20260101_000005_create_authors;
mod m20260101_000006_create_books;
mod m20260101_000007_create_categories;
mod m20260101_000008_create_book_categories;
mod m20260101_000009_create_reviews;
mod m20260101_000010_create_shelf_entries;
mod m20260101_000011_create_audit_log;
mod m20260101_000012_create_user_stats;
mod m20260101_000013_user_stats_view;
mod m20260101_000014_full_text_search;
mod m20260101_000015_audit_triggers;
mod m20260101_000016_row_level_security;
mod m20261125_000017_pin_security_definer_search_path;
mod m20261125_000018_partition_audit_log;
mod m20261204_000019_text_length_checks;
mod m20261204_000020_validate_text_length_checks;
mod m20261204_000021_case_insensitive_email;
mod m20261204_000022_user_stats_refreshed_at;
mod m20261205_000023_canonical_emails;
pub mod session;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20260101_000001_create_updated_at_function::Migration),
            Box::new(m20260101_000002_create_users::Migration),
            Box::new(m20260101_000003_create_profiles::Migration),
            Box::new(m20260101_000004_create_api_tokens::Migration),
            Box::new(m20260101_000005_create_authors::Migration),
            Box::new(m20260101_000006_create_books::Migration),
            Box::new(m20260101_000007_create_categories::Migration),
            Box::new(m20260101_000008_create_book_categories::Migration),
            Box::new(m20260101_000009_create_reviews::Migration),
            Box::new(m20260101_000010_create_shelf_entries::Migration),
            Box::new(m20260101_000011_create_audit_log::Migration),
            Box::new(m20260101_000012_create_user_stats::Migration),
            Box::new(m20260101_000013_user_stats_view::Migration),
            Box::new(m20260101_000014_full_text_search::Migration),
            Box::new(m20260101_000015_audit_triggers::Migration),
            Box::new(m20260101_000016_row_level_security::Migration),
            Box::new(m20261125_000017_pin_security_definer_search_path::Migration),
            Box::new(m20261125_000018_partition_audit_log::Migration),
            Box::new(m20261204_000019_text_length_checks::Migration),
            Box::new(m20261204_000020_validate_text_length_checks::Migration),
            Box::new(m20261204_000021_case_insensitive_email::Migration),
            Box::new(m20261204_000022_user_stats_refreshed_at::Migration),
            Box::new(m20261205_000023_canonical_emails::Migration),
        ]
    }

    /// Drops everything the migrations created (not only tables and enum types, as
    /// the library's own does), then applies every migration.
    async fn fresh<'c, C>(db: C) -> Result<(), DbErr>
    where
        C: IntoSchemaManagerConnection<'c>,
    {
        let db = db.into_database_executor();
        dialect::drop_everything(&db).await?;
        Self::up(db, None).await
    }
}
