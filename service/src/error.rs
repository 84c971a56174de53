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
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("invalid fields")]
    InvalidFields(Vec<crate::input::FieldError>),
    #[error("not allowed: {0}")]
    Forbidden(&'static str),
    #[error("the database is unavailable")]
    Unavailable(#[source] DbErr),
    #[error("database error")]
    Database(#[source] DbErr),
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// Maps a unique-constraint violation to [`ServiceError::Conflict`] with `detail`;
    /// any other database error converts as usual.
    pub fn conflict_on_unique(detail: &'static str) -> impl Fn(DbErr) -> ServiceError {
        move |err| match err.sql_err() {
            Some(sea_orm::SqlErr::UniqueConstraintViolation(_)) => ServiceError::Conflict(detail.to_owned()),
            _ => err.into(),
        }
    }
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
