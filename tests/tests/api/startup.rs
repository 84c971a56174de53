//! Start-up against a database that is down: a clear error within the connect
//! timeout, never a hang, a panic or a leaked password.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use api::startup::Application;
use tests::test_settings;

const TIMEOUT: Duration = Duration::from_millis(500);

async fn start_against(url: &str) -> (String, Duration) {
    let mut settings = test_settings(url);
    settings.database.pool.connect_timeout = TIMEOUT;
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(30), Application::build(settings))
        .await
        .expect("start-up must give up by itself, not hang");
    let err = result.err().expect("start-up must fail without a database");
    (err.to_string(), started.elapsed())
}

#[tokio::test]
async fn a_refused_connection_stops_start_up_with_a_clear_message() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();

    let (message, took) = start_against(&format!("postgres://bookworm:s3cret@127.0.0.1:{port}/bookworm")).await;

    assert!(message.contains("cannot reach the database"), "{message}");
    assert!(message.contains("DATABASE_URL"), "{message}");
    assert!(!message.contains("s3cret"), "the password leaked: {message}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[tokio::test]
async fn a_server_that_never_answers_stops_start_up_within_the_connect_timeout() {
    // Accepts TCP connections and then says nothing, like a hung or firewalled server.
    let black_hole = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = black_hole.local_addr().unwrap().port();

    let (message, took) = start_against(&format!("postgres://bookworm:s3cret@127.0.0.1:{port}/bookworm")).await;

    assert!(message.contains("cannot reach the database"), "{message}");
    assert!(!message.contains("s3cret"), "the password leaked: {message}");
    assert!(took >= TIMEOUT, "gave up before the timeout: {took:?}");
    assert!(took < TIMEOUT * 8, "took {took:?} for a {TIMEOUT:?} timeout");
    drop(black_hole);
}

/// Start-up migrations run on a connection of their own, with the migration timeouts:
/// a request budget too short for any migration (1 ms) no longer fails start-up, and
/// the migrations still apply.
#[cfg(postgres)]
#[tokio::test]
async fn start_up_migrations_do_not_run_under_the_request_statement_timeout() {
    use migration::MigratorTrait;

    let database = tests::TestDatabase::create(tests::Backend::Postgres).await;
    let mut settings = test_settings(&database.url);
    settings.database.pool.statement_timeout = Duration::from_millis(1);

    let app = Application::build(settings).await;

    assert!(app.is_ok(), "start-up failed: {:?}", app.err().map(|e| e.to_string()));
    let db = database.connect().await;
    assert!(
        migration::Migrator::get_pending_migrations(&db)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A rolling deploy migrates before it replaces the instances, so an instance of the
/// previous release can restart on a schema with migrations it does not know. It
/// starts, serves, and leaves the schema alone; sea-orm-migration alone refused.
async fn an_instance_older_than_the_schema_starts_and_serves(backend: tests::Backend) {
    use migration::MigratorTrait;
    use sea_orm::ConnectionTrait;

    let database = std::sync::Arc::new(tests::TestDatabase::create(backend).await);
    let db = database.connect_with(1).await;
    migration::Migrator::up(&db, None).await.unwrap();
    db.execute_unprepared(
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m29991231_000001_from_the_next_release', 0)",
    )
    .await
    .unwrap();

    let app = tests::spawn_app_on(&database, |_| {}).await;

    assert_eq!(app.get("/health/ready").await.status(), 200);
    assert_eq!(app.get("/books").await.status(), 200);
    let versions = tests::sql::count(&db, "SELECT count(*) FROM seaql_migrations").await;
    assert_eq!(versions as usize, migration::Migrator::migrations().len() + 1);
}

tests::backend_tests!(an_instance_older_than_the_schema_starts_and_serves);
