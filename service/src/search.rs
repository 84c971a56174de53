//! Full-text search over books and reviews, ranked by relevance, keyset-paginated
//! on (score, id), and blind to soft-deleted rows.
//!
//! The user's text only ever reaches the database as a bound parameter. PostgreSQL
//! parses it with `websearch_to_tsquery`, which accepts anything a person types
//! (quotes, `or`, `-word`) without a syntax error. SQLite's FTS5 has a query
//! language of its own that rejects stray quotes or operators, so the text is reduced
//! to its words, each quoted as a phrase: input can never become FTS5 syntax.
//!
//! A search page is three statements: the ranked ids, then the rows with their
//! embeds for the whole page (the same loaders as the lists).

use entity::{book, review};
use sea_orm::sea_query::{Alias, Condition, Expr, JoinType, Order, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityName, EntityTrait, ExprTrait, QueryFilter, Value};
use uuid::Uuid;

use crate::ServiceError;
use crate::books::BookItem;
use crate::pagination::{Cursor, CursorKey, Page, PageRequest};
use crate::reviews::ReviewItem;
use crate::visibility::{book_is_live, review_is_live};

pub const MAX_QUERY_CHARS: usize = 200;

/// Search text: 1 to 200 characters with at least one letter or digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchText(String);

impl SearchText {
    pub fn parse(raw: &str) -> Result<Self, ServiceError> {
        let text = raw.trim();
        let invalid = |message: &str| ServiceError::Invalid(format!("q {message}"));
        if raw.chars().count() > MAX_QUERY_CHARS {
            return Err(invalid("must be at most 200 characters"));
        }
        if !text.chars().any(char::is_alphanumeric) {
            return Err(invalid("must contain at least one word"));
        }
        Ok(Self(text.to_owned()))
    }

    /// The words of the text as an FTS5 query: `"word" "word"` (all must match).
    fn fts5(&self) -> String {
        self.0
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(|w| format!("\"{w}\""))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

enum Target {
    Books,
    Reviews,
}

/// Ranked ids of live matches after `page.after`, best first, `limit + 1` of them.
/// The full-text match is each backend's own SQL; which rows are live comes from
/// [`crate::visibility`], like every other query's.
async fn ranked_ids<C: ConnectionTrait>(
    db: &C,
    target: Target,
    text: &SearchText,
    page: &PageRequest,
) -> Result<Vec<(Uuid, f64)>, ServiceError> {
    let backend = db.get_database_backend();
    let (id, score) = (Alias::new("id"), Alias::new("score"));
    let query: Value = match backend {
        DbBackend::Sqlite => text.fts5().into(),
        _ => text.0.clone().into(),
    };
    // The table searched, its alias, its full-text index and what makes a row live.
    let (alias, fts, live) = match target {
        Target::Books => ("b", "books_fts", book_is_live(Alias::new("b"))),
        Target::Reviews => ("r", "reviews_fts", review_is_live(Alias::new("r"))),
    };
    let table = Alias::new(match target {
        Target::Books => book::Entity.table_name(),
        Target::Reviews => review::Entity.table_name(),
    });
    let mut matches = Query::select();
    matches.expr_as(Expr::col((Alias::new(alias), Alias::new("id"))), id.clone());
    match backend {
        DbBackend::Postgres => matches
            .expr_as(
                Expr::cust_with_values(
                    format!("ts_rank({alias}.search, websearch_to_tsquery('english', $1))::float8"),
                    [query.clone()],
                ),
                score.clone(),
            )
            .from_as(table, Alias::new(alias))
            .cond_where(
                Condition::all()
                    .add(Expr::cust_with_values(
                        format!("{alias}.search @@ websearch_to_tsquery('english', $1)"),
                        [query],
                    ))
                    .add(live),
            ),
        DbBackend::Sqlite => matches
            .expr_as(Expr::cust(format!("-bm25({fts})")), score.clone())
            .from(Alias::new(fts))
            .join_as(
                JoinType::InnerJoin,
                table,
                Alias::new(alias),
                Expr::cust(format!("{alias}.rowid = {fts}.rowid")),
            )
            .cond_where(
                Condition::all()
                    .add(Expr::cust_with_values(format!("{fts} MATCH ?"), [query]))
                    .add(live),
            ),
        other => return Err(ServiceError::Internal(format!("no search for {other:?}"))),
    };
    let mut ranked = Query::select();
    ranked
        .columns([id.clone(), score.clone()])
        .from_subquery(matches.to_owned(), Alias::new("ranked"))
        .order_by(score.clone(), Order::Desc)
        .order_by(id.clone(), Order::Asc)
        .limit(page.limit + 1);
    if let Some(cursor) = &page.after {
        let CursorKey::Float(after) = cursor.key else {
            return Err(ServiceError::Invalid("the cursor is not valid for this list".into()));
        };
        ranked.cond_where(
            Condition::any().add(Expr::col(score.clone()).lt(after)).add(
                Condition::all()
                    .add(Expr::col(score).eq(after))
                    .add(Expr::col(id).gt(cursor.id)),
            ),
        );
    }
    let rows = db.query_all_raw(backend.build(&ranked)).await?;
    rows.into_iter()
        .map(|row| Ok((row.try_get_by_index::<Uuid>(0)?, row.try_get_by_index::<f64>(1)?)))
        .collect::<Result<_, sea_orm::DbErr>>()
        .map_err(ServiceError::from)
}

/// Splits `limit + 1` ranked ids into this page's ids and the next cursor.
fn page_of(mut ranked: Vec<(Uuid, f64)>, page: &PageRequest) -> (Vec<Uuid>, Option<String>) {
    let more = ranked.len() as u64 > page.limit;
    ranked.truncate(page.limit as usize);
    let next = if more {
        ranked.last().map(|(id, score)| {
            Cursor {
                key: CursorKey::Float(*score),
                id: *id,
            }
            .encode()
        })
    } else {
        None
    };
    (ranked.into_iter().map(|(id, _)| id).collect(), next)
}

/// The page of `items`, in the order of `ids`.
fn in_order<T>(ids: &[Uuid], mut items: Vec<T>, id_of: impl Fn(&T) -> Uuid, next_cursor: Option<String>) -> Page<T> {
    items.sort_by_key(|item| ids.iter().position(|id| *id == id_of(item)).unwrap_or(usize::MAX));
    Page { items, next_cursor }
}

pub async fn books(
    db: &impl ConnectionTrait,
    text: &SearchText,
    page: &PageRequest,
) -> Result<Page<BookItem>, ServiceError> {
    let (ids, next_cursor) = page_of(ranked_ids(db, Target::Books, text, page).await?, page);
    let items = crate::books::items(db, book::Entity::find().filter(book::Column::Id.is_in(ids.clone()))).await?;
    Ok(in_order(&ids, items, |i| i.book.id, next_cursor))
}

pub async fn reviews(
    db: &impl ConnectionTrait,
    text: &SearchText,
    page: &PageRequest,
) -> Result<Page<ReviewItem>, ServiceError> {
    let (ids, next_cursor) = page_of(ranked_ids(db, Target::Reviews, text, page).await?, page);
    let items = crate::reviews::items(db, review::Entity::find().filter(review::Column::Id.is_in(ids.clone()))).await?;
    Ok(in_order(&ids, items, |i| i.review.id, next_cursor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_text_is_bounded_and_needs_a_word() {
        assert!(SearchText::parse("   ").is_err());
        assert!(SearchText::parse("\"' -- ;").is_err());
        assert!(SearchText::parse(&"a".repeat(201)).is_err());
        assert!(SearchText::parse(&"a".repeat(200)).is_ok());
    }

    #[test]
    fn fts5_queries_are_only_quoted_words() {
        let text = SearchText::parse(r#"dragon" OR title:x* NEAR(a b) -sea"#).unwrap();
        assert_eq!(text.fts5(), r#""dragon" "OR" "title" "x" "NEAR" "a" "b" "sea""#);
    }
}
