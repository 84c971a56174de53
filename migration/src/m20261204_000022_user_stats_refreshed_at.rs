//! When were the reader statistics last computed? A reader who just reviewed a book
//! sees an unchanged count until the next refresh; the public profile says as of
//! when. The time is one row of its own, written by the refresh itself, rather than a
//! column of the view: a `now()` in every row would make each CONCURRENTLY refresh
//! rewrite every row instead of the ones that changed.
//!
//! On PostgreSQL only the owner writes it, through `bookworm_refresh_user_stats()`:
//! whoever may read the statistics gets SELECT on it, and the write rights default
//! privileges may hand out are taken back. PostgreSQL's statistics are refreshed once
//! here, so the first time stated is true; on SQLite the row appears with the first
//! refresh, and until then the profile states no time.

use sea_orm_migration::prelude::*;

use crate::dialect;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP_POSTGRES: &str = "
CREATE TABLE user_stats_refreshes (
    single boolean PRIMARY KEY DEFAULT true CHECK (single),
    refreshed_at timestamp with time zone NOT NULL
);
DO $$
DECLARE
    g record;
BEGIN
    FOR g IN SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
             WHERE c.oid = 'user_stats'::regclass AND a.grantee <> c.relowner AND a.privilege_type = 'SELECT' LOOP
        EXECUTE format('GRANT SELECT ON user_stats_refreshes TO %s',
            CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END);
    END LOOP;
    FOR g IN SELECT DISTINCT a.grantee FROM pg_class c, aclexplode(c.relacl) a
             WHERE c.oid = 'user_stats_refreshes'::regclass AND a.grantee <> c.relowner
               AND a.privilege_type <> 'SELECT' LOOP
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON user_stats_refreshes FROM %s',
            CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END);
    END LOOP;
END;
$$;
CREATE OR REPLACE FUNCTION public.bookworm_refresh_user_stats() RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    REFRESH MATERIALIZED VIEW CONCURRENTLY public.user_stats;
    INSERT INTO public.user_stats_refreshes (single, refreshed_at) VALUES (true, now())
        ON CONFLICT (single) DO UPDATE SET refreshed_at = EXCLUDED.refreshed_at;
$$;
SELECT public.bookworm_refresh_user_stats();
";

/// Migration 17's definition, restored.
const DOWN_POSTGRES: &str = "
CREATE OR REPLACE FUNCTION public.bookworm_refresh_user_stats() RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
    AS 'REFRESH MATERIALIZED VIEW CONCURRENTLY public.user_stats';
DROP TABLE user_stats_refreshes;
";

/// SQLite's statistics are a table the service rebuilds (see migration 13); it
/// stamps this row in the same transaction.
const UP_SQLITE: &str = "
CREATE TABLE user_stats_refreshes (
    single integer PRIMARY KEY CHECK (single = 1),
    refreshed_at text NOT NULL
)";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        dialect::per_backend(manager, UP_POSTGRES, UP_SQLITE).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        dialect::per_backend(manager, DOWN_POSTGRES, "DROP TABLE user_stats_refreshes").await
    }
}
