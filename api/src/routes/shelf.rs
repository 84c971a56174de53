//! `/me/shelf`: the caller's shelf.

use actix_web::{HttpResponse, delete, get, put, web};
use entity::shelf_entry::ShelfStatus;
use serde::Deserialize;
use service::shelves;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::{Authenticated, Member};
use crate::context::Ctx;
use crate::extract::{Json, Page, PageQuery, Query};
use crate::problem::responses::{BadQuery, JsonBody, NeedsToken, NotFound};
use crate::problem::{Problem, Reply};
use crate::views::{ShelfEntryView, ShelfPage};

routes!(list, put, delete);

/// The token check, the page joined with its books, the page's authors.
pub const LIST_STATEMENTS: u32 = 3;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub status: Option<ShelfStatus>,
}

/// Your shelf
///
/// The books on your shelf, most recently added first, optionally those with one status.
#[utoipa::path(operation_id = "list_my_shelf", tag = "shelf", params(ListQuery, PageQuery), security(("bearer" = [])),
    responses(
        (status = 200, body = ShelfPage, description = "Your shelf, most recently added first"), BadQuery, NeedsToken))]
#[get("/me/shelf")]
pub async fn list(ctx: Ctx, Authenticated(user): Authenticated, query: Query<ListQuery>, Page(page): Page) -> Reply {
    let entries = shelves::list(&ctx.primary(), user.id, query.status, &page).await?;
    Ok(HttpResponse::Ok().json(ShelfPage::from(entries)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ShelfBody {
    pub status: ShelfStatus,
}

/// Put a book on your shelf
///
/// Adds the book to your shelf, or changes its status there.
#[utoipa::path(operation_id = "shelve_book", tag = "shelf", params(("book_id" = Uuid, Path)), request_body = ShelfBody,
    security(("bearer" = [])),
    responses(
        (status = 200, body = ShelfEntryView, description = "Status changed"),
        (status = 201, body = ShelfEntryView, description = "Added to the shelf"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Guest account"), NotFound, JsonBody, NeedsToken))]
#[put("/me/shelf/{book_id}")]
pub async fn put(ctx: Ctx, Member(user): Member, book_id: web::Path<Uuid>, body: Json<ShelfBody>) -> Reply {
    let (entry, created) = ctx
        .publish(shelves::put(ctx.primary_pool(), (&user).into(), book_id.into_inner(), body.status).await?)
        .await;
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(ShelfEntryView::from(entry)))
}

/// Take a book off your shelf
///
/// Removes the book from your shelf.
#[utoipa::path(operation_id = "unshelve_book", tag = "shelf", params(("book_id" = Uuid, Path)), security(("bearer" = [])),
    responses(
        (status = 204, description = "Removed from the shelf"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Guest account"),
        (status = 404, body = Problem, content_type = "application/problem+json", description = "Not on your shelf"), NeedsToken))]
#[delete("/me/shelf/{book_id}")]
pub async fn delete(ctx: Ctx, Member(user): Member, book_id: web::Path<Uuid>) -> Reply {
    ctx.publish(shelves::remove(ctx.primary_pool(), (&user).into(), book_id.into_inner()).await?)
        .await;
    Ok(HttpResponse::NoContent().finish())
}
