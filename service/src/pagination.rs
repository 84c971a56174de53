//! Keyset (cursor) pagination on `(created_at, id)`, newest first.
//!
//! OFFSET pagination was rejected: it re-reads every skipped row (page 1,000 costs
//! a thousand pages of work) and skips or repeats rows when others are inserted
//! meanwhile. A keyset page is one index range scan wherever it starts. The cursor
//! is opaque to clients (base64url of the last row's key) so its format can change;
//! an invalid one is a client error, never a 500.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, Condition, ExprTrait, Order, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::ServiceError;

pub const DEFAULT_LIMIT: u64 = 20;
pub const MAX_LIMIT: u64 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub created_at: DateTime<Utc>,
    pub id: Uuid,
}

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}|{}", self.created_at.to_rfc3339(), self.id))
    }

    pub fn decode(raw: &str) -> Result<Self, ServiceError> {
        let invalid = || ServiceError::Invalid("the cursor is not valid; use next_cursor from a previous page".into());
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid())?;
        let (at, id) = text.split_once('|').ok_or_else(invalid)?;
        Ok(Cursor {
            created_at: DateTime::parse_from_rfc3339(at)
                .map_err(|_| invalid())?
                .with_timezone(&Utc),
            id: Uuid::parse_str(id).map_err(|_| invalid())?,
        })
    }
}

/// A validated page request: `limit` in 1..=100 and an optional position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: u64,
    pub after: Option<Cursor>,
}

impl PageRequest {
    /// Parses raw query parameters: no limit means [`DEFAULT_LIMIT`], a larger one is
    /// capped at [`MAX_LIMIT`], zero is refused.
    pub fn parse(limit: Option<u64>, cursor: Option<&str>) -> Result<Self, ServiceError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(0) => return Err(ServiceError::Invalid("limit must be at least 1".into())),
            Some(n) => Ord::min(n, MAX_LIMIT),
        };
        let after = cursor.filter(|c| !c.is_empty()).map(Cursor::decode).transpose()?;
        Ok(Self { limit, after })
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            after: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

/// Orders `select` newest first and restricts it to the rows after `page.after`,
/// fetching one row more than the limit to learn whether another page exists.
pub fn keyset<Q, C>(select: Q, created_at: C, id: C, page: &PageRequest) -> Q
where
    Q: QueryFilter + QueryOrder + QuerySelect,
    C: ColumnTrait,
{
    let mut select = select
        .order_by(created_at, Order::Desc)
        .order_by(id, Order::Desc)
        .limit(page.limit + 1);
    if let Some(after) = page.after {
        select = select.filter(
            Condition::any()
                .add(created_at.lt(after.created_at))
                .add(created_at.eq(after.created_at).and(id.lt(after.id))),
        );
    }
    select
}

/// Turns the `limit + 1` rows fetched by [`keyset`] into a page and its next cursor.
pub fn finish<T>(mut rows: Vec<T>, page: &PageRequest, key: impl Fn(&T) -> Cursor) -> Page<T> {
    let more = rows.len() as u64 > page.limit;
    rows.truncate(page.limit as usize);
    let next_cursor = if more {
        rows.last().map(|last| key(last).encode())
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip() {
        let cursor = Cursor {
            created_at: Utc::now(),
            id: Uuid::now_v7(),
        };
        assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
    }

    #[test]
    fn garbage_cursors_are_client_errors() {
        for bad in [
            "",
            "!!!",
            "bm90IGEgY3Vyc29y",
            &URL_SAFE_NO_PAD.encode("2026-01-01T00:00:00Z|nope"),
        ] {
            assert!(matches!(Cursor::decode(bad), Err(ServiceError::Invalid(_))), "{bad:?}");
        }
    }

    #[test]
    fn limits_default_cap_and_refuse_zero() {
        assert_eq!(PageRequest::parse(None, None).unwrap().limit, DEFAULT_LIMIT);
        assert_eq!(PageRequest::parse(Some(1_000), None).unwrap().limit, MAX_LIMIT);
        assert!(PageRequest::parse(Some(0), None).is_err());
    }
}
