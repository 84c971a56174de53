//! Reviews: a book's and a reader's lists; write (members), edit and delete (the
//! author or an admin).

use actix_web::{HttpResponse, delete, get, patch, post, web};
use serde::Deserialize;
use service::input::AllFields;
use service::reviews::{self, NewReview, Rating, ReviewBody, ReviewChanges, ReviewTitle};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::auth::Member;
use crate::context::Ctx;
use crate::extract::{ConsistencyHeader, Json, Page, PageQuery, ReplicaRead};
use crate::problem::responses::{BadConsistency, BadQuery, BadToken, Invalid, JsonBody, NeedsToken, NotFound};
use crate::problem::{ApiError, Problem, Reply};
use crate::routes::{created, patch_field};
use crate::views::{ReviewPage, ReviewView};

routes!(list_for_book, create, list_for_user, get, update, delete);

/// The book (or reader) exists, the page joined with books, the page's reviewers.
pub const LIST_STATEMENTS: u32 = 3;
/// The review joined with its book, the reviewer's profile.
pub const GET_STATEMENTS: u32 = 2;

/// List a book's reviews
///
/// The live reviews of one live book, newest first, a page at a time.
#[utoipa::path(operation_id = "list_book_reviews", tag = "reviews", params(("id" = Uuid, Path), PageQuery, ConsistencyHeader),
    responses(
        (status = 200, body = ReviewPage, description = "The book's reviews, newest first"), NotFound, BadQuery, BadToken))]
#[get("/books/{id}/reviews")]
pub async fn list_for_book(read: ReplicaRead, id: web::Path<Uuid>, Page(page): Page) -> Reply {
    let reviews = read
        .run(async |db| reviews::list_for_book(db, *id, &page).await)
        .await?;
    Ok(HttpResponse::Ok().json(ReviewPage::from(reviews)))
}

/// List a reader's reviews
///
/// The live reviews one reader wrote, newest first, a page at a time.
#[utoipa::path(operation_id = "list_user_reviews", tag = "reviews", params(("id" = Uuid, Path), PageQuery, ConsistencyHeader),
    responses(
        (status = 200, body = ReviewPage, description = "The reader's reviews, newest first"), NotFound, BadQuery, BadToken))]
#[get("/users/{id}/reviews")]
pub async fn list_for_user(read: ReplicaRead, id: web::Path<Uuid>, Page(page): Page) -> Reply {
    let reviews = read
        .run(async |db| reviews::list_for_user(db, *id, &page).await)
        .await?;
    Ok(HttpResponse::Ok().json(ReviewPage::from(reviews)))
}

/// Get a review
///
/// One live review of a live book.
#[utoipa::path(operation_id = "get_review", tag = "reviews", params(("id" = Uuid, Path), ConsistencyHeader),
    responses(
        (status = 200, body = ReviewView, description = "The review"), NotFound, BadConsistency, BadToken))]
#[get("/reviews/{id}")]
pub async fn get(read: ReplicaRead, id: web::Path<Uuid>) -> Reply {
    Ok(HttpResponse::Ok().json(ReviewView::from(
        read.run(async |db| reviews::get(db, *id).await).await?,
    )))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReviewBody {
    /// 1 to 5.
    #[schema(minimum = 1, maximum = 5)]
    pub rating: i64,
    #[schema(max_length = 200)]
    pub title: Option<String>,
    #[schema(min_length = 1, max_length = 20000)]
    pub body: String,
}

impl TryFrom<NewReviewBody> for NewReview {
    type Error = ApiError;

    fn try_from(body: NewReviewBody) -> Result<Self, ApiError> {
        let (rating, title, body) = (
            Rating::parse(body.rating),
            ReviewTitle::parse_optional(body.title.as_deref()),
            ReviewBody::parse(&body.body),
        )
            .all()?;
        Ok(NewReview { rating, title, body })
    }
}

/// Review a book
///
/// Adds your review of a book; one review per reader and book.
#[utoipa::path(operation_id = "create_review", tag = "reviews", params(("id" = Uuid, Path)),
    request_body = NewReviewBody, security(("bearer" = [])),
    responses(
        (status = 201, body = ReviewView, description = "Created"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Guest account"), NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Already reviewed"), JsonBody, NeedsToken, Invalid))]
#[post("/books/{id}/reviews")]
pub async fn create(ctx: Ctx, Member(user): Member, id: web::Path<Uuid>, body: Json<NewReviewBody>) -> Reply {
    let new = NewReview::try_from(body.into_inner())?;
    let review = ctx
        .publish(reviews::create(ctx.primary_pool(), &user, id.into_inner(), new).await?)
        .await;
    created(format!("/reviews/{}", review.review.id), ReviewView::from(review))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewPatch {
    #[schema(minimum = 1, maximum = 5)]
    pub rating: Option<i64>,
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<String>, max_length = 200)]
    pub title: Option<Option<String>>,
    #[schema(min_length = 1, max_length = 20000)]
    pub body: Option<String>,
}

impl TryFrom<ReviewPatch> for ReviewChanges {
    type Error = ApiError;

    fn try_from(patch: ReviewPatch) -> Result<Self, ApiError> {
        let (rating, title, body) = (
            patch.rating.map(Rating::parse).transpose(),
            patch
                .title
                .map(|t| ReviewTitle::parse_optional(t.as_deref()))
                .transpose(),
            patch.body.as_deref().map(ReviewBody::parse).transpose(),
        )
            .all()?;
        Ok(ReviewChanges { rating, title, body })
    }
}

/// Edit a review
///
/// Changes a review's rating, title or text: its author or an admin.
#[utoipa::path(operation_id = "update_review", tag = "reviews", params(("id" = Uuid, Path)), request_body = ReviewPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, body = ReviewView, description = "Updated"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not the author or an admin"), NotFound, JsonBody, NeedsToken, Invalid))]
#[patch("/reviews/{id}")]
pub async fn update(ctx: Ctx, Member(user): Member, id: web::Path<Uuid>, body: Json<ReviewPatch>) -> Reply {
    let changes = ReviewChanges::try_from(body.into_inner())?;
    let review = ctx
        .publish(reviews::update(ctx.primary_pool(), &user, id.into_inner(), changes).await?)
        .await;
    Ok(HttpResponse::Ok().json(ReviewView::from(review)))
}

/// Delete a review
///
/// Soft-deletes a review: its author or an admin.
#[utoipa::path(operation_id = "delete_review", tag = "reviews", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses(
        (status = 204, description = "Soft-deleted"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Not the author or an admin"), NotFound, NeedsToken))]
#[delete("/reviews/{id}")]
pub async fn delete(ctx: Ctx, Member(user): Member, id: web::Path<Uuid>) -> Reply {
    ctx.publish(reviews::delete(ctx.primary_pool(), &user, *id).await?)
        .await;
    Ok(HttpResponse::NoContent().finish())
}
