//! Structured logs through `tracing`. Each request is a span carrying its request id,
//! and ends with one line giving its route, status and latency
//! ([`crate::request_log`]). `RUST_LOG` filters, `LOG_FORMAT=json` switches to one
//! JSON object per line for log shippers. Text lines without colour write their fields
//! with [`crate::log_fields::PlainFields`], and every line its time with
//! [`crate::log_time::LineTime`].
//!
//! Lines are written to stderr in batches by a thread of their own
//! ([`crate::log_writer`]): a request's worker neither waits on the pipe nor wakes
//! another thread for its line.
//!
//! A request the HTTP parser cannot read (a malformed request line or header, both
//! `Content-Length` and `Transfer-Encoding`, a head over 128 KiB or with more than 96
//! headers) never reaches the application: actix-http answers it itself, then logs
//! "stream error" at ERROR. That is a client's mistake, and ERROR is for bugs, so
//! [`ClientMistakes`] turns each such line into an INFO line and a count in
//! `bookworm_http_malformed_requests_total`. Raising the level filter for
//! actix-http instead was rejected: it would hide its real errors too.

use std::io::IsTerminal;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;

use crate::config::LogFormat;
use crate::log_fields::PlainFields;
use crate::log_time::LineTime;
use crate::log_writer::{self, Flush};

/// Installs the subscriber. Keep the returned guard for as long as the process runs:
/// dropping it flushes the lines still queued.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(format: LogFormat) -> Flush {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = log_writer::start(std::io::stderr(), log_writer::CAPACITY);
    let colour = std::io::stderr().is_terminal();
    let lines = tracing_subscriber::fmt::layer()
        .with_ansi(colour)
        .with_timer(LineTime)
        .with_writer(writer);
    let registry = tracing_subscriber::registry().with(ClientMistakes).with(filter);
    // try_init: tests boot many servers in one process; the first subscriber wins.
    let _ = match format {
        LogFormat::Text if colour => registry.with(lines).try_init(),
        LogFormat::Text => registry.with(lines.fmt_fields(PlainFields)).try_init(),
        LogFormat::Json => registry.with(lines.json().with_current_span(true)).try_init(),
    };
    guard
}

/// Where actix-http logs a connection it gave up on, and how the line starts.
const DISPATCHER: &str = "actix_http::h1::dispatcher";
const STREAM_ERROR: &str = "stream error: ";

/// Demotes actix-http's "stream error" lines, as the module docs say.
pub struct ClientMistakes;

impl<S: Subscriber> Layer<S> for ClientMistakes {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if meta.target() != DISPATCHER || *meta.level() != Level::ERROR {
            return true;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        let Some(cause) = message.0.strip_prefix(STREAM_ERROR) else {
            return true;
        };
        let reason = mistake_kind(cause);
        metrics::counter!("bookworm_http_malformed_requests_total", "reason" => reason).increment(1);
        tracing::info!(reason, cause, "refused a request the HTTP parser could not read");
        false
    }
}

/// The label for a parser's refusal: a head too large (431 or an overlong URI), the
/// connection lost mid-request, or anything else malformed (400).
fn mistake_kind(cause: &str) -> &'static str {
    if cause.contains("too large") || cause.contains("too long") {
        "too_large"
    } else if cause.starts_with("I/O error") || cause.contains("Connection reset") {
        "io"
    } else {
        "malformed"
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}
