//! Per-reader review statistics: a materialized view on PostgreSQL, a table rebuilt
//! by the same call on SQLite (see migration 13). Reads are cheap and may be up to one
//! refresh interval stale; the API refreshes in the background and on demand.

use std::time::{Duration, Instant};

use entity::{profile, user, user_stats};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use crate::ServiceError;

const REBUILD_SQLITE: &[&str] = &[
    "DELETE FROM user_stats",
    "INSERT INTO user_stats (user_id, review_count, average_rating, last_review_at)
     SELECT u.id, count(r.id), avg(r.rating), max(r.created_at)
     FROM users u
     LEFT JOIN reviews r ON r.user_id = u.id AND r.deleted_at IS NULL
     WHERE u.deleted_at IS NULL
     GROUP BY u.id",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    pub readers: u64,
    pub took: Duration,
}

/// Recomputes the statistics. PostgreSQL refreshes CONCURRENTLY, so readers keep
/// seeing the previous contents until it finishes; SQLite rebuilds the table in one
/// transaction.
pub async fn refresh(db: &DatabaseConnection) -> Result<Refreshed, ServiceError> {
    let started = Instant::now();
    match db.get_database_backend() {
        DbBackend::Postgres => {
            db.execute_unprepared("SELECT bookworm_refresh_user_stats()").await?;
        }
        _ => {
            let txn = crate::database::begin_write(db).await?;
            for sql in REBUILD_SQLITE {
                txn.execute_unprepared(sql).await?;
            }
            txn.commit().await?;
        }
    }
    let readers = user_stats::Entity::find().count(db).await?;
    Ok(Refreshed {
        readers,
        took: started.elapsed(),
    })
}

#[derive(Debug, Clone, PartialEq)]
pub struct PublicProfile {
    pub user: user::Model,
    pub profile: Option<profile::Model>,
    /// `None` until the first refresh after the reader registered.
    pub stats: Option<user_stats::Model>,
}

/// A live reader's public profile with their statistics. Two statements.
pub async fn public_profile(db: &DatabaseConnection, id: Uuid) -> Result<PublicProfile, ServiceError> {
    let (user, profile) = user::Entity::find_by_id(id)
        .filter(user::Column::DeletedAt.is_null())
        .find_also_related(profile::Entity)
        .one(db)
        .await?
        .ok_or(ServiceError::NotFound("user"))?;
    let stats = user_stats::Entity::find_by_id(id).one(db).await?;
    Ok(PublicProfile { user, profile, stats })
}
