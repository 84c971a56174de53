//! Prometheus metrics: the `metrics` facade everywhere, rendered by
//! `metrics-exporter-prometheus` on a listener of its own (`METRICS_ADDR`), never the
//! public port, so they cannot be exposed by accident. Unset, no recorder is installed
//! and every measurement is a no-op.
//!
//! Route labels are the route *templates* (`/books/{id}`), never raw paths, so a client
//! cannot grow the number of series. The series are listed in docs/operations.md.

use std::net::TcpListener;
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{App, Error, HttpResponse, HttpServer, web};
use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::{DatabaseConnection, DbBackend};

use crate::context::AppContext;

/// The process's one recorder (tests start many servers in one process).
static RECORDER: OnceLock<PrometheusHandle> = OnceLock::new();

fn recorder() -> &'static PrometheusHandle {
    RECORDER.get_or_init(|| {
        let latency = [
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let statements = [1.0, 2.0, 3.0, 4.0, 5.0, 8.0, 12.0, 20.0, 50.0];
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full("bookworm_http_request_duration_seconds".into()), &latency)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full("bookworm_db_statements_per_request".into()), &statements)
            })
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full("bookworm_password_hash_wait_seconds".into()), &latency)
            })
            .expect("bucket lists are not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        describe();
        service::metrics::describe();
        handle
    })
}

/// The help text of every series the API layer records (the service layer's are in
/// `service::metrics::describe`): Prometheus's `# HELP` lines.
fn describe() {
    describe_counter!(
        "bookworm_http_requests_total",
        "Requests answered, by route template, method and status"
    );
    describe_histogram!(
        "bookworm_http_request_duration_seconds",
        Unit::Seconds,
        "Time from a request's arrival to its response, by route template"
    );
    describe_counter!(
        "bookworm_http_malformed_requests_total",
        "Requests the HTTP parser refused before the application saw them (400 or 431)"
    );
    describe_histogram!(
        "bookworm_db_statements_per_request",
        "Database statements one request ran, by route template"
    );
    describe_gauge!(
        "bookworm_db_pool_connections_in_use",
        "Pooled connections checked out, at scrape time"
    );
    describe_gauge!(
        "bookworm_db_pool_connections_idle",
        "Pooled connections idle, at scrape time"
    );
    describe_gauge!("bookworm_db_pool_connections_max", "The pool's connection limit");
    describe_counter!(
        "bookworm_db_unavailable_total",
        "Requests answered 503 because the database could not answer, by reason"
    );
    describe_counter!(
        "bookworm_throttle_rejections_total",
        "Login and registration attempts refused by a limit"
    );
    describe_counter!(
        "bookworm_throttle_local_fallbacks_total",
        "Login and registration checks decided in process because Redis was unusable"
    );
    describe_gauge!(
        "bookworm_password_hash_slots",
        "Password hashes that may run at once (PASSWORD_HASH_CONCURRENCY)"
    );
}

/// Starts recording and serves `GET /metrics` on `listener`.
pub fn serve(listener: TcpListener, ctx: AppContext) -> std::io::Result<Server> {
    let handle = recorder().clone();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let ctx = web::Data::new(ctx);
    let handle = web::Data::new(handle);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(ctx.clone())
            .app_data(handle.clone())
            .route("/metrics", web::get().to(render))
    })
    .workers(1)
    // It lives as long as the process: it goes on serving through the API's drain
    // (`startup::stop_on_signal`), which actix's own signal handling would cut short.
    .disable_signals()
    .listen(listener)?
    .run())
}

async fn render(ctx: web::Data<AppContext>, handle: web::Data<PrometheusHandle>) -> HttpResponse {
    pool_gauges("primary", ctx.primary_pool());
    for replica in &ctx.databases.replicas {
        pool_gauges(&replica.name, &replica.db);
    }
    metrics::gauge!("bookworm_password_hash_slots").set(ctx.hashing.limits().concurrency as f64);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}

/// Connections of one pool, read at scrape time.
fn pool_gauges(pool: &str, db: &DatabaseConnection) {
    let (size, idle, max) = match db.get_database_backend() {
        DbBackend::Postgres => {
            let p = db.get_postgres_connection_pool();
            (p.size(), p.num_idle() as u32, p.options().get_max_connections())
        }
        DbBackend::Sqlite => {
            let p = db.get_sqlite_connection_pool();
            (p.size(), p.num_idle() as u32, p.options().get_max_connections())
        }
        _ => return,
    };
    let pool = pool.to_owned();
    metrics::gauge!("bookworm_db_pool_connections_in_use", "pool" => pool.clone())
        .set(f64::from(size.saturating_sub(idle)));
    metrics::gauge!("bookworm_db_pool_connections_idle", "pool" => pool.clone()).set(f64::from(idle));
    metrics::gauge!("bookworm_db_pool_connections_max", "pool" => pool).set(f64::from(max));
}

/// Counts each request by route template, method and status, and times it.
pub async fn http_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let method = req.method().as_str().to_owned();
    let res = next.call(req).await?;
    let route = crate::middleware::route_pattern(&res).unwrap_or_else(|| "unmatched".to_owned());
    let status = res.status().as_u16().to_string();
    metrics::counter!("bookworm_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("bookworm_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    Ok(res)
}
