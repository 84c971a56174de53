//! One pooled connection per request and database, checked out at the request's
//! first statement there and returned once: when the request ends, or, for a read,
//! as soon as its rows are in hand ([`give_back_connections`]).
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
//! A write's transaction runs on the same connection (`transaction.rs`): it takes the
//! request's connection for `BEGIN` and gives it back at `COMMIT`. Rejected: a
//! transaction around every read (`BEGIN` and `COMMIT` are two more round trips).

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
use sqlx_core::transaction::TransactionManager;
use tokio::sync::Mutex;

use super::spare::Spare;

tokio::task_local! {
    static HELD: RefCell<Vec<Held>>;
}

/// The connection a request holds on one pool, once its first statement there ran.
pub(super) type Slot = Arc<Mutex<Option<Checkout>>>;

struct Held {
    spare: Spare,
    slot: Slot,
}

pub(super) struct Checkout {
    /// `None` once given to the pool's [`Spare`].
    conn: Option<Conn>,
    /// The pool's epoch when it was checked out (see [`Spare`]).
    pub(super) epoch: u64,
    /// A statement started and has not finished: its future was dropped half way if
    /// this is still set when the checkout is dropped.
    busy: bool,
    /// A statement on it failed (a server that ended the session answers with a
    /// database error too): it goes back to sqlx, whose ping tells if it still works.
    failed: bool,
}

impl Checkout {
    fn new(conn: Conn, epoch: u64) -> Self {
        Checkout {
            conn: Some(conn),
            epoch,
            busy: false,
            failed: false,
        }
    }

    /// A connection of `pool` for one write transaction, from sqlx: the request holds
    /// none there, or runs outside a request scope. It goes back to sqlx when dropped.
    pub(super) async fn from_sqlx(db: &DatabaseConnection) -> Result<Self, DbErr> {
        let conn = match db.get_database_backend() {
            DbBackend::Sqlite => Conn::Sqlite(
                Box::pin(db.get_sqlite_connection_pool().acquire())
                    .await
                    .map_err(acquire_error)?,
            ),
            _ => Conn::Postgres(
                Box::pin(db.get_postgres_connection_pool().acquire())
                    .await
                    .map_err(acquire_error)?,
            ),
        };
        Ok(Checkout::new(conn, 0))
    }

    /// Runs `statement` (not counted: the callers count what is a statement),
    /// noting that it is under way until it finishes, and whether it failed.
    pub(super) async fn run<T>(
        &mut self,
        statement: impl AsyncFnOnce(&mut Conn) -> Result<T, sqlx::Error>,
    ) -> Result<T, sqlx::Error> {
        self.busy = true;
        let conn = self.conn.as_mut().expect("given away only when the request ends");
        let result = statement(conn).await;
        self.busy = false;
        self.failed |= result.is_err();
        result
    }
}

impl Drop for Checkout {
    /// A connection whose statement was dropped half way is closed, not given back:
    /// sqlx's release ping waits for what the statement left on the wire, and when
    /// that is an error it never finishes (sqlx 0.9), so the connection and its place
    /// in the pool would be lost for good. The pool opens another.
    ///
    /// A transaction left open between two statements (its request was cancelled, or
    /// it failed) gets a `ROLLBACK` queued; sqlx's release ping sends it and waits for
    /// its answer, as when sqlx's own `Transaction` is dropped.
    fn drop(&mut self) {
        match (&mut self.conn, self.busy) {
            (Some(Conn::Postgres(conn)), true) => conn.close_on_drop(),
            (Some(Conn::Sqlite(conn)), true) => conn.close_on_drop(),
            (Some(Conn::Postgres(conn)), false) => {
                type Manager = <Postgres as sqlx::Database>::TransactionManager;
                if Manager::get_transaction_depth(conn) > 0 {
                    Manager::start_rollback(conn);
                }
            }
            (Some(Conn::Sqlite(conn)), false) => {
                type Manager = <Sqlite as sqlx::Database>::TransactionManager;
                if Manager::get_transaction_depth(conn) > 0 {
                    Manager::start_rollback(conn);
                }
            }
            (None, _) => {}
        }
    }
}

pub(super) enum Conn {
    Postgres(PoolConnection<Postgres>),
    Sqlite(PoolConnection<Sqlite>),
}

/// Statements run through sqlx as SeaORM's sqlx drivers run them.
impl Conn {
    pub(super) async fn execute(&mut self, stmt: &Statement) -> Result<ExecResult, sqlx::Error> {
        match self {
            Conn::Postgres(c) => bound(stmt).execute(&mut **c).await.map(ExecResult::from),
            Conn::Sqlite(c) => bound(stmt).execute(&mut **c).await.map(ExecResult::from),
        }
    }

    pub(super) async fn execute_unprepared(&mut self, sql: &str) -> Result<ExecResult, sqlx::Error> {
        let sql = sqlx::AssertSqlSafe(sql.to_owned());
        match self {
            Conn::Postgres(c) => sqlx::Executor::execute(&mut **c, sql).await.map(ExecResult::from),
            Conn::Sqlite(c) => sqlx::Executor::execute(&mut **c, sql).await.map(ExecResult::from),
        }
    }

    pub(super) async fn fetch_optional(&mut self, stmt: &Statement) -> Result<Option<QueryResult>, sqlx::Error> {
        match self {
            Conn::Postgres(c) => bound(stmt).fetch_optional(&mut **c).await.map(|r| r.map(Into::into)),
            Conn::Sqlite(c) => bound(stmt).fetch_optional(&mut **c).await.map(|r| r.map(Into::into)),
        }
    }

    pub(super) async fn fetch_all(&mut self, stmt: &Statement) -> Result<Vec<QueryResult>, sqlx::Error> {
        match self {
            Conn::Postgres(c) => bound(stmt)
                .fetch_all(&mut **c)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect()),
            Conn::Sqlite(c) => bound(stmt)
                .fetch_all(&mut **c)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect()),
        }
    }

    /// Begins a transaction, with `begin` for its first statement if given.
    pub(super) async fn begin(&mut self, begin: Option<&'static str>) -> Result<(), sqlx::Error> {
        let begin = begin.map(|sql| sqlx::SqlSafeStr::into_sql_str(sqlx::AssertSqlSafe(sql)));
        match self {
            Conn::Postgres(c) => <Postgres as sqlx::Database>::TransactionManager::begin(c, begin).await,
            Conn::Sqlite(c) => <Sqlite as sqlx::Database>::TransactionManager::begin(c, begin).await,
        }
    }

    pub(super) async fn commit(&mut self) -> Result<(), sqlx::Error> {
        match self {
            Conn::Postgres(c) => <Postgres as sqlx::Database>::TransactionManager::commit(c).await,
            Conn::Sqlite(c) => <Sqlite as sqlx::Database>::TransactionManager::commit(c).await,
        }
    }
}

/// Runs `work` with one connection per pool for all of its [`Pinned`] statements;
/// each goes back to its pool when `work` ends (if `work` is dropped first, to sqlx).
pub async fn with_pinned_connections<F: Future>(work: F) -> F::Output {
    HELD.scope(RefCell::new(Vec::new()), async {
        let output = work.await;
        let held = HELD.with(|held| std::mem::take(&mut *held.borrow_mut()));
        held.iter().for_each(Held::give_back);
        output
    })
    .await
}

/// Gives the request's connections to their pools' spare connections now, instead
/// of when the request ends: for a read whose rows are in hand, so that the time
/// spent rendering its response (JSON, ETag) and in the middleware after it is not
/// time a waiting request could have used the connection. A later statement of the
/// request checks one out again, from the spare connections and without a round
/// trip. Outside a request scope it does nothing.
pub fn give_back_connections() {
    let _ = HELD.try_with(|held| held.borrow().iter().for_each(Held::give_back));
}

impl Held {
    /// The slot's connection to the pool's spares, unless a statement is using it.
    fn give_back(&self) {
        if let Some(checkout) = self.slot.try_lock().ok().and_then(|mut held| held.take()) {
            give_to_spare(&self.spare, checkout);
        }
    }
}

/// The request's slot for `db`'s pool and that pool's spare connections, once the
/// request has run a statement there; `None` before that, and outside a request.
pub(super) fn request_slot(db: &DatabaseConnection) -> Option<(Slot, Spare)> {
    HELD.try_with(|held| {
        held.borrow()
            .iter()
            .find(|h| h.spare.serves(db))
            .map(|h| (h.slot.clone(), h.spare.clone()))
    })
    .ok()
    .flatten()
}

/// Gives the request's connection to `db`'s pool to its spare connections (or to
/// sqlx), for a request that is about to wait.
pub(super) async fn set_aside(db: &DatabaseConnection) {
    if let Some((slot, spare)) = request_slot(db)
        && let Some(checkout) = slot.lock().await.take()
    {
        give_to_spare(&spare, checkout);
    }
}

/// Checks a connection out of `spare`'s pool for a request.
pub(super) async fn check_out(spare: &Spare) -> Result<Checkout, DbErr> {
    match spare {
        Spare::Postgres(keeper) => {
            let (conn, epoch) = keeper.acquire().await.map_err(acquire_error)?;
            Ok(Checkout::new(Conn::Postgres(conn), epoch))
        }
        Spare::Sqlite(keeper) => {
            let (conn, epoch) = keeper.acquire().await.map_err(acquire_error)?;
            Ok(Checkout::new(Conn::Sqlite(conn), epoch))
        }
    }
}

/// Gives `checkout` to `spare` if every statement on it finished cleanly and the pool
/// has not moved since it was checked out; otherwise it goes back to sqlx.
pub(super) fn give_to_spare(spare: &Spare, mut checkout: Checkout) {
    if checkout.busy || checkout.failed {
        return;
    }
    match (spare, checkout.conn.take()) {
        (Spare::Postgres(keeper), Some(Conn::Postgres(conn))) => keeper.give(conn, checkout.epoch),
        (Spare::Sqlite(keeper), Some(Conn::Sqlite(conn))) => keeper.give(conn, checkout.epoch),
        _ => {}
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
            *held = Some(check_out(self.spare).await?);
        }
        super::statement_count::count_one();
        let checkout = held.as_mut().expect("checked out above");
        match checkout.run(statement).await {
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

pub(super) fn exec_error(err: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(err.into()))
}

pub(super) fn query_error(err: sqlx::Error) -> DbErr {
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
        self.on_held(slot, async |conn| conn.execute(&stmt).await, exec_error)
            .await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let Some(slot) = &self.slot else {
            return self.db.execute_unprepared(sql).await;
        };
        self.on_held(slot, async |conn| conn.execute_unprepared(sql).await, exec_error)
            .await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let Some(slot) = &self.slot else {
            return self.db.query_one_raw(stmt).await;
        };
        self.on_held(slot, async |conn| conn.fetch_optional(&stmt).await, query_error)
            .await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let Some(slot) = &self.slot else {
            return self.db.query_all_raw(stmt).await;
        };
        self.on_held(slot, async |conn| conn.fetch_all(&stmt).await, query_error)
            .await
    }

    fn support_returning(&self) -> bool {
        self.db.support_returning()
    }
}
