//! A backend's catalog as a sorted list of lines: tables and columns, constraints,
//! indexes, triggers, types, functions, views and sequences — everything a migration
//! can create. Comparing two snapshots shows whether two schemas are the same.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

const POSTGRES_CATALOG: &[&str] = &[
    "SELECT 'column ' || table_name || '.' || column_name || ' ' || data_type || ' ' || udt_name || ' '
            || is_nullable || ' ' || coalesce(column_default, '') || ' ' || coalesce(character_maximum_length::text, '')
     FROM information_schema.columns
     WHERE table_schema = 'public' AND table_name <> 'seaql_migrations'",
    "SELECT 'constraint ' || conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid)
     FROM pg_constraint
     WHERE connamespace = 'public'::regnamespace AND conrelid::regclass::text <> 'seaql_migrations'",
    "SELECT 'index ' || indexdef FROM pg_indexes
     WHERE schemaname = 'public' AND tablename <> 'seaql_migrations'",
    "SELECT 'trigger ' || pg_get_triggerdef(t.oid) FROM pg_trigger t
     JOIN pg_class c ON c.oid = t.tgrelid
     WHERE NOT t.tgisinternal AND c.relnamespace = 'public'::regnamespace",
    "SELECT 'type ' || t.typname || ' ' || string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
     FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
     WHERE t.typnamespace = 'public'::regnamespace GROUP BY t.typname",
    "SELECT 'function ' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') ' || md5(p.prosrc)
     FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace",
    "SELECT 'view ' || viewname || ' ' || md5(definition) FROM pg_views WHERE schemaname = 'public'",
    "SELECT 'matview ' || matviewname || ' ' || md5(definition) FROM pg_matviews WHERE schemaname = 'public'",
    "SELECT 'sequence ' || sequencename FROM pg_sequences
     WHERE schemaname = 'public' AND sequencename NOT LIKE 'seaql_migrations%'",
    "SELECT 'policy ' || tablename || ' ' || policyname || ' ' || cmd || ' ' || coalesce(qual, '') || ' ' || coalesce(with_check, '')
     FROM pg_policies WHERE schemaname = 'public'",
    "SELECT 'schema ' || nspname FROM pg_namespace
     WHERE nspname NOT IN ('public', 'information_schema') AND nspname NOT LIKE 'pg\\_%'",
    "SELECT 'rls ' || relname || ' ' || relrowsecurity || ' ' || relforcerowsecurity FROM pg_class
     WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' AND relname <> 'seaql_migrations'",
];

const SQLITE_CATALOG: &[&str] = &[
    "SELECT type || ' ' || name || ' ' || coalesce(sql, '') FROM sqlite_master
     WHERE name NOT LIKE 'sqlite_%' AND name <> 'seaql_migrations'",
];

pub async fn snapshot(db: &DatabaseConnection) -> Vec<String> {
    let backend = db.get_database_backend();
    let queries = match backend {
        DbBackend::Postgres => POSTGRES_CATALOG,
        DbBackend::Sqlite => SQLITE_CATALOG,
        other => panic!("no catalog queries for {other:?}"),
    };
    let mut lines = Vec::new();
    for sql in queries {
        let rows = db
            .query_all_raw(Statement::from_string(backend, *sql))
            .await
            .unwrap_or_else(|e| panic!("catalog query failed: {e}\n{sql}"));
        for row in rows {
            lines.push(row.try_get_by_index::<String>(0).expect("catalog rows are text"));
        }
    }
    lines.sort();
    lines
}

/// Names of the tables (and materialized views) besides the migration bookkeeping table.
pub async fn tables(db: &DatabaseConnection) -> Vec<String> {
    snapshot(db)
        .await
        .into_iter()
        .filter_map(|line| {
            let rest = ["table ", "column ", "matview "]
                .iter()
                .find_map(|prefix| line.strip_prefix(prefix))?;
            Some(rest.split(['.', ' ']).next()?.to_owned())
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}
