//! The connection migrations run on: their own timeouts, never the API's.
//!
//! The API's pool cancels any statement after its request budget
//! (`DATABASE_STATEMENT_TIMEOUT_MS`, seconds); rebuilding an index over a large table
//! legitimately takes minutes, so migrations get a statement timeout of their own. What a
//! migration must not do is wait long for a lock: an `ALTER TABLE` queued behind one
//! long transaction makes every later query on that table queue behind it, and the
//! whole API stalls. A short `lock_timeout` makes the migration give up instead (on PostgreSQL
//! each of our migrations is one transaction, so nothing of it stays); run it again when the table is
//! quieter. On SQLite the lock timeout is the busy timeout and there is no statement
//! timeout. Both the CLI and the API's start-up connect through [`connect`], so the
//! two cannot disagree.
//!
//! Notices are turned off for the session: sea-orm-migration creates its bookkeeping
//! table with `CREATE TABLE IF NOT EXISTS`, and PostgreSQL answered every start-up with
//! `relation "seaql_migrations" already exists, skipping` notices in the log.

use std::time::Duration;

use sea_orm_migration::sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, sqlx};

/// How long a migration may wait for a lock, and how long one statement may run.
/// Zero means no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationTimeouts {
    pub lock: Duration,
    pub statement: Duration,
}

impl MigrationTimeouts {
    /// `DATABASE_MIGRATION_LOCK_TIMEOUT_MS`'s default.
    pub const DEFAULT_LOCK: Duration = Duration::from_secs(2);
    /// `DATABASE_MIGRATION_STATEMENT_TIMEOUT_MS`'s default.
    pub const DEFAULT_STATEMENT: Duration = Duration::from_secs(600);
    /// The longest either may be: PostgreSQL keeps both in an `int` of milliseconds
    /// (about 24.8 days), and refuses a connection that asks for more.
    pub const MAX_MILLIS: u64 = i32::MAX as u64;
}

impl Default for MigrationTimeouts {
    fn default() -> Self {
        Self {
            lock: Self::DEFAULT_LOCK,
            statement: Self::DEFAULT_STATEMENT,
        }
    }
}

/// One connection for migrating `url`, failing within `connect_timeout`.
pub async fn connect(
    url: &str,
    connect_timeout: Duration,
    timeouts: MigrationTimeouts,
) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(1)
        .min_connections(0)
        .connect_timeout(connect_timeout)
        .acquire_timeout(connect_timeout)
        .set_application_name("bookworm-migration")
        .sqlx_logging(false);
    // `SET`s, not the `options` startup parameter, which PgBouncer refuses.
    let session = format!(
        "SET lock_timeout = {}; SET statement_timeout = {}; SET client_min_messages = warning",
        timeouts.lock.as_millis(),
        timeouts.statement.as_millis()
    );
    options.map_sqlx_postgres_pool_opts(move |pool| {
        let session = session.clone();
        pool.after_connect(move |conn, _| {
            let sql = sqlx::raw_sql(sqlx::AssertSqlSafe(session.clone()));
            Box::pin(async move { sqlx::Executor::execute(conn, sql).await.map(drop) })
        })
    });
    options.map_sqlx_sqlite_opts(move |opts| opts.busy_timeout(sqlite_busy_timeout(timeouts.lock)));
    Database::connect(options).await
}

/// SQLite's busy timeout for a lock timeout. PostgreSQL reads a `lock_timeout` of 0 as
/// "wait for ever"; SQLite reads a busy timeout of 0 as "do not wait", so 0 becomes
/// the longest busy timeout SQLite takes (`i32::MAX` milliseconds, about 24 days).
fn sqlite_busy_timeout(lock: Duration) -> Duration {
    if lock.is_zero() {
        Duration::from_millis(i32::MAX as u64)
    } else {
        lock
    }
}

/// A migration error with what to do about it, when it is a timeout of ours or a
/// role that may not change the schema.
pub fn explain(err: &DbErr) -> String {
    let text = err.to_string();
    let advice = if refused_for_privileges(err) {
        " (this role may not change the schema: migrations must run as the schema's owner, \
         see docs/operations.md, \"Two database roles\")"
    } else if text.contains("lock timeout") {
        " (another session held a lock on the table longer than DATABASE_MIGRATION_LOCK_TIMEOUT_MS; \
         the migration is not recorded as applied: run it again when the table is quieter, or raise the setting)"
    } else if text.contains("statement timeout") {
        " (a statement ran longer than DATABASE_MIGRATION_STATEMENT_TIMEOUT_MS; the migration \
         is not recorded as applied: raise the setting, or set 0 for no limit)"
    } else {
        ""
    };
    format!("{text}{advice}")
}

/// A statement refused for want of a privilege (PostgreSQL's "permission denied …" or
/// "must be owner of …"): in the two-role set-up, migrations run as the restricted role.
pub fn refused_for_privileges(err: &DbErr) -> bool {
    let text = err.to_string();
    text.contains("permission denied") || text.contains("must be owner")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_for_want_of_privileges_says_who_must_migrate() {
        let refused = DbErr::Custom("permission denied for schema public".into());
        assert!(explain(&refused).contains("migrations must run as the schema's owner"));
        let other = DbErr::Custom("relation \"books\" already exists".into());
        assert_eq!(explain(&other), other.to_string());
    }

    #[test]
    fn a_zero_lock_timeout_waits_for_ever_on_sqlite_too() {
        assert!(sqlite_busy_timeout(Duration::ZERO) > Duration::from_secs(86_400));
        assert_eq!(sqlite_busy_timeout(Duration::from_secs(2)), Duration::from_secs(2));
    }
}
