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
    let missing = not_in(expected, &applied);
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

/// The migration names in `names` that `others` lacks: applied ones a binary does not
/// know, or ones it knows that are not applied.
pub fn not_in<'a>(names: &'a [String], others: &[String]) -> Vec<&'a str> {
    names
        .iter()
        .filter(|name| !others.contains(name))
        .map(String::as_str)
        .collect()
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

/// The served tables the API only reads: the rest it writes, with every right
/// (`SELECT, INSERT, UPDATE, DELETE`, the grants of docs/operations.md).
pub const READ_ONLY_TABLES: &[&str] = &["audit_log", "user_stats", "user_stats_refreshes"];

/// The database server, as `api doctor` names it: `PostgreSQL 15.19`, `SQLite 3.46.0`.
pub async fn server_version(db: &DatabaseConnection) -> Result<String, sea_orm::DbErr> {
    let (sql, product) = match db.get_database_backend() {
        DbBackend::Postgres => ("SELECT current_setting('server_version')", "PostgreSQL"),
        _ => ("SELECT sqlite_version()", "SQLite"),
    };
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?;
    let version: String = row.map(|r| r.try_get_by_index(0)).transpose()?.unwrap_or_default();
    Ok(format!("{product} {version}"))
}

/// The migrations recorded as applied, oldest first.
pub async fn applied_migrations(db: &DatabaseConnection) -> Result<Vec<String>, sea_orm::DbErr> {
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(
            backend,
            "SELECT version FROM seaql_migrations ORDER BY version",
        ))
        .await?;
    rows.iter().map(|row| row.try_get_by_index::<String>(0)).collect()
}

/// What the connection's PostgreSQL role may do, against what the API needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleReport {
    pub name: String,
    pub superuser: bool,
    pub bypass_rls: bool,
    /// `privilege on table` the API needs and the role lacks, e.g. `INSERT on reviews`.
    pub missing: Vec<String>,
    /// Rights on `audit_log` beyond reading: with them the role could rewrite history.
    pub audit_log_rights: Vec<String>,
    /// The audit trigger function runs as its owner (SECURITY DEFINER), so the role
    /// needs no rights on `audit_log` for its writes to be recorded.
    pub audit_trigger_is_definer: bool,
}

/// The role's report; `None` on SQLite, which has no roles.
pub async fn role_report(db: &DatabaseConnection) -> Result<Option<RoleReport>, sea_orm::DbErr> {
    if db.get_database_backend() != DbBackend::Postgres {
        return Ok(None);
    }
    let sql = "SELECT current_user::text, rolsuper, rolbypassrls, \
         ARRAY(SELECT p || ' on ' || t \
               FROM unnest($1::text[]) AS t, unnest(ARRAY['SELECT']) AS p \
               WHERE to_regclass(t) IS NULL OR NOT has_table_privilege(to_regclass(t), p) \
               UNION ALL \
               SELECT p || ' on ' || t \
               FROM unnest($2::text[]) AS t, unnest(ARRAY['INSERT', 'UPDATE', 'DELETE']) AS p \
               WHERE to_regclass(t) IS NULL OR NOT has_table_privilege(to_regclass(t), p)), \
         ARRAY(SELECT p FROM unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p \
               WHERE to_regclass('audit_log') IS NOT NULL AND has_table_privilege('audit_log', p)), \
         coalesce((SELECT bool_and(p.prosecdef) FROM pg_trigger g JOIN pg_proc p ON p.oid = g.tgfoid \
                   WHERE NOT g.tgisinternal AND p.proname = 'bookworm_audit'), false) \
         FROM pg_roles WHERE rolname = current_user";
    let read: Vec<String> = SERVED_TABLES
        .iter()
        .chain(&["seaql_migrations"])
        .map(|t| t.to_string())
        .collect();
    let written: Vec<String> = SERVED_TABLES
        .iter()
        .filter(|t| !READ_ONLY_TABLES.contains(t))
        .map(|t| t.to_string())
        .collect();
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [read.into(), written.into()],
        ))
        .await?
        .ok_or_else(|| sea_orm::DbErr::RecordNotFound("the current role in pg_roles".into()))?;
    Ok(Some(RoleReport {
        name: row.try_get_by_index(0)?,
        superuser: row.try_get_by_index(1)?,
        bypass_rls: row.try_get_by_index(2)?,
        missing: row.try_get_by_index(3)?,
        audit_log_rights: row.try_get_by_index(4)?,
        audit_trigger_is_definer: row.try_get_by_index(5)?,
    }))
}
