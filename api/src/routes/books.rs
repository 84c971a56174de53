//! `/books`: filtered, sorted lists embedding author and categories; a book with its
//! rating; curation and category assignment (admin).

use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use serde::Deserialize;
use service::books::{
    self, BookChanges, BookFilter, BookSort, CategoryIds, Description, NewBook, PublishedYear, Title, parse_isbn,
};
use service::cache::Key;
use service::input::AllFields;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Admin;
use crate::cached_detail_route;
use crate::context::Ctx;
use crate::extract::{ConsistencyHeader, Json, Page, PageQuery, Query, ReplicaRead};
use crate::problem::responses::{AdminOnly, BadQuery, BadToken, Invalid, JsonBody, NeedsToken, NotFound};
use crate::problem::{ApiError, Problem, Reply};
use crate::routes::{created, patch_field};
use crate::views::{BookDetailView, BookPage};

routes!(list, create, get, update, delete, set_categories);

/// The page query (with the author joined in) and the page's categories, plus the
/// category subtree when filtering by category.
pub const LIST_STATEMENTS: u32 = 3;
/// The book with its author, its categories and its rating summary, in one statement.
pub const GET_STATEMENTS: u32 = 1;

#[derive(Deserialize, ToSchema, Clone, Copy, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Newest first.
    #[default]
    Created,
    /// A to Z.
    Title,
    /// Latest publication year first; books without a year last.
    Year,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub author_id: Option<Uuid>,
    /// Books in this category or any category below it.
    pub category_id: Option<Uuid>,
    pub year_from: Option<i32>,
    pub year_to: Option<i32>,
    #[param(inline)]
    pub sort: Option<Sort>,
}

/// List books
///
/// Live books a page at a time, filtered by author, category or year and sorted as asked.
#[utoipa::path(operation_id = "list_books", tag = "books", params(ListQuery, PageQuery, ConsistencyHeader),
    responses(
        (status = 200, body = BookPage, description = "Live books, each with its author and categories",
            headers(("Cache-Control" = String, description = "`no-store`"))), BadQuery, BadToken))]
#[get("/books")]
pub async fn list(read: ReplicaRead, query: Query<ListQuery>, Page(page): Page) -> Reply {
    let filter = BookFilter {
        author_id: query.author_id,
        category_id: query.category_id,
        year_from: query.year_from,
        year_to: query.year_to,
    };
    let sort = match query.sort.unwrap_or_default() {
        Sort::Created => BookSort::Created,
        Sort::Title => BookSort::Title,
        Sort::Year => BookSort::Year,
    };
    let books = read.run(async |db| books::list(db, filter, sort, &page).await).await?;
    Ok(HttpResponse::Ok().json(BookPage::from(books)))
}

cached_detail_route!(
    /// Get a book
    ///
    /// One live book with its author, categories and rating, cacheable: revalidate with If-None-Match.
    get,
    "get_book",
    "books",
    "/books/{id}",
    BookDetailView,
    "The book with author, categories and rating",
    Key::Book,
    |db, id| books::get(db, id).await.map(BookDetailView::from)
);

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewBookBody {
    pub author_id: Uuid,
    #[schema(min_length = 1, max_length = 500)]
    pub title: String,
    #[schema(max_length = 20000)]
    pub description: Option<String>,
    /// ISBN-13 or ISBN-10, hyphens allowed; stored as 13 digits.
    pub isbn: Option<String>,
    #[schema(minimum = -3000)]
    pub published_year: Option<i32>,
    #[serde(default)]
    #[schema(max_items = 20)]
    pub category_ids: Vec<Uuid>,
}

impl TryFrom<NewBookBody> for NewBook {
    type Error = ApiError;

    fn try_from(b: NewBookBody) -> Result<Self, ApiError> {
        let (title, description, isbn, published_year, category_ids) = (
            Title::parse(&b.title),
            Description::parse_optional(b.description.as_deref()),
            parse_isbn(b.isbn.as_deref()),
            b.published_year.map(PublishedYear::parse).transpose(),
            CategoryIds::parse(&b.category_ids),
        )
            .all()?;
        Ok(NewBook {
            author_id: b.author_id,
            title,
            description,
            isbn,
            published_year,
            category_ids,
        })
    }
}

/// Add a book
///
/// Adds a book to the catalogue. Admins only.
#[utoipa::path(operation_id = "create_book", tag = "books", request_body = NewBookBody, security(("bearer" = [])),
    responses(
        (status = 201, body = BookDetailView, description = "Created"), AdminOnly,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "ISBN taken"), JsonBody, NeedsToken, Invalid))]
#[post("/books")]
pub async fn create(ctx: Ctx, Admin(admin): Admin, body: Json<NewBookBody>) -> Reply {
    let new = NewBook::try_from(body.into_inner())?;
    let book = ctx
        .publish(books::create(ctx.primary_pool(), (&admin).into(), new).await?)
        .await;
    created(format!("/books/{}", book.item.book.id), BookDetailView::from(book))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookPatch {
    pub author_id: Option<Uuid>,
    #[schema(min_length = 1, max_length = 500)]
    pub title: Option<String>,
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<String>, max_length = 20000)]
    pub description: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<String>)]
    pub isbn: Option<Option<String>>,
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<i32>, minimum = -3000)]
    pub published_year: Option<Option<i32>>,
}

impl TryFrom<BookPatch> for BookChanges {
    type Error = ApiError;

    fn try_from(b: BookPatch) -> Result<Self, ApiError> {
        let (title, description, isbn, published_year) = (
            b.title.as_deref().map(Title::parse).transpose(),
            b.description
                .map(|d| Description::parse_optional(d.as_deref()))
                .transpose(),
            b.isbn.map(|i| parse_isbn(i.as_deref())).transpose(),
            b.published_year
                .map(|year| year.map(PublishedYear::parse).transpose())
                .transpose(),
        )
            .all()?;
        Ok(BookChanges {
            author_id: b.author_id,
            title,
            description,
            isbn,
            published_year,
        })
    }
}

/// Edit a book
///
/// Changes a book's title, description, ISBN, year or author. Admins only.
#[utoipa::path(operation_id = "update_book", tag = "books", params(("id" = Uuid, Path)), request_body = BookPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, body = BookDetailView, description = "Updated"), AdminOnly, NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "ISBN taken"), JsonBody, NeedsToken, Invalid))]
#[patch("/books/{id}")]
pub async fn update(ctx: Ctx, Admin(admin): Admin, id: web::Path<Uuid>, body: Json<BookPatch>) -> Reply {
    let changes = BookChanges::try_from(body.into_inner())?;
    let book = ctx
        .publish(books::update(ctx.primary_pool(), (&admin).into(), *id, changes).await?)
        .await;
    Ok(HttpResponse::Ok().json(BookDetailView::from(book)))
}

/// Delete a book
///
/// Soft-deletes a book; its reviews and shelf entries stop showing. Admins only.
#[utoipa::path(operation_id = "delete_book", tag = "books", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses(
        (status = 204, description = "Soft-deleted"), AdminOnly, NotFound, NeedsToken))]
#[delete("/books/{id}")]
pub async fn delete(ctx: Ctx, Admin(admin): Admin, id: web::Path<Uuid>) -> Reply {
    ctx.publish(books::delete(ctx.primary_pool(), (&admin).into(), *id).await?)
        .await;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookCategoriesBody {
    /// The complete new set (at most 20); an empty list removes all.
    #[schema(max_items = 20)]
    pub category_ids: Vec<Uuid>,
}

/// Set a book's categories
///
/// Replaces the book's categories with the given list. Admins only.
#[utoipa::path(operation_id = "set_book_categories", tag = "books", params(("id" = Uuid, Path)),
    request_body = BookCategoriesBody, security(("bearer" = [])),
    responses(
        (status = 200, body = BookDetailView, description = "The book with its new categories"), AdminOnly, NotFound,
        (status = 422, body = Problem, content_type = "application/problem+json", description = "Unknown or repeated category"), JsonBody, NeedsToken))]
#[put("/books/{id}/categories")]
pub async fn set_categories(
    ctx: Ctx,
    Admin(admin): Admin,
    id: web::Path<Uuid>,
    body: Json<BookCategoriesBody>,
) -> Reply {
    let category_ids = CategoryIds::parse(&body.category_ids).map_err(|e| ApiError::from(vec![e]))?;
    let book = ctx
        .publish(books::set_categories(ctx.primary_pool(), (&admin).into(), *id, &category_ids).await?)
        .await;
    Ok(HttpResponse::Ok().json(BookDetailView::from(book)))
}
