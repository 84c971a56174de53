//! The transaction a write runs in, on the request's own connection (`pinned.rs`):
//! taken from the request for `BEGIN`, given back to it at `COMMIT`.
//!
//! Why: SeaORM's `begin` checks a connection out of sqlx's pool, and sqlx pings it
//! when it takes it back; and before that the request had to give back the connection
//! its reads held, with a ping of its own. Creating a book ran 7 statements in 9 round
//! trips (bench P1). On the request's connection the write costs its statements and
//! nothing more, and the connection goes on to the request's next statements and then
//! to the next request (`spare.rs`) without a ping.
//!
//! The request's connection is used only if the pool has not lost its primary or moved
//! since the request took it (`Spare::is_current`). Otherwise, or when the request has
//! given its connection back (a statement failed, or it waited for SQLite's write
//! turn), the transaction checks one out as a read would: one kept since the primary
//! last changed, else sqlx's, whose `before_acquire` waits for the primary during a
//! failover. Outside a request, or on a pool the request has not used, it takes one
//! from sqlx, which takes it back after `COMMIT` with its ping.
//!
//! Cancellation and failure, as SeaORM's and sqlx's own transactions handle them: a
//! transaction dropped while a statement (`BEGIN` too) is on the wire closes its
//! connection; one dropped between statements, or whose `COMMIT` failed, queues a
//! `ROLLBACK` that sqlx's release ping sends. Only a committed transaction's
//! connection goes back to the request. `BEGIN` and `COMMIT` are not counted as
//! statements, as SeaORM's metric callback does not count them.
//!
//! Rejected: sqlx's `Transaction`, which borrows the connection (the request's scope
//! owns it) or, given a pooled one, releases it to sqlx at `COMMIT`.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr, ExecResult, QueryResult, Statement};
use tokio::sync::Mutex;

use super::pinned::{self, Checkout, Conn, Slot, exec_error, query_error};
use super::statement_count::count_one;

pub(super) struct Transaction {
    checkout: Mutex<Checkout>,
    /// Where the connection goes when the transaction commits: the request's slot on
    /// the pool, if the request has one.
    home: Option<Slot>,
    backend: DbBackend,
}

impl Transaction {
    /// Begins a transaction on `db`'s primary; `begin` replaces the plain `BEGIN`
    /// (SQLite's `BEGIN IMMEDIATE`).
    pub(super) async fn begin(db: &DatabaseConnection, begin: Option<&'static str>) -> Result<Self, DbErr> {
        let held = pinned::request_slot(db);
        let mut checkout = match &held {
            Some((slot, spare)) => {
                // A connection from before the primary was lost or moved goes back to sqlx.
                let taken = slot.lock().await.take().filter(|c| spare.is_current(c.epoch));
                match taken {
                    Some(checkout) => checkout,
                    None => pinned::check_out(spare).await?,
                }
            }
            None => Checkout::from_sqlx(db).await?,
        };
        checkout
            .run(async |conn| conn.begin(begin).await)
            .await
            .map_err(query_error)?;
        Ok(Transaction {
            checkout: Mutex::new(checkout),
            home: held.map(|(slot, _)| slot),
            backend: db.get_database_backend(),
        })
    }

    /// Commits; the connection goes back to the request.
    pub(super) async fn commit(self) -> Result<(), DbErr> {
        let mut checkout = self.checkout.into_inner();
        checkout
            .run(async |conn| conn.commit().await)
            .await
            .map_err(query_error)?;
        if let Some(home) = self.home {
            let mut slot = home.lock().await;
            if slot.is_none() {
                *slot = Some(checkout);
            }
        }
        Ok(())
    }

    /// Runs one of the transaction's statements, counted.
    async fn run<T>(
        &self,
        statement: impl AsyncFnOnce(&mut Conn) -> Result<T, sea_orm::sqlx::Error>,
        wrap: fn(sea_orm::sqlx::Error) -> DbErr,
    ) -> Result<T, DbErr> {
        count_one();
        self.checkout.lock().await.run(statement).await.map_err(wrap)
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for Transaction {
    fn get_database_backend(&self) -> DbBackend {
        self.backend
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.run(async |conn| conn.execute(&stmt).await, exec_error).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.run(async |conn| conn.execute_unprepared(sql).await, exec_error)
            .await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.run(async |conn| conn.fetch_optional(&stmt).await, query_error)
            .await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.run(async |conn| conn.fetch_all(&stmt).await, query_error).await
    }
}
