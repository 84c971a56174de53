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
//! When the request ends, a connection whose statements all ran to completion goes
//! to the pool's [`Spare`], for the next request without sqlx's
//! release ping; one whose statement was dropped half way (the request was cancelled)
//! is closed, and the pool opens another (see `Checkout`'s `Drop`).
//!
//! Writes are not pinned: a write is one transaction, which already holds one
//! connection from `BEGIN` to `COMMIT`, and the request gives back what it holds
//! before it begins ([`give_back`]), to sqlx, where the transaction will look for
//! one. Rejected: a transaction around every read (`BEGIN` and `COMMIT` are two more
//! round trips).

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

use super::spare::Spare;

tokio::task_local! {
    static HELD: RefCell<Vec<Held>>;
}

/// The connection a request holds on one pool, once its first statement there ran.
type Slot = Arc<Mutex<Option<Checkout>>>;

struct Held {
    spare: Spare,
    slot: Slot,
}

struct Checkout {
    /// `None` once given to the pool's [`Spare`].
    conn: Option<Conn>,
    /// The pool's epoch when it was checked out (see [`Spare`]).
    epoch: u64,
    /// A statement started and has not finished: its future was dropped half way if
    /// this is still set when the checkout is dropped.
    busy: bool,
    /// A statement on it failed (a server that ended the session answers with a
    /// database error too): it goes back to sqlx, whose ping tells if it still works.
    failed: bool,
}

impl Drop for Checkout {
    /// A connection whose statement was dropped half way is closed, not given back:
    /// sqlx's release ping waits for what the statement left on the wire, and when
    /// that is an error it never finishes (sqlx 0.9), so the connection and its place
    /// in the pool would be lost for good. The pool opens another.
    fn drop(&mut self) {
        if self.busy {
            match &mut self.conn {
                Some(Conn::Postgres(conn)) => conn.close_on_drop(),
                Some(Conn::Sqlite(conn)) => conn.close_on_drop(),
                None => {}
            }
        }
    }
}

enum Conn {
    Postgres(PoolConnection<Postgres>),
    Sqlite(PoolConnection<Sqlite>),
}

/// Runs `work` with one connection per pool for all of its [`Pinned`] statements;
/// each goes back to its pool when `work` ends (if `work` is dropped first, to sqlx).
pub async fn with_pinned_connections<F: Future>(work: F) -> F::Output {
    HELD.scope(RefCell::new(Vec::new()), async {
        let output = work.await;
        let held = HELD.with(|held| std::mem::take(&mut *held.borrow_mut()));
        for Held { spare, slot } in held {
            let Some(mut checkout) = slot.try_lock().ok().and_then(|mut held| held.take()) else {
                continue;
            };
            if checkout.busy || checkout.failed {
                continue;
            }
            match (&spare, checkout.conn.take()) {
                (Spare::Postgres(keeper), Some(Conn::Postgres(conn))) => keeper.give(conn, checkout.epoch),
                (Spare::Sqlite(keeper), Some(Conn::Sqlite(conn))) => keeper.give(conn, checkout.epoch),
                _ => {}
            }
        }
        output
    })
    .await
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
    spare: &'a Spare,
}

impl<'a> Pinned<'a> {
    /// `db`, whose spare connections are `spare` (which also tells the request scope
    /// one pool from another).
    pub fn new(db: &'a DatabaseConnection, spare: &'a Spare) -> Self {
        let slot = HELD
            .try_with(|held| {
                let mut held = held.borrow_mut();
                if let Some(found) = held.iter().find(|h| h.spare.same_pool(spare)) {
                    return found.slot.clone();
                }
                let slot = Slot::default();
                held.push(Held {
                    spare: spare.clone(),
                    slot: slot.clone(),
                });
                slot
            })
            .ok();
        Pinned { db, slot, spare }
    }

    /// Runs `statement` on the request's connection, checking one out first if needed.
    async fn on_held<T>(
        &self,
        slot: &Slot,
        statement: impl AsyncFnOnce(&mut Conn) -> Result<T, sqlx::Error>,
        wrap: fn(sqlx::Error) -> DbErr,
    ) -> Result<T, DbErr> {
        let mut held = slot.lock().await;
        if held.is_none() {
            let (conn, epoch) = match self.spare {
                Spare::Postgres(keeper) => {
                    let (conn, epoch) = keeper.acquire().await.map_err(acquire_error)?;
                    (Conn::Postgres(conn), epoch)
                }
                Spare::Sqlite(keeper) => {
                    let (conn, epoch) = keeper.acquire().await.map_err(acquire_error)?;
                    (Conn::Sqlite(conn), epoch)
                }
            };
            *held = Some(Checkout {
                conn: Some(conn),
                epoch,
                busy: false,
                failed: false,
            });
        }
        super::statement_count::count_one();
        let checkout = held.as_mut().expect("checked out above");
        checkout.busy = true;
        let conn = checkout.conn.as_mut().expect("given away only when the request ends");
        let result = statement(conn).await;
        checkout.busy = false;
        match result {
            Ok(value) => Ok(value),
            Err(err) => {
                checkout.failed = true;
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
        let run = async |conn: &mut Conn| match conn {
            Conn::Postgres(c) => bound(&stmt).execute(&mut **c).await.map(ExecResult::from),
            Conn::Sqlite(c) => bound(&stmt).execute(&mut **c).await.map(ExecResult::from),
        };
        self.on_held(slot, run, exec_error).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let Some(slot) = &self.slot else {
            return self.db.execute_unprepared(sql).await;
        };
        let run = async |conn: &mut Conn| {
            let sql = sqlx::AssertSqlSafe(sql.to_owned());
            match conn {
                Conn::Postgres(c) => sqlx::Executor::execute(&mut **c, sql).await.map(ExecResult::from),
                Conn::Sqlite(c) => sqlx::Executor::execute(&mut **c, sql).await.map(ExecResult::from),
            }
        };
        self.on_held(slot, run, exec_error).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let Some(slot) = &self.slot else {
            return self.db.query_one_raw(stmt).await;
        };
        let run = async |conn: &mut Conn| match conn {
            Conn::Postgres(c) => bound(&stmt).fetch_optional(&mut **c).await.map(|r| r.map(Into::into)),
            Conn::Sqlite(c) => bound(&stmt).fetch_optional(&mut **c).await.map(|r| r.map(Into::into)),
        };
        self.on_held(slot, run, query_error).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let Some(slot) = &self.slot else {
            return self.db.query_all_raw(stmt).await;
        };
        let run = async |conn: &mut Conn| match conn {
            Conn::Postgres(c) => bound(&stmt)
                .fetch_all(&mut **c)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect()),
            Conn::Sqlite(c) => bound(&stmt)
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
