//! Prometheus metrics on their own listener: the series operators alert on exist, move
//! with traffic, and label routes by template, never by raw path.

use tests::{Backend, TestApp, backend_tests, spawn_app_with};

/// The value of the first series named `name` whose labels include every `label`.
fn value(page: &str, name: &str, labels: &[&str]) -> Option<f64> {
    page.lines()
        .filter(|line| !line.starts_with('#'))
        .find(|line| line.split(['{', ' ']).next() == Some(name) && labels.iter().all(|label| line.contains(label)))
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
}

async fn with_metrics(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| {
        s.observability.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
        s.security.throttle.per_client = 2;
    })
    .await
}

async fn metrics_are_served_apart_and_move_with_traffic(backend: Backend) {
    let app = with_metrics(backend).await;
    let book = uuid::Uuid::now_v7();
    assert_eq!(app.get("/metrics").await.status(), 404, "never on the public port");
    let before = app.scrape().await;

    // A trailing slash is trimmed before routing, and counted under the route that
    // served the request.
    for path in ["/books", "/books/", "/books"] {
        assert_eq!(app.get(path).await.status(), 200);
    }
    assert_eq!(app.get(&format!("/books/{book}")).await.status(), 404);
    for _ in 0..3 {
        app.login("nobody@example.com", "not a password at all").await;
    }
    let after = app.scrape().await;

    let books_ok = ["route=\"/books\"", "status=\"200\""];
    let moved = value(&after, "bookworm_http_requests_total", &books_ok).unwrap()
        - value(&before, "bookworm_http_requests_total", &books_ok).unwrap_or(0.0);
    assert!(moved >= 3.0, "{moved}");
    assert!(
        value(
            &after,
            "bookworm_http_requests_total",
            &["route=\"/books/{id}\"", "status=\"404\""]
        )
        .is_some()
    );
    assert!(!after.contains(&book.to_string()), "raw paths never become labels");
    assert!(
        value(
            &after,
            "bookworm_http_request_duration_seconds_count",
            &["route=\"/books\""]
        )
        .unwrap()
            >= 3.0
    );
    assert!(
        value(
            &after,
            "bookworm_db_statements_per_request_count",
            &["route=\"/books\""]
        )
        .is_some()
    );
    assert!(value(&after, "bookworm_db_reads_total", &["route=\"primary-no-replica\""]).unwrap() >= 4.0);
    assert!(value(&after, "bookworm_throttle_rejections_total", &["limit=\"client\""]).unwrap() >= 1.0);
    assert_eq!(
        value(&after, "bookworm_db_pool_connections_max", &["pool=\"primary\""]),
        Some(5.0)
    );
    assert!(value(&after, "bookworm_db_pool_connections_idle", &["pool=\"primary\""]).is_some());
}

async fn an_outage_is_counted_by_its_reason(backend: Backend) {
    let app = with_metrics(backend).await;
    app.make_database_unreachable().await;

    assert_eq!(app.get("/books").await.status(), 503);

    let page = app.scrape().await;
    assert!(value(&page, "bookworm_db_unavailable_total", &["reason=\"unreachable\""]).unwrap() >= 1.0);
    assert!(
        value(
            &page,
            "bookworm_http_requests_total",
            &["route=\"/books\"", "status=\"503\""]
        )
        .is_some()
    );
}

/// Every family on the page has `# HELP` text as well as its `# TYPE` (what
/// `promtool check metrics` asks first; CI runs promtool itself too), and the
/// password-hashing budget is on it.
async fn every_metric_family_is_described(backend: Backend) {
    let app = with_metrics(backend).await;
    app.reader("ada@example.com").await;
    app.login("nobody@example.com", "not a password at all").await;
    assert_eq!(app.get("/books").await.status(), 200);

    let page = app.scrape().await;

    let families = |prefix: &str| -> Vec<String> {
        page.lines()
            .filter_map(|line| line.strip_prefix(prefix))
            .filter_map(|rest| rest.split(' ').next())
            .map(str::to_owned)
            .collect()
    };
    let (typed, described) = (families("# TYPE "), families("# HELP "));
    assert!(typed.len() >= 10, "{page}");
    let undescribed: Vec<_> = typed.iter().filter(|name| !described.contains(name)).collect();
    assert!(undescribed.is_empty(), "no # HELP for {undescribed:?}");
    assert!(value(&page, "bookworm_password_hash_slots", &[]).unwrap() >= 1.0);
    assert!(value(&page, "bookworm_password_hash_wait_seconds_count", &[]).unwrap() >= 2.0);
}

backend_tests!(
    every_metric_family_is_described,
    metrics_are_served_apart_and_move_with_traffic,
    an_outage_is_counted_by_its_reason,
);
