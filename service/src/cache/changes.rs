//! What each kind of write changes in the cache: the one table of indirect effects.
//!
//! A handler names what it wrote, after the commit; this module asks the primary which
//! cached reads show it. Asking is one indexed query per change, paid by writes, which
//! are rare here; the alternative, tagging each book entry with its author and
//! categories, would need those ids before the load that discovers them, and a stamp
//! read after the load reopens the race the stamps exist to close.

use entity::{book, book_category, review};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use super::Tag;
use crate::ServiceError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A book's row or its categories: the book, and its author's list of books.
    Book(Uuid),
    /// A book left this author (moved to another): the author's list of books.
    AuthorsBooks(Uuid),
    /// An author's row (name, bio, deletion): the author, and every book showing them.
    Author(Uuid),
    /// A category created, renamed or moved: the tree, and the books filed under it.
    Category(Uuid),
    /// A category deleted: the tree, and the books that were filed under it (read
    /// before the delete, which takes the links with it).
    CategoryDeleted { books: Vec<Uuid> },
    /// A review written, edited or deleted: its book's rating.
    Review(Uuid),
    /// A reader's display name or bio.
    Profile(Uuid),
    /// An account deleted or restored: its profile, and the rating of every book it
    /// reviewed (reviews by deleted accounts do not count).
    Account(Uuid),
    /// The reader statistics were recomputed.
    Stats,
}

impl Change {
    pub(super) async fn tags(self, db: &DatabaseConnection) -> Result<Vec<Tag>, ServiceError> {
        Ok(match self {
            Change::Book(id) => std::iter::once(Tag::Book(id))
                .chain(author_of_book(db, id).await?.map(Tag::Author))
                .collect(),
            Change::AuthorsBooks(id) => vec![Tag::Author(id)],
            Change::Author(id) => {
                let books = book::Entity::find()
                    .select_only()
                    .column(book::Column::Id)
                    .filter(book::Column::AuthorId.eq(id))
                    .into_tuple::<Uuid>()
                    .all(db)
                    .await?;
                and_books(Tag::Author(id), books)
            }
            Change::Category(id) => and_books(Tag::Categories, books_in_category(db, id).await?),
            Change::CategoryDeleted { books } => and_books(Tag::Categories, books),
            Change::Review(id) => review::Entity::find_by_id(id)
                .select_only()
                .column(review::Column::BookId)
                .into_tuple::<Uuid>()
                .one(db)
                .await?
                .map(Tag::Book)
                .into_iter()
                .collect(),
            Change::Profile(id) => vec![Tag::User(id)],
            Change::Account(id) => {
                let reviewed = review::Entity::find()
                    .select_only()
                    .column(review::Column::BookId)
                    .distinct()
                    .filter(review::Column::UserId.eq(id))
                    .into_tuple::<Uuid>()
                    .all(db)
                    .await?;
                and_books(Tag::User(id), reviewed)
            }
            Change::Stats => vec![Tag::Stats],
        })
    }
}

fn and_books(first: Tag, books: Vec<Uuid>) -> Vec<Tag> {
    std::iter::once(first).chain(books.into_iter().map(Tag::Book)).collect()
}

/// The books filed under a category, for [`Change::CategoryDeleted`].
pub async fn books_in_category(db: &DatabaseConnection, id: Uuid) -> Result<Vec<Uuid>, ServiceError> {
    Ok(book_category::Entity::find()
        .select_only()
        .column(book_category::Column::BookId)
        .filter(book_category::Column::CategoryId.eq(id))
        .into_tuple::<Uuid>()
        .all(db)
        .await?)
}

/// The author a book is filed under now, for [`Change::AuthorsBooks`] before a move.
pub async fn author_of_book(db: &DatabaseConnection, id: Uuid) -> Result<Option<Uuid>, ServiceError> {
    Ok(book::Entity::find_by_id(id)
        .select_only()
        .column(book::Column::AuthorId)
        .into_tuple::<Uuid>()
        .one(db)
        .await?)
}
