use reqwest::Method;
use serde_json::Value;
use tests::{Backend, backend_tests, spawn_app};

async fn liveness_answers_200(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.get("/health/live").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");
}

async fn readiness_answers_200_while_the_database_is_reachable(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.get("/health/ready").await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["database"], "ok");
}

async fn readiness_answers_503_problem_when_the_database_is_unreachable(backend: Backend) {
    let app = spawn_app(backend).await;
    app.make_database_unreachable().await;

    let response = app.get("/health/ready").await;

    assert_eq!(response.status(), 503);
    assert_problem_json(&response);
    assert!(response.headers().contains_key("retry-after"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 503);
    assert_eq!(body["title"], "Service Unavailable");
    let text = body.to_string().to_lowercase();
    for internal in ["pool", "sqlx", "terminat", "closed", "connection to server"] {
        assert!(!text.contains(internal), "internal detail {internal:?} leaked: {text}");
    }
    // The process itself is fine: liveness must not follow the database down.
    assert_eq!(app.get("/health/live").await.status(), 200);
}

async fn an_unknown_route_is_a_problem_json_404(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.get("/no/such/thing").await;

    assert_eq!(response.status(), 404);
    assert_problem_json(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 404);
    assert_eq!(body["title"], "Not Found");
    assert_eq!(body["type"], "about:blank");
}

async fn a_wrong_method_is_a_problem_json_405_naming_the_allowed_ones(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.client.delete(app.url("/health/live")).send().await.unwrap();

    assert_eq!(response.status(), 405);
    assert_problem_json(&response);
    assert_eq!(response.headers()["allow"], "GET");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 405);
}

async fn every_response_carries_a_request_id(backend: Backend) {
    let app = spawn_app(backend).await;

    let ok = app.get("/health/live").await;
    let missing = app.get("/missing").await;

    let id_of = |r: &reqwest::Response| r.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
    let (a, b) = (
        id_of(&ok).expect("200 has an id"),
        id_of(&missing).expect("404 has an id"),
    );
    assert_ne!(a, b);
    assert!(uuid::Uuid::parse_str(&a).is_ok());
}

async fn readiness_fails_while_the_schema_is_behind_the_binary(backend: Backend) {
    use migration::{Migrator, MigratorTrait};
    let app = spawn_app(backend).await;
    let latest = Migrator::migrations().last().unwrap().name().to_owned();

    Migrator::down(&app.db, Some(1)).await.unwrap();
    let behind = app.get("/health/ready").await;
    assert_eq!(behind.status(), 503);
    assert_problem_json(&behind);
    let problem: Value = behind.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("schema is behind") && detail.contains(&latest),
        "{detail}"
    );

    Migrator::up(&app.db, None).await.unwrap();
    assert_eq!(app.get("/health/ready").await.status(), 200);
}

#[cfg(postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_while_the_api_role_cannot_read_a_table() {
    use migration::{Migrator, MigratorTrait};
    use sea_orm::ConnectionTrait;
    let database = std::sync::Arc::new(tests::TestDatabase::create(Backend::Postgres).await);
    let owner = database.connect().await;
    Migrator::up(&owner, None).await.unwrap();
    let role = database.create_app_role().await;
    let app = tests::spawn_app_on(&database, |s| {
        s.database.pool.url = service::database::DatabaseUrl::new(role.url.clone());
        s.database.auto_migrate = false;
    })
    .await;
    assert_eq!(app.get("/health/ready").await.status(), 200);

    owner
        .execute_unprepared(&format!("REVOKE SELECT ON books, reviews FROM {}", role.name))
        .await
        .unwrap();

    let not_ready = app.get("/health/ready").await;
    assert_eq!(not_ready.status(), 503);
    let problem: Value = not_ready.json().await.unwrap();
    assert_eq!(
        problem["detail"],
        "the database role cannot read books, reviews: check the grants (docs/operations.md)"
    );
    drop(role);
}

fn assert_problem_json(response: &reqwest::Response) {
    assert_eq!(response.headers()["content-type"], "application/problem+json");
}

backend_tests!(
    liveness_answers_200,
    readiness_answers_200_while_the_database_is_reachable,
    readiness_answers_503_problem_when_the_database_is_unreachable,
    an_unknown_route_is_a_problem_json_404,
    a_wrong_method_is_a_problem_json_405_naming_the_allowed_ones,
    every_response_carries_a_request_id,
    readiness_fails_while_the_schema_is_behind_the_binary,
    a_callers_request_id_is_kept_and_a_malformed_one_replaced,
);

/// A caller's well-formed `x-request-id` is kept, so one id follows a request across
/// services; a malformed one is replaced, not echoed.
async fn a_callers_request_id_is_kept_and_a_malformed_one_replaced(backend: Backend) {
    let app = spawn_app(backend).await;
    let sent = "gateway-7f3a:42";

    let kept = app
        .request(Method::GET, "/health/live", None)
        .header("x-request-id", sent)
        .send()
        .await
        .unwrap();
    let replaced = app
        .request(Method::GET, "/health/live", None)
        .header("x-request-id", "not a plain id; DROP TABLE")
        .send()
        .await
        .unwrap();

    assert_eq!(kept.headers()["x-request-id"], sent);
    let new_id = replaced.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(new_id).is_ok(), "{new_id}");
}
