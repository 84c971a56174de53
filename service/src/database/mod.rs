//! Connecting to the database: URLs that never print their password, pool settings
//! and the backend-specific options. The statement counter and write transactions
//! live beside it (`statement_count.rs`, `write_txn.rs`, `transaction.rs`) and are
//! re-exported here.
//!
//! The pool settings are the usual production defaults (at most 20 connections, connect
//! timeout 2 s, idle timeout 30 s, statement timeout 10 s, a health check before
//! reuse), each a named field, with one exception: none is kept open while idle
//! (`min_connections` 0, where 5 is usual). sqlx opens the connections it keeps open
//! from the runtime that made the pool, and a socket is served by the reactor of the
//! runtime that opened it, so every reply on such a connection woke a thread of
//! `main`'s runtime, which then woke the actix worker waiting for it: about 9 µs of CPU
//! per request and a thread switch on top. A connection opened when a request needs
//! it belongs to that request's worker (docs/performance.md). A few sqlx defaults are
//! deliberately overridden:
//! - acquire timeout: sqlx waits 30 s for a connection, so a stopped database would
//!   hang every request; we fail after `connect_timeout` instead;
//! - health check: sqlx pings on every checkout; we ping only connections idle for
//!   longer than `check_idle_after`, which catches stale ones without a round trip
//!   per request;
//! - SQLite runs in WAL mode, so readers never block the writer, and waits for the
//!   write lock up to the statement timeout (the writers of one process take turns
//!   before they ask for it, `write_txn.rs`);
//! - a request's statements share one checked-out connection per pool (`pinned.rs`),
//!   its write transaction too (`transaction.rs`), and one the request finished with
//!   cleanly goes to the next request without sqlx's ping on taking a connection back
//!   (`spare.rs`).

mod pinned;
pub mod primary;
mod spare;
mod statement_count;
mod transaction;
mod write_txn;

use std::fmt;
use std::time::Duration;

use sea_orm::sqlx;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbBackend, DbErr, Statement};

pub use pinned::{Pinned, give_back_connections, with_pinned_connections};
pub use spare::Spare;
pub use statement_count::{count_statements, with_statement_count};
pub use write_txn::{Actor, WriteTxn, begin_write_as, begin_write_lazily_as};

/// A database URL that never prints its password.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn backend(&self) -> Option<DbBackend> {
        let scheme = self.0.split_once(':')?.0;
        match scheme {
            "sqlite" => Some(DbBackend::Sqlite),
            "postgres" | "postgresql" => Some(DbBackend::Postgres),
            _ => None,
        }
    }

    /// The file an SQLite URL opens; `None` for a database in memory, or not SQLite.
    pub fn sqlite_file(&self) -> Option<std::path::PathBuf> {
        if self.backend() != Some(DbBackend::Sqlite) || self.0.contains(":memory:") || self.0.contains("mode=memory") {
            return None;
        }
        let options: sqlx::sqlite::SqliteConnectOptions = self.0.parse().ok()?;
        Some(options.get_filename().to_owned())
    }

    /// `host:port/database`, with no user or password: a name for logs and metrics.
    pub fn location(&self) -> String {
        let rest = self.0.split_once("://").map_or(self.0.as_str(), |(_, rest)| rest);
        let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
        rest.split('?').next().unwrap_or_default().to_owned()
    }

    /// The URL with any password replaced by `***`, for logs and messages.
    pub fn redacted(&self) -> String {
        let Some((scheme, rest)) = self.0.split_once("://") else {
            return self.0.clone();
        };
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or_default();
                let masked = if userinfo.contains(':') {
                    format!("{user}:***")
                } else {
                    user.to_owned()
                };
                format!("{scheme}://{masked}@{host}{path}")
            }
            None => self.0.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub url: DatabaseUrl,
    pub max_connections: u32,
    pub min_connections: u32,
    /// How long to wait for a connection, new or pooled, before failing.
    pub connect_timeout: Duration,
    /// Idle connections above `min_connections` are closed after this long.
    pub idle_timeout: Duration,
    /// PostgreSQL `statement_timeout`; on SQLite, the busy timeout (how long a
    /// statement waits for another connection's write lock before giving up).
    pub statement_timeout: Duration,
    /// A pooled connection idle for longer than this is pinged before use.
    pub check_idle_after: Duration,
}

impl PoolSettings {
    /// The defaults (see the module doc) for the given URL.
    pub fn with_defaults(url: DatabaseUrl) -> Self {
        Self {
            url,
            max_connections: 20,
            min_connections: 0,
            connect_timeout: Duration::from_secs(2),
            idle_timeout: Duration::from_secs(30),
            statement_timeout: Duration::from_secs(10),
            check_idle_after: Duration::from_secs(5),
        }
    }

    pub fn connect_options(&self) -> ConnectOptions {
        let mut options = ConnectOptions::new(self.url.expose());
        options
            .max_connections(self.max_connections)
            .min_connections(self.min_connections)
            .connect_timeout(self.connect_timeout)
            .acquire_timeout(self.connect_timeout)
            .idle_timeout(self.idle_timeout)
            .test_before_acquire_if_idle_for(self.check_idle_after)
            .set_application_name("bookworm")
            .sqlx_logging(false);
        // SQLite's nearest thing to a statement timeout: how long to wait for a lock.
        let busy_timeout = self.statement_timeout;
        options.map_sqlx_sqlite_opts(move |opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(busy_timeout)
        });
        // PostgreSQL's session settings, as `SET`s on each new connection rather than
        // the `options` startup parameter (SeaORM's `statement_timeout`), which
        // PgBouncer refuses; a pooler passes a `SET` through like any statement.
        // A transaction abandoned by a cancelled request must not hold locks forever
        // (see sqlx issue 4385: a cancelled begin() can leave one open).
        let session = format!(
            "SET statement_timeout = {}; SET idle_in_transaction_session_timeout = {}",
            self.statement_timeout.as_millis(),
            (self.statement_timeout * 3).as_millis()
        );
        // sqlx bounds the connecting but not this hook, and behind a session-mode pooler
        // with no server connection free the `SET` waits in its queue: without a bound
        // of our own, start-up would hang there for the pooler's `query_wait_timeout`.
        let limit = self.connect_timeout;
        options.map_sqlx_postgres_pool_opts(move |pool| {
            let session = session.clone();
            pool.after_connect(move |conn, _| {
                let sql = sqlx::raw_sql(sqlx::AssertSqlSafe(session.clone()));
                Box::pin(async move {
                    match tokio::time::timeout(limit, sqlx::Executor::execute(conn, sql)).await {
                        Ok(done) => done.map(drop),
                        Err(_) => Err(sqlx::Error::PoolTimedOut),
                    }
                })
            })
        });
        options
    }
}

/// A raw statement written once with PostgreSQL's `$1` placeholders, for either
/// backend: SQLite reads `?1` as the same numbered parameter. Values are always bound,
/// never spliced into the text. (The statement must not contain other `$` characters,
/// such as dollar-quoted strings.)
pub fn raw_statement(backend: DbBackend, sql: &str, values: impl IntoIterator<Item = sea_orm::Value>) -> Statement {
    let sql = match backend {
        DbBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    };
    Statement::from_sql_and_values(backend, sql, values)
}

/// Opens the pool and checks one connection, failing within `connect_timeout`.
pub async fn connect(settings: &PoolSettings) -> Result<DatabaseConnection, DbErr> {
    Database::connect(settings.connect_options()).await
}

/// Opens the pool without connecting: for a replica, which may be down when the API
/// starts and must not stop it.
pub async fn connect_lazily(settings: &PoolSettings) -> Result<DatabaseConnection, DbErr> {
    let mut options = settings.connect_options();
    options.connect_lazy(true);
    Database::connect(options).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sqlite_url_names_its_file_unless_it_is_in_memory() {
        let file = DatabaseUrl::new("sqlite:///var/lib/bookworm/bookworm.db?mode=rwc").sqlite_file();
        assert_eq!(
            file.as_deref(),
            Some(std::path::Path::new("/var/lib/bookworm/bookworm.db"))
        );
        assert_eq!(
            DatabaseUrl::new("sqlite://bookworm.db?mode=rwc")
                .sqlite_file()
                .as_deref(),
            Some(std::path::Path::new("bookworm.db"))
        );
        for none in ["sqlite::memory:", "sqlite://shared?mode=memory", "postgres://h/db"] {
            assert_eq!(DatabaseUrl::new(none).sqlite_file(), None, "{none}");
        }
    }

    #[test]
    fn redacts_passwords_but_keeps_the_rest() {
        let url = DatabaseUrl::new("postgres://app:s3cret@db.internal:5432/bookworm");
        assert_eq!(url.redacted(), "postgres://app:***@db.internal:5432/bookworm");
        assert!(!format!("{url:?} {url}").contains("s3cret"));
    }

    #[test]
    fn a_location_names_the_server_without_credentials() {
        let url = DatabaseUrl::new("postgres://app:s3cret@replica-1:5433/bookworm?sslmode=require");
        assert_eq!(url.location(), "replica-1:5433/bookworm");
        assert_eq!(DatabaseUrl::new("postgres://h/db").location(), "h/db");
    }

    #[test]
    fn leaves_urls_without_password_alone() {
        for raw in ["postgres://postgres@127.0.0.1/x", "sqlite://bookworm.db?mode=rwc"] {
            assert_eq!(DatabaseUrl::new(raw).redacted(), raw);
        }
    }

    #[test]
    fn knows_the_backend_from_the_scheme() {
        assert_eq!(DatabaseUrl::new("sqlite::memory:").backend(), Some(DbBackend::Sqlite));
        assert_eq!(
            DatabaseUrl::new("postgresql://h/db").backend(),
            Some(DbBackend::Postgres)
        );
        assert_eq!(DatabaseUrl::new("mysql://h/db").backend(), None);
    }
}
