//! One log line per request, and the request id that ties a request's lines together.
//!
//! Each request is served inside a span holding its `request_id`, method and target,
//! so every line logged while it runs (a database outage, a refused write) names the
//! request. When the response is ready, one INFO line, "request served", adds the
//! route, status, client address, user agent and latency. The id is echoed in
//! `x-request-id`.
//!
//! Why not tracing-actix-web's root span, used before: it carried eleven fields,
//! formatted when the request started; it was cloned into the request's extensions;
//! it stayed open until the body was sent; and the fmt layer, asked for a line when
//! the span closed, read the clock and locked the span's extensions on every entry and
//! exit (each poll of the handler and of the body) to report `time.busy` and
//! `time.idle`. That was the largest single cost of the uncached detail under load
//! (docs/performance.md, "The request log, lean, and the busiest routes first"). Here
//! the span has three fields and is never timed: the latency is one reading of the
//! clock at each end.

use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, USER_AGENT};
use actix_web::middleware::Next;
use tracing::Instrument;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request's id, in its log lines and echoed in `x-request-id`: the caller's own
/// when it sends a well-formed one (1 to 128 letters, digits, `-`, `_`, `.` or `:`), so
/// one id follows a request across services; otherwise a new UUID. Anything else
/// (too long, spaces, control characters) is replaced, never logged as sent.
struct RequestId(HeaderValue);

impl RequestId {
    fn of(req: &ServiceRequest) -> Self {
        match req.headers().get(REQUEST_ID) {
            Some(sent) if well_formed(sent.as_bytes()) => Self(sent.clone()),
            _ => {
                let id = uuid::Uuid::now_v7();
                let id = id
                    .as_hyphenated()
                    .encode_lower(&mut uuid::Uuid::encode_buffer())
                    .to_owned();
                Self(HeaderValue::try_from(id).expect("a UUID is a valid header value"))
            }
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII is ever kept (`well_formed`, or a UUID).
        self.0.to_str().unwrap_or_default()
    }
}

fn well_formed(id: &[u8]) -> bool {
    (1..=128).contains(&id.len())
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

/// The outermost middleware: the request's span, its line, and `x-request-id`.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let id = RequestId::of(&req);
    let span = tracing::info_span!(
        "request",
        request_id = %id.as_str(),
        http.method = %req.method(),
        http.target = %req.uri().path_and_query().map_or("", |p| p.as_str()),
    );
    let logged = !span.is_disabled();
    let outcome = next.call(req).instrument(span.clone()).await;
    if logged {
        let _entered = span.enter();
        match &outcome {
            Ok(res) => served(res, started),
            Err(err) => failed(err, started),
        }
    }
    let mut res = outcome?;
    res.headers_mut().insert(REQUEST_ID, id.0);
    Ok(res)
}

fn served<B>(res: &ServiceResponse<B>, started: Instant) {
    let route = crate::middleware::route_pattern(res);
    let req = res.request();
    let connection = req.connection_info();
    tracing::info!(
        http.route = %route.as_deref().unwrap_or("default"),
        http.status_code = res.status().as_u16(),
        http.client_ip = %connection.realip_remote_addr().unwrap_or(""),
        // Quoted and escaped: a caller chooses it, spaces and quotes included.
        http.user_agent = req
            .headers()
            .get(USER_AGENT)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(""),
        latency_ms = millis_since(started),
        "request served",
    );
}

/// A middleware below gave up with an error instead of a response (none of this
/// API's do: handlers' errors are responses); actix answers it with its status.
fn failed(err: &Error, started: Instant) {
    tracing::info!(
        http.status_code = err.as_response_error().status_code().as_u16(),
        latency_ms = millis_since(started),
        "request served",
    );
}

/// Milliseconds since `started`, to the microsecond: a number in JSON lines.
fn millis_since(started: Instant) -> f64 {
    // Whole microseconds first, so the line says 1.234 rather than 1.2340000000000002.
    (started.elapsed().as_micros() as f64) / 1000.0
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
            assert!(well_formed(id.as_bytes()), "{id}");
        }
        for id in ["", "has space", "semi;colon", "quote\"", "nul\0", "é", &"a".repeat(129)] {
            assert!(!well_formed(id.as_bytes()), "{id:?}");
        }
    }
}
