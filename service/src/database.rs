//! Connecting to the database: pool settings and the backend-specific options.
//!
//! The pool settings are the usual production defaults (at most 20 connections, 5 kept
//! open, connect timeout 2 s, idle timeout 30 s, statement timeout 10 s, a health
//! check before reuse), each a named field. A few sqlx defaults are deliberately overridden:
//! - acquire timeout: sqlx waits 30 s for a connection, so a stopped database would
//!   hang every request; we fail after `connect_timeout` instead;
//! - health check: sqlx pings on every checkout; we ping only connections idle for
//!   longer than `check_idle_after`, which catches stale ones without a round trip
//!   per request;
//! - SQLite runs in WAL mode, so readers never block the writer, and waits for the
//!   write lock up to the statement timeout.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering as AtomicOrdering};
use std::time::Duration;

use entity::user::Role;
use sea_orm::sea_query::{Expr, SelectStatement};
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use sea_orm::{FromQueryResult, Statement};
use uuid::Uuid;

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
            min_connections: 5,
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
            .statement_timeout(self.statement_timeout)
            .set_application_name("bookworm")
            .sqlx_logging(false);
        // SQLite's nearest thing to a statement timeout: how long to wait for a lock.
        let busy_timeout = self.statement_timeout;
        options.map_sqlx_sqlite_opts(move |opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(busy_timeout)
        });
        let idle_in_transaction = (self.statement_timeout * 3).as_millis().to_string();
        options.map_sqlx_postgres_opts(move |opts| {
            // A transaction abandoned by a cancelled request must not hold locks forever
            // (see sqlx issue 4385: a cancelled begin() can leave one open).
            opts.options([("idle_in_transaction_session_timeout", idle_in_transaction.as_str())])
        });
        options
    }
}

tokio::task_local! {
    static STATEMENTS: Arc<AtomicU32>;
}

/// Makes `db` (and every clone made afterwards) count each statement it runs into
/// the counter of the task running it, if [`with_statement_count`] set one up.
/// SeaORM calls the metric callback for every statement, inside transactions and
/// loaders too, so the count is exact; this is how the N+1 tests see queries.
pub fn count_statements(db: &mut DatabaseConnection) {
    db.set_metric_callback(|_| {
        let _ = STATEMENTS.try_with(|count| count.fetch_add(1, AtomicOrdering::Relaxed));
    });
}

/// Runs `work` with a fresh statement counter and returns its output with the count.
pub async fn with_statement_count<F: Future>(work: F) -> (F::Output, u32) {
    let counter = Arc::new(AtomicU32::new(0));
    let output = STATEMENTS.scope(counter.clone(), work).await;
    (output, counter.load(AtomicOrdering::Relaxed))
}

/// Begins a transaction that will write. On SQLite it is `BEGIN IMMEDIATE`: a
/// deferred transaction that reads and then writes cannot become the writer once
/// another connection has committed, and fails at once with "database is locked"
/// (the busy timeout does not apply). Taking the write lock up front makes it wait
/// its turn instead. PostgreSQL ignores the option.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    db.begin_with_options(TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    })
    .await
}

/// Who a write is done for: the actor the audit trigger records and the subject the
/// row-level security policies check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub id: Uuid,
    pub role: Role,
}

/// A write transaction that knows who is writing.
///
/// PostgreSQL: `app.current_user_id` and `app.current_role` are set with
/// `set_config(…, true)`, which lasts until this transaction ends and never leaks to
/// the next user of the pooled connection. SQLite: the audit triggers write their rows
/// without an actor, and this transaction fills it in before it commits (it holds the
/// write lock, so every audit row after its starting mark is its own).
pub struct WriteTxn {
    txn: DatabaseTransaction,
    actor: Option<Actor>,
    /// PostgreSQL: an actor not yet set, to be set by the first read (see [`WriteTxn::first_read`]).
    pending: Option<Actor>,
    /// SQLite: the highest audit_log id before this transaction's own rows.
    audit_mark: Option<i64>,
}

impl std::ops::Deref for WriteTxn {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

pub async fn begin_write_as(db: &DatabaseConnection, actor: Option<Actor>) -> Result<WriteTxn, DbErr> {
    let mut txn = WriteTxn {
        txn: begin_write(db).await?,
        actor: None,
        pending: None,
        audit_mark: None,
    };
    txn.act_as(actor).await?;
    Ok(txn)
}

/// Like [`begin_write_as`], except that on PostgreSQL the actor is not set by a
/// statement of its own but rides on the transaction's first statement, a read the
/// write needs anyway ([`WriteTxn::first_read`]): one round trip fewer per write.
pub async fn begin_write_lazily_as(db: &DatabaseConnection, actor: Actor) -> Result<WriteTxn, DbErr> {
    let mut txn = WriteTxn {
        txn: begin_write(db).await?,
        actor: None,
        pending: None,
        audit_mark: None,
    };
    match txn.txn.get_database_backend() {
        DbBackend::Postgres => txn.pending = Some(actor),
        _ => txn.act_as(Some(actor)).await?,
    }
    Ok(txn)
}

impl WriteTxn {
    /// Writes from here on are done for `actor` (registration acts as the new user).
    pub async fn act_as(&mut self, actor: Option<Actor>) -> Result<(), DbErr> {
        self.pending = None;
        let backend = self.txn.get_database_backend();
        match backend {
            DbBackend::Postgres => {
                let id = actor.map(|a| a.id.to_string()).unwrap_or_default();
                let role = actor.map(|a| role_name(a.role)).unwrap_or_default();
                let sql =
                    "SELECT set_config('app.current_user_id', $1, true), set_config('app.current_role', $2, true)";
                self.txn
                    .execute_raw(Statement::from_sql_and_values(backend, sql, [id.into(), role.into()]))
                    .await?;
            }
            _ => {
                self.stamp_audit_rows().await?;
                let row = self
                    .txn
                    .query_one_raw(Statement::from_string(
                        backend,
                        "SELECT coalesce(max(id), 0) FROM audit_log",
                    ))
                    .await?;
                self.audit_mark = row.map(|r| r.try_get_by_index::<i64>(0)).transpose()?;
            }
        }
        self.actor = actor;
        Ok(())
    }

    /// Runs `select`; if the actor is still pending, with `set_config` for it added to
    /// the select list. Those run as a row is produced, so before any write of this
    /// transaction: the audit trigger and the row-level security policies see the
    /// actor as if it had been set on its own. A select that finds nothing sets
    /// nothing: the actor stays pending, so the caller must not write after an empty
    /// first read (`books::create` fails instead).
    pub async fn first_read<M: FromQueryResult>(&mut self, mut select: SelectStatement) -> Result<Vec<M>, DbErr> {
        if let Some(actor) = self.pending {
            select
                .expr_as(
                    Expr::cust_with_values("set_config('app.current_user_id', $1, true)", [actor.id.to_string()]),
                    "acting_user_id",
                )
                .expr_as(
                    Expr::cust_with_values("set_config('app.current_role', $1, true)", [role_name(actor.role)]),
                    "acting_role",
                );
        }
        let backend = self.txn.get_database_backend();
        let rows = M::find_by_statement(backend.build(&select)).all(&self.txn).await?;
        if !rows.is_empty()
            && let Some(actor) = self.pending.take()
        {
            self.actor = Some(actor);
        }
        Ok(rows)
    }

    async fn stamp_audit_rows(&self) -> Result<(), DbErr> {
        if let (Some(mark), Some(actor)) = (self.audit_mark, self.actor) {
            let backend = self.txn.get_database_backend();
            let sql = "UPDATE audit_log SET actor_id = ? WHERE id > ? AND actor_id IS NULL";
            self.txn
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    sql,
                    [actor.id.into(), mark.into()],
                ))
                .await?;
        }
        Ok(())
    }

    pub async fn commit(self) -> Result<(), DbErr> {
        self.stamp_audit_rows().await?;
        self.txn.commit().await
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::User => "user",
        Role::Guest => "guest",
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
