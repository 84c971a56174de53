//! What `/health/ready` checks: not only that the database answers, but that this
//! instance can do its work there. A role that lost its grants, or a schema older than
//! the binary (a deploy that skipped `migration up`), answers `SELECT 1` happily and
//! then fails every request; readiness fails instead, naming the cause, so the
//! orchestrator keeps traffic away and the operator sees why.

use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

/// Every table the API reads.
pub const SERVED_TABLES: &[&str] = &[
    "users",
    "profiles",
    "api_tokens",
    "authors",
    "books",
    "categories",
    "book_categories",
    "reviews",
    "shelf_entries",
    "audit_log",
    "user_stats",
    "user_stats_refreshes",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("the database is unreachable")]
    Unreachable,
    #[error("the database role cannot read {0}: check the grants (docs/operations.md)")]
    MissingGrants(String),
    #[error("the schema is behind this binary: {0} not applied (run the migrations)")]
    MigrationsBehind(String),
}

/// Whether the connection's role skips row-level security, as a superuser or a
/// BYPASSRLS role does: the policies then protect nothing, whatever the API checks.
/// Always `false` on SQLite, which has no row-level security to skip.
pub async fn skips_row_security(db: &DatabaseConnection) -> Result<bool, sea_orm::DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(false);
    }
    let sql = "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user";
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?;
    Ok(row.and_then(|r| r.try_get_by_index::<bool>(0).ok()).unwrap_or(false))
}

/// Runs the checks within `timeout`; `expected` are the migrations this binary needs.
pub async fn check(db: &DatabaseConnection, timeout: Duration, expected: &[String]) -> Result<(), NotReady> {
    match tokio::time::timeout(timeout, run_checks(db, expected)).await {
        Ok(result) => result,
        Err(_) => Err(NotReady::Unreachable),
    }
}

async fn run_checks(db: &DatabaseConnection, expected: &[String]) -> Result<(), NotReady> {
    let backend = db.get_database_backend();
    // The migrations first: a schema behind the binary also lacks tables, and is the
    // cause to name.
    let applied = Statement::from_string(backend, "SELECT version FROM seaql_migrations");
    let applied = query_strings(db, applied, "the migration table").await?;
    let missing: Vec<&str> = expected
        .iter()
        .filter(|name| !applied.contains(name))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Err(NotReady::MigrationsBehind(missing.join(", ")));
    }
    let unreadable: Vec<String> = match backend {
        DbBackend::Postgres => {
            // to_regclass: a missing table is unreadable too, not an error.
            let sql = "SELECT t FROM unnest($1::text[]) AS t \
                       WHERE to_regclass(t) IS NULL OR NOT has_table_privilege(to_regclass(t), 'SELECT') \
                       ORDER BY t";
            let tables: Vec<String> = SERVED_TABLES.iter().map(|t| t.to_string()).collect();
            let grants = Statement::from_sql_and_values(backend, sql, [tables.into()]);
            query_strings(db, grants, "the table privileges").await?
        }
        // SQLite has no roles: a table is readable if it exists.
        _ => {
            let tables = "SELECT name FROM sqlite_master WHERE type IN ('table', 'view')";
            let present = query_strings(db, Statement::from_string(backend, tables), "the schema").await?;
            SERVED_TABLES
                .iter()
                .filter(|t| !present.iter().any(|p| p == *t))
                .map(|t| t.to_string())
                .collect()
        }
    };
    if !unreadable.is_empty() {
        return Err(NotReady::MissingGrants(unreadable.join(", ")));
    }
    Ok(())
}

/// Runs a one-column text query; `reads` names what it reads, for the error.
async fn query_strings(db: &DatabaseConnection, statement: Statement, reads: &str) -> Result<Vec<String>, NotReady> {
    let rows = db.query_all_raw(statement).await.map_err(|err| {
        tracing::warn!(error = %err, "readiness query failed");
        match crate::error::outage(&err) {
            Some(_) => NotReady::Unreachable,
            // A query that cannot run at all (seaql_migrations unreadable, say) is a
            // permissions or schema problem, not an outage.
            None => NotReady::MissingGrants(reads.to_owned()),
        }
    })?;
    rows.iter()
        .map(|row| row.try_get_by_index::<String>(0).map_err(|_| NotReady::Unreachable))
        .collect()
}
