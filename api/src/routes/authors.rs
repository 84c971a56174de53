//! `/authors`: list with name-prefix search, read with books, curate (admin).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::{Deserialize, Serialize};
use service::authors::{self, AuthorBio, AuthorChanges, AuthorName, NewAuthor};
use service::cache::Key;
use service::input::AllFields;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Admin;
use crate::cached_detail_route;
use crate::context::Ctx;
use crate::extract::{ConsistencyHeader, Json, Page, PageQuery, Query, ReplicaRead};
use crate::problem::responses::{AdminOnly, BadQuery, BadToken, Invalid, JsonBody, NeedsToken, NotFound};
use crate::problem::{ApiError, Reply};
use crate::routes::{created, patch_field};
use crate::views::{AuthorBook, AuthorPage, AuthorView};

routes!(list, create, get, update, delete);

/// Statements a request may run, whatever the page size (checked by the tests).
pub const LIST_STATEMENTS: u32 = 1;
pub const GET_STATEMENTS: u32 = 2;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Authors whose name starts with this, ignoring case.
    pub prefix: Option<String>,
}

/// List authors
///
/// Live authors by name, a page at a time, optionally those whose name starts with a prefix.
#[utoipa::path(operation_id = "list_authors", tag = "authors", params(ListQuery, PageQuery, ConsistencyHeader),
    responses(
        (status = 200, body = AuthorPage, description = "Live authors by name",
            headers(("Cache-Control" = String, description = "`no-store`"))), BadQuery, BadToken))]
#[get("/authors")]
pub async fn list(read: ReplicaRead, query: Query<ListQuery>, Page(page): Page) -> Reply {
    let authors = read
        .run(async |db| authors::list(db, query.prefix.as_deref(), &page).await)
        .await?;
    Ok(HttpResponse::Ok().json(AuthorPage::from(authors)))
}

#[derive(Serialize, ToSchema)]
pub struct AuthorDetailView {
    #[serde(flatten)]
    pub author: AuthorView,
    pub books: Vec<AuthorBook>,
}

cached_detail_route!(
    /// Get an author
    ///
    /// One live author with their books, cacheable: revalidate with If-None-Match.
    get,
    "get_author",
    "authors",
    "/authors/{id}",
    AuthorDetailView,
    "The author with their books",
    Key::Author,
    |db, id| {
        let (author, books) = authors::get(db, id).await?;
        Ok(AuthorDetailView {
            author: author.into(),
            books: books.into_iter().map(Into::into).collect(),
        })
    }
);

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAuthorBody {
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    #[schema(max_length = 10000)]
    pub bio: Option<String>,
}

impl TryFrom<NewAuthorBody> for NewAuthor {
    type Error = ApiError;

    fn try_from(body: NewAuthorBody) -> Result<Self, ApiError> {
        let (name, bio) = (
            AuthorName::parse(&body.name),
            AuthorBio::parse_optional(body.bio.as_deref()),
        )
            .all()?;
        Ok(NewAuthor { name, bio })
    }
}

/// Add an author
///
/// Adds an author to the catalogue. Admins only.
#[utoipa::path(operation_id = "create_author", tag = "authors", request_body = NewAuthorBody, security(("bearer" = [])),
    responses(
        (status = 201, body = AuthorView, description = "Created"), AdminOnly, JsonBody, NeedsToken, Invalid))]
#[post("/authors")]
pub async fn create(ctx: Ctx, Admin(admin): Admin, body: Json<NewAuthorBody>) -> Reply {
    let new = NewAuthor::try_from(body.into_inner())?;
    let author = ctx
        .publish(authors::create(ctx.primary_pool(), (&admin).into(), new).await?)
        .await;
    created(format!("/authors/{}", author.id), AuthorView::from(author))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorPatch {
    #[schema(min_length = 1, max_length = 255)]
    pub name: Option<String>,
    /// `null` clears the biography.
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<String>, max_length = 10000)]
    pub bio: Option<Option<String>>,
}

impl TryFrom<AuthorPatch> for AuthorChanges {
    type Error = ApiError;

    fn try_from(body: AuthorPatch) -> Result<Self, ApiError> {
        let (name, bio) = (
            body.name.as_deref().map(AuthorName::parse).transpose(),
            body.bio.map(|b| AuthorBio::parse_optional(b.as_deref())).transpose(),
        )
            .all()?;
        Ok(AuthorChanges { name, bio })
    }
}

/// Edit an author
///
/// Changes an author's name or biography. Admins only.
#[utoipa::path(operation_id = "update_author", tag = "authors", params(("id" = Uuid, Path)), request_body = AuthorPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, body = AuthorView, description = "Updated"), AdminOnly, NotFound, JsonBody, NeedsToken, Invalid))]
#[patch("/authors/{id}")]
pub async fn update(ctx: Ctx, Admin(admin): Admin, id: web::Path<Uuid>, body: Json<AuthorPatch>) -> Reply {
    let changes = AuthorChanges::try_from(body.into_inner())?;
    let author = ctx
        .publish(authors::update(ctx.primary_pool(), (&admin).into(), id.into_inner(), changes).await?)
        .await;
    Ok(HttpResponse::Ok().json(AuthorView::from(author)))
}

/// Delete an author
///
/// Soft-deletes an author together with their books. Admins only.
#[utoipa::path(operation_id = "delete_author", tag = "authors", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses(
        (status = 204, description = "Soft-deleted, with their books"), AdminOnly, NotFound, NeedsToken))]
#[delete("/authors/{id}")]
pub async fn delete(ctx: Ctx, Admin(admin): Admin, id: web::Path<Uuid>) -> Reply {
    ctx.publish(authors::delete(ctx.primary_pool(), (&admin).into(), *id).await?)
        .await;
    Ok(HttpResponse::NoContent().finish())
}
