//! Books: filtered, sorted, keyset-paginated lists that embed each book's author and
//! categories in a constant number of statements; a book's detail with its rating;
//! the admin's curation.
//!
//! Eager loading, never a query per row: the author is joined into the page query
//! (`find_also_related`, it is a belongs-to), and the categories of the whole page
//! come in one more statement through the junction table (`LoaderTrait::load_many`).
//! A page of 1 and a page of 100 cost the same two statements.

use chrono::{Datelike, Utc};
use entity::{author, book, book_category, category, review};
use sea_orm::sea_query::{Expr, Func, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel, JoinType,
    LoaderTrait, Order, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, RelationTrait, Select, Set,
};
use uuid::Uuid;

use crate::ServiceError;
use crate::categories;
use crate::database::{Actor, begin_write_as};
use crate::input::{FieldError, FieldErrors, distinct_ids, optional_text, text};
use crate::pagination::{self, Cursor, CursorKey, KeyKind, Ordering, Page, PageRequest};
use crate::visibility::by_live_user;

/// Sort key for books without a publication year: they sort after every real year.
const NO_YEAR: i64 = -32_768;
/// Most categories one book may be filed under.
pub const MAX_CATEGORIES: usize = 20;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum BookSort {
    /// Newest first (the default).
    #[default]
    Created,
    /// A to Z.
    Title,
    /// Most recent publication year first; books without a year last.
    Year,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct BookFilter {
    pub author_id: Option<Uuid>,
    /// Books filed under this category or anywhere below it.
    pub category_id: Option<Uuid>,
    pub year_from: Option<i32>,
    pub year_to: Option<i32>,
}

/// A book with what every listing shows alongside it.
#[derive(Debug, Clone, PartialEq)]
pub struct BookItem {
    pub book: book::Model,
    pub author: author::Model,
    pub categories: Vec<category::Model>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BookDetail {
    pub item: BookItem,
    /// Mean of the live reviews' ratings; `None` without reviews.
    pub average_rating: Option<f64>,
    pub review_count: i64,
}

/// Parsed ISBN: accepts ISBN-13 or ISBN-10 (converted to 13), with or without hyphens.
pub fn parse_isbn(raw: &str) -> Result<String, FieldError> {
    let digits: String = raw.chars().filter(|c| !matches!(c, '-' | ' ')).collect();
    let invalid = || FieldError::new("isbn", "must be a valid ISBN-10 or ISBN-13");
    let thirteen = match digits.len() {
        13 if digits.chars().all(|c| c.is_ascii_digit()) => digits,
        10 => {
            let (body, check) = digits.split_at(9);
            if !body.chars().all(|c| c.is_ascii_digit()) {
                return Err(invalid());
            }
            let sum: u32 = body
                .bytes()
                .enumerate()
                .map(|(i, b)| u32::from(b - b'0') * (10 - i as u32))
                .sum();
            let expected = (11 - sum % 11) % 11;
            let given = match check {
                "X" | "x" => 10,
                d => d.parse::<u32>().map_err(|_| invalid())?,
            };
            if given != expected {
                return Err(invalid());
            }
            let prefix = format!("978{body}");
            format!("{prefix}{}", isbn13_check_digit(&prefix))
        }
        _ => return Err(invalid()),
    };
    if isbn13_check_digit(&thirteen[..12]) != thirteen[12..].parse::<u32>().unwrap_or(99) {
        return Err(invalid());
    }
    Ok(thirteen)
}

fn isbn13_check_digit(first12: &str) -> u32 {
    let sum: u32 = first12
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    (10 - sum % 10) % 10
}

pub fn parse_year(year: i32) -> Result<i32, FieldError> {
    let latest = Utc::now().year() + 1;
    if !(-3000..=latest).contains(&year) {
        return Err(FieldError::new(
            "published_year",
            format!("must be between -3000 and {latest}"),
        ));
    }
    Ok(year)
}

pub struct NewBook {
    pub author_id: Uuid,
    pub title: String,
    pub description: Option<String>,
    pub isbn: Option<String>,
    pub published_year: Option<i32>,
    pub category_ids: Vec<Uuid>,
}

impl NewBook {
    pub fn parse(
        author_id: Uuid,
        title: &str,
        description: Option<&str>,
        isbn: Option<&str>,
        published_year: Option<i32>,
        category_ids: &[Uuid],
    ) -> Result<Self, ServiceError> {
        let mut errors = FieldErrors::default();
        let title = errors.take(text("title", title, 1, 500, false));
        let description = errors.take(optional_text("description", description, 20_000, true));
        let isbn = isbn
            .map(str::trim)
            .filter(|i| !i.is_empty())
            .and_then(|i| errors.take(parse_isbn(i)));
        let published_year = published_year.and_then(|y| errors.take(parse_year(y)));
        let category_ids = errors.take(distinct_ids("category_ids", category_ids, MAX_CATEGORIES));
        errors.into_result().map_err(ServiceError::InvalidFields)?;
        Ok(Self {
            author_id,
            title: title.unwrap_or_default(),
            description: description.flatten(),
            isbn,
            published_year,
            category_ids: category_ids.unwrap_or_default(),
        })
    }
}

/// Changes to a book. `None` leaves a field alone; `Some(None)` clears a nullable one.
#[derive(Debug, Default)]
pub struct BookChanges {
    pub author_id: Option<Uuid>,
    pub title: Option<String>,
    pub description: Option<Option<String>>,
    pub isbn: Option<Option<String>>,
    pub published_year: Option<Option<i32>>,
}

impl BookChanges {
    pub fn parse(
        author_id: Option<Uuid>,
        title: Option<&str>,
        description: Option<Option<&str>>,
        isbn: Option<Option<&str>>,
        published_year: Option<Option<i32>>,
    ) -> Result<Self, ServiceError> {
        let mut errors = FieldErrors::default();
        let changes = BookChanges {
            author_id,
            title: title.and_then(|t| errors.take(text("title", t, 1, 500, false))),
            description: description.map(|d| errors.take(optional_text("description", d, 20_000, true)).flatten()),
            isbn: isbn.map(|i| {
                i.map(str::trim)
                    .filter(|i| !i.is_empty())
                    .and_then(|i| errors.take(parse_isbn(i)))
            }),
            published_year: published_year.map(|y| y.and_then(|y| errors.take(parse_year(y)))),
        };
        errors.into_result().map_err(ServiceError::InvalidFields)?;
        Ok(changes)
    }
}

fn ordering(sort: BookSort) -> Ordering {
    match sort {
        BookSort::Created => Ordering::newest_first(book::Column::CreatedAt, book::Column::Id),
        BookSort::Title => Ordering::new(
            book::Column::Title.into_expr(),
            KeyKind::Text,
            book::Column::Id,
            Order::Asc,
        ),
        BookSort::Year => Ordering::new(
            Func::coalesce([book::Column::PublishedYear.into_expr(), Expr::val(NO_YEAR)]).into(),
            KeyKind::Int,
            book::Column::Id,
            Order::Desc,
        ),
    }
}

fn cursor(sort: BookSort, b: &book::Model) -> Cursor {
    let key = match sort {
        BookSort::Created => CursorKey::Time(b.created_at),
        BookSort::Title => CursorKey::Text(b.title.clone()),
        BookSort::Year => CursorKey::Int(b.published_year.map_or(NO_YEAR, i64::from)),
    };
    Cursor { key, id: b.id }
}

/// A book's categories in a stable order: by name, then id.
fn by_name(select: Select<category::Entity>) -> Select<category::Entity> {
    select
        .order_by_asc(category::Column::Name)
        .order_by_asc(category::Column::Id)
}

/// Attaches the categories of a whole page in one statement.
async fn with_categories<C: ConnectionTrait>(
    db: &C,
    rows: Vec<(book::Model, Option<author::Model>)>,
) -> Result<Vec<BookItem>, ServiceError> {
    let books: Vec<book::Model> = rows.iter().map(|(b, _)| b.clone()).collect();
    let categories = books.load_many(by_name(category::Entity::find()), db).await?;
    Ok(rows
        .into_iter()
        .zip(categories)
        .filter_map(|((book, author), categories)| {
            author.map(|author| BookItem {
                book,
                author,
                categories,
            })
        })
        .collect())
}

/// The books `select` picks, with author and categories: two statements.
pub(crate) async fn items(
    db: &DatabaseConnection,
    select: Select<book::Entity>,
) -> Result<Vec<BookItem>, ServiceError> {
    let rows = select.find_also_related(author::Entity).all(db).await?;
    with_categories(db, rows).await
}

/// Live books matching `filter`, in `sort` order. Two statements, plus one to
/// resolve a category's subtree when filtering by category.
pub async fn list(
    db: &DatabaseConnection,
    filter: BookFilter,
    sort: BookSort,
    page: &PageRequest,
) -> Result<Page<BookItem>, ServiceError> {
    let mut query = book::Entity::find()
        .find_also_related(author::Entity)
        .filter(book::Column::DeletedAt.is_null())
        .filter(author::Column::DeletedAt.is_null());
    if let Some(author_id) = filter.author_id {
        query = query.filter(book::Column::AuthorId.eq(author_id));
    }
    if let Some(from) = filter.year_from {
        query = query.filter(book::Column::PublishedYear.gte(from));
    }
    if let Some(to) = filter.year_to {
        query = query.filter(book::Column::PublishedYear.lte(to));
    }
    if let Some(category_id) = filter.category_id {
        let subtree = categories::subtree_ids(db, category_id).await?;
        query = query.filter(
            book::Column::Id.in_subquery(
                Query::select()
                    .column(book_category::Column::BookId)
                    .from(book_category::Entity)
                    .and_where(book_category::Column::CategoryId.is_in(subtree))
                    .to_owned(),
            ),
        );
    }
    let rows = ordering(sort).apply(query, page)?.all(db).await?;
    let page = pagination::finish(rows, page, |(b, _)| cursor(sort, b));
    Ok(Page {
        items: with_categories(db, page.items).await?,
        next_cursor: page.next_cursor,
    })
}

async fn find_live<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<(book::Model, author::Model), ServiceError> {
    let found = book::Entity::find_by_id(id)
        .find_also_related(author::Entity)
        .filter(book::Column::DeletedAt.is_null())
        .filter(author::Column::DeletedAt.is_null())
        .one(db)
        .await?;
    match found {
        Some((book, Some(author))) => Ok((book, author)),
        _ => Err(ServiceError::NotFound("book")),
    }
}

/// A live book with author, categories, average rating and review count. Three statements.
pub async fn get<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<BookDetail, ServiceError> {
    let (book, author) = find_live(db, id).await?;
    // Through the junction table alone: `find_related` also joins `books` back in.
    let categories = category::Entity::find()
        .join(JoinType::InnerJoin, book_category::Relation::Category.def().rev())
        .filter(book_category::Column::BookId.eq(book.id));
    let categories = by_name(categories).all(db).await?;
    let (average_rating, review_count) = review::Entity::find()
        .select_only()
        .expr(Expr::cust("CAST(AVG(reviews.rating) AS DOUBLE PRECISION)"))
        .expr(Expr::cust("COUNT(*)"))
        .filter(review::Column::BookId.eq(id))
        .filter(review::Column::DeletedAt.is_null())
        .filter(by_live_user((review::Entity, review::Column::UserId)))
        .into_tuple::<(Option<f64>, i64)>()
        .one(db)
        .await?
        .unwrap_or((None, 0));
    Ok(BookDetail {
        item: BookItem {
            book,
            author,
            categories,
        },
        average_rating,
        review_count,
    })
}

async fn require_live_author<C: ConnectionTrait>(db: &C, author_id: Uuid) -> Result<(), ServiceError> {
    let found = author::Entity::find_by_id(author_id)
        .filter(author::Column::DeletedAt.is_null())
        .count(db)
        .await?;
    if found == 0 {
        return Err(ServiceError::InvalidFields(vec![FieldError::new(
            "author_id",
            "no such author",
        )]));
    }
    Ok(())
}

async fn link_categories<C: ConnectionTrait>(db: &C, book_id: Uuid, category_ids: &[Uuid]) -> Result<(), ServiceError> {
    if category_ids.is_empty() {
        return Ok(());
    }
    let known = category::Entity::find()
        .filter(category::Column::Id.is_in(category_ids.to_vec()))
        .count(db)
        .await?;
    if known != category_ids.len() as u64 {
        return Err(ServiceError::InvalidFields(vec![FieldError::new(
            "category_ids",
            "lists a category that does not exist",
        )]));
    }
    let links = category_ids.iter().map(|&category_id| book_category::ActiveModel {
        book_id: Set(book_id),
        category_id: Set(category_id),
    });
    book_category::Entity::insert_many(links)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

fn isbn_conflict(err: sea_orm::DbErr) -> ServiceError {
    ServiceError::conflict_on_unique("a book with this ISBN already exists")(err)
}

/// Creates a book and its category links in one transaction.
pub async fn create(db: &DatabaseConnection, actor: Actor, new: NewBook) -> Result<BookDetail, ServiceError> {
    let txn = begin_write_as(db, Some(actor)).await?;
    require_live_author(&*txn, new.author_id).await?;
    let book = book::ActiveModel {
        author_id: Set(new.author_id),
        title: Set(new.title),
        description: Set(new.description),
        isbn: Set(new.isbn),
        published_year: Set(new.published_year),
        ..Default::default()
    }
    .insert(&*txn)
    .await
    .map_err(isbn_conflict)?;
    link_categories(&*txn, book.id, &new.category_ids).await?;
    let detail = get(&*txn, book.id).await?;
    txn.commit().await?;
    Ok(detail)
}

pub async fn update(
    db: &DatabaseConnection,
    actor: Actor,
    id: Uuid,
    changes: BookChanges,
) -> Result<BookDetail, ServiceError> {
    let txn = begin_write_as(db, Some(actor)).await?;
    let (book, _) = find_live(&*txn, id).await?;
    let mut active = book.into_active_model();
    if let Some(author_id) = changes.author_id {
        require_live_author(&*txn, author_id).await?;
        active.author_id = Set(author_id);
    }
    if let Some(title) = changes.title {
        active.title = Set(title);
    }
    if let Some(description) = changes.description {
        active.description = Set(description);
    }
    if let Some(isbn) = changes.isbn {
        active.isbn = Set(isbn);
    }
    if let Some(year) = changes.published_year {
        active.published_year = Set(year);
    }
    if active.is_changed() {
        active.update(&*txn).await.map_err(isbn_conflict)?;
    }
    let detail = get(&*txn, id).await?;
    txn.commit().await?;
    Ok(detail)
}

/// Replaces the book's categories with `category_ids`, in one transaction.
pub async fn set_categories(
    db: &DatabaseConnection,
    actor: Actor,
    id: Uuid,
    category_ids: &[Uuid],
) -> Result<BookDetail, ServiceError> {
    let category_ids =
        distinct_ids("category_ids", category_ids, MAX_CATEGORIES).map_err(|e| ServiceError::InvalidFields(vec![e]))?;
    let txn = begin_write_as(db, Some(actor)).await?;
    find_live(&*txn, id).await?;
    book_category::Entity::delete_many()
        .filter(book_category::Column::BookId.eq(id))
        .exec(&*txn)
        .await?;
    link_categories(&*txn, id, &category_ids).await?;
    let detail = get(&*txn, id).await?;
    txn.commit().await?;
    Ok(detail)
}

pub async fn delete(db: &DatabaseConnection, actor: Actor, id: Uuid) -> Result<(), ServiceError> {
    let txn = begin_write_as(db, Some(actor)).await?;
    let result = book::Entity::update_many()
        .col_expr(book::Column::DeletedAt, Expr::value(Utc::now()))
        .filter(book::Column::Id.eq(id))
        .filter(book::Column::DeletedAt.is_null())
        .exec(&*txn)
        .await?;
    if result.rows_affected == 0 {
        return Err(ServiceError::NotFound("book"));
    }
    txn.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isbns_are_checked_and_normalised_to_13_digits() {
        assert_eq!(parse_isbn("978-0-306-40615-7").unwrap(), "9780306406157");
        assert_eq!(
            parse_isbn("0-306-40615-2").unwrap(),
            "9780306406157",
            "ISBN-10 converts"
        );
        assert_eq!(parse_isbn("080442957X").unwrap(), "9780804429573");
        for bad in ["978-0-306-40615-8", "0-306-40615-3", "12345", "97803064061ab", ""] {
            assert!(parse_isbn(bad).is_err(), "{bad:?}");
        }
    }
}
