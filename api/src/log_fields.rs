//! How a text line writes its fields when it has no colour: `name=value`, as
//! tracing-subscriber's `DefaultFields` writes them, without styling each name.
//!
//! `DefaultFields` paints every field name italic and every `=` dimmed through
//! nu-ansi-term, and with colour off it still builds and displays both styles. Writing
//! the same text without them took the request's span and line from about 22,000
//! instructions to 17,000 (callgrind; docs/performance.md, "Fields without styles").
//! The crate's `ansi` feature cannot be turned off instead: sea-orm-migration asks for
//! its default features. A terminal keeps `DefaultFields` and its colours.
//!
//! The output is `DefaultFields`'s, byte for byte (a test compares them): a message
//! is written as it reads, other strings quoted, `log.*` fields (the `log` crate's
//! metadata, already in the line) skipped, `r#` dropped from raw names, and an error
//! followed by its sources. Terminal control characters in a message or an error are
//! escaped unless the writer is told not to sanitise, as tracing-subscriber does, so
//! a caller cannot smuggle escape sequences into an operator's terminal.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing_subscriber::field::{MakeVisitor, VisitFmt, VisitOutput};
use tracing_subscriber::fmt::format::Writer;

/// The `FormatFields` for uncoloured text lines.
#[derive(Debug, Default, Clone, Copy)]
pub struct PlainFields;

impl<'w> MakeVisitor<Writer<'w>> for PlainFields {
    type Visitor = PlainVisitor<'w>;

    fn make_visitor(&self, writer: Writer<'w>) -> PlainVisitor<'w> {
        PlainVisitor {
            writer,
            first: true,
            result: Ok(()),
        }
    }
}

pub struct PlainVisitor<'w> {
    writer: Writer<'w>,
    first: bool,
    result: fmt::Result,
}

impl PlainVisitor<'_> {
    fn field(&mut self, field: &Field, value: fmt::Arguments<'_>, escape: bool) {
        let name = field.name();
        if self.result.is_err() || name.starts_with("log.") {
            return;
        }
        self.result = self.write_field(name, value, escape);
    }

    fn write_field(&mut self, name: &str, value: fmt::Arguments<'_>, escape: bool) -> fmt::Result {
        if !std::mem::take(&mut self.first) {
            self.writer.write_char(' ')?;
        }
        if name != "message" {
            self.writer.write_str(name.strip_prefix("r#").unwrap_or(name))?;
            self.writer.write_char('=')?;
        }
        if escape && self.writer.sanitizes_ansi_escapes() {
            Escaping(&mut self.writer).write_fmt(value)
        } else {
            self.writer.write_fmt(value)
        }
    }
}

impl Visit for PlainVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.field(field, format_args!("{value}"), true);
        } else {
            self.field(field, format_args!("{value:?}"), false);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        match value.source() {
            Some(source) => self.field(
                field,
                format_args!("{value} {}.sources={}", field.name(), Sources(source)),
                true,
            ),
            None => self.field(field, format_args!("{value}"), true),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        let escape = field.name() == "message";
        self.field(field, format_args!("{value:?}"), escape);
    }
}

impl VisitOutput<fmt::Result> for PlainVisitor<'_> {
    fn finish(self) -> fmt::Result {
        self.result
    }
}

impl VisitFmt for PlainVisitor<'_> {
    fn writer(&mut self) -> &mut dyn fmt::Write {
        &mut self.writer
    }
}

/// An error's sources, as `DefaultFields` lists them: `[first, second]`.
struct Sources<'a>(&'a (dyn std::error::Error + 'static));

impl fmt::Display for Sources<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut list = f.debug_list();
        let mut next = Some(self.0);
        while let Some(error) = next {
            list.entry(&format_args!("{error}"));
            next = error.source();
        }
        list.finish()
    }
}

/// Writes through, replacing the characters a terminal acts on (ESC, BEL, BS, FF, DEL
/// and the C1 controls) with escapes, as tracing-subscriber's own sanitiser does.
struct Escaping<'a, 'w>(&'a mut Writer<'w>);

impl Write for Escaping<'_, '_> {
    fn write_str(&mut self, text: &str) -> fmt::Result {
        let mut rest = text;
        while let Some(at) = rest.find(controls) {
            let (clean, tail) = rest.split_at(at);
            self.0.write_str(clean)?;
            let control = tail.chars().next().expect("find returned a character's index");
            match control {
                '\x1b' => self.0.write_str("\\x1b")?,
                '\x07' => self.0.write_str("\\x07")?,
                '\x08' => self.0.write_str("\\x08")?,
                '\x0c' => self.0.write_str("\\x0c")?,
                '\x7f' => self.0.write_str("\\x7f")?,
                c1 => write!(self.0, "\\u{{{:x}}}", c1 as u32)?,
            }
            rest = &tail[control.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

fn controls(c: char) -> bool {
    matches!(c, '\x1b' | '\x07' | '\x08' | '\x0c' | '\x7f' | '\u{80}'..='\u{9f}')
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::fmt::format::{DefaultFields, FormatFields};
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Lines {
            self.clone()
        }
    }

    #[derive(Debug)]
    struct Outer(Inner);
    #[derive(Debug)]
    struct Inner;
    impl fmt::Display for Outer {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("outer \x1b[31mfailed")
        }
    }
    impl fmt::Display for Inner {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("inner \u{9b}cause")
        }
    }
    impl std::error::Error for Outer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }
    impl std::error::Error for Inner {}

    /// Every kind of field the API logs, and the hostile ones it might be handed.
    fn log_everything() {
        let span = tracing::info_span!("request", request_id = %"0190-ab", http.target = %"/books?q=x");
        let _entered = span.enter();
        let served = 1.25_f64;
        tracing::info!(
            http.route = %"/books/{id}",
            http.status_code = 200_u16,
            http.user_agent = "curl \"quoted\" \x1b[31m",
            latency_ms = served,
            r#type = "raw",
            "request served \x1b]0;title\x07 as \u{85}sent"
        );
        tracing::warn!(
            error = &Outer(Inner) as &(dyn std::error::Error + 'static),
            "with sources"
        );
        tracing::warn!(
            error = &Inner as &(dyn std::error::Error + 'static),
            flag = true,
            n = -3_i64
        );
        tracing::info!(message = "a message given as a field", extra = ?Some("x"));
    }

    fn lines<N>(fields: N) -> String
    where
        N: for<'w> FormatFields<'w> + Send + Sync + 'static,
    {
        let out = Lines::default();
        let layer = tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .without_time()
            .fmt_fields(fields)
            .with_writer(out.clone());
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), log_everything);
        String::from_utf8(out.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn plain_fields_write_what_default_fields_write() {
        let plain = lines(PlainFields);
        assert_eq!(plain, lines(DefaultFields::new()));
        assert!(plain.contains("\\x1b]0;title\\x07 as \\u{85}sent"), "{plain}");
        assert!(
            plain.contains("error=outer \\x1b[31mfailed error.sources=[inner \\u{9b}cause]"),
            "{plain}"
        );
        assert!(plain.contains(r#"http.user_agent="curl \"quoted\" \u{1b}[31m" latency_ms=1.25 type="raw""#));
        assert!(
            plain.contains("request{request_id=0190-ab http.target=/books?q=x}"),
            "{plain}"
        );
        assert!(!plain.contains('\x1b'), "a control character got through: {plain:?}");
    }
}
