//! The audit log: written by triggers in the same transaction as the change, with
//! the acting user when the change came through the API.

use reqwest::Method;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tests::{Backend, TestApp, backend_tests, fixtures, spawn_app, spawn_app_with};

async fn audit(app: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let response = app.get_as(&format!("/admin/audit?{query}"), token).await;
    assert_eq!(response.status(), 200, "{query}");
    response.json::<Value>().await.unwrap()["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn actions(entries: &[Value]) -> Vec<(String, Value)> {
    entries
        .iter()
        .map(|e| (e["action"].as_str().unwrap().to_owned(), e["actor_id"].clone()))
        .collect()
}

async fn api_changes_are_audited_with_their_actor(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let reader = app.reader("reader@example.com").await;
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    let book = app.create_book(&admin, author, "Dune").await;
    let review = app.review(&reader.token, book, 4, "Sand.").await;
    app.patch_json(&format!("/reviews/{review}"), &reader.token, json!({"rating": 5}))
        .await;
    app.delete_as(&format!("/reviews/{review}"), &reader.token).await;

    let me = json!(reader.id.to_string());
    let review_log = audit(&app, &admin.token, &format!("table=reviews&record_id={review}")).await;
    assert_eq!(
        actions(&review_log),
        [
            ("UPDATE".to_owned(), me.clone()),
            ("UPDATE".to_owned(), me.clone()),
            ("INSERT".to_owned(), me.clone())
        ],
        "newest first: soft delete, edit, create; one entry per change"
    );
    let book_log = audit(&app, &admin.token, &format!("table=books&record_id={book}")).await;
    assert_eq!(actions(&book_log), [("INSERT".to_owned(), json!(admin.id.to_string()))]);
    let user_log = audit(&app, &admin.token, &format!("table=users&record_id={}", reader.id)).await;
    assert_eq!(
        actions(&user_log),
        [("INSERT".to_owned(), me.clone())],
        "a registration is its own actor"
    );
    let by_reader = audit(&app, &admin.token, &format!("actor_id={}", reader.id)).await;
    assert_eq!(by_reader.len(), 4);
}

async fn raw_sql_changes_are_audited_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    let book = fixtures::books(&app.db, author, 1).await[0];

    // Outside the API, with no actor: a maintenance script, a psql session.
    app.db
        .execute_unprepared("UPDATE books SET title = 'Renamed by hand'")
        .await
        .unwrap();
    app.db.execute_unprepared("DELETE FROM books").await.unwrap();

    let log = audit(&app, &admin.token, &format!("table=books&record_id={book}")).await;
    assert_eq!(
        actions(&log),
        [
            ("DELETE".to_owned(), Value::Null),
            ("UPDATE".to_owned(), Value::Null),
            ("INSERT".to_owned(), Value::Null)
        ]
    );
}

/// A pool of one connection: whatever one request set must be gone for the next.
async fn the_actor_never_leaks_to_the_next_request(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.database.pool.max_connections = 1;
        s.database.pool.min_connections = 1;
    })
    .await;
    let admin = app.admin().await;
    let reader = app.reader("reader@example.com").await;
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    let book = fixtures::books(&app.db, author, 1).await[0];
    app.review(&reader.token, book, 4, "x").await;

    // The same (only) connection of the server's pool, right after that request.
    if backend == Backend::Postgres {
        let row = app.app_db.query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT coalesce(current_setting('app.current_user_id', true), '')",
        ));
        let leftover: String = row.await.unwrap().unwrap().try_get_by_index(0).unwrap();
        assert_eq!(leftover, "", "the setting ended with its transaction");
    }
    app.app_db
        .execute_unprepared("UPDATE books SET title = 'Anonymous edit'")
        .await
        .unwrap();
    let log = audit(&app, &admin.token, &format!("table=books&record_id={book}")).await;
    assert_eq!(log[0]["action"], "UPDATE");
    assert_eq!(
        log[0]["actor_id"],
        Value::Null,
        "not attributed to the previous request's reader"
    );
}

async fn only_admins_read_the_log_and_filters_are_checked(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let reader = app.reader("reader@example.com").await;
    for n in 0..5 {
        app.reader(&format!("r{n}@example.com")).await;
    }

    assert_eq!(app.get_as("/admin/audit", &reader.token).await.status(), 403);
    assert_eq!(app.send(Method::GET, "/admin/audit", None, None).await.status(), 401);
    assert_eq!(
        app.get_as("/admin/audit?table=passwords", &admin.token).await.status(),
        400
    );

    let seen: Vec<i64> = app
        .walk_pages("/admin/audit?table=users&limit=2", Some(&admin.token))
        .await
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(seen.len(), 7, "the admin and six readers registered");
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, no repeats: {seen:?}"
    );
}

backend_tests!(
    api_changes_are_audited_with_their_actor,
    raw_sql_changes_are_audited_too,
    the_actor_never_leaks_to_the_next_request,
    only_admins_read_the_log_and_filters_are_checked,
);
