//! The migration history round-trips on both backends: up, down and up again give
//! the same catalog, and all the way down leaves nothing of ours behind.

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait};
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
    let db = database.connect().await;
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
async fn the_entities_match_the_migrated_schema(backend: Backend) {
    let (_database, db) = migrated(backend).await;

    entity::User::find().all(&db).await.unwrap();
    entity::Profile::find().all(&db).await.unwrap();
    entity::ApiToken::find().all(&db).await.unwrap();
    entity::Author::find().all(&db).await.unwrap();
    entity::Book::find().all(&db).await.unwrap();
    entity::Category::find().all(&db).await.unwrap();
    entity::BookCategory::find().all(&db).await.unwrap();
    entity::Review::find().all(&db).await.unwrap();
    entity::ShelfEntry::find().all(&db).await.unwrap();
    entity::AuditLog::find().all(&db).await.unwrap();
    entity::UserStats::find().all(&db).await.unwrap();
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
