//! The ISBN, the one value of the schema with rules of its own: stored as the 13 digits
//! of an ISBN-13. Here, beside the `books.isbn` column, so every importer (the API's
//! service layer, the seed tool) parses and builds ISBNs the same way.

use std::fmt;

/// An ISBN-13 with a correct check digit, as its 13 digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Isbn(String);

/// What was wrong with the text given as an ISBN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotAnIsbn;

impl fmt::Display for NotAnIsbn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("must be a valid ISBN-10 or ISBN-13")
    }
}

impl std::error::Error for NotAnIsbn {}

impl Isbn {
    /// Reads an ISBN-13 or an ISBN-10 (converted to 13 digits), with or without
    /// hyphens and spaces; either check digit must be right.
    pub fn parse(raw: &str) -> Result<Self, NotAnIsbn> {
        let digits: String = raw.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
        match digits.len() {
            13 if digits.bytes().all(|b| b.is_ascii_digit()) => {
                let isbn = Self::with_check_digit(&digits[..12]);
                (isbn.0 == digits).then_some(isbn).ok_or(NotAnIsbn)
            }
            10 => {
                let (body, check) = digits.split_at(9);
                if !body.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(NotAnIsbn);
                }
                let sum: u32 = body
                    .bytes()
                    .enumerate()
                    .map(|(i, b)| u32::from(b - b'0') * (10 - i as u32))
                    .sum();
                let given = match check {
                    "X" | "x" => 10,
                    d => d.parse::<u32>().map_err(|_| NotAnIsbn)?,
                };
                if given != (11 - sum % 11) % 11 {
                    return Err(NotAnIsbn);
                }
                Ok(Self::with_check_digit(&format!("978{body}")))
            }
            _ => Err(NotAnIsbn),
        }
    }

    /// The ISBN-13 that begins with these 12 digits: they and the check digit.
    pub fn from_first_twelve(first12: u64) -> Self {
        Self::with_check_digit(&format!("{first12:012}"))
    }

    fn with_check_digit(first12: &str) -> Self {
        let sum: u32 = first12
            .bytes()
            .enumerate()
            .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
            .sum();
        Self(format!("{first12}{}", (10 - sum % 10) % 10))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for Isbn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isbns_are_checked_and_kept_as_13_digits() {
        assert_eq!(Isbn::parse("978-0-306-40615-7").unwrap().as_str(), "9780306406157");
        assert_eq!(
            Isbn::parse("0-306-40615-2").unwrap().as_str(),
            "9780306406157",
            "ISBN-10 converts"
        );
        assert_eq!(Isbn::parse("080442957X").unwrap().as_str(), "9780804429573");
        for bad in [
            "978-0-306-40615-8",
            "0-306-40615-3",
            "12345",
            "97803064061ab",
            "",
            "030640615ab",
        ] {
            assert_eq!(Isbn::parse(bad), Err(NotAnIsbn), "{bad:?}");
        }
    }

    #[test]
    fn the_check_digit_is_computed_for_any_prefix() {
        // 978-0-306-40615-7 is the textbook example.
        assert_eq!(Isbn::from_first_twelve(978_030_640_615).as_str(), "9780306406157");
        assert_eq!(Isbn::from_first_twelve(978_000_000_000).as_str(), "9780000000002");
        assert!(Isbn::parse(Isbn::from_first_twelve(978_123_456_789).as_str()).is_ok());
    }
}
