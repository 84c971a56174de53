//! The service layer's one error type. The API maps each variant to an HTTP status;
//! other callers (tools, tests) match on it directly.
//!
//! Database errors are sorted here, once, into the two kinds a caller must tell apart:
//! the database could not answer *now* ([`ServiceError::Unavailable`]: the server is
//! down, restarting or demoted to a standby, a connection was cut mid-request, a statement hit its timeout,
//! SQLite stayed locked past its busy timeout, a lock wait or a serialization conflict
//! gave up) — worth retrying, an HTTP 503; and everything else, which is a bug
//! ([`ServiceError::Database`], a 500).

use std::ops::Deref;

use sea_orm::sqlx::error::DatabaseError;
use sea_orm::{DbErr, RuntimeErr, sqlx};

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("invalid fields")]
    InvalidFields(Vec<crate::input::FieldError>),
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    #[error("the database is unavailable ({reason:?})")]
    Unavailable {
        reason: Outage,
        #[source]
        source: DbErr,
    },
    /// The process is at a capacity limit of its own (such as the password-hashing
    /// budget) and refused the request rather than queue it: a 503 worth retrying.
    #[error("busy: {0}")]
    Busy(&'static str),
    #[error("database error")]
    Database(#[source] DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why the database could not answer a request that was otherwise fine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// No connection: refused, cut, pool exhausted, server shutting down.
    Unreachable,
    /// A statement ran past `statement_timeout` and was cancelled.
    Timeout,
    /// A lock or a serialization conflict, including SQLite's "database is locked".
    Contention,
}

/// A unique key and what breaking it means to a client. The database names it in its
/// error: PostgreSQL by the constraint or index name, SQLite by its columns.
pub struct UniqueKey {
    pub name: &'static str,
    /// As SQLite lists them: `reviews.user_id, reviews.book_id`.
    pub columns: &'static str,
    pub detail: &'static str,
}

impl UniqueKey {
    /// The key `name` over `columns` (as SQLite lists them), and its detail.
    pub const fn new(name: &'static str, columns: &'static str, detail: &'static str) -> Self {
        UniqueKey { name, columns, detail }
    }
}

impl ServiceError {
    /// Maps the violation of one of `keys` to [`ServiceError::Conflict`] with that key's
    /// detail, so a table with several unique keys answers each for what it is; a unique
    /// violation of no listed key is a conflict in general terms. Any other database
    /// error converts as usual.
    pub fn conflict_on(keys: &'static [UniqueKey]) -> impl Fn(DbErr) -> ServiceError {
        move |err| match err.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(message)) => {
                let key = keys.iter().find(|key| {
                    message.contains(&format!("\"{}\"", key.name))
                        || message.contains(&format!("'{}'", key.name))
                        || message.ends_with(key.columns)
                });
                ServiceError::Conflict(
                    key.map_or("this conflicts with data that already exists", |key| key.detail)
                        .to_owned(),
                )
            }
            _ => err.into(),
        }
    }
}

impl From<DbErr> for ServiceError {
    fn from(err: DbErr) -> Self {
        match outage(&err) {
            Some(reason) => ServiceError::Unavailable { reason, source: err },
            None => ServiceError::Database(err),
        }
    }
}

impl Outage {
    pub fn as_str(self) -> &'static str {
        match self {
            Outage::Unreachable => "unreachable",
            Outage::Timeout => "timeout",
            Outage::Contention => "contention",
        }
    }
}

/// Classifies a database error as an outage, or `None` for a real failure.
pub fn outage(err: &DbErr) -> Option<Outage> {
    let runtime = match err {
        DbErr::ConnectionAcquire(_) => {
            metrics::counter!("bookworm_db_acquire_timeouts_total").increment(1);
            return Some(Outage::Unreachable);
        }
        DbErr::Conn(_) => return Some(Outage::Unreachable),
        DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return None,
    };
    let RuntimeErr::SqlxError(sqlx_err) = runtime else {
        return None;
    };
    match sqlx_err.deref() {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => Some(Outage::Unreachable),
        sqlx::Error::Database(db) => database_outage(db.as_ref()),
        _ => None,
    }
}

fn database_outage(db: &dyn DatabaseError) -> Option<Outage> {
    let code = db.code()?;
    if db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() {
        // SQLSTATE: https://www.postgresql.org/docs/current/errcodes-appendix.html
        return match code.as_ref() {
            "57014" => Some(Outage::Timeout),
            "40001" | "40P01" | "55P03" => Some(Outage::Contention),
            // 25006: a write reached a standby — the primary it was sent to was demoted
            // and the pool has not followed the new one yet (`database::primary`).
            "57P01" | "57P02" | "57P03" | "53300" | "25006" => Some(Outage::Unreachable),
            class if class.starts_with("08") => Some(Outage::Unreachable),
            _ => None,
        };
    }
    if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        // Extended result codes; the low byte is the primary code: 5 BUSY, 6 LOCKED.
        let primary = code.parse::<i32>().ok()? & 0xff;
        return matches!(primary, 5 | 6).then_some(Outage::Contention);
    }
    None
}
