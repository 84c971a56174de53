//! The database misbehaving mid-request: a statement that waits past its timeout, a
//! connection cut under a running request. Each is a 503 problem with `Retry-After`
//! (the request may succeed if retried), never a 500, and the next request after the
//! trouble is served normally.

use std::time::Duration;

use sea_orm::{ConnectionTrait, TransactionTrait};
use serde_json::{Value, json};
use tests::{Backend, backend_tests, spawn_app_with};
#[cfg(postgres)]
use tests::{TestApp, fixtures};

async fn assert_retryable_503(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), 503, "{what}");
    assert_eq!(response.headers()["content-type"], "application/problem+json", "{what}");
    assert!(response.headers().contains_key("retry-after"), "{what}");
    let problem: Value = response.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("try again"),
        "{what}: {problem}"
    );
}

async fn a_statement_that_waits_past_its_timeout_is_a_503(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.database.pool.statement_timeout = Duration::from_millis(300)
    })
    .await;
    let ada = app.reader("ada@example.com").await;
    let update_bio = || app.patch_json("/me/profile", &ada.token, json!({"bio": "Waiting."}));

    // Another session holds what the request needs: the users/profiles rows on
    // PostgreSQL (so statement_timeout cancels the wait), SQLite's one write lock
    // (so the busy timeout gives up).
    let blocker = app.db.begin().await.unwrap();
    match backend {
        Backend::Postgres => {
            blocker
                .execute_unprepared("LOCK TABLE profiles IN ACCESS EXCLUSIVE MODE")
                .await
        }
        Backend::Sqlite => blocker.execute_unprepared("UPDATE users SET role = role").await,
    }
    .expect("take the lock");
    assert_retryable_503(update_bio().await, "a write blocked by a lock").await;

    blocker.rollback().await.unwrap();
    assert_eq!(update_bio().await.status(), 200, "served again once the lock is gone");
}

backend_tests!(a_statement_that_waits_past_its_timeout_is_a_503);

#[cfg(postgres)]
mod postgres_only {
    use super::*;

    /// The pid of the API's connection that is waiting on a lock, once it waits.
    async fn waiting_backend(app: &TestApp) -> i32 {
        for _ in 0..100 {
            let row = app
                .db
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                     AND application_name = 'bookworm' AND wait_event_type = 'Lock'",
                ))
                .await
                .unwrap();
            if let Some(row) = row {
                return row.try_get_by_index(0).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the request never reached the database")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_cut_mid_request_is_a_503() {
        let app = spawn_app_with(Backend::Postgres, |_| {}).await;
        let author = fixtures::authors(&app.db, 1, "Author").await[0];
        let book = fixtures::books(&app.db, author, 1).await[0];
        let blocker = app.db.begin().await.unwrap();
        blocker
            .execute_unprepared("LOCK TABLE books IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();

        let request = tokio::spawn({
            let (client, url) = (app.client.clone(), app.url(&format!("/books/{book}")));
            async move { client.get(url).send().await.unwrap() }
        });
        let pid = waiting_backend(&app).await;
        app.db
            .execute_unprepared(&format!("SELECT pg_terminate_backend({pid})"))
            .await
            .unwrap();

        assert_retryable_503(request.await.unwrap(), "a request whose connection was killed").await;
        blocker.rollback().await.unwrap();
        assert_eq!(app.get(&format!("/books/{book}")).await.status(), 200);
    }
}
