//! Account input as domain types, parsed once at the edge ("parse, don't
//! validate"): a function that takes an [`Email`] never re-checks it, and nothing
//! can build one that breaks the rules. Each parse error names its field, so the
//! API can return them as field-level problems.

use std::fmt;

use unicode_normalization::UnicodeNormalization;
use validator::ValidateEmail;

use crate::input::text_value;

pub use crate::input::{AllFields, FieldError};

/// A syntactically valid email address in one canonical form, so that lookups and
/// the unique index agree on what "the same address" means: trimmed, the domain in
/// its IDNA ASCII form (UTS #46: full-width letters, ideographic full stops, soft
/// hyphens and case folded away, `café.com` as `xn--caf-dma.com`), the local part in
/// Unicode NFC and lower case. Length limits apply to that form, which is what is
/// stored: lower-casing can lengthen a string (`İ` becomes two characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 255;
    /// Longer input is refused before any normalising work is spent on it.
    const MAX_INPUT_LEN: usize = 4 * Self::MAX_LEN;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let too_long = || FieldError::new("email", format!("must be at most {} characters", Self::MAX_LEN));
        let invalid = || FieldError::new("email", "must be a valid email address");
        if raw.chars().count() > Self::MAX_INPUT_LEN {
            return Err(too_long());
        }
        let (local, domain) = raw.trim().rsplit_once('@').ok_or_else(invalid)?;
        let local: String = local.nfc().collect::<String>().to_lowercase().nfc().collect();
        let domain = idna::domain_to_ascii(domain).map_err(|_| invalid())?;
        let email = format!("{local}@{domain}");
        if email.chars().count() > Self::MAX_LEN {
            return Err(too_long());
        }
        if !email.validate_email() {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password of 12 to 128 characters (OWASP ASVS: length, not composition rules).
/// Debug output is redacted so it cannot end up in a log by accident.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_LEN: usize = 12;
    pub const MAX_LEN: usize = 128;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let len = raw.chars().count();
        if len < Self::MIN_LEN {
            return Err(FieldError::new(
                "password",
                format!("must be at least {} characters", Self::MIN_LEN),
            ));
        }
        if len > Self::MAX_LEN {
            return Err(FieldError::new(
                "password",
                format!("must be at most {} characters", Self::MAX_LEN),
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

text_value!(
    /// A display name: at most 100 characters, not blank, no control characters; trimmed.
    DisplayName, field: "display_name", chars: 1..=100, multiline: false
);

text_value!(
    /// A short free-text biography, at most 2,000 characters. Several lines are fine;
    /// other control characters are not.
    Bio, field: "bio", chars: 0..=2000, multiline: true
);

/// A phone number in E.164 form (`+` and 8 to 15 digits); spaces, dots, dashes and
/// parentheses in the input are dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let compact: String = raw
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = compact.strip_prefix('+').unwrap_or("");
        if digits.len() < 8
            || digits.len() > 15
            || !digits.chars().all(|c| c.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(FieldError::new(
                "phone",
                "must be an international number such as +44 20 7946 0958",
            ));
        }
        Ok(Self(compact))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Phone(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(Email::parse("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
        for bad in ["", "ada", "ada@", "@example.com", "a b@example.com"] {
            assert_eq!(Email::parse(bad).unwrap_err().field, "email", "{bad:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(Email::parse(&long).unwrap_err().message.contains("255"));
    }

    #[test]
    fn equivalent_addresses_have_one_form() {
        let canonical = |raw: &str| Email::parse(raw).unwrap().as_str().to_owned();
        for same in [
            "ada@\u{ff45}\u{ff58}\u{ff41}\u{ff4d}\u{ff50}\u{ff4c}\u{ff45}.\u{ff43}\u{ff4f}\u{ff4d}",
            "ada@example\u{3002}com",
            "ada@exam\u{ad}ple.com",
            "ADA@EXAMPLE.COM",
        ] {
            assert_eq!(canonical(same), "ada@example.com", "{same:?}");
        }
        assert_eq!(canonical("ada@caf\u{e9}.com"), "ada@xn--caf-dma.com");
        assert_eq!(canonical("ada@cafe\u{301}.com"), "ada@xn--caf-dma.com");
        assert!(Email::parse("jos\u{e9}@example.com").is_err(), "local parts stay ASCII");
    }

    #[test]
    fn the_length_limit_applies_to_the_stored_form() {
        // 'İ' lower-cases to two characters, and its IDNA form is longer still: 245
        // characters as typed are far more than 255 as stored.
        let label = "\u{130}".repeat(40);
        let grows = format!("ada@{}.com", [label.as_str(); 5].join("."));
        assert!(grows.chars().count() < 255);
        assert!(Email::parse(&grows).unwrap_err().message.contains("255"));
        let label = "a".repeat(63);
        let fits = format!("{}@{}.{}.{}.ab", "b".repeat(60), label, label, label);
        assert_eq!(Email::parse(&fits).unwrap().as_str().chars().count(), 255);
        assert!(Email::parse(&format!("b{fits}")).unwrap_err().message.contains("255"));
        assert!(
            Email::parse(&"a".repeat(100_000)).is_err(),
            "huge input is refused early"
        );
    }

    #[test]
    fn passwords_need_12_to_128_characters_counted_as_characters() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse(&"x".repeat(11)).is_err());
        assert!(Password::parse(&"x".repeat(12)).is_ok());
        assert!(
            Password::parse(&"é".repeat(128)).is_ok(),
            "256 bytes but 128 characters"
        );
        assert!(Password::parse(&"x".repeat(129)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("correct horse battery").unwrap()),
            "Password(***)"
        );
    }

    #[test]
    fn phones_are_e164() {
        assert_eq!(Phone::parse("+44 20 7946-0958").unwrap().as_str(), "+442079460958");
        for bad in ["020 7946 0958", "+12", "+44 abc 123456", "+0123456789"] {
            assert!(Phone::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn display_names_are_trimmed_and_bounded() {
        assert_eq!(DisplayName::parse("  Ada ").unwrap().as_str(), "Ada");
        assert!(DisplayName::parse("   ").is_err());
        assert!(DisplayName::parse(&"x".repeat(101)).is_err());
        assert!(DisplayName::parse("a\u{0007}b").is_err());
    }

    #[test]
    fn all_field_errors_are_collected() {
        let parsed = (
            Email::parse("nope"),
            Password::parse("short"),
            DisplayName::parse("Ada"),
        )
            .all();
        let fields: Vec<_> = parsed.unwrap_err().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["email", "password"]);
        let parsed = (Email::parse("ada@example.com"), DisplayName::parse(" Ada ")).all();
        let (email, name) = parsed.unwrap();
        assert_eq!((email.as_str(), name.as_str()), ("ada@example.com", "Ada"));
    }
}
