//! Per-request middleware: the request id header and the statement count.

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{CACHE_CONTROL, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RequestId, RootSpanBuilder};

use crate::context::AppContext;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
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

/// The request's id, in its log span and echoed in `x-request-id`: the caller's own
/// when it sends a well-formed one (1 to 128 letters, digits, `-`, `_`, `.` or `:`), so
/// one id follows a request across services; otherwise a new UUID. Anything else
/// (too long, spaces, control characters) is replaced, never logged as sent.
#[derive(Debug, Clone)]
pub struct RequestIdValue(pub String);

fn well_formed(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The route pattern a served request matched (`/books/{id}`), or `None`. Asked
/// after routing, actix looks the pattern up by the resource that served the request;
/// asked before, it matches the path again with the router's regular expressions,
/// which cost the detail 5 % of the API's instructions (callgrind). So the span, the
/// metrics and the statement count all ask once the response is there, and the span's
/// `http.route` is filled in at the end (events logged during a request carry its
/// `http.target` instead).
pub fn route_pattern<B>(res: &ServiceResponse<B>) -> Option<String> {
    res.request().match_pattern()
}

/// tracing-actix-web's root span, with the request id chosen as [`RequestIdValue`] says.
pub struct RequestSpan;

impl RootSpanBuilder for RequestSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let id = request
            .headers()
            .get(REQUEST_ID)
            .and_then(|value| value.to_str().ok())
            .filter(|id| well_formed(id))
            .map(str::to_owned)
            .or_else(|| request.extensions().get::<RequestId>().map(|id| id.to_string()))
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        request.extensions_mut().insert(RequestIdValue(id.clone()));
        let user_agent = request
            .headers()
            .get(actix_web::http::header::USER_AGENT)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        tracing::info_span!(
            "HTTP request",
            http.method = %request.method(),
            http.route = tracing::field::Empty,
            http.target = %request.uri().path_and_query().map(|p| p.as_str()).unwrap_or(""),
            http.client_ip = %request.connection_info().realip_remote_addr().unwrap_or(""),
            http.user_agent = %user_agent,
            http.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            request_id = %id,
            exception.message = tracing::field::Empty,
            exception.details = tracing::field::Empty,
        )
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        if let Ok(res) = outcome {
            let route = route_pattern(res);
            span.record(
                "http.route",
                tracing::field::display(route.as_deref().unwrap_or("default")),
            );
        }
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

/// Echoes the request id of [`RequestSpan`].
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let request_id = req.extensions().get::<RequestIdValue>().cloned();
    let mut res = next.call(req).await?;
    if let Some(RequestIdValue(id)) = request_id
        && let Ok(value) = HeaderValue::from_str(&id)
    {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    Ok(res)
}

/// A request's reads share one pooled connection per database, returned when the
/// request is done (`service::database::Pinned`: one release round trip per request
/// instead of one per statement).
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

#[cfg(test)]
mod tests {
    use super::well_formed;

    #[test]
    fn request_ids_from_callers_are_kept_only_when_plain() {
        for id in [
            "abc",
            "0193a1b2-7c3d-7000-8000-000000000001",
            "trace:span.1_x",
            &"a".repeat(128),
        ] {
            assert!(well_formed(id), "{id}");
        }
        for id in ["", "has space", "semi;colon", "quote\"", "nul\0", "é", &"a".repeat(129)] {
            assert!(!well_formed(id), "{id:?}");
        }
    }
}
