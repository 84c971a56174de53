//! Structured logs through `tracing`. Each request is a span (from
//! tracing-actix-web) carrying its request id, method, route, status and latency;
//! the line is written when the span closes. `RUST_LOG` filters, `LOG_FORMAT=json`
//! switches to one JSON object per line for log shippers.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

use crate::config::LogFormat;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .with_span_events(FmtSpan::CLOSE);
    // try_init: tests boot many servers in one process; the first subscriber wins.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
}
