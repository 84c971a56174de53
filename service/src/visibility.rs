//! What "live" means, written once. A soft-deleted row is invisible to every normal
//! list, embed and count; so is a book whose author is deleted, and anything by a
//! deleted account. Queries filter with these subqueries (`id IN (SELECT …)`) rather
//! than each re-stating the rule, so no query can forget half of it.

use entity::{author, book, user};
use sea_orm::sea_query::{Query, SelectStatement};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, ExprTrait, PaginatorTrait, QueryFilter};
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

/// Ids of accounts that are not deleted.
pub fn live_user_ids() -> SelectStatement {
    Query::select()
        .column(user::Column::Id)
        .from(user::Entity)
        .and_where(user::Column::DeletedAt.is_null())
        .to_owned()
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
