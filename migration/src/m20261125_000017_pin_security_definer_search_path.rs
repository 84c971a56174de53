//! Pins the search path of every SECURITY DEFINER function and schema-qualifies the
//! objects they touch.
//!
//! Migrations 13 and 15 created `bookworm_refresh_user_stats()` and `bookworm_audit()`
//! with `SET search_path = public`. PostgreSQL then still searches the session's temporary
//! schema *first* for tables, so a role that may create temporary tables could
//! `CREATE TEMP TABLE audit_log (…)` and have the owner-privileged trigger write there:
//! its later changes would leave no entry in the real log. Naming `pg_temp` last (and
//! `pg_catalog` first, so no built-in can be shadowed either) and qualifying
//! `public.audit_log` closes that for good; the two-role set-up additionally revokes
//! `TEMPORARY` from the API role (docs/operations.md). This is PostgreSQL's own advice
//! for SECURITY DEFINER functions ("Writing SECURITY DEFINER Functions Safely").
//!
//! `bookworm_may_write()` (migration 16) runs as the caller, not the owner, so it grants
//! nothing that a shadowing object could abuse; it is left as it is. SQLite has no
//! functions, so there is nothing to do there.

use crate::dialect;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP_POSTGRES: &str = "
CREATE OR REPLACE FUNCTION public.bookworm_audit() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO public.audit_log (table_name, record_id, action, actor_id)
    VALUES (TG_TABLE_NAME,
            CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
            TG_OP,
            NULLIF(pg_catalog.current_setting('app.current_user_id', true), '')::uuid);
    RETURN NULL;
END;
$$;
CREATE OR REPLACE FUNCTION public.bookworm_refresh_user_stats() RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
    AS 'REFRESH MATERIALIZED VIEW CONCURRENTLY public.user_stats';
";

/// The definitions of migrations 13 and 15, restored as they were.
const DOWN_POSTGRES: &str = "
CREATE OR REPLACE FUNCTION bookworm_audit() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO audit_log (table_name, record_id, action, actor_id)
    VALUES (TG_TABLE_NAME,
            CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
            TG_OP,
            NULLIF(current_setting('app.current_user_id', true), '')::uuid);
    RETURN NULL;
END;
$$;
CREATE OR REPLACE FUNCTION bookworm_refresh_user_stats() RETURNS void
    LANGUAGE sql SECURITY DEFINER SET search_path = public
    AS 'REFRESH MATERIALIZED VIEW CONCURRENTLY user_stats';
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
