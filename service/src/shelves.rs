//! A reader's shelf: which books they want to read, are reading, or have read.
//!
//! Listing embeds each book with its author in two statements: entries joined with
//! their book, then the authors of the whole page (`LoaderTrait::load_one`).

use entity::shelf_entry::ShelfStatus;
use entity::{author, book, shelf_entry};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel, LoaderTrait,
    QueryFilter, QuerySelect, Set,
};
use uuid::Uuid;

use crate::ServiceError;
use crate::database::{Actor, begin_write_as, begin_write_lazily_as};
use crate::pagination::{self, Cursor, Ordering, Page, PageRequest};
use crate::visibility::{first_read_live_book, live_book_ids};
use crate::written::Written;

#[derive(Debug, Clone, PartialEq)]
pub struct ShelfItem {
    pub entry: shelf_entry::Model,
    pub book: book::Model,
    pub author: author::Model,
}

/// The reader's shelf, most recently added first, optionally one status only.
pub async fn list(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    status: Option<ShelfStatus>,
    page: &PageRequest,
) -> Result<Page<ShelfItem>, ServiceError> {
    let mut query = shelf_entry::Entity::find()
        .filter(shelf_entry::Column::UserId.eq(user_id))
        .filter(shelf_entry::Column::BookId.in_subquery(live_book_ids()));
    if let Some(status) = status {
        query = query.filter(shelf_entry::Column::Status.eq(status));
    }
    let query = query.find_also_related(book::Entity);
    let order = Ordering::newest_first(shelf_entry::Column::AddedAt, shelf_entry::Column::BookId);
    let rows = order.apply(query, page)?.all(db).await?;
    let page = pagination::finish(rows, page, |(e, _)| Cursor::time(e.added_at, e.book_id));
    let rows: Vec<(shelf_entry::Model, book::Model)> = page
        .items
        .into_iter()
        .filter_map(|(entry, book)| book.map(|book| (entry, book)))
        .collect();
    let books: Vec<book::Model> = rows.iter().map(|(_, book)| book.clone()).collect();
    let authors = books.load_one(author::Entity, db).await?;
    let items = rows
        .into_iter()
        .zip(authors)
        .filter_map(|((entry, book), author)| author.map(|author| ShelfItem { entry, book, author }))
        .collect();
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

/// One shelf entry with its book and the book's author, in one statement.
async fn item<C: ConnectionTrait>(db: &C, user_id: Uuid, book_id: Uuid) -> Result<ShelfItem, ServiceError> {
    let (entry, book, author) = shelf_entry::Entity::find_by_id((user_id, book_id))
        .find_also_related(book::Entity)
        .and_also_related(author::Entity)
        .one(db)
        .await?
        .ok_or(ServiceError::NotFound("shelf entry"))?;
    Ok(ShelfItem {
        entry,
        book: book.ok_or(ServiceError::NotFound("book"))?,
        author: author.ok_or(ServiceError::NotFound("author"))?,
    })
}

/// Puts a live book on the shelf with `status`, or changes its status. Returns the
/// entry and whether it was newly added.
pub async fn put(
    db: &DatabaseConnection,
    actor: Actor,
    book_id: Uuid,
    status: ShelfStatus,
) -> Result<Written<(ShelfItem, bool)>, ServiceError> {
    let user_id = actor.id;
    let mut txn = begin_write_lazily_as(db, actor).await?;
    first_read_live_book(&mut txn, book_id).await?;
    // "Created" is decided by the insert itself: ON CONFLICT DO NOTHING inserts one
    // row or none, and of concurrent requests for a new entry exactly one inserts
    // (the others wait for it and then conflict). A read first, as this once did,
    // let two requests both see no row and both answer 201. An entry deleted between
    // the conflict and the lock is inserted again on the next turn.
    let created = loop {
        let entry = shelf_entry::ActiveModel {
            user_id: Set(user_id),
            book_id: Set(book_id),
            status: Set(status),
            ..Default::default()
        };
        let inserted = shelf_entry::Entity::insert(entry)
            .on_conflict(
                OnConflict::columns([shelf_entry::Column::UserId, shelf_entry::Column::BookId])
                    .do_nothing()
                    .to_owned(),
            )
            .exec_without_returning(&txn)
            .await?;
        if inserted == 1 {
            break true;
        }
        let existing = shelf_entry::Entity::find_by_id((user_id, book_id))
            .lock_exclusive()
            .one(&txn)
            .await?;
        if let Some(existing) = existing {
            if existing.status != status {
                let mut active = existing.into_active_model();
                active.status = Set(status);
                active.update(&txn).await?;
            }
            break false;
        }
    };
    let item = item(&txn, user_id, book_id).await?;
    // No cached read shows a shelf: nothing to record.
    Ok(txn.commit((item, created)).await?)
}

pub async fn remove(db: &DatabaseConnection, actor: Actor, book_id: Uuid) -> Result<Written<()>, ServiceError> {
    let txn = begin_write_as(db, Some(actor)).await?;
    let result = shelf_entry::Entity::delete_by_id((actor.id, book_id))
        .exec(&txn)
        .await?;
    if result.rows_affected == 0 {
        return Err(ServiceError::NotFound("shelf entry"));
    }
    Ok(txn.commit(()).await?)
}
