//! Authors: listed by name with prefix search, read with their books, curated by admins.

use entity::{author, book};
use sea_orm::sea_query::{Expr, Func, LikeExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, ExprTrait, IntoActiveModel, Order,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::ServiceError;
use crate::database::{Actor, WriteTxn, begin_write_as};
use crate::input::text_value;
use crate::pagination::{self, Cursor, CursorKey, KeyKind, Ordering, Page, PageRequest};
use crate::visibility::{live_book_ids, soft_delete};
use crate::written::{Tag, Written};

text_value!(
    /// An author's name: 1 to 255 characters, one line.
    AuthorName, field: "name", chars: 1..=255, multiline: false
);

text_value!(
    /// An author's biography: up to 10,000 characters, newlines allowed.
    AuthorBio, field: "bio", chars: 1..=10_000, multiline: true
);

#[derive(Debug, Clone)]
pub struct NewAuthor {
    pub name: AuthorName,
    pub bio: Option<AuthorBio>,
}

/// Changes to an author; `None` leaves a field alone, `bio: Some(None)` clears it.
#[derive(Debug, Default)]
pub struct AuthorChanges {
    pub name: Option<AuthorName>,
    pub bio: Option<Option<AuthorBio>>,
}

fn by_name() -> Ordering {
    Ordering::new(
        author::Column::Name.into_expr(),
        KeyKind::Text,
        author::Column::Id,
        Order::Asc,
    )
}

fn cursor(a: &author::Model) -> Cursor {
    Cursor {
        key: CursorKey::Text(a.name.clone()),
        id: a.id,
    }
}

/// Live authors by name; `prefix` matches the start of the name, ignoring case.
pub async fn list(
    db: &impl ConnectionTrait,
    prefix: Option<&str>,
    page: &PageRequest,
) -> Result<Page<author::Model>, ServiceError> {
    let mut query = author::Entity::find().filter(author::Column::DeletedAt.is_null());
    if let Some(prefix) = prefix.map(str::trim).filter(|p| !p.is_empty()) {
        // LIKE metacharacters in the input are escaped: "50%" matches "50%", not "50 anything".
        let escaped = prefix
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = LikeExpr::new(format!("{escaped}%")).escape('\\');
        query = query.filter(Expr::expr(Func::lower(author::Column::Name.into_expr())).like(pattern));
    }
    let rows = by_name().apply(query, page)?.all(db).await?;
    Ok(pagination::finish(rows, page, cursor))
}

async fn find_live<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<author::Model, ServiceError> {
    author::Entity::find_by_id(id)
        .filter(author::Column::DeletedAt.is_null())
        .one(db)
        .await?
        .ok_or(ServiceError::NotFound("author"))
}

/// An author with their live books, by title. Two statements.
pub async fn get(db: &impl ConnectionTrait, id: Uuid) -> Result<(author::Model, Vec<book::Model>), ServiceError> {
    let author = find_live(db, id).await?;
    let books = book::Entity::find()
        .filter(book::Column::AuthorId.eq(id))
        .filter(book::Column::Id.in_subquery(live_book_ids()))
        .order_by_asc(book::Column::Title)
        .order_by_asc(book::Column::Id)
        .all(db)
        .await?;
    Ok((author, books))
}

pub async fn create(
    db: &DatabaseConnection,
    actor: Actor,
    new: NewAuthor,
) -> Result<Written<author::Model>, ServiceError> {
    let mut txn = begin_write_as(db, Some(actor)).await?;
    let model = author::ActiveModel {
        name: Set(new.name.into_string()),
        bio: Set(new.bio.map(AuthorBio::into_string)),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.changed([Tag::Author(model.id)]);
    Ok(txn.commit(model).await?)
}

/// What a change to an author shows in: their detail, and every book naming them.
async fn author_changed(txn: &mut WriteTxn, id: Uuid) -> Result<(), ServiceError> {
    let books: Vec<Uuid> = book::Entity::find()
        .select_only()
        .column(book::Column::Id)
        .filter(book::Column::AuthorId.eq(id))
        .into_tuple()
        .all(&*txn)
        .await?;
    txn.changed(Tag::and_books(Tag::Author(id), books));
    Ok(())
}

pub async fn update(
    db: &DatabaseConnection,
    actor: Actor,
    id: Uuid,
    changes: AuthorChanges,
) -> Result<Written<author::Model>, ServiceError> {
    let mut txn = begin_write_as(db, Some(actor)).await?;
    let existing = find_live(&txn, id).await?;
    let mut active = existing.clone().into_active_model();
    if let Some(name) = changes.name {
        active.name = Set(name.into_string());
    }
    if let Some(bio) = changes.bio {
        active.bio = Set(bio.map(AuthorBio::into_string));
    }
    if !active.is_changed() {
        return Ok(txn.commit(existing).await?);
    }
    let updated = active.update(&txn).await?;
    author_changed(&mut txn, id).await?;
    Ok(txn.commit(updated).await?)
}

/// Soft delete: the author and, through [`live_book_ids`], their books disappear.
pub async fn delete(db: &DatabaseConnection, actor: Actor, id: Uuid) -> Result<Written<()>, ServiceError> {
    let mut txn = begin_write_as(db, Some(actor)).await?;
    soft_delete(&txn, (author::Column::Id, author::Column::DeletedAt), id, "author").await?;
    author_changed(&mut txn, id).await?;
    Ok(txn.commit(()).await?)
}
