//! One pooled connection per request and database, checked out at the request's
//! first statement there and returned once, when the request ends.
//!
//! Why: SeaORM checks a connection out of the pool for each statement, and sqlx pings
//! every connection it takes back (`return_to_pool` → `ping`, a Sync/ReadyForQuery
//! exchange that flushes whatever a cancelled future left behind). A request of three
//! statements cost six round trips. Held for the request, its statements share one
//! connection and one ping: statements + 1.
//!
//! How: [`with_pinned_connections`] opens the scope (the API's middleware wraps every
//! request in it); [`Pinned`] is what the read paths run on, a [`ConnectionTrait`] over
//! the scope's connection for its pool. Statements run through sqlx exactly as SeaORM
//! runs them (the same binding of values, the same conversion of rows and of errors,
//! so the 503 mapping is unchanged), and each is counted like SeaORM's metric callback
//! counts the others. Outside a scope (background tasks, tools, tests that call the
//! service directly) a `Pinned` is its pool. A statement that fails for any reason but
//! its SQL gives its connection back at once, so the next one starts on a fresh
//! connection (a failover moves the pool between two statements of one request).
//!
//! Writes are not pinned: a write is one transaction, which already holds one
//! connection from `BEGIN` to `COMMIT`, and the request gives back what it holds
//! before it begins ([`give_back`]). Rejected: a transaction around every read
//! (`BEGIN` and `COMMIT` are two more round trips), and turning the ping off (sqlx has
//! no option for it).

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use sea_orm::sqlx::pool::PoolConnection;
use sea_orm::sqlx::{self, Postgres, Sqlite};
use sea_orm::{
    ConnAcquireErr, ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult, RuntimeErr,
    Statement,
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::Mutex;

tokio::task_local! {
    static HELD: RefCell<Vec<Held>>;
}

/// The connection a request holds on one pool, once its first statement there ran.
type Slot = Arc<Mutex<Option<Checkout>>>;

struct Held {
    pool: usize,
    slot: Slot,
}

enum Checkout {
    Postgres(PoolConnection<Postgres>),
    Sqlite(PoolConnection<Sqlite>),
}

/// Runs `work` with one connection per pool for all of its [`Pinned`] statements;
/// each goes back to its pool when `work` ends.
pub async fn with_pinned_connections<F: Future>(work: F) -> F::Output {
    HELD.scope(RefCell::new(Vec::new()), work).await
}

/// Gives back every connection the request holds. A write transaction calls this
/// before it takes its own connection, so a request never holds two connections of
/// one pool: else a burst of writes as large as the pool would hold every connection
/// and each wait for a second one until the acquire timeout. Reads after the write
/// check a connection out again.
pub(crate) async fn give_back() {
    let slots: Vec<Slot> = HELD
        .try_with(|held| held.borrow().iter().map(|h| h.slot.clone()).collect())
        .unwrap_or_default();
    for slot in slots {
        slot.lock().await.take();
    }
}

/// A pool as the read paths use it: the request's connection to it inside
/// [`with_pinned_connections`], else the pool itself.
pub struct Pinned<'a> {
    db: &'a DatabaseConnection,
    slot: Option<Slot>,
}

impl<'a> Pinned<'a> {
    /// `db`, known to the request scope as pool number `pool` (any number that no other
    /// pool of the process uses).
    pub fn new(db: &'a DatabaseConnection, pool: usize) -> Self {
        let slot = HELD
            .try_with(|held| {
                let mut held = held.borrow_mut();
                if let Some(found) = held.iter().find(|h| h.pool == pool) {
                    return found.slot.clone();
                }
                let slot = Slot::default();
                held.push(Held {
                    pool,
                    slot: slot.clone(),
                });
                slot
            })
            .ok();
        Pinned { db, slot }
    }

    /// Runs `statement` on the request's connection, checking one out first if needed.
    async fn on_held<T>(
        &self,
        slot: &Slot,
        statement: impl AsyncFnOnce(&mut Checkout) -> Result<T, sqlx::Error>,
        wrap: fn(sqlx::Error) -> DbErr,
    ) -> Result<T, DbErr> {
        let mut held = slot.lock().await;
        if held.is_none() {
            *held = Some(match self.db.get_database_backend() {
                DbBackend::Postgres => Checkout::Postgres(
                    self.db
                        .get_postgres_connection_pool()
                        .acquire()
                        .await
                        .map_err(acquire_error)?,
                ),
                _ => Checkout::Sqlite(
                    self.db
                        .get_sqlite_connection_pool()
                        .acquire()
                        .await
                        .map_err(acquire_error)?,
                ),
            });
        }
        super::statement_count::count_one();
        let conn = held.as_mut().expect("checked out above");
        match statement(conn).await {
            Ok(value) => Ok(value),
            Err(err) => {
                if !matches!(err, sqlx::Error::Database(_)) {
                    // Back to the pool now: its ping closes it if it is broken.
                    *held = None;
                }
                Err(wrap(err))
            }
        }
    }
}

fn acquire_error(err: sqlx::Error) -> DbErr {
    match err {
        sqlx::Error::PoolTimedOut => DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        other => DbErr::Conn(RuntimeErr::SqlxError(other.into())),
    }
}

fn exec_error(err: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(err.into()))
}

fn query_error(err: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(err.into()))
}

/// The statement as SeaORM's sqlx drivers bind it.
fn bound<DB: sqlx::Database>(stmt: &Statement) -> sqlx::query::Query<'_, DB, SqlxValues>
where
    SqlxValues: sqlx::IntoArguments<DB>,
{
    let values = stmt.values.clone().unwrap_or(sea_orm::sea_query::Values(Vec::new()));
    sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql.as_str()), SqlxValues(values))
}

#[async_trait::async_trait]
impl ConnectionTrait for Pinned<'_> {
    fn get_database_backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let Some(slot) = &self.slot else {
            return self.db.execute_raw(stmt).await;
        };
        let run = async |conn: &mut Checkout| match conn {
            Checkout::Postgres(c) => bound(&stmt).execute(&mut **c).await.map(ExecResult::from),
            Checkout::Sqlite(c) => bound(&stmt).execute(&mut **c).await.map(ExecResult::from),
        };
        self.on_held(slot, run, exec_error).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let Some(slot) = &self.slot else {
            return self.db.execute_unprepared(sql).await;
        };
        let run = async |conn: &mut Checkout| {
            let sql = sqlx::AssertSqlSafe(sql.to_owned());
            match conn {
                Checkout::Postgres(c) => sqlx::Executor::execute(&mut **c, sql).await.map(ExecResult::from),
                Checkout::Sqlite(c) => sqlx::Executor::execute(&mut **c, sql).await.map(ExecResult::from),
            }
        };
        self.on_held(slot, run, exec_error).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let Some(slot) = &self.slot else {
            return self.db.query_one_raw(stmt).await;
        };
        let run = async |conn: &mut Checkout| match conn {
            Checkout::Postgres(c) => bound(&stmt).fetch_optional(&mut **c).await.map(|r| r.map(Into::into)),
            Checkout::Sqlite(c) => bound(&stmt).fetch_optional(&mut **c).await.map(|r| r.map(Into::into)),
        };
        self.on_held(slot, run, query_error).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let Some(slot) = &self.slot else {
            return self.db.query_all_raw(stmt).await;
        };
        let run = async |conn: &mut Checkout| match conn {
            Checkout::Postgres(c) => bound(&stmt)
                .fetch_all(&mut **c)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect()),
            Checkout::Sqlite(c) => bound(&stmt)
                .fetch_all(&mut **c)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect()),
        };
        self.on_held(slot, run, query_error).await
    }

    fn support_returning(&self) -> bool {
        self.db.support_returning()
    }
}
