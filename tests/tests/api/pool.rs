//! The pool settings reach the real server: what the API's connections report about
//! themselves, and a statement timeout that really cancels a slow query.

use std::time::Duration;

use sea_orm::ConnectionTrait;
use service::database::{DatabaseUrl, Pinned, PoolSettings, with_pinned_connections};
use tests::sql::scalar;
use tests::{Backend, TestDatabase, backend_tests, spawn_app, spawn_app_with};

async fn connections_carry_the_configured_session_settings(backend: Backend) {
    let app = spawn_app(backend).await;

    match backend {
        Backend::Postgres => {
            assert_eq!(scalar::<String>(&app.app_db, "SHOW statement_timeout").await, "10s");
            assert_eq!(
                scalar::<String>(&app.app_db, "SHOW idle_in_transaction_session_timeout").await,
                "30s"
            );
            assert_eq!(scalar::<String>(&app.app_db, "SHOW application_name").await, "bookworm");
        }
        Backend::Sqlite => {
            assert_eq!(scalar::<String>(&app.app_db, "PRAGMA journal_mode").await, "wal");
            let foreign_keys: i32 = scalar(&app.app_db, "PRAGMA foreign_keys").await;
            assert_eq!(foreign_keys, 1);
        }
    }
}

async fn the_pool_keeps_its_minimum_of_open_connections(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.database.pool.min_connections = 3;
        s.database.pool.max_connections = 4;
    })
    .await;
    let open = || match backend {
        Backend::Postgres => app.app_db.get_postgres_connection_pool().size(),
        Backend::Sqlite => app.app_db.get_sqlite_connection_pool().size(),
    };
    // The pool opens its minimum in the background: wait for it, within a deadline.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while open() < 3 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let open = open();
    assert!((3..=4).contains(&open), "{open} connections open on {backend}");
}

/// A request's reads share one pooled connection, so sqlx's ping on taking a
/// connection back costs one round trip per request, not one per statement. Temporary
/// tables belong to one connection: three rounds of create-if-missing, insert and
/// count see all three rows only if every statement ran on the same one. Without
/// pinning they spread over the pool's idle connections, oldest first.
async fn a_requests_reads_share_one_pooled_connection(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let mut settings = PoolSettings::with_defaults(DatabaseUrl::new(database.url.as_str()));
    (settings.min_connections, settings.max_connections) = (3, 3);
    let db = service::database::connect(&settings).await.unwrap();
    // Three connections open and idle, in the order they are handed out.
    match backend {
        Backend::Postgres => {
            let pool = db.get_postgres_connection_pool();
            let held = [pool.acquire().await, pool.acquire().await, pool.acquire().await];
            drop(held);
        }
        Backend::Sqlite => {
            let pool = db.get_sqlite_connection_pool();
            let held = [pool.acquire().await, pool.acquire().await, pool.acquire().await];
            drop(held);
        }
    }

    let rows = with_pinned_connections(async {
        let pinned = Pinned::new(&db, 0);
        let mut rows = 0;
        for _ in 0..3 {
            pinned
                .execute_unprepared("CREATE TEMP TABLE IF NOT EXISTS pin_probe (x INTEGER)")
                .await
                .unwrap();
            pinned
                .execute_unprepared("INSERT INTO pin_probe VALUES (1)")
                .await
                .unwrap();
            rows = scalar::<i64>(&pinned, "SELECT count(*) FROM pin_probe").await;
        }
        rows
    })
    .await;
    assert_eq!(rows, 3, "every statement of the request ran on one connection");
    db.close().await.ok();
}

backend_tests!(
    a_requests_reads_share_one_pooled_connection,
    connections_carry_the_configured_session_settings,
    the_pool_keeps_its_minimum_of_open_connections,
);

#[cfg(postgres)]
#[tokio::test]
async fn postgres_cancels_a_statement_that_outlives_the_statement_timeout() {
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.database.pool.statement_timeout = Duration::from_millis(200)
    })
    .await;

    let err = app
        .app_db
        .execute_unprepared("SELECT pg_sleep(2)")
        .await
        .expect_err("the query is cancelled");

    assert!(err.to_string().contains("statement timeout"), "{err}");
    // The connection is still usable afterwards.
    app.app_db.execute_unprepared("SELECT 1").await.unwrap();
}
