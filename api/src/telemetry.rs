//! Structured logs through `tracing`. Each request is a span (from
//! tracing-actix-web) carrying its request id, method, route, status and latency;
//! the line is written when the span closes. `RUST_LOG` filters, `LOG_FORMAT=json`
//! switches to one JSON object per line for log shippers.
//!
//! Lines are handed to a dedicated writer thread (`tracing-appender`'s non-blocking
//! writer) instead of being written to stderr from the request's worker, which spent a
//! measurable share of each request waiting on the pipe. The writer is not lossy: if
//! its buffer (128k lines) ever fills, logging waits rather than dropping lines.

use std::io::IsTerminal;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::LogFormat;

/// Installs the subscriber. Keep the returned guard for as long as the process runs:
/// dropping it flushes the lines still queued.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer)
        .with_span_events(FmtSpan::CLOSE);
    // try_init: tests boot many servers in one process; the first subscriber wins.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
    guard
}
