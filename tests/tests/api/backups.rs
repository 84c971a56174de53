//! Logical backups (`tools/backup`), each one restored and checked: a backup is a file
//! we have restored and seen match its manifest, and the API serves from the copy.

use std::path::Path;
use std::sync::Arc;

use migration::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tests::sql::{count, scalar};
use tests::{Backend, TestDatabase, backend_tests, spawn_app_on};

const SEED: seed::SeedConfig = seed::SeedConfig {
    authors: 6,
    books_per_author: 5,
    users: 8,
    reviews_per_user: 3,
    category_depth: 2,
    seed: 11,
    demo_logins: false,
};

/// A migrated, seeded database.
async fn seeded(backend: Backend) -> Arc<TestDatabase> {
    let database = Arc::new(TestDatabase::create(backend).await);
    let db = database.connect().await;
    Migrator::up(&db, None).await.unwrap();
    seed::run(&db, &SEED).await.expect("seed");
    db.close().await.ok();
    database
}

fn quiet(_: &str) {}

/// Where `verify` may create scratch databases: the PostgreSQL test server's admin role.
fn scratch_url(backend: Backend) -> Option<String> {
    match backend {
        Backend::Postgres => std::env::var("TEST_POSTGRES_URL").ok(),
        Backend::Sqlite => None,
    }
}

async fn a_backup_restores_into_a_fresh_database_that_the_api_serves(backend: Backend) {
    let source = seeded(backend).await;
    let dir = tempfile::tempdir().unwrap();

    let created = backup::create(&source.url, dir.path(), &mut quiet)
        .await
        .expect("backup");

    let manifest = &created.manifest;
    assert_eq!(manifest.tables["books"].rows, 30);
    assert_eq!(manifest.tables["reviews"].rows, 24);
    assert_eq!(
        manifest.schema_version.as_deref(),
        Some(Migrator::migrations().last().unwrap().name())
    );
    assert!(manifest.size_bytes > 0 && !manifest.source.contains("password"));
    let verified = backup::verify(&created.path, None, scratch_url(backend).as_deref(), &mut quiet)
        .await
        .expect("verify");
    assert!(verified.ok(), "{:?}", verified.differences);

    let copy = Arc::new(TestDatabase::create(backend).await);
    let restored = backup::restore(&created.path, &copy.url, false, &mut quiet)
        .await
        .expect("restore");
    assert!(restored.ok(), "{:?}", restored.differences);

    let app = spawn_app_on(&copy, |_| {}).await;
    let books: Value = app.get("/books?limit=100").await.json().await.unwrap();
    assert_eq!(books["items"].as_array().unwrap().len(), 30);
    let book = books["items"][0]["id"].as_str().unwrap();
    assert_eq!(app.get(&format!("/books/{book}")).await.status(), 200);
    let reader = app.reader("after-restore@example.com").await;
    // The restored copy takes writes too.
    app.review(&reader.token, book, 4, "Read after the restore.").await;
}

async fn restoring_over_a_database_with_data_needs_force(backend: Backend) {
    let source = seeded(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let created = backup::create(&source.url, dir.path(), &mut quiet).await.unwrap();

    let refused = backup::restore(&created.path, &source.url, false, &mut quiet).await;
    assert!(matches!(refused, Err(backup::BackupError::NotEmpty(_))), "{refused:?}");
}

async fn a_row_deleted_after_restore_fails_verification_naming_its_table(backend: Backend) {
    let source = seeded(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let created = backup::create(&source.url, dir.path(), &mut quiet).await.unwrap();
    let copy = TestDatabase::create(backend).await;
    backup::restore(&created.path, &copy.url, false, &mut quiet)
        .await
        .unwrap();

    let db = copy.connect().await;
    db.execute_unprepared(
        "DELETE FROM shelf_entries WHERE user_id = (SELECT user_id FROM shelf_entries ORDER BY user_id LIMIT 1)",
    )
    .await
    .unwrap();
    db.close().await.ok();
    let verified = backup::verify(&created.path, Some(&copy.url), None, &mut quiet)
        .await
        .unwrap();

    assert!(!verified.ok());
    let tables: Vec<_> = verified.differences.iter().map(|d| d.table.as_str()).collect();
    assert_eq!(tables, ["shelf_entries"]);
    let difference = &verified.differences[0];
    assert!(difference.found.as_ref().unwrap().rows < difference.expected.as_ref().unwrap().rows);
}

/// SQLite's backup is a database file: one byte changed inside a row's text is found,
/// and named by its table, even before anything is restored.
#[tokio::test]
async fn a_byte_changed_in_a_sqlite_backup_fails_verification_naming_its_table() {
    let source = seeded(Backend::Sqlite).await;
    let dir = tempfile::tempdir().unwrap();
    let created = backup::create(&source.url, dir.path(), &mut quiet).await.unwrap();
    let db = source.connect().await;
    let name: String = scalar(&db, "SELECT name FROM authors LIMIT 1").await;
    flip_a_byte_of(&created.path, name.as_bytes());

    let verified = backup::verify(&created.path, None, None, &mut quiet).await.unwrap();

    assert!(!verified.file_intact, "the file checksum catches it");
    let tables: Vec<_> = verified.differences.iter().map(|d| d.table.as_str()).collect();
    assert_eq!(tables, ["authors"]);
}

fn flip_a_byte_of(file: &Path, inside: &[u8]) {
    let mut bytes = std::fs::read(file).unwrap();
    let at = bytes
        .windows(inside.len())
        .position(|w| w == inside)
        .expect("the text is in the file");
    bytes[at] ^= 0x01;
    std::fs::write(file, bytes).unwrap();
}

async fn a_backup_taken_while_the_api_writes_is_consistent(backend: Backend) {
    let source = seeded(backend).await;
    let app = Arc::new(spawn_app_on(&source, |_| {}).await);
    let books: Value = app.get("/books?limit=100").await.json().await.unwrap();
    let books: Vec<String> = books["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    let mut readers = Vec::new();
    for n in 0..4 {
        readers.push(app.reader(&format!("writer{n}@example.com")).await);
    }

    // Four readers review and shelve books as fast as they can while the backup runs.
    let writers: Vec<_> = readers
        .into_iter()
        .map(|reader| {
            let (app, books) = (app.clone(), books.clone());
            tokio::spawn(async move {
                let mut written = 0;
                for book in &books {
                    let path = format!("/books/{book}/reviews");
                    let body = json!({"rating": 3, "body": "Written during a backup."});
                    if app.post_json(&path, &reader.token, body).await.status() == 201 {
                        written += 1;
                    }
                    let shelf = json!({"status": "reading"});
                    app.put_json(&format!("/me/shelf/{book}"), &reader.token, shelf).await;
                }
                written
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let dir = tempfile::tempdir().unwrap();
    let created = backup::create(&source.url, dir.path(), &mut quiet).await.unwrap();
    let mut written = 0;
    for writer in writers {
        written += writer.await.unwrap();
    }

    let copy = TestDatabase::create(backend).await;
    let restored = backup::restore(&created.path, &copy.url, false, &mut quiet)
        .await
        .unwrap();
    assert!(
        restored.ok(),
        "the restored copy matches its manifest: {:?}",
        restored.differences
    );
    let db = copy.connect().await;
    let orphans = count(
        &db,
        "SELECT count(*) FROM reviews r WHERE NOT EXISTS (SELECT 1 FROM books b WHERE b.id = r.book_id)",
    )
    .await;
    assert_eq!(orphans, 0, "every review's book is there");
    let backed_up = created.manifest.tables["reviews"].rows;
    assert_eq!(count(&db, "SELECT count(*) FROM reviews").await as u64, backed_up);
    assert!(written == 120, "every concurrent write succeeded: {written}");
    let live = source.connect().await;
    assert_eq!(count(&live, "SELECT count(*) FROM reviews").await, 24 + 120);
}

backend_tests!(
    a_backup_restores_into_a_fresh_database_that_the_api_serves,
    restoring_over_a_database_with_data_needs_force,
    a_row_deleted_after_restore_fails_verification_naming_its_table,
    a_backup_taken_while_the_api_writes_is_consistent,
);

/// Backups with faked dates, two a day for 25 days, and one unreadable manifest.
#[test]
fn prune_keeps_exactly_what_the_policy_says() {
    use chrono::{TimeZone, Utc};
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    for day in 1..=25 {
        for hour in [3, 15] {
            let created_at = Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap();
            let file = format!("bookworm-sqlite-{}.sqlite", created_at.format("%Y%m%dT%H%M%S"));
            std::fs::write(dir.path().join(&file), b"backup").unwrap();
            let manifest = backup::Manifest {
                format_version: 1,
                created_at,
                backend: backup::Backend::Sqlite,
                source: "sqlite://bookworm.db".into(),
                schema_version: None,
                file: file.clone(),
                size_bytes: 6,
                file_sha256: String::new(),
                tables: Default::default(),
                tools: Default::default(),
            };
            manifest
                .write(&backup::Manifest::path_for(&dir.path().join(&file)))
                .unwrap();
            all.push(file);
        }
    }
    std::fs::write(dir.path().join("broken.sqlite"), b"?").unwrap();
    std::fs::write(dir.path().join("broken.sqlite.manifest.json"), b"{not json").unwrap();

    let pruned = backup::prune(dir.path(), backup::Policy::default(), false).unwrap();

    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sqlite"))
        .collect();
    left.sort();
    let mut expected: Vec<String> = [8, 15, 19, 20, 21, 22, 23, 24, 25]
        .iter()
        .map(|day| format!("bookworm-sqlite-202611{day:02}T150000.sqlite"))
        .collect();
    expected.push("broken.sqlite".into());
    expected.sort();
    assert_eq!(left, expected);
    assert_eq!(pruned.deleted.len(), all.len() - 9);
    assert_eq!(pruned.unreadable.len(), 1);
    for name in &left {
        if name != "broken.sqlite" {
            assert!(dir.path().join(format!("{name}.manifest.json")).exists());
        }
    }
}

/// The production set-up: a backup role (BYPASSRLS, read-only) backs up, the owner (not a
/// superuser) restores; the API then serves the restored copy as the restricted role,
/// row-level security and the audit trigger included, with no grant repeated by hand
/// but the database-level ones.
#[cfg(postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_restored_by_the_owner_serves_the_restricted_api_role() {
    use tests::connect_as;
    let source = TestDatabase::create(Backend::Postgres).await;
    let owner = source.create_owner_role().await;
    let as_owner = connect_as(&owner.url).await;
    Migrator::up(&as_owner, None).await.unwrap();
    let app_role = source.create_app_role_granted_by(&owner).await;
    seed::run(&as_owner, &SEED).await.unwrap();
    as_owner.close().await.ok();
    let dir = tempfile::tempdir().unwrap();
    let refused = backup::create(&owner.url, dir.path(), &mut quiet).await;
    let message = refused.expect_err("the owner is bound by FORCE'd RLS").to_string();
    assert!(
        message.contains("profiles, reviews, shelf_entries") && message.contains("BYPASSRLS"),
        "{message}"
    );
    let backup_role = source.create_backup_role().await;
    let created = backup::create(&backup_role.url, dir.path(), &mut quiet)
        .await
        .expect("the backup role can back up");

    let copy = Arc::new(TestDatabase::create(Backend::Postgres).await);
    copy.set_up_for(&owner, &app_role).await;
    let restored = backup::restore(&created.path, &owner.url_on(&copy), false, &mut quiet)
        .await
        .expect("the owner can restore");
    assert!(restored.ok(), "{:?}", restored.differences);

    let db = copy.connect().await;
    let foreign = count(
        &db,
        &format!(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tableowner <> '{}'",
            owner.name
        ),
    )
    .await;
    assert_eq!(foreign, 0, "the owner owns every restored table");
    assert_eq!(
        count(&db, "SELECT count(*) FROM pg_policies").await,
        12,
        "the policies came back"
    );

    let app = spawn_app_on(&copy, |s| {
        s.database.pool.url = service::database::DatabaseUrl::new(app_role.url_on(&copy));
        s.database.auto_migrate = false;
    })
    .await;
    assert_eq!(
        app.get("/health/ready").await.status(),
        200,
        "the role can read every table"
    );
    let books: Value = app.get("/books?limit=1").await.json().await.unwrap();
    let book = books["items"][0]["id"].as_str().unwrap().to_owned();
    let ada = app.reader("ada@example.com").await;
    app.review(&ada.token, &book, 5, "Restored and reviewed.").await;
    let audited = count(
        &db,
        &format!(
            "SELECT count(*) FROM audit_log WHERE actor_id = '{}' AND table_name = 'reviews'",
            ada.id
        ),
    )
    .await;
    assert_eq!(audited, 1, "the audit trigger writes, as the owner, for the app role");
    let forged = connect_as(&app_role.url_on(&copy)).await;
    let denied = forged
        .execute_unprepared(
            "INSERT INTO audit_log (table_name, record_id, action) VALUES ('books', gen_random_uuid(), 'DELETE')",
        )
        .await;
    assert!(denied.unwrap_err().to_string().contains("permission denied"));
    forged.close().await.ok();
    drop(app);
    drop(copy);
    drop(backup_role);
    drop(app_role);
    drop(owner);
}
