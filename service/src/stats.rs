//! Per-reader review statistics: a materialized view on PostgreSQL, a table rebuilt
//! by the same call on SQLite (see migration 13). Reads are cheap and may be up to one
//! refresh interval stale; the API refreshes in the background and on demand.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::{profile, user, user_stats};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait, QueryFilter};

use crate::database::raw_statement;
use uuid::Uuid;

use crate::ServiceError;
use crate::written::{Tag, Written};

const REBUILD_SQLITE: &[&str] = &[
    "DELETE FROM user_stats",
    "INSERT INTO user_stats (user_id, review_count, average_rating, last_review_at)
     SELECT u.id, count(r.id), avg(r.rating), max(r.created_at)
     FROM users u
     LEFT JOIN reviews r ON r.user_id = u.id AND r.deleted_at IS NULL
     WHERE u.deleted_at IS NULL
     GROUP BY u.id",
    "INSERT INTO user_stats_refreshes (single, refreshed_at)
     VALUES (1, strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'))
     ON CONFLICT (single) DO UPDATE SET refreshed_at = excluded.refreshed_at",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    pub readers: u64,
    pub took: Duration,
}

/// Recomputes the statistics. PostgreSQL refreshes CONCURRENTLY, so readers keep
/// seeing the previous contents until it finishes; SQLite rebuilds the table in one
/// transaction.
pub async fn refresh(db: &DatabaseConnection) -> Result<Written<Refreshed>, ServiceError> {
    let started = Instant::now();
    let mut txn = crate::database::begin_write_as(db, None).await?;
    match db.get_database_backend() {
        DbBackend::Postgres => {
            txn.execute_unprepared("SELECT bookworm_refresh_user_stats()").await?;
        }
        _ => {
            for sql in REBUILD_SQLITE {
                txn.execute_unprepared(sql).await?;
            }
        }
    }
    let readers = user_stats::Entity::find().count(&txn).await?;
    txn.changed([Tag::Stats]);
    Ok(txn
        .commit(Refreshed {
            readers,
            took: started.elapsed(),
        })
        .await?)
}

#[derive(Debug, Clone, PartialEq)]
pub struct PublicProfile {
    pub user: user::Model,
    pub profile: Option<profile::Model>,
    pub stats: ReaderStats,
}

/// A reader's numbers as of the last refresh.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReaderStats {
    pub review_count: i64,
    pub average_rating: Option<f64>,
    pub last_review_at: Option<DateTime<Utc>>,
    /// When the statistics were computed; `None` before the first refresh. A reader
    /// who joined since has no row yet, and counts zero as of then.
    pub as_of: Option<DateTime<Utc>>,
}

/// The reader's row, if the last refresh saw them, and that refresh's time: one row
/// whatever is missing.
const READER_STATS: &str = "
SELECT s.review_count, s.average_rating, s.last_review_at,
       (SELECT refreshed_at FROM user_stats_refreshes) AS as_of
FROM (SELECT 1 AS one) AS one
LEFT JOIN user_stats s ON s.user_id = $1";

/// A live reader's public profile with their statistics. Two statements.
pub async fn public_profile(db: &impl ConnectionTrait, id: Uuid) -> Result<PublicProfile, ServiceError> {
    let (user, profile) = user::Entity::find_by_id(id)
        .filter(user::Column::DeletedAt.is_null())
        .find_also_related(profile::Entity)
        .one(db)
        .await?
        .ok_or(ServiceError::NotFound("user"))?;
    let row = db
        .query_one_raw(raw_statement(db.get_database_backend(), READER_STATS, [id.into()]))
        .await?;
    let stats = match row {
        Some(row) => ReaderStats {
            review_count: row.try_get_by_index::<Option<i64>>(0)?.unwrap_or(0),
            average_rating: row.try_get_by_index(1)?,
            last_review_at: row.try_get_by_index(2)?,
            as_of: row.try_get_by_index(3)?,
        },
        None => ReaderStats::default(),
    };
    Ok(PublicProfile { user, profile, stats })
}
