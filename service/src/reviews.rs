//! Reviews: a book's and a reader's reviews, each embedding the reviewer's public
//! profile and the book; written, edited and soft-deleted by their author (or an admin).
//!
//! A page costs three statements whatever its size: the reviews joined with their
//! book, the reviewers' profiles for the whole page (`LoaderTrait::load_one`), and a
//! check that the book or reader being listed exists (so an unknown id is a 404 and
//! not an empty list).

use entity::user::Role;
use entity::{book, profile, review, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel, LoaderTrait,
    PaginatorTrait, QueryFilter, Select, Set,
};
use uuid::Uuid;

use crate::ServiceError;
use crate::accounts::CurrentUser;
use crate::database::{begin_write_as, begin_write_lazily_as};
use crate::error::UniqueKey;
use crate::input::{FieldError, text_value};
use crate::pagination::{self, Cursor, Ordering, Page, PageRequest};
use crate::visibility::{first_read_live_book, require_live_book, review_is_live, soft_delete};
use crate::written::{Tag, Written};

#[derive(Debug, Clone, PartialEq)]
pub struct ReviewItem {
    pub review: review::Model,
    pub reviewer: Option<profile::Model>,
    pub book: book::Model,
}

/// A rating: a whole number of stars from 1 to 5.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rating(i16);

impl Rating {
    pub fn parse(stars: i64) -> Result<Self, FieldError> {
        if (1..=5).contains(&stars) {
            Ok(Self(stars as i16))
        } else {
            Err(FieldError::new("rating", "must be a whole number from 1 to 5"))
        }
    }

    pub fn get(self) -> i16 {
        self.0
    }
}

text_value!(
    /// A review's optional title: up to 200 characters, one line.
    ReviewTitle, field: "title", chars: 1..=200, multiline: false
);

text_value!(
    /// A review's text: 1 to 20,000 characters, newlines allowed.
    ReviewBody, field: "body", chars: 1..=20_000, multiline: true
);

pub struct NewReview {
    pub rating: Rating,
    pub title: Option<ReviewTitle>,
    pub body: ReviewBody,
}

#[derive(Debug, Default)]
pub struct ReviewChanges {
    pub rating: Option<Rating>,
    pub title: Option<Option<ReviewTitle>>,
    pub body: Option<ReviewBody>,
}

fn live_reviews() -> Select<review::Entity> {
    review::Entity::find().filter(review_is_live(review::Entity))
}

async fn page_of(
    db: &impl ConnectionTrait,
    query: Select<review::Entity>,
    page: &PageRequest,
) -> Result<Page<ReviewItem>, ServiceError> {
    let query = query.find_also_related(book::Entity);
    let order = Ordering::newest_first(review::Column::CreatedAt, review::Column::Id);
    let rows = order.apply(query, page)?.all(db).await?;
    let page = pagination::finish(rows, page, |(r, _)| Cursor::time(r.created_at, r.id));
    let items = with_reviewers(db, page.items).await?;
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

/// Attaches the reviewers' public profiles for a whole page in one statement.
async fn with_reviewers(
    db: &impl ConnectionTrait,
    rows: Vec<(review::Model, Option<book::Model>)>,
) -> Result<Vec<ReviewItem>, ServiceError> {
    let reviews: Vec<review::Model> = rows.iter().map(|(r, _)| r.clone()).collect();
    let reviewers = reviews.load_one(profile::Entity, db).await?;
    Ok(rows
        .into_iter()
        .zip(reviewers)
        .filter_map(|((review, book), reviewer)| book.map(|book| ReviewItem { review, reviewer, book }))
        .collect())
}

/// The reviews `select` picks, with book and reviewer: two statements.
pub(crate) async fn items(
    db: &impl ConnectionTrait,
    select: Select<review::Entity>,
) -> Result<Vec<ReviewItem>, ServiceError> {
    with_reviewers(db, select.find_also_related(book::Entity).all(db).await?).await
}

/// A book's live reviews, newest first.
pub async fn list_for_book(
    db: &impl ConnectionTrait,
    book_id: Uuid,
    page: &PageRequest,
) -> Result<Page<ReviewItem>, ServiceError> {
    require_live_book(db, book_id).await?;
    page_of(db, live_reviews().filter(review::Column::BookId.eq(book_id)), page).await
}

/// A reader's live reviews, newest first (served by the (user_id, created_at DESC) index).
pub async fn list_for_user(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    page: &PageRequest,
) -> Result<Page<ReviewItem>, ServiceError> {
    let live = user::Entity::find_by_id(user_id)
        .filter(user::Column::DeletedAt.is_null())
        .count(db)
        .await?;
    if live == 0 {
        return Err(ServiceError::NotFound("user"));
    }
    page_of(db, live_reviews().filter(review::Column::UserId.eq(user_id)), page).await
}

/// One live review with its book and reviewer, in one statement.
async fn item<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<ReviewItem, ServiceError> {
    let (review, book, reviewer) = live_reviews()
        .filter(review::Column::Id.eq(id))
        .find_also_related(book::Entity)
        .find_also_related(profile::Entity)
        .one(db)
        .await?
        .ok_or(ServiceError::NotFound("review"))?;
    let book = book.ok_or(ServiceError::NotFound("book"))?;
    Ok(ReviewItem { review, reviewer, book })
}

pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<ReviewItem, ServiceError> {
    item(db, id).await
}

/// One live review per reader and book.
const ONE_REVIEW_PER_BOOK: &[UniqueKey] = &[UniqueKey::new(
    "uq_reviews_live_user_book",
    "reviews.user_id, reviews.book_id",
    "you have already reviewed this book",
)];

/// One live review per reader and book: a second is a conflict (the partial unique
/// index says so even under concurrent requests). The book's check, the insert and
/// the read-back are one transaction: a book deleted meanwhile either waits for the
/// review or refuses it, never leaves a committed review behind a 404.
pub async fn create(
    db: &DatabaseConnection,
    author: &CurrentUser,
    book_id: Uuid,
    new: NewReview,
) -> Result<Written<ReviewItem>, ServiceError> {
    let mut txn = begin_write_lazily_as(db, author.into()).await?;
    first_read_live_book(&mut txn, book_id).await?;
    let review = review::ActiveModel {
        user_id: Set(author.id),
        book_id: Set(book_id),
        rating: Set(new.rating.get()),
        title: Set(new.title.map(ReviewTitle::into_string)),
        body: Set(new.body.into_string()),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(ServiceError::conflict_on(ONE_REVIEW_PER_BOOK))?;
    let created = item(&txn, review.id).await?;
    txn.changed([Tag::Book(book_id)]);
    Ok(txn.commit(created).await?)
}

/// Inside a write transaction: the live review `id`, if `actor` may change it. Not
/// locked: `FOR UPDATE` would need the row to pass the update policy of row-level
/// security, hiding another reader's review (a 404) instead of refusing (a 403).
/// The write that follows re-checks that the review is still live instead.
async fn editable<C: ConnectionTrait>(txn: &C, actor: &CurrentUser, id: Uuid) -> Result<review::Model, ServiceError> {
    let review = live_reviews()
        .filter(review::Column::Id.eq(id))
        .one(txn)
        .await?
        .ok_or(ServiceError::NotFound("review"))?;
    if review.user_id != actor.id && actor.role != Role::Admin {
        return Err(ServiceError::Forbidden(
            "only the review's author or an admin may change it",
        ));
    }
    Ok(review)
}

pub async fn update(
    db: &DatabaseConnection,
    actor: &CurrentUser,
    id: Uuid,
    changes: ReviewChanges,
) -> Result<Written<ReviewItem>, ServiceError> {
    let mut txn = begin_write_as(db, Some(actor.into())).await?;
    let review = editable(&txn, actor, id).await?;
    txn.changed([Tag::Book(review.book_id)]);
    let mut active = review.into_active_model();
    if let Some(rating) = changes.rating {
        active.rating = Set(rating.get());
    }
    if let Some(title) = changes.title {
        active.title = Set(title.map(ReviewTitle::into_string));
    }
    if let Some(body) = changes.body {
        active.body = Set(body.into_string());
    }
    if active.is_changed() {
        let written = review::Entity::update_many()
            .set(active)
            .filter(review::Column::Id.eq(id))
            .filter(review::Column::DeletedAt.is_null())
            .exec(&txn)
            .await?;
        if written.rows_affected == 0 {
            return Err(ServiceError::NotFound("review"));
        }
    }
    let updated = item(&txn, id).await?;
    Ok(txn.commit(updated).await?)
}

pub async fn delete(db: &DatabaseConnection, actor: &CurrentUser, id: Uuid) -> Result<Written<()>, ServiceError> {
    let mut txn = begin_write_as(db, Some(actor.into())).await?;
    let review = editable(&txn, actor, id).await?;
    txn.changed([Tag::Book(review.book_id)]);
    soft_delete(&txn, (review::Column::Id, review::Column::DeletedAt), id, "review").await?;
    Ok(txn.commit(()).await?)
}
