//! The migration history round-trips on both backends: up, down and up again give
//! the same catalog, and all the way down leaves nothing of ours behind.

use std::collections::BTreeMap;

use migration::{Migrator, MigratorTrait};
use sea_orm::sea_query::{ColumnType, StringLen};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Iden, Iterable, Statement};
use tests::schema::{snapshot, tables};
use tests::{Backend, TestDatabase, backend_tests};

const TABLES: &[&str] = &[
    "api_tokens",
    "audit_log",
    "authors",
    "book_categories",
    "books",
    "categories",
    "profiles",
    "reviews",
    "shelf_entries",
    "user_stats",
    "user_stats_refreshes",
    "users",
];

async fn migrated(backend: Backend) -> (TestDatabase, DatabaseConnection) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    Migrator::up(&db, None).await.expect("all migrations apply");
    (database, db)
}

async fn all_up_creates_every_table_and_all_down_leaves_nothing(backend: Backend) {
    let (_database, db) = migrated(backend).await;
    // SQLite's full-text index lives in FTS5 tables of its own (books_fts, ...).
    let tables: Vec<String> = tables(&db).await.into_iter().filter(|t| !t.contains("_fts")).collect();
    assert_eq!(tables, TABLES);

    Migrator::down(&db, None).await.expect("all migrations roll back");

    assert_eq!(
        snapshot(&db).await,
        Vec::<String>::new(),
        "objects left behind on {backend}"
    );
}

async fn each_migration_down_then_up_again_gives_the_same_schema(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    // One connection: every step's DDL and the snapshot after it see the same schema.
    // With the usual two, a loaded CI run once failed on SQLite with "trigger
    // profiles_bio_length_insert already exists" at migration 19's first up (the cause
    // is not pinned down; it did not recur in isolated runs).
    let db = database.connect_with(1).await;
    let count = Migrator::migrations().len();

    for step in 1..=count {
        let before = snapshot(&db).await;
        Migrator::up(&db, Some(1)).await.unwrap();
        let after = snapshot(&db).await;

        Migrator::down(&db, Some(1)).await.unwrap();
        assert_eq!(
            snapshot(&db).await,
            before,
            "migration {step} down did not undo its up on {backend}"
        );

        Migrator::up(&db, Some(1)).await.unwrap();
        assert_eq!(
            snapshot(&db).await,
            after,
            "migration {step} up again differs on {backend}"
        );
    }
    assert!(Migrator::get_pending_migrations(&db).await.unwrap().is_empty());
}

/// `fresh` on a database in use: everything goes, data included, and what comes back
/// is the schema a new database gets, functions and all (sea-orm-migration's own
/// `fresh` left the functions behind, and the next `up` stopped half-way).
async fn fresh_on_a_migrated_database_gives_the_schema_of_a_new_one(backend: Backend) {
    let (_new, new_db) = migrated(backend).await;
    let (_used, db) = migrated(backend).await;
    db.execute_unprepared("INSERT INTO authors (id, name) VALUES ('01930000-0000-7000-8000-000000000001', 'Ada')")
        .await
        .expect("a row to lose");

    Migrator::fresh(&db).await.expect("fresh applies everything again");
    Migrator::fresh(&db).await.expect("and again");

    assert_eq!(snapshot(&db).await, snapshot(&new_db).await, "fresh on {backend}");
    assert!(entity::Author::find().all(&db).await.unwrap().is_empty());
    assert!(Migrator::get_pending_migrations(&db).await.unwrap().is_empty());
}

/// Selecting every column of every entity fails if an entity names a column, or a
/// type, that the migrations did not create.
/// Every entity against the catalog the migrations made, column by column: each field
/// names a column that exists, with a type its `ColumnType` maps to on this backend
/// and the same nullability; and every column of the table is a field (but search
/// vectors, which only the database reads). Selecting from the empty tables, as this
/// test once did, passed with a wrong type or a NULL the entity cannot hold.
async fn the_entities_match_the_migrated_schema(backend: Backend) {
    let (_database, db) = migrated(backend).await;
    let mut problems = Vec::new();
    problems.extend(compare::<entity::User>(&db, backend).await);
    problems.extend(compare::<entity::Profile>(&db, backend).await);
    problems.extend(compare::<entity::ApiToken>(&db, backend).await);
    problems.extend(compare::<entity::Author>(&db, backend).await);
    problems.extend(compare::<entity::Book>(&db, backend).await);
    problems.extend(compare::<entity::Category>(&db, backend).await);
    problems.extend(compare::<entity::BookCategory>(&db, backend).await);
    problems.extend(compare::<entity::Review>(&db, backend).await);
    problems.extend(compare::<entity::ShelfEntry>(&db, backend).await);
    problems.extend(compare::<entity::AuditLog>(&db, backend).await);
    problems.extend(compare::<entity::UserStats>(&db, backend).await);
    assert!(
        problems.is_empty(),
        "entities and schema disagree:\n{}",
        problems.join("\n")
    );
}

/// `(type as the catalog writes it, nullable)` of each column of `table`, and whether
/// the table is a materialized view (whose columns PostgreSQL never marks NOT NULL).
async fn catalog(db: &DatabaseConnection, backend: Backend, table: &str) -> (BTreeMap<String, (String, bool)>, bool) {
    let (sql, view) = match backend {
        Backend::Postgres => (
            format!(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull \
                 FROM pg_attribute a WHERE a.attrelid = 'public.{table}'::regclass AND a.attnum > 0 AND NOT a.attisdropped"
            ),
            format!("SELECT relkind::text = 'm' FROM pg_class WHERE oid = 'public.{table}'::regclass"),
        ),
        Backend::Sqlite => (
            format!("SELECT name, lower(type), \"notnull\" = 0 FROM pragma_table_info('{table}')"),
            "SELECT 0 = 1".to_owned(),
        ),
    };
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap();
    let columns = rows
        .iter()
        .map(|row| {
            let name: String = row.try_get_by_index(0).unwrap();
            let ty: String = row.try_get_by_index(1).unwrap();
            let nullable: bool = row.try_get_by_index(2).unwrap();
            (name, (ty, nullable))
        })
        .collect();
    let view: bool = tests::sql::scalar(db, &view).await;
    (columns, view)
}

/// The catalog types a `ColumnType` may be stored as on `backend`; `*` ends a prefix.
fn stored_as(backend: Backend, ty: &ColumnType) -> Vec<String> {
    let pg = backend == Backend::Postgres;
    let one = |t: &str| vec![t.to_owned()];
    match ty {
        ColumnType::Uuid => one(if pg { "uuid" } else { "uuid_text" }),
        ColumnType::String(StringLen::N(n)) if pg => vec![format!("character varying({n})")],
        ColumnType::String(StringLen::N(n)) => vec![format!("varchar({n})")],
        // A `String` field whose length the entity leaves to the migration.
        ColumnType::String(_) if pg => vec!["character varying(*".to_owned(), "text".to_owned()],
        ColumnType::String(_) => vec!["varchar(*".to_owned(), "text".to_owned()],
        ColumnType::Text => one("text"),
        ColumnType::SmallInteger => one("smallint"),
        ColumnType::Integer => one("integer"),
        ColumnType::BigInteger => one(if pg { "bigint" } else { "integer" }),
        ColumnType::Double => one(if pg { "double precision" } else { "double" }),
        ColumnType::Boolean => one("boolean"),
        ColumnType::TimestampWithTimeZone => one(if pg {
            "timestamp with time zone"
        } else {
            "timestamp_with_timezone_text"
        }),
        // PostgreSQL's own enum type; SQLite a text column with a CHECK.
        ColumnType::Enum { name, .. } if pg => vec![name.to_string()],
        ColumnType::Enum { .. } => vec!["varchar(32)".to_owned(), "text".to_owned()],
        other => panic!("no catalog mapping for {other:?}: add one"),
    }
}

async fn compare<E: EntityTrait + Default>(db: &DatabaseConnection, backend: Backend) -> Vec<String> {
    let table = E::default().table_name().to_owned();
    let (columns, view) = catalog(db, backend, &table).await;
    let mut problems = Vec::new();
    let mut fields = Vec::new();
    for column in E::Column::iter() {
        let name = column.to_string();
        let def = column.def();
        fields.push(name.clone());
        let Some((stored, nullable)) = columns.get(&name) else {
            problems.push(format!("{table}.{name}: no such column"));
            continue;
        };
        let accepted = stored_as(backend, def.get_column_type());
        let fits = |a: &String| match a.strip_suffix('*') {
            Some(prefix) => stored.starts_with(prefix),
            None => a == stored,
        };
        if !accepted.iter().any(fits) {
            problems.push(format!(
                "{table}.{name}: the entity says {accepted:?}, the table has {stored}"
            ));
        }
        if !view && *nullable != def.is_null() {
            problems.push(format!(
                "{table}.{name}: the entity says {}, the table says {}",
                if def.is_null() { "nullable" } else { "NOT NULL" },
                if *nullable { "nullable" } else { "NOT NULL" }
            ));
        }
    }
    for column in columns.keys() {
        if !fields.contains(column) && column != "search" {
            problems.push(format!("{table}.{column}: a column no entity field reads"));
        }
    }
    problems
}

/// Migration 23: addresses stored before emails had one canonical form are rewritten
/// in it, so their owners still sign in; where two stored spellings meet, the older
/// account keeps the address and the newer one is left as stored.
async fn stored_emails_are_rewritten_in_their_canonical_form(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    let before_23 = Migrator::migrations().len() - 1;
    Migrator::up(&db, Some(before_23 as u32)).await.unwrap();
    let stored = [
        (
            "01930000-0000-7000-8000-000000000001",
            "ada@caf\u{e9}.com",
            "2026-01-01",
        ),
        (
            "01930000-0000-7000-8000-000000000002",
            "bob@example\u{3002}com",
            "2026-01-02",
        ),
        (
            "01930000-0000-7000-8000-000000000003",
            "ada@cafe\u{301}.com",
            "2026-01-03",
        ),
        ("01930000-0000-7000-8000-000000000004", "cy@example.com", "2026-01-04"),
    ];
    for (id, email, created) in stored {
        db.execute_unprepared(&format!(
            "INSERT INTO users (id, email, password_hash, role, created_at, updated_at)
             VALUES ('{id}', '{email}', '!', 'user', '{created}T00:00:00Z', '{created}T00:00:00Z')"
        ))
        .await
        .unwrap();
    }

    Migrator::up(&db, None).await.expect("migration 23 applies");

    let rows = db
        .query_all_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT email FROM users ORDER BY email",
        ))
        .await
        .unwrap();
    let emails: Vec<String> = rows.iter().map(|row| row.try_get_by_index(0).unwrap()).collect();
    assert_eq!(
        emails,
        [
            "ada@cafe\u{301}.com",
            "ada@xn--caf-dma.com",
            "bob@example.com",
            "cy@example.com"
        ],
        "on {backend}"
    );
}

backend_tests!(
    stored_emails_are_rewritten_in_their_canonical_form,
    all_up_creates_every_table_and_all_down_leaves_nothing,
    each_migration_down_then_up_again_gives_the_same_schema,
    the_entities_match_the_migrated_schema,
    fresh_on_a_migrated_database_gives_the_schema_of_a_new_one,
);
