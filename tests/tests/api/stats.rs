//! Reader statistics: a materialized view on PostgreSQL, a rebuilt table on SQLite,
//! refreshed on demand and in the background.

use std::time::Duration;

use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::Value;
use tests::{Backend, backend_tests, fixtures, spawn_app, spawn_app_with};

async fn profile(app: &tests::TestApp, id: uuid::Uuid) -> Value {
    let response = app.get(&format!("/users/{id}")).await;
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

async fn a_refresh_brings_the_public_profile_up_to_date(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.database.stats_refresh = None).await;
    let admin = app.admin().await;
    let reader = fixtures::readers(&app.db, 1).await[0];
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    let books = fixtures::books(&app.db, author, 2).await;
    fixtures::reviews(&app.db, &[reader], &books[..1], 4).await;
    fixtures::reviews(&app.db, &[reader], &books[1..], 5).await;

    let before = profile(&app, reader).await;
    assert_eq!(before["review_count"], 0, "not refreshed yet: {before}");
    assert_eq!(before["display_name"], "Reader 000");
    assert!(
        before.get("email").is_none() && before.get("phone").is_none(),
        "public means public: {before}"
    );

    let refreshed = app.post_as("/admin/stats/refresh", &admin.token).await;
    assert_eq!(refreshed.status(), 200);
    assert_eq!(
        refreshed.json::<Value>().await.unwrap()["readers"],
        2,
        "the reader and the admin"
    );

    let after = profile(&app, reader).await;
    assert_eq!(
        (after["review_count"].clone(), after["average_rating"].clone()),
        (2.into(), 4.5.into())
    );
    assert!(after["last_review_at"].is_string());

    app.db
        .execute_unprepared("UPDATE reviews SET rating = 1")
        .await
        .unwrap();
    assert_eq!(
        profile(&app, reader).await["average_rating"],
        4.5,
        "reads come from the view until the next refresh"
    );
    app.post_as("/admin/stats/refresh", &admin.token).await;
    assert_eq!(profile(&app, reader).await["average_rating"], 1.0);
}

async fn only_admins_refresh_and_deleted_readers_are_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let reader = app.reader("reader@example.com").await;

    assert_eq!(
        app.send(Method::POST, "/admin/stats/refresh", None, None)
            .await
            .status(),
        401
    );
    assert_eq!(app.post_as("/admin/stats/refresh", &reader.token).await.status(), 403);
    assert_eq!(app.delete_as("/me", &reader.token).await.status(), 204);
    assert_eq!(app.get(&format!("/users/{}", reader.id)).await.status(), 404);
}

async fn a_failing_refresh_is_reported_retried_and_survived(backend: Backend) {
    // One pooled connection: whatever a failed refresh leaves on it, the next request meets.
    let app = spawn_app_with(backend, |s| {
        s.database.stats_refresh = Some(Duration::from_secs(1));
        s.database.pool.max_connections = 1;
        s.database.pool.min_connections = 1;
    })
    .await;
    let admin = app.admin().await;
    let reader = fixtures::readers(&app.db, 1).await[0];
    let (break_it, repair) = match backend {
        // CONCURRENTLY needs the unique index.
        Backend::Postgres => (
            "DROP INDEX uq_user_stats_user_id",
            "CREATE UNIQUE INDEX uq_user_stats_user_id ON user_stats (user_id)",
        ),
        Backend::Sqlite => (
            "CREATE TRIGGER break_stats BEFORE INSERT ON user_stats BEGIN SELECT RAISE(ABORT, 'broken'); END",
            "DROP TRIGGER break_stats",
        ),
    };
    app.db.execute_unprepared(break_it).await.unwrap();

    let failed = app.post_as("/admin/stats/refresh", &admin.token).await;
    assert_eq!(failed.status(), 500);
    assert_eq!(failed.headers()["content-type"], "application/problem+json");
    assert_eq!(
        app.get("/books").await.status(),
        200,
        "a failed refresh leaves no broken transaction on its connection"
    );
    assert_eq!(
        app.get("/health/ready").await.status(),
        200,
        "and the server stays ready through failed refreshes"
    );

    // Once repaired, the background task's retry catches up without anyone asking.
    app.db.execute_unprepared(repair).await.unwrap();
    fixtures::reviews(
        &app.db,
        &[reader],
        &fixtures::books(&app.db, fixtures::authors(&app.db, 1, "A").await[0], 1).await,
        3,
    )
    .await;
    let mut count = Value::Null;
    for _ in 0..40 {
        count = profile(&app, reader).await["review_count"].clone();
        if count == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(count, 1, "the background refresh recovered");
}

backend_tests!(
    a_refresh_brings_the_public_profile_up_to_date,
    only_admins_refresh_and_deleted_readers_are_404,
    a_failing_refresh_is_reported_retried_and_survived,
);
