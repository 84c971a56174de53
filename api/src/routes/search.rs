//! `/search/books` and `/search/reviews`: full-text search, best matches first.

use actix_web::{HttpResponse, get};
use serde::Deserialize;
use service::search::{self, SearchText};
use utoipa::IntoParams;

use crate::extract::{ConsistencyHeader, Page, PageQuery, Query, ReplicaRead};
use crate::problem::Reply;
use crate::problem::responses::{BadQuery, BadToken};
use crate::views::{BookPage, ReviewPage};

routes!(books, reviews);

/// The ranked ids, then the page's rows with their embeds (two statements).
pub const SEARCH_STATEMENTS: u32 = 3;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// What to look for, 1 to 200 characters. Quotes, `or` and `-word` work as on
    /// web search engines (PostgreSQL); on SQLite every word must match.
    #[param(min_length = 1, max_length = 200)]
    pub q: String,
}

/// Search books
///
/// Full-text search of the live catalogue, most relevant first.
#[utoipa::path(operation_id = "search_books", tag = "search", params(SearchQuery, PageQuery, ConsistencyHeader),
    responses((status = 200, body = BookPage, description = "Matching live books, most relevant first"), BadQuery, BadToken))]
#[get("/search/books")]
pub async fn books(read: ReplicaRead, query: Query<SearchQuery>, Page(page): Page) -> Reply {
    let text = SearchText::parse(&query.q)?;
    Ok(HttpResponse::Ok().json(BookPage::from(
        read.run(async |db| search::books(db, &text, &page).await).await?,
    )))
}

/// Search reviews
///
/// Full-text search of live reviews, most relevant first.
#[utoipa::path(operation_id = "search_reviews", tag = "search", params(SearchQuery, PageQuery, ConsistencyHeader),
    responses((status = 200, body = ReviewPage, description = "Matching live reviews, most relevant first"), BadQuery, BadToken))]
#[get("/search/reviews")]
pub async fn reviews(read: ReplicaRead, query: Query<SearchQuery>, Page(page): Page) -> Reply {
    let text = SearchText::parse(&query.q)?;
    Ok(HttpResponse::Ok().json(ReviewPage::from(
        read.run(async |db| search::reviews(db, &text, &page).await).await?,
    )))
}
