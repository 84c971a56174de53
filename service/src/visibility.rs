//! What "live" means, written once. A soft-deleted row is invisible to every normal
//! list, embed and count; so is a book whose author is deleted, and anything by a
//! deleted account. Queries filter with these helpers rather than each re-stating the
//! rule, so no query can forget half of it; search's full-text SQL is built with them
//! too. One rule of its own is left, by design: the reader statistics count a live
//! reader's non-deleted reviews, as migration 13's view defines them (migrations
//! depend on no crate of ours), and `stats.rs` mirrors that view for SQLite.
//!
//! Filters on another table's rows (a review's book and author) are correlated
//! `EXISTS`, one primary-key probe per row on both backends. `user_id IN (SELECT id
//! FROM users WHERE deleted_at IS NULL)` and its book twin were replaced: SQLite ran
//! them by scanning every account (about 3 ms a call with 5,000 readers), or every book
//! and author, for every query; `sqlite_plans.rs` asserts the probes.

use entity::{author, book, review, user};
use sea_orm::sea_query::{Condition, Expr, IntoColumnRef, IntoIden, Query, SelectStatement};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, FromQueryResult, PaginatorTrait, QueryFilter, QuerySelect,
    QueryTrait,
};
use uuid::Uuid;

use crate::ServiceError;
use crate::database::WriteTxn;

/// Ids of books that are not deleted and whose author is not deleted.
pub fn live_book_ids() -> SelectStatement {
    Query::select()
        .column((book::Entity, book::Column::Id))
        .from(book::Entity)
        .inner_join(
            author::Entity,
            book::Column::AuthorId
                .into_expr()
                .equals((author::Entity, author::Column::Id)),
        )
        .and_where(book::Column::DeletedAt.is_null())
        .and_where(author::Column::DeletedAt.is_null())
        .to_owned()
}

/// The row's `book_id` column names a live book (as [`live_book_ids`] defines it), as
/// a correlated `EXISTS`: a probe of that one book and its author per row.
pub fn by_live_book(book_id: impl IntoColumnRef) -> Expr {
    Expr::exists(
        live_book_ids()
            .and_where(Expr::col((book::Entity, book::Column::Id)).equals(book_id))
            .to_owned(),
    )
}

/// The book row `book` (a table or its alias) is live: not deleted, and its author
/// not deleted (a probe of the author by primary key).
pub fn book_is_live(book: impl IntoIden) -> Condition {
    let book = book.into_iden();
    Condition::all()
        .add(Expr::col((book.clone(), book::Column::DeletedAt)).is_null())
        .add(by_live_author((book, book::Column::AuthorId)))
}

/// The same rule for a query that has joined the book's author already.
pub fn book_and_its_author_are_live() -> Condition {
    Condition::all()
        .add(Expr::col((book::Entity, book::Column::DeletedAt)).is_null())
        .add(Expr::col((author::Entity, author::Column::DeletedAt)).is_null())
}

/// The review row `review` is not deleted and is by an account that is not. What a
/// book's own rating counts: the book itself is known to be live there.
pub fn review_by_live_reader(review: impl IntoIden) -> Condition {
    let review = review.into_iden();
    Condition::all()
        .add(Expr::col((review.clone(), review::Column::DeletedAt)).is_null())
        .add(by_live_user((review, review::Column::UserId)))
}

/// The review row `review` is live: not deleted, by a live reader, of a live book.
pub fn review_is_live(review: impl IntoIden) -> Condition {
    let review = review.into_iden();
    review_by_live_reader(review.clone()).add(by_live_book((review, review::Column::BookId)))
}

/// The row's `author_id` column names an author that is not deleted.
pub fn by_live_author(author_id: impl IntoColumnRef) -> Expr {
    names_a_live(author::Column::Id, author::Column::DeletedAt, author_id)
}

/// The row's `user_id` column names an account that is not deleted.
pub fn by_live_user(user_id: impl IntoColumnRef) -> Expr {
    names_a_live(user::Column::Id, user::Column::DeletedAt, user_id)
}

/// `EXISTS` a row of `id`'s table whose `id` is `reference` and `deleted_at` is null.
fn names_a_live<C>(id: C, deleted_at: C, reference: impl IntoColumnRef) -> Expr
where
    C: ColumnTrait,
    C::EntityName: Default,
{
    let table = C::EntityName::default();
    Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(table)
            .and_where(Expr::col((table, id)).equals(reference))
            .and_where(Expr::col((table, deleted_at)).is_null())
            .to_owned(),
    )
}

/// Soft-deletes the live row `value` of `id`'s table (`deleted_at` becomes now) and
/// returns it as it is now; `NotFound(what)` when there was no live row.
pub async fn soft_delete<C>(
    db: &impl ConnectionTrait,
    (id, deleted_at): (C, C),
    value: Uuid,
    what: &'static str,
) -> Result<<C::EntityName as EntityTrait>::Model, ServiceError>
where
    C: ColumnTrait,
    C::EntityName: EntityTrait<Column = C>,
{
    let mut deleted = C::EntityName::update_many()
        .col_expr(deleted_at, Expr::value(chrono::Utc::now()))
        .filter(id.eq(value))
        .filter(deleted_at.is_null())
        .exec_with_returning(db)
        .await?;
    deleted.pop().ok_or(ServiceError::NotFound(what))
}

/// Inside a write transaction: `NotFound("book")` unless `id` is a live book, and the
/// book row is then share-locked on PostgreSQL until the transaction ends, so a
/// concurrent soft-delete of it waits for this write instead of slipping between the
/// check and the write (SQLite's `BEGIN IMMEDIATE` already serialises writes). The
/// book's own `deleted_at` is tested on the locked row itself, which PostgreSQL
/// re-checks after waiting for a delete in flight; its author's is a probe.
///
/// It is the first read of a write begun with `begin_write_lazily_as`: on PostgreSQL
/// the same statement sets the write's actor (`WriteTxn::first_read`), one round trip
/// instead of two.
pub async fn first_read_live_book(txn: &mut WriteTxn, id: Uuid) -> Result<(), ServiceError> {
    #[derive(FromQueryResult)]
    struct Found {
        #[allow(dead_code)]
        id: Uuid,
    }
    let select = book::Entity::find_by_id(id)
        .filter(book_is_live(book::Entity))
        .lock_shared()
        .select_only()
        .column(book::Column::Id)
        .into_query();
    if txn.first_read::<Found>(select).await?.is_empty() {
        return Err(ServiceError::NotFound("book"));
    }
    Ok(())
}

/// `NotFound("book")` unless `id` is a live book.
pub async fn require_live_book<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<(), ServiceError> {
    let found = book::Entity::find()
        .filter(book::Column::Id.eq(id))
        .filter(book::Column::Id.in_subquery(live_book_ids()))
        .count(db)
        .await?;
    if found == 0 {
        return Err(ServiceError::NotFound("book"));
    }
    Ok(())
}
