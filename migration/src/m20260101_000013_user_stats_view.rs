//! On PostgreSQL `user_stats` becomes a materialized view: the aggregate is computed
//! by the database in one pass, read like a table, and refreshed CONCURRENTLY (readers
//! are never blocked) through `bookworm_refresh_user_stats()`. The function is
//! SECURITY DEFINER because only a view's owner may refresh it, and the API should
//! run as a role that owns nothing. SQLite has no materialized views: there the
//! table of migration 12 stays, and the same refresh call rebuilds it.

use crate::dialect;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP_POSTGRES: &str = "
DROP TABLE user_stats;
CREATE MATERIALIZED VIEW user_stats AS
    SELECT u.id AS user_id,
           count(r.id) AS review_count,
           avg(r.rating)::double precision AS average_rating,
           max(r.created_at) AS last_review_at
    FROM users u
    LEFT JOIN reviews r ON r.user_id = u.id AND r.deleted_at IS NULL
    WHERE u.deleted_at IS NULL
    GROUP BY u.id
WITH DATA;
CREATE UNIQUE INDEX uq_user_stats_user_id ON user_stats (user_id);
CREATE FUNCTION bookworm_refresh_user_stats() RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public
    AS 'REFRESH MATERIALIZED VIEW CONCURRENTLY user_stats';
";

const DOWN_POSTGRES: &str = "
DROP FUNCTION bookworm_refresh_user_stats();
DROP MATERIALIZED VIEW user_stats;
CREATE TABLE user_stats (
    user_id uuid NOT NULL PRIMARY KEY,
    review_count bigint NOT NULL DEFAULT 0 CHECK (review_count >= 0),
    average_rating double precision NULL,
    last_review_at timestamp with time zone NULL,
    CONSTRAINT fk_user_stats_user_id FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
);
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        dialect::postgres_only(manager, &[UP_POSTGRES]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        dialect::postgres_only(manager, &[DOWN_POSTGRES]).await
    }
}
