//! The time at the start of every log line: UTC to the microsecond,
//! `2026-12-07T15:20:01.123456Z`, the text tracing-subscriber's `SystemTime` writes.
//!
//! Why not `SystemTime` itself: for every line it turns the clock into a calendar date
//! and writes seven numbers through `write!`, about 2,500 instructions, a ninth of what
//! a request's span and line cost (callgrind; docs/performance.md, "The log line's
//! time"). Lines come many to a second, so each thread keeps the text of the second it
//! last wrote and formats only the microseconds. Tests compare it with chrono's RFC 3339
//! at instants from 1970 to 9999 and with `SystemTime`'s own text.

use std::cell::Cell;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;

/// The `FormatTime` of every line, text and JSON.
#[derive(Debug, Default, Clone, Copy)]
pub struct LineTime;

impl FormatTime for LineTime {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        // A clock set before 1970 reads as 1970, where `SystemTime` would write the year
        // before it.
        let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        write_time(w, since_epoch)
    }
}

/// Which second this thread last wrote, and its `YYYY-MM-DDTHH:MM:SS`.
type Second = (u64, [u8; 19]);

thread_local! {
    static LAST_SECOND: Cell<Second> = const { Cell::new((u64::MAX, [0; 19])) };
}

fn write_time(w: &mut impl fmt::Write, since_epoch: Duration) -> fmt::Result {
    let secs = since_epoch.as_secs();
    let (last, mut text) = LAST_SECOND.get();
    if last != secs {
        let Some(fresh) = date_and_time(secs) else {
            // Past the year 9999 the text is longer than the cache holds.
            return write_with_chrono(w, since_epoch);
        };
        text = fresh;
        LAST_SECOND.set((secs, text));
    }
    let mut micros = since_epoch.subsec_micros();
    let mut fraction = *b".000000Z";
    for digit in fraction[1..7].iter_mut().rev() {
        *digit = b'0' + (micros % 10) as u8;
        micros /= 10;
    }
    w.write_str(ascii(&text))?;
    w.write_str(ascii(&fraction))
}

fn date_and_time(secs: u64) -> Option<[u8; 19]> {
    let time = chrono::DateTime::from_timestamp(i64::try_from(secs).ok()?, 0)?;
    time.format("%Y-%m-%dT%H:%M:%S")
        .to_string()
        .into_bytes()
        .try_into()
        .ok()
}

fn write_with_chrono(w: &mut impl fmt::Write, since_epoch: Duration) -> fmt::Result {
    let secs = i64::try_from(since_epoch.as_secs()).map_err(|_| fmt::Error)?;
    let time = chrono::DateTime::from_timestamp(secs, since_epoch.subsec_nanos()).ok_or(fmt::Error)?;
    write!(w, "{}", time.format("%Y-%m-%dT%H:%M:%S%.6fZ"))
}

fn ascii(bytes: &[u8]) -> &str {
    // Only digits and the separators above are ever written into these.
    std::str::from_utf8(bytes).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::{SecondsFormat, TimeZone, Utc};
    use tracing_subscriber::fmt::format::Writer;
    use tracing_subscriber::fmt::time::{FormatTime, SystemTime};

    use super::{LineTime, write_time};

    fn written(since_epoch: Duration) -> String {
        let mut text = String::new();
        write_time(&mut text, since_epoch).unwrap();
        text
    }

    fn since_epoch(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, micros: u32) -> Duration {
        let time = Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap();
        Duration::new(time.timestamp().try_into().unwrap(), micros * 1_000)
    }

    #[test]
    fn a_line_s_time_is_rfc_3339_to_the_microsecond_in_utc() {
        let instants = [
            since_epoch(1970, 1, 1, 0, 0, 0, 0),
            since_epoch(2000, 2, 29, 23, 59, 59, 999_999),
            since_epoch(2026, 12, 7, 15, 20, 1, 1),
            since_epoch(2026, 12, 7, 15, 20, 1, 123_456),
            since_epoch(2026, 12, 7, 15, 20, 2, 7_000),
            since_epoch(2100, 3, 1, 0, 0, 0, 500_000),
            since_epoch(9999, 12, 31, 23, 59, 59, 999_999),
        ];
        for instant in instants {
            let expected = Utc
                .timestamp_opt(instant.as_secs().try_into().unwrap(), instant.subsec_nanos())
                .unwrap()
                .to_rfc3339_opts(SecondsFormat::Micros, true);
            // Twice: the second time from the second this thread already wrote.
            assert_eq!(written(instant), expected);
            assert_eq!(written(instant), expected);
        }
        let beyond = since_epoch(10000, 1, 1, 0, 0, 0, 42);
        assert_eq!(written(beyond), "+10000-01-01T00:00:00.000042Z");
    }

    /// The same text as the timer it replaces, read at the same moment (within the
    /// second: read again if the second turned in between).
    #[test]
    fn a_line_s_time_reads_as_tracing_subscriber_s_own() {
        let mut attempts = 0;
        loop {
            let mut ours = String::new();
            let mut theirs = String::new();
            LineTime.format_time(&mut Writer::new(&mut ours)).unwrap();
            SystemTime.format_time(&mut Writer::new(&mut theirs)).unwrap();
            assert_eq!(ours.len(), theirs.len(), "{ours} against {theirs}");
            assert!(ours.ends_with('Z'), "{ours}");
            if ours[..19] == theirs[..19] {
                return;
            }
            attempts += 1;
            assert!(attempts < 3, "{ours} against {theirs}");
        }
    }
}
