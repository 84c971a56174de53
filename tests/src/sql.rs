//! One-value queries, for tests that look behind the API at what was stored.

use sea_orm::{ConnectionTrait, DbErr, Statement, TryGetable};

/// The first column of the first row of `sql`; panics, naming the SQL, when the
/// query fails or returns no row.
pub async fn scalar<T: TryGetable>(db: &impl ConnectionTrait, sql: &str) -> T {
    try_scalar(db, sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .unwrap_or_else(|| panic!("{sql}: no row"))
}

/// `SELECT count(*) …` as a number.
pub async fn count(db: &impl ConnectionTrait, sql: &str) -> i64 {
    scalar(db, sql).await
}

/// The first column of the first row of `sql`, if there is one.
pub async fn try_scalar<T: TryGetable>(db: &impl ConnectionTrait, sql: &str) -> Result<Option<T>, DbErr> {
    match db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?
    {
        Some(row) => row.try_get_by_index(0).map(Some),
        None => Ok(None),
    }
}
