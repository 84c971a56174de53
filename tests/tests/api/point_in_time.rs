//! The point-in-time recovery drill, run on every CI build: a cluster of its own
//! archiving WAL to an encrypted pgBackRest repository, a full backup, writes through
//! the API (set A), a named restore point, a destructive mistake in SQL, more writes
//! (set B); then a restore to the restore point into a new data directory, and proof
//! through the API that set A is there, the mistake undone and set B gone. The
//! configuration is the one docs/backup.md and deploy/pgbackrest/ ship.
//!
//! `cargo test point_in_time` runs it alone. It fails, never skips, when pgBackRest or
//! the PostgreSQL server programs are missing.

#![cfg(postgres)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use migration::{Migrator, MigratorTrait};
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tests::backrest::{STANZA, backrest, deploy, pgbackrest, shipped_config_with};
use tests::cluster::Scratch;
use tests::sql::scalar;
use tests::{TestDatabase, connect_as, spawn_app_on};

fn id_of(body: &Value) -> String {
    body["id"].as_str().expect("an id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_in_time_recovery_undoes_a_mistake_and_nothing_after_it() {
    let scratch = Scratch::new("pitr");
    let repo = scratch.subdir("repo");
    let logs = scratch.subdir("log");
    let cipher = format!("drill-{}", uuid::Uuid::new_v4().simple());
    let config = scratch.dir.join("pgbackrest.conf");
    let primary = scratch.init("primary", "");
    let per_host = [
        ("repo1-path", repo.display().to_string()),
        ("log-path", logs.display().to_string()),
        ("lock-path", logs.display().to_string()),
        ("log-level-console", "warn".to_owned()),
        ("pg1-path", primary.data.display().to_string()),
        ("pg1-port", primary.port.to_string()),
        ("pg1-socket-path", primary.socket_dir.display().to_string()),
    ];
    std::fs::write(&config, shipped_config_with(&per_host)).unwrap();
    // The shipped server settings, with the configuration file's path added.
    primary.configure(&std::fs::read_to_string(deploy("pgbackrest/postgresql.conf")).unwrap());
    primary.configure(&format!(
        "archive_command = '{} --config={} --stanza={STANZA} archive-push %p'\n",
        pgbackrest().display(),
        config.display()
    ));
    let env = [("PGBACKREST_REPO1_CIPHER_PASS", cipher.as_str())];
    scratch.start(&primary, &env);
    backrest(&config, &cipher, &["stanza-create"]);
    backrest(&config, &cipher, &["check"]);

    // The application's database, migrated and seeded, and the base backup.
    let database = Arc::new(TestDatabase::create_on(&primary.admin_url()).await);
    let db = database.connect().await;
    Migrator::up(&db, None).await.unwrap();
    let seeded = seed::run(
        &db,
        &seed::SeedConfig {
            authors: 20,
            books_per_author: 10,
            users: 30,
            reviews_per_user: 4,
            category_depth: 2,
            seed: 5,
            demo_logins: false,
        },
    )
    .await
    .unwrap();
    let started = Instant::now();
    backrest(&config, &cipher, &["backup", "--type=full"]);
    let backup_took = started.elapsed();

    // Set A, through the API.
    let app = spawn_app_on(&database, |_| {}).await;
    let admin = app.admin().await;
    let reader = app.reader("ada@example.com").await;
    let author_a = app
        .post_json("/authors", &admin.token, json!({"name": "Set A Author"}))
        .await;
    assert_eq!(author_a.status(), 201);
    let author_a = id_of(&author_a.json().await.unwrap());
    let books: Value = app.get("/books?limit=2").await.json().await.unwrap();
    let (book_1, book_2) = (id_of(&books["items"][0]), id_of(&books["items"][1]));
    let review_a = app
        .review(&reader.token, &book_1, 5, "Written before the mistake.")
        .await
        .to_string();

    // The recovery target, then the mistake: every review gone.
    db.execute_unprepared("SELECT pg_create_restore_point('before_the_mistake')")
        .await
        .unwrap();
    let deleted = db
        .execute_unprepared("DELETE FROM reviews")
        .await
        .unwrap()
        .rows_affected();
    assert_eq!(deleted, seeded.reviews + 1);

    // Set B, after the mistake.
    let author_b = app
        .post_json("/authors", &admin.token, json!({"name": "Set B Author"}))
        .await;
    let author_b = id_of(&author_b.json().await.unwrap());
    let review_b = app
        .review(&reader.token, &book_2, 1, "Written after the mistake.")
        .await
        .to_string();
    // `check` switches WAL and waits until the segment holding all of it is archived.
    backrest(&config, &cipher, &["check"]);
    let admin_db = connect_as(&primary.admin_url()).await;
    let archived: i64 = scalar(&admin_db, "SELECT archived_count FROM pg_stat_archiver").await;
    admin_db.close().await.ok();
    db.close().await.ok();
    drop(app);

    // Disaster: the primary is gone. Restore to the restore point into a new directory.
    scratch.stop(&primary);
    let restored_dir = scratch.subdir("restored");
    let started = Instant::now();
    backrest(
        &config,
        &cipher,
        &[
            &format!("--pg1-path={}", restored_dir.display()),
            "--type=name",
            "--target=before_the_mistake",
            "--target-action=promote",
            "restore",
        ],
    );
    let restored = scratch.existing("restored", primary.port);
    scratch.start(&restored, &env);
    let db = database.connect().await;
    for _ in 0..600 {
        if !scalar::<bool>(&db, "SELECT pg_is_in_recovery()").await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !scalar::<bool>(&db, "SELECT pg_is_in_recovery()").await,
        "promoted at the target"
    );
    let restore_took = started.elapsed();

    // Through the API, on the restored cluster.
    let app = spawn_app_on(&database, |_| {}).await;
    assert_eq!(
        app.get(&format!("/authors/{author_a}")).await.status(),
        200,
        "set A is there"
    );
    assert_eq!(
        app.get(&format!("/reviews/{review_a}")).await.status(),
        200,
        "set A is there"
    );
    let reviews: i64 = scalar(&db, "SELECT count(*) FROM reviews").await;
    assert_eq!(reviews as u64, seeded.reviews + 1, "the mistake is undone");
    assert_eq!(
        app.get(&format!("/authors/{author_b}")).await.status(),
        404,
        "set B is gone"
    );
    assert_eq!(
        app.get(&format!("/reviews/{review_b}")).await.status(),
        404,
        "set B is gone"
    );
    let token = app.token_for(&reader.email, tests::PASSWORD).await;
    // The recovered primary takes writes.
    app.review(&token, &book_2, 4, "Written after the recovery.").await;

    println!("{}", backrest(&config, &cipher, &["info"]));
    let info: Value = serde_json::from_str(&backrest(&config, &cipher, &["info", "--output=json"])).unwrap();
    let full = &info[0]["backup"][0];
    let mib = |bytes: &Value| bytes.as_f64().unwrap_or_default() / (1024.0 * 1024.0);
    println!(
        "point-in-time recovery drill: database {:.1} MiB, full backup {:.1} MiB in the repository \
         (zstd, encrypted), taken in {:.1?}; {archived} WAL segments archived; restore to the named \
         target and promotion in {:.1?}",
        mib(&full["info"]["size"]),
        mib(&full["info"]["repository"]["size"]),
        backup_took,
        restore_took,
    );
    db.close().await.ok();
    drop(app);
    drop(database);
}
