//! Shared rules for parsing input into domain values. Each parser returns a
//! [`FieldError`] naming its field, and [`AllFields`] collects them so a client sees
//! every problem in one response.

use uuid::Uuid;

/// A rule broken by one input field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Every field of a request parsed at once: a tuple of each field's result becomes the
/// tuple of values, or every field's error together, so a client sees every problem in
/// one response. `(Title::parse(…), PublishedYear::parse(…)).all()?` — no value is read before all of
/// them are known good, so there is no placeholder to fill and no arm to call
/// impossible.
pub trait AllFields {
    type Values;
    fn all(self) -> Result<Self::Values, Vec<FieldError>>;
}

macro_rules! all_fields {
    ($($value:ident: $ty:ident),+) => {
        impl<$($ty),+> AllFields for ($(Result<$ty, FieldError>,)+) {
            type Values = ($($ty,)+);

            fn all(self) -> Result<Self::Values, Vec<FieldError>> {
                let ($($value,)+) = self;
                let mut errors = Vec::new();
                $(let $value = $value.map_err(|e| errors.push(e));)+
                match ($($value,)+) {
                    ($(Ok($value),)+) => Ok(($($value,)+)),
                    _ => Err(errors),
                }
            }
        }
    };
}

all_fields!(a: A);
all_fields!(a: A, b: B);
all_fields!(a: A, b: B, c: C);
all_fields!(a: A, b: B, c: C, d: D);
all_fields!(a: A, b: B, c: C, d: D, e: E);

/// Trimmed text of `min..=max` characters. The maximum counts the text as sent, so it
/// is exactly the `maxLength` the OpenAPI document states; the minimum counts what is
/// left after trimming, so blank text is empty. Single-line fields refuse control
/// characters; multi-line ones allow newlines and tabs.
pub fn text(field: &'static str, raw: &str, min: usize, max: usize, multiline: bool) -> Result<String, FieldError> {
    if raw.chars().count() > max {
        return Err(FieldError::new(field, format!("must be at most {max} characters")));
    }
    let value = raw.trim();
    let len = value.chars().count();
    if len < min {
        return Err(FieldError::new(
            field,
            if min == 1 {
                "must not be empty".to_owned()
            } else {
                format!("must be at least {min} characters")
            },
        ));
    }
    let allowed = |c: char| !c.is_control() || (multiline && matches!(c, '\n' | '\r' | '\t'));
    if !value.chars().all(allowed) {
        return Err(FieldError::new(field, "must not contain control characters"));
    }
    Ok(value.to_owned())
}

/// Like [`text`] for an optional field; empty text counts as absent.
pub fn optional_text(
    field: &'static str,
    raw: Option<&str>,
    max: usize,
    multiline: bool,
) -> Result<Option<String>, FieldError> {
    match raw.filter(|v| !v.trim().is_empty()) {
        Some(value) => text(field, value, 1, max, multiline).map(Some),
        None => Ok(None),
    }
}

/// Declares a text value of the domain: a newtype whose field is private, so it only
/// ever holds text that passed [`text`] with these bounds. `parse` is for a required
/// field, `parse_optional` for one where blank means absent; the field name is the
/// one error bodies report.
macro_rules! text_value {
    ($(#[$doc:meta])* $name:ident, field: $field:literal, chars: $min:literal..=$max:literal, multiline: $multiline:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(String);

        impl $name {
            pub const MAX_CHARS: usize = $max;

            pub fn parse(raw: &str) -> Result<Self, $crate::input::FieldError> {
                $crate::input::text($field, raw, $min, $max, $multiline).map(Self)
            }

            /// Blank text is no value.
            pub fn parse_optional(raw: Option<&str>) -> Result<Option<Self>, $crate::input::FieldError> {
                $crate::input::optional_text($field, raw, $max, $multiline).map(|value| value.map(Self))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }
        }
    };
}
pub(crate) use text_value;

/// Ids in a list must be distinct; at most `max` of them.
pub fn distinct_ids(field: &'static str, ids: &[Uuid], max: usize) -> Result<Vec<Uuid>, FieldError> {
    if ids.len() > max {
        return Err(FieldError::new(field, format!("must list at most {max} ids")));
    }
    let mut unique = ids.to_vec();
    unique.sort();
    unique.dedup();
    if unique.len() != ids.len() {
        return Err(FieldError::new(field, "must not repeat an id"));
    }
    Ok(unique)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_bounded_and_single_line_unless_allowed() {
        assert_eq!(text("name", "  Ada ", 1, 10, false).unwrap(), "Ada");
        assert_eq!(
            text("name", "   ", 1, 10, false).unwrap_err().message,
            "must not be empty"
        );
        assert!(text("name", "x".repeat(11).as_str(), 1, 10, false).is_err());
        assert!(text("name", "a\nb", 1, 10, false).is_err());
        assert_eq!(text("body", "a\nb", 1, 10, true).unwrap(), "a\nb");
        assert_eq!(optional_text("bio", Some("  "), 10, true).unwrap(), None);
    }

    #[test]
    fn id_lists_refuse_repeats_and_excess() {
        let a = Uuid::now_v7();
        assert!(distinct_ids("ids", &[a, a], 5).is_err());
        assert!(distinct_ids("ids", &[a; 6], 5).is_err());
        assert_eq!(distinct_ids("ids", &[a], 5).unwrap(), vec![a]);
    }
}
