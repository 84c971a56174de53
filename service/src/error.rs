//! The service layer's one error type. The API maps each variant to an HTTP status;
//! other callers (tools, tests) match on it directly.

use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("the database is unavailable")]
    Unavailable(#[source] DbErr),
    #[error("database error")]
    Database(#[source] DbErr),
}

impl From<DbErr> for ServiceError {
    fn from(err: DbErr) -> Self {
        match err {
            // Pool exhaustion and dropped connections are the database being
            // unreachable, not a bug: callers may retry.
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => ServiceError::Unavailable(err),
            other => ServiceError::Database(other),
        }
    }
}
