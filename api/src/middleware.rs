//! Per-request middleware: caching headers, consistency tokens, the request's pinned
//! connections and its statement count (its log line and id: `request_log`).

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CACHE_CONTROL, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;

use crate::context::AppContext;

pub const STATEMENT_COUNT: HeaderName = HeaderName::from_static("x-statement-count");
pub const CONSISTENCY_TOKEN: HeaderName = HeaderName::from_static(crate::extract::CONSISTENCY_TOKEN);

/// Paths whose responses carry one person's data (their account, shelf, tokens) or
/// an admin's view of users: no cache, shared or private, may keep them.
const PRIVATE_PREFIXES: &[&str] = &["/me/", "/admin/", "/auth/"];

/// `Cache-Control` for every response: `no-store` for `/me` and under
/// [`PRIVATE_PREFIXES`], errors included, so a proxy or browser cache never replays
/// someone's account; elsewhere `no-store` unless the handler chose otherwise
/// (`http_cache`).
pub async fn cache_control(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let path = req.path();
    let private = path == "/me" || PRIVATE_PREFIXES.iter().any(|prefix| path.starts_with(prefix));
    let mut res = next.call(req).await?;
    if private {
        res.headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    } else {
        crate::http_cache::default_no_store(res.headers_mut());
    }
    Ok(res)
}

/// With read replicas, every successful write answers with `X-Consistency-Token`: the
/// primary's WAL position after the write committed. A client that sends it back on
/// its next reads sees its own write, wherever the read is served (`service::replicas`).
pub async fn consistency_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let ctx = req
        .app_data::<web::Data<AppContext>>()
        .filter(|ctx| !ctx.databases.replicas.is_empty())
        .cloned();
    let writes = !req.method().is_safe();
    let mut res = next.call(req).await?;
    if let Some(ctx) = ctx.filter(|_| writes && res.status().is_success()) {
        match ctx.databases.primary_position().await {
            Ok(Some(position)) => {
                if let Ok(value) = HeaderValue::from_str(&position.to_string()) {
                    res.headers_mut().insert(CONSISTENCY_TOKEN, value);
                }
            }
            Ok(None) => {}
            // The write is done; without a token the client's next read may be stale by
            // at most the lag limit, which is still correct, so the response stands.
            Err(err) => tracing::warn!(error = %err, "no consistency token for this write"),
        }
    }
    Ok(res)
}

/// The route pattern a served request matched (`/books/{id}`), or `None`. Asked
/// after routing, actix looks the pattern up by the resource that served the request;
/// asked before, it matches the path again with the router's regular expressions,
/// which cost the detail 5 % of the API's instructions (callgrind). So the request's
/// line, the metrics and the statement count all ask once the response is there
/// (lines logged during a request carry its `http.target` instead). It takes the
/// response so that there is no asking before.
pub fn route_pattern<B>(res: &ServiceResponse<B>) -> Option<String> {
    res.request().match_pattern()
}

/// A request's statements share one pooled connection per database, returned when the
/// request is done, or as soon as a public read has its rows (`Databases::read`):
/// `service::database::Pinned`, one release per request instead of one per statement.
pub async fn pinned_connections(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    service::database::with_pinned_connections(next.call(req)).await
}

/// Counts the database statements a request runs. The count is logged at debug
/// level always, and returned as `x-statement-count` when the server runs with
/// `APP_ENV=development`: an N+1 shows up as a count that grows with the page size.
pub async fn statement_count(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let expose = req
        .app_data::<web::Data<AppContext>>()
        .is_some_and(|ctx| ctx.expose_statement_count);
    let (res, statements) = service::database::with_statement_count(next.call(req)).await;
    let mut res = res?;
    let route = route_pattern(&res).unwrap_or_else(|| "unmatched".to_owned());
    tracing::debug!(statements, "database statements for this request");
    metrics::histogram!("bookworm_db_statements_per_request", "route" => route).record(f64::from(statements));
    if expose {
        res.headers_mut().insert(STATEMENT_COUNT, HeaderValue::from(statements));
    }
    Ok(res)
}
