//! The pool settings reach the real server: what the API's connections report about
//! themselves, and a statement timeout that really cancels a slow query.

use std::time::Duration;

use sea_orm::ConnectionTrait;
use tests::sql::scalar;
use tests::{Backend, backend_tests, spawn_app, spawn_app_with};

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

backend_tests!(
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
