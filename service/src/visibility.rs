//! What "live" means, written once. A soft-deleted row is invisible to every normal
//! list, embed and count; so is a book whose author is deleted, and anything by a
//! deleted account. Queries filter with these helpers rather than each re-stating the
//! rule, so no query can forget half of it.
//!
//! Filters on another table's rows (a review's book and author) are correlated
//! `EXISTS`, one primary-key probe per row on both backends. `user_id IN (SELECT id
//! FROM users WHERE deleted_at IS NULL)` and its book twin were replaced: SQLite ran
//! them by scanning every account (about 3 ms a call with 5,000 readers), or every book
//! and author, for every query; `sqlite_plans.rs` asserts the probes.

use entity::{author, book, user};
use sea_orm::sea_query::{Expr, IntoColumnRef, Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, PaginatorTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::ServiceError;

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

/// The row's `user_id` column names an account that is not deleted.
pub fn by_live_user(user_id: impl IntoColumnRef) -> Expr {
    Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(user::Entity)
            .and_where(Expr::col((user::Entity, user::Column::Id)).equals(user_id))
            .and_where(Expr::col((user::Entity, user::Column::DeletedAt)).is_null())
            .to_owned(),
    )
}

/// Inside a write transaction: `NotFound("book")` unless `id` is a live book, and the
/// book row is then share-locked on PostgreSQL until the transaction ends, so a
/// concurrent soft-delete of it waits for this write instead of slipping between the
/// check and the write (SQLite's `BEGIN IMMEDIATE` already serialises writes). The
/// book's own `deleted_at` is tested on the locked row itself, which PostgreSQL
/// re-checks after waiting for a delete in flight; its author's is a probe.
pub async fn lock_live_book<C: ConnectionTrait>(txn: &C, id: Uuid) -> Result<(), ServiceError> {
    let author_live = Expr::exists(
        Query::select()
            .expr(Expr::val(1))
            .from(author::Entity)
            .and_where(Expr::col((author::Entity, author::Column::Id)).equals((book::Entity, book::Column::AuthorId)))
            .and_where(Expr::col((author::Entity, author::Column::DeletedAt)).is_null())
            .to_owned(),
    );
    book::Entity::find_by_id(id)
        .filter(book::Column::DeletedAt.is_null())
        .filter(author_live)
        .lock_shared()
        .one(txn)
        .await?
        .ok_or(ServiceError::NotFound("book"))?;
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
