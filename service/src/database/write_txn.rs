//! Write transactions: `BEGIN IMMEDIATE` on SQLite, the actor every write is done
//! for, which the audit trigger records and row-level security checks, and what the
//! write changed, which leaves with its result ([`crate::written`]).

use entity::user::Role;
use sea_orm::sea_query::{Expr, SelectStatement};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, DbErr};
use sea_orm::{ExecResult, FromQueryResult, QueryResult, Statement};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

use tokio::sync::{Mutex, OwnedMutexGuard};
use uuid::Uuid;

use super::transaction::Transaction;
use crate::written::{Tag, Written};

/// Begins a transaction that will write, on the request's connection
/// (`transaction.rs`). On SQLite it is `BEGIN IMMEDIATE`: a deferred transaction that
/// reads and then writes cannot become the writer once another connection has
/// committed, and fails at once with "database is locked" (the busy timeout does not
/// apply). Taking the write lock up front makes it wait its turn instead.
async fn begin_write(db: &DatabaseConnection) -> Result<(Transaction, Option<OwnedMutexGuard<()>>), DbErr> {
    let turn = sqlite_writer_turn(db).await?;
    let begin = (db.get_database_backend() == DbBackend::Sqlite).then_some("BEGIN IMMEDIATE");
    let txn = Transaction::begin(db, begin).await?;
    Ok((txn, turn))
}

/// SQLite has one writer at a time. The writers of this process take turns here, in
/// the order they came, before `BEGIN IMMEDIATE`. Without it they all raced for
/// SQLite's write lock and the losers slept in its busy handler, whose back-off grows
/// to 100 ms a try: with 16 writers p99 was 633 ms, against PostgreSQL's 27 ms on the
/// same machine (bench P11). A writer in another process (a tool, a second instance on
/// the same file) still meets the busy timeout. The wait is bounded by the pool's
/// acquire timeout, like waiting for a connection: past it, a 503. A writer that must
/// wait gives its request's connection to the next request first (`set_aside`): held
/// through the wait, as many connections as there are writers would sit idle.
async fn sqlite_writer_turn(db: &DatabaseConnection) -> Result<Option<OwnedMutexGuard<()>>, DbErr> {
    static TURNS: LazyLock<std::sync::Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = LazyLock::new(Default::default);
    if db.get_database_backend() != DbBackend::Sqlite {
        return Ok(None);
    }
    let pool = db.get_sqlite_connection_pool();
    let file = pool.connect_options().get_filename().to_owned();
    let turn = TURNS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(file)
        .or_default()
        .clone();
    if let Ok(guard) = turn.clone().try_lock_owned() {
        return Ok(Some(guard));
    }
    super::pinned::set_aside(db).await;
    match tokio::time::timeout(pool.options().get_acquire_timeout(), turn.lock_owned()).await {
        Ok(guard) => Ok(Some(guard)),
        Err(_) => Err(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)),
    }
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
    txn: Transaction,
    actor: Option<Actor>,
    /// PostgreSQL: an actor not yet set, to be set by the first read (see [`WriteTxn::first_read`]).
    pending: Option<Actor>,
    /// SQLite: the highest audit_log id before this transaction's own rows.
    audit_mark: Option<i64>,
    /// The cache tags of what this transaction has changed.
    changed: Vec<Tag>,
    /// SQLite: this process's write turn, held until the transaction ends (after it,
    /// as fields drop in order).
    _turn: Option<OwnedMutexGuard<()>>,
}

/// A `WriteTxn` is passed wherever a connection is (`.one(&txn)`, `.exec(&txn)`): every
/// statement runs in the transaction it wraps.
#[sea_orm::prelude::async_trait::async_trait]
impl ConnectionTrait for WriteTxn {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }
}

pub async fn begin_write_as(db: &DatabaseConnection, actor: Option<Actor>) -> Result<WriteTxn, DbErr> {
    let mut txn = WriteTxn::begin(db).await?;
    txn.act_as(actor).await?;
    Ok(txn)
}

/// Like [`begin_write_as`], except that on PostgreSQL the actor is not set by a
/// statement of its own but rides on the transaction's first statement, a read the
/// write needs anyway ([`WriteTxn::first_read`]): one round trip fewer per write.
pub async fn begin_write_lazily_as(db: &DatabaseConnection, actor: Actor) -> Result<WriteTxn, DbErr> {
    let mut txn = WriteTxn::begin(db).await?;
    match txn.txn.get_database_backend() {
        DbBackend::Postgres => txn.pending = Some(actor),
        _ => txn.act_as(Some(actor)).await?,
    }
    Ok(txn)
}

impl WriteTxn {
    /// A write transaction acting as nobody yet.
    async fn begin(db: &DatabaseConnection) -> Result<Self, DbErr> {
        let (txn, turn) = begin_write(db).await?;
        Ok(WriteTxn {
            txn,
            actor: None,
            pending: None,
            audit_mark: None,
            changed: Vec::new(),
            _turn: turn,
        })
    }

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

    /// Records that this transaction changes what `tags` cover; they leave with the
    /// result at [`commit`](Self::commit).
    pub fn changed(&mut self, tags: impl IntoIterator<Item = Tag>) {
        self.changed.extend(tags);
    }

    /// Commits, and returns `value` with what the transaction changed.
    pub async fn commit<T>(self, value: T) -> Result<Written<T>, DbErr> {
        self.stamp_audit_rows().await?;
        self.txn.commit().await?;
        Ok(Written::new(value, self.changed))
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Admin => "admin",
        Role::User => "user",
        Role::Guest => "guest",
    }
}
