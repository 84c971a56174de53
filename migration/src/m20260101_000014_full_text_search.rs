//! Full-text search over books (title, description) and reviews (title, body).
//!
//! PostgreSQL: a stored generated `tsvector` column per table (title weighted above
//! the rest) with a GIN index; queries use `websearch_to_tsquery`, which accepts any
//! user text without syntax errors. A generated column was preferred to an
//! expression index so the ranking reads the stored vector instead of re-parsing
//! the text of every match. SQLite: FTS5 external-content tables (the text is not
//! stored twice) kept in step by triggers; `UPDATE OF` lists only the indexed columns
//! so the `updated_at` trigger's own UPDATE does not re-index.

use crate::dialect;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP_POSTGRES: &str = "
ALTER TABLE books ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', coalesce(description, '')), 'B')
) STORED;
CREATE INDEX idx_books_search ON books USING GIN (search);
ALTER TABLE reviews ADD COLUMN search tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', coalesce(title, '')), 'A') || setweight(to_tsvector('english', body), 'B')
) STORED;
CREATE INDEX idx_reviews_search ON reviews USING GIN (search);
";

const DOWN_POSTGRES: &str = "
DROP INDEX idx_reviews_search;
ALTER TABLE reviews DROP COLUMN search;
DROP INDEX idx_books_search;
ALTER TABLE books DROP COLUMN search;
";

/// (table, indexed column, indexed column)
const SQLITE_TABLES: &[(&str, &str, &str)] = &[("books", "title", "description"), ("reviews", "title", "body")];

fn up_sqlite() -> String {
    let mut sql = String::new();
    for (table, a, b) in SQLITE_TABLES {
        let (new_a, new_b) = (format!("coalesce(NEW.{a}, '')"), format!("coalesce(NEW.{b}, '')"));
        let (old_a, old_b) = (format!("coalesce(OLD.{a}, '')"), format!("coalesce(OLD.{b}, '')"));
        sql.push_str(&format!(
            "CREATE VIRTUAL TABLE {table}_fts USING fts5({a}, {b}, content='{table}', content_rowid='rowid', tokenize='porter unicode61');
             INSERT INTO {table}_fts (rowid, {a}, {b}) SELECT rowid, coalesce({a}, ''), coalesce({b}, '') FROM {table};
             CREATE TRIGGER {table}_fts_insert AFTER INSERT ON {table} BEGIN
                 INSERT INTO {table}_fts (rowid, {a}, {b}) VALUES (NEW.rowid, {new_a}, {new_b});
             END;
             CREATE TRIGGER {table}_fts_delete AFTER DELETE ON {table} BEGIN
                 INSERT INTO {table}_fts ({table}_fts, rowid, {a}, {b}) VALUES ('delete', OLD.rowid, {old_a}, {old_b});
             END;
             CREATE TRIGGER {table}_fts_update AFTER UPDATE OF {a}, {b} ON {table} BEGIN
                 INSERT INTO {table}_fts ({table}_fts, rowid, {a}, {b}) VALUES ('delete', OLD.rowid, {old_a}, {old_b});
                 INSERT INTO {table}_fts (rowid, {a}, {b}) VALUES (NEW.rowid, {new_a}, {new_b});
             END;\n"
        ));
    }
    sql
}

fn down_sqlite() -> String {
    SQLITE_TABLES
        .iter()
        .map(|(table, _, _)| {
            format!(
                "DROP TRIGGER {table}_fts_update; DROP TRIGGER {table}_fts_delete; DROP TRIGGER {table}_fts_insert;
                 DROP TABLE {table}_fts;\n"
            )
        })
        .collect()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        dialect::per_backend(manager, UP_POSTGRES, &up_sqlite()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        dialect::per_backend(manager, DOWN_POSTGRES, &down_sqlite()).await
    }
}
