//! Row-level security on PostgreSQL for the rows readers own: reviews, shelf entries
//! and profiles. Anyone may read; a row may be written only when the transaction says
//! it acts for the row's owner (`app.current_user_id`, set with `set_config(…, true)`)
//! or for an admin (`app.current_role`). With no setting — or the empty string
//! PostgreSQL returns for it after a transaction that set it has ended — no row
//! matches: writes fail closed. FORCE applies the policies to the table owner too;
//! only superusers and BYPASSRLS roles skip them (the migration and seed roles).
//!
//! SQLite has no row-level security; there the API's own checks are the only guard.

use crate::dialect;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const OWNED: &[&str] = &["reviews", "shelf_entries", "profiles"];

const FUNCTION: &str = "
CREATE FUNCTION bookworm_may_write(owner uuid) RETURNS boolean
    LANGUAGE sql STABLE AS $$
    SELECT coalesce(NULLIF(current_setting('app.current_user_id', true), '')::uuid = owner, false)
        OR coalesce(current_setting('app.current_role', true) = 'admin', false)
$$;
";

fn up_postgres() -> String {
    let mut sql = FUNCTION.to_owned();
    for table in OWNED {
        sql.push_str(&format!(
            "ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
             ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
             CREATE POLICY {table}_read ON {table} FOR SELECT USING (true);
             CREATE POLICY {table}_insert ON {table} FOR INSERT WITH CHECK (bookworm_may_write(user_id));
             CREATE POLICY {table}_update ON {table} FOR UPDATE
                 USING (bookworm_may_write(user_id)) WITH CHECK (bookworm_may_write(user_id));
             CREATE POLICY {table}_delete ON {table} FOR DELETE USING (bookworm_may_write(user_id));\n"
        ));
    }
    sql
}

fn down_postgres() -> String {
    let mut sql = String::new();
    for table in OWNED {
        for policy in ["read", "insert", "update", "delete"] {
            sql.push_str(&format!("DROP POLICY {table}_{policy} ON {table};\n"));
        }
        sql.push_str(&format!(
            "ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY; ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;\n"
        ));
    }
    sql.push_str("DROP FUNCTION bookworm_may_write(uuid);\n");
    sql
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        dialect::postgres_only(manager, &[&up_postgres()]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        dialect::postgres_only(manager, &[&down_postgres()]).await
    }
}
