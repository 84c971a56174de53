//! Books: filtered, sorted, keyset-paginated lists that embed each book's author and
//! categories in a constant number of statements; a book's detail with its rating;
//! the admin's curation.
//!
//! Eager loading, never a query per row: the author is joined into the page query
//! (`find_also_related`, it is a belongs-to), and the categories of the whole page
//! come in one more statement through the junction table (`LoaderTrait::load_many`).
//! A page of 1 and a page of 100 cost the same statements: two, and a third to
//! resolve a category's subtree when the list is filtered by one.

use chrono::{Datelike, Utc};
use entity::isbn::Isbn;
use entity::{author, book, book_category, category, review};
use std::collections::HashMap;

use sea_orm::prelude::DateTimeUtc;
use sea_orm::sea_query::{Alias, Condition, Expr, Func, IntoIden, Query, SelectStatement, TableRef};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait, ExprTrait,
    FromQueryResult, IntoActiveModel, Order, PaginatorTrait, QueryFilter, QueryOrder, QueryResult, QuerySelect, Select,
    Set,
};
use uuid::Uuid;

use crate::ServiceError;
use crate::categories;
use crate::database::{Actor, begin_write_as, begin_write_lazily_as};
use crate::error::UniqueKey;
use crate::input::{FieldError, distinct_ids, text_value};
use crate::pagination::{self, Cursor, CursorKey, KeyKind, Ordering, Page, PageRequest};
use crate::statement_cache::ByIdStatement;
use crate::visibility::{book_and_its_author_are_live, review_by_live_reader, soft_delete};
use crate::written::{Tag, Written};

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

/// An author or category as a book shows it: a name to display and an id to follow.
#[derive(Debug, Clone, PartialEq, FromQueryResult)]
pub struct Named {
    pub id: Uuid,
    pub name: String,
}

/// A book with what every listing shows alongside it.
#[derive(Debug, Clone, PartialEq)]
pub struct BookItem {
    pub book: book::Model,
    pub author: Named,
    /// By name, then id.
    pub categories: Vec<Named>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BookDetail {
    pub item: BookItem,
    /// Mean of the live reviews' ratings; `None` without reviews.
    pub average_rating: Option<f64>,
    pub review_count: i64,
}

text_value!(
    /// A book's title: 1 to 500 characters, one line.
    Title, field: "title", chars: 1..=500, multiline: false
);

text_value!(
    /// A book's description: up to 20,000 characters, newlines allowed.
    Description, field: "description", chars: 1..=20_000, multiline: true
);

/// An ISBN-13 or ISBN-10 as a book's `isbn` field: an [`Isbn`], stored as its 13
/// digits. Blank text is no ISBN.
pub fn parse_isbn(raw: Option<&str>) -> Result<Option<Isbn>, FieldError> {
    raw.map(str::trim)
        .filter(|text| !text.is_empty())
        .map(|text| Isbn::parse(text).map_err(|e| FieldError::new("isbn", e.to_string())))
        .transpose()
}

/// A year of publication, from 3000 BC to next year.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedYear(i32);

impl PublishedYear {
    pub fn parse(year: i32) -> Result<Self, FieldError> {
        let latest = Utc::now().year() + 1;
        if !(-3000..=latest).contains(&year) {
            return Err(FieldError::new(
                "published_year",
                format!("must be between -3000 and {latest}"),
            ));
        }
        Ok(Self(year))
    }

    pub fn get(self) -> i32 {
        self.0
    }
}

/// The categories a book is filed under: distinct ids, at most [`MAX_CATEGORIES`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CategoryIds(Vec<Uuid>);

impl CategoryIds {
    pub fn parse(ids: &[Uuid]) -> Result<Self, FieldError> {
        distinct_ids("category_ids", ids, MAX_CATEGORIES).map(Self)
    }

    pub fn as_slice(&self) -> &[Uuid] {
        &self.0
    }
}

pub struct NewBook {
    pub author_id: Uuid,
    pub title: Title,
    pub description: Option<Description>,
    pub isbn: Option<Isbn>,
    pub published_year: Option<PublishedYear>,
    pub category_ids: CategoryIds,
}

/// Changes to a book. `None` leaves a field alone; `Some(None)` clears a nullable one.
#[derive(Debug, Default)]
pub struct BookChanges {
    pub author_id: Option<Uuid>,
    pub title: Option<Title>,
    pub description: Option<Option<Description>>,
    pub isbn: Option<Option<Isbn>>,
    pub published_year: Option<Option<PublishedYear>>,
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

/// A category filed against a book, as a page's categories statement reads it.
#[derive(FromQueryResult)]
struct Filed {
    book_id: Uuid,
    id: Uuid,
    name: String,
}

/// The categories of every book in `book_ids`, through the junction table alone, by
/// name, in one statement. PostgreSQL gets the ids as one array parameter
/// (`= ANY($1)`), so every page size shares one prepared statement; SQLite, which has
/// no arrays, gets `IN (…)`.
async fn categories_of<C: ConnectionTrait>(db: &C, book_ids: &[Uuid]) -> Result<Vec<Filed>, ServiceError> {
    if book_ids.is_empty() {
        return Ok(Vec::new());
    }
    let backend = db.get_database_backend();
    let filed = (book_category::Entity, book_category::Column::BookId);
    let among = match backend {
        DbBackend::Postgres => {
            let array = format!(
                "{{{}}}",
                book_ids.iter().map(Uuid::to_string).collect::<Vec<_>>().join(",")
            );
            Expr::cust_with_values(r#""book_categories"."book_id" = ANY(CAST($1 AS uuid[]))"#, [array])
        }
        _ => Expr::col(filed).is_in(book_ids.iter().copied()),
    };
    let query = Query::select()
        .column(filed)
        .column((category::Entity, category::Column::Id))
        .column((category::Entity, category::Column::Name))
        .from(book_category::Entity)
        .inner_join(
            category::Entity,
            Expr::col((category::Entity, category::Column::Id))
                .equals((book_category::Entity, book_category::Column::CategoryId)),
        )
        .and_where(among)
        .order_by((category::Entity, category::Column::Name), Order::Asc)
        .order_by((category::Entity, category::Column::Id), Order::Asc)
        .to_owned();
    Ok(Filed::find_by_statement(backend.build(&query)).all(db).await?)
}

/// Attaches the categories of a whole page in one statement.
async fn with_categories<C: ConnectionTrait>(
    db: &C,
    rows: Vec<(book::Model, Option<author::Model>)>,
) -> Result<Vec<BookItem>, ServiceError> {
    let ids: Vec<Uuid> = rows.iter().map(|(b, _)| b.id).collect();
    let mut filed: HashMap<Uuid, Vec<Named>> = HashMap::new();
    for f in categories_of(db, &ids).await? {
        filed
            .entry(f.book_id)
            .or_default()
            .push(Named { id: f.id, name: f.name });
    }
    Ok(rows
        .into_iter()
        .filter_map(|(book, author)| {
            let author = author?;
            Some(BookItem {
                categories: filed.remove(&book.id).unwrap_or_default(),
                author: Named {
                    id: author.id,
                    name: author.name,
                },
                book,
            })
        })
        .collect())
}

/// The books `select` picks, with author and categories: two statements.
pub(crate) async fn items(
    db: &impl ConnectionTrait,
    select: Select<book::Entity>,
) -> Result<Vec<BookItem>, ServiceError> {
    let rows = select.find_also_related(author::Entity).all(db).await?;
    with_categories(db, rows).await
}

/// Live books matching `filter`, in `sort` order. Two statements, plus one to
/// resolve a category's subtree when filtering by category.
pub async fn list(
    db: &impl ConnectionTrait,
    filter: BookFilter,
    sort: BookSort,
    page: &PageRequest,
) -> Result<Page<BookItem>, ServiceError> {
    let mut query = book::Entity::find()
        .find_also_related(author::Entity)
        .filter(book_and_its_author_are_live());
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
        .filter(book_and_its_author_are_live())
        .one(db)
        .await?;
    match found {
        Some((book, Some(author))) => Ok((book, author)),
        _ => Err(ServiceError::NotFound("book")),
    }
}

/// A book's detail as the statement returns it: the book, its author and its rating
/// summary. Its categories come beside it, as [`detail_categories`] reads them.
#[derive(FromQueryResult)]
struct DetailRow {
    id: Uuid,
    title: String,
    description: Option<String>,
    isbn: Option<String>,
    published_year: Option<i32>,
    created_at: DateTimeUtc,
    updated_at: DateTimeUtc,
    author_id: Uuid,
    author_name: String,
    average_rating: Option<f64>,
    review_count: i64,
}

/// The columns of a book's categories in the detail statement: two arrays on
/// PostgreSQL, one category per row elsewhere.
const CATEGORY_IDS: &str = "category_ids";
const CATEGORY_NAMES: &str = "category_names";
const CATEGORY_ID: &str = "category_id";
const CATEGORY_NAME: &str = "category_name";

fn detail_query(backend: DbBackend, id: Uuid) -> SelectStatement {
    // The book's rating: a derived table of one row.
    let rating_table = Alias::new("rating");
    let rating = Query::select()
        .expr_as(
            Expr::cust("CAST(AVG(reviews.rating) AS DOUBLE PRECISION)"),
            "average_rating",
        )
        .expr_as(Expr::cust("COUNT(*)"), "review_count")
        .from(review::Entity)
        .cond_where(
            Condition::all()
                .add(Expr::col((review::Entity, review::Column::BookId)).eq(id))
                .add(review_by_live_reader(review::Entity)),
        )
        .to_owned();
    let mut query = Query::select()
        .columns([
            (book::Entity, book::Column::Id),
            (book::Entity, book::Column::Title),
            (book::Entity, book::Column::Description),
            (book::Entity, book::Column::Isbn),
            (book::Entity, book::Column::PublishedYear),
            (book::Entity, book::Column::CreatedAt),
            (book::Entity, book::Column::UpdatedAt),
        ])
        .expr_as(Expr::col((author::Entity, author::Column::Id)), "author_id")
        .expr_as(Expr::col((author::Entity, author::Column::Name)), "author_name")
        .column((rating_table.clone(), Alias::new("average_rating")))
        .column((rating_table.clone(), Alias::new("review_count")))
        .from(book::Entity)
        .inner_join(
            author::Entity,
            Expr::col((author::Entity, author::Column::Id)).equals((book::Entity, book::Column::AuthorId)),
        )
        .cross_join(TableRef::SubQuery(Box::new(rating), rating_table.into_iden()))
        .cond_where(
            Condition::all()
                .add(Expr::col((book::Entity, book::Column::Id)).eq(id))
                .add(book_and_its_author_are_live()),
        )
        .to_owned();
    if backend == DbBackend::Postgres {
        // One more derived table of one row: the categories as two arrays in name order
        // (NULL when there are none). A row per category cost PostgreSQL 17 to 25 µs
        // more per detail, the rows and not their sort (pgbench, docs/performance.md).
        let categories_table = Alias::new("filed");
        let order = "ORDER BY categories.name, categories.id";
        let categories = Query::select()
            .expr_as(Expr::cust(format!("array_agg(categories.id {order})")), CATEGORY_IDS)
            .expr_as(
                Expr::cust(format!("array_agg(categories.name {order})")),
                CATEGORY_NAMES,
            )
            .from(book_category::Entity)
            .inner_join(
                category::Entity,
                Expr::col((category::Entity, category::Column::Id))
                    .equals((book_category::Entity, book_category::Column::CategoryId)),
            )
            .and_where(Expr::col((book_category::Entity, book_category::Column::BookId)).eq(id))
            .to_owned();
        query
            .column((categories_table.clone(), Alias::new(CATEGORY_IDS)))
            .column((categories_table.clone(), Alias::new(CATEGORY_NAMES)))
            .cross_join(TableRef::SubQuery(Box::new(categories), categories_table.into_iden()));
    } else {
        // SQLite has no arrays: a row per category, the junction table left-joined.
        query
            .expr_as(Expr::col((category::Entity, category::Column::Id)), CATEGORY_ID)
            .expr_as(Expr::col((category::Entity, category::Column::Name)), CATEGORY_NAME)
            .left_join(
                book_category::Entity,
                Expr::col((book_category::Entity, book_category::Column::BookId))
                    .equals((book::Entity, book::Column::Id)),
            )
            .left_join(
                category::Entity,
                Expr::col((category::Entity, category::Column::Id))
                    .equals((book_category::Entity, book_category::Column::CategoryId)),
            )
            .order_by((category::Entity, category::Column::Name), Order::Asc)
            .order_by((category::Entity, category::Column::Id), Order::Asc);
    }
    query
}

/// Built once per backend: see [`crate::statement_cache`].
static DETAIL: ByIdStatement = ByIdStatement::new(detail_query);

/// The categories of the detail statement's `rows`, in name order.
fn detail_categories(backend: DbBackend, rows: &[QueryResult]) -> Result<Vec<Named>, ServiceError> {
    if backend == DbBackend::Postgres {
        let Some(row) = rows.first() else {
            return Ok(Vec::new());
        };
        let ids: Option<Vec<Uuid>> = row.try_get("", CATEGORY_IDS)?;
        let names: Option<Vec<String>> = row.try_get("", CATEGORY_NAMES)?;
        let filed = ids.unwrap_or_default().into_iter().zip(names.unwrap_or_default());
        return Ok(filed.map(|(id, name)| Named { id, name }).collect());
    }
    let mut categories = Vec::new();
    for row in rows {
        let id: Option<Uuid> = row.try_get("", CATEGORY_ID)?;
        let name: Option<String> = row.try_get("", CATEGORY_NAME)?;
        if let (Some(id), Some(name)) = (id, name) {
            categories.push(Named { id, name });
        }
    }
    Ok(categories)
}

/// A live book with author, categories, average rating and review count, in one
/// statement: the rating from an uncorrelated derived table of one row, which both
/// backends evaluate once, so the book's reviews and their readers are read once for
/// the average and the count (two scalar subqueries read them twice), and the
/// categories as [`detail_query`] says. It was three statements, each a pool checkout
/// and a ping on return (docs/performance.md).
pub async fn get<C: ConnectionTrait>(db: &C, id: Uuid) -> Result<BookDetail, ServiceError> {
    let backend = db.get_database_backend();
    let rows = db.query_all_raw(DETAIL.for_id(backend, id)).await?;
    let categories = detail_categories(backend, &rows)?;
    let Some(row) = rows.first() else {
        return Err(ServiceError::NotFound("book"));
    };
    let row = DetailRow::from_query_result(row, "")?;
    Ok(BookDetail {
        item: BookItem {
            book: book::Model {
                id: row.id,
                author_id: row.author_id,
                title: row.title,
                description: row.description,
                isbn: row.isbn,
                published_year: row.published_year,
                created_at: row.created_at,
                updated_at: row.updated_at,
                deleted_at: None,
            },
            author: Named {
                id: row.author_id,
                name: row.author_name,
            },
            categories,
        },
        average_rating: row.average_rating,
        review_count: row.review_count,
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

/// Files the book under `category_ids` (which must all exist) and returns them by name.
/// The existence check is the read of the names the response shows anyway.
async fn link_categories<C: ConnectionTrait>(
    db: &C,
    book_id: Uuid,
    category_ids: &[Uuid],
) -> Result<Vec<Named>, ServiceError> {
    if category_ids.is_empty() {
        return Ok(Vec::new());
    }
    let known = category::Entity::find()
        .select_only()
        .column(category::Column::Id)
        .column(category::Column::Name)
        .filter(category::Column::Id.is_in(category_ids.to_vec()))
        .order_by_asc(category::Column::Name)
        .order_by_asc(category::Column::Id)
        .into_model::<Named>()
        .all(db)
        .await?;
    if known.len() != category_ids.len() {
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
    Ok(known)
}

fn isbn_conflict(err: sea_orm::DbErr) -> ServiceError {
    const ISBN_TAKEN: &[UniqueKey] = &[UniqueKey::new(
        "books_isbn_key",
        "books.isbn",
        "a book with this ISBN already exists",
    )];
    ServiceError::conflict_on(ISBN_TAKEN)(err)
}

/// Creates a book and its category links in one transaction, and returns it without
/// reading it back: the author and categories were read to check them, and a new book
/// has no reviews. On PostgreSQL: `BEGIN`, the author (carrying the actor's settings),
/// the insert, the categories and their links, `COMMIT`.
pub async fn create(db: &DatabaseConnection, actor: Actor, new: NewBook) -> Result<Written<BookDetail>, ServiceError> {
    let mut txn = begin_write_lazily_as(db, actor).await?;
    let author = txn
        .first_read::<Named>(
            Query::select()
                .columns([author::Column::Id, author::Column::Name])
                .from(author::Entity)
                .and_where(author::Column::Id.eq(new.author_id))
                .and_where(author::Column::DeletedAt.is_null())
                .to_owned(),
        )
        .await?
        .pop()
        .ok_or_else(|| ServiceError::InvalidFields(vec![FieldError::new("author_id", "no such author")]))?;
    let book = book::ActiveModel {
        author_id: Set(new.author_id),
        title: Set(new.title.into_string()),
        description: Set(new.description.map(Description::into_string)),
        isbn: Set(new.isbn.map(Isbn::into_string)),
        published_year: Set(new.published_year.map(PublishedYear::get)),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(isbn_conflict)?;
    let categories = link_categories(&txn, book.id, new.category_ids.as_slice()).await?;
    txn.changed([Tag::Book(book.id), Tag::Author(book.author_id)]);
    Ok(txn
        .commit(BookDetail {
            item: BookItem {
                book,
                author,
                categories,
            },
            average_rating: None,
            review_count: 0,
        })
        .await?)
}

pub async fn update(
    db: &DatabaseConnection,
    actor: Actor,
    id: Uuid,
    changes: BookChanges,
) -> Result<Written<BookDetail>, ServiceError> {
    let mut txn = begin_write_as(db, Some(actor)).await?;
    let (book, _) = find_live(&txn, id).await?;
    // A move to another author changes both authors' lists of books.
    txn.changed([Tag::Book(id), Tag::Author(book.author_id)]);
    let mut active = book.into_active_model();
    if let Some(author_id) = changes.author_id {
        require_live_author(&txn, author_id).await?;
        active.author_id = Set(author_id);
        txn.changed([Tag::Author(author_id)]);
    }
    if let Some(title) = changes.title {
        active.title = Set(title.into_string());
    }
    if let Some(description) = changes.description {
        active.description = Set(description.map(Description::into_string));
    }
    if let Some(isbn) = changes.isbn {
        active.isbn = Set(isbn.map(Isbn::into_string));
    }
    if let Some(year) = changes.published_year {
        active.published_year = Set(year.map(PublishedYear::get));
    }
    if active.is_changed() {
        active.update(&txn).await.map_err(isbn_conflict)?;
    }
    let detail = get(&txn, id).await?;
    Ok(txn.commit(detail).await?)
}

/// Replaces the book's categories with `category_ids`, in one transaction.
pub async fn set_categories(
    db: &DatabaseConnection,
    actor: Actor,
    id: Uuid,
    category_ids: &CategoryIds,
) -> Result<Written<BookDetail>, ServiceError> {
    let mut txn = begin_write_as(db, Some(actor)).await?;
    let (book, _) = find_live(&txn, id).await?;
    txn.changed([Tag::Book(id), Tag::Author(book.author_id)]);
    book_category::Entity::delete_many()
        .filter(book_category::Column::BookId.eq(id))
        .exec(&txn)
        .await?;
    link_categories(&txn, id, category_ids.as_slice()).await?;
    let detail = get(&txn, id).await?;
    Ok(txn.commit(detail).await?)
}

pub async fn delete(db: &DatabaseConnection, actor: Actor, id: Uuid) -> Result<Written<()>, ServiceError> {
    let mut txn = begin_write_as(db, Some(actor)).await?;
    let book = soft_delete(&txn, (book::Column::Id, book::Column::DeletedAt), id, "book").await?;
    txn.changed([Tag::Book(id), Tag::Author(book.author_id)]);
    Ok(txn.commit(()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isbns_are_checked_and_normalised_to_13_digits() {
        let digits = |raw: &str| parse_isbn(Some(raw)).unwrap().map(Isbn::into_string);
        assert_eq!(digits("978-0-306-40615-7").as_deref(), Some("9780306406157"));
        assert_eq!(
            digits("0-306-40615-2").as_deref(),
            Some("9780306406157"),
            "ISBN-10 converts"
        );
        assert_eq!(digits("080442957X").as_deref(), Some("9780804429573"));
        assert_eq!(digits("  ").as_deref(), None, "blank is no ISBN");
        for bad in ["978-0-306-40615-8", "0-306-40615-3", "12345", "97803064061ab"] {
            assert_eq!(parse_isbn(Some(bad)).unwrap_err().field, "isbn", "{bad:?}");
        }
    }

    #[test]
    fn a_title_holds_only_what_the_rules_allow() {
        assert_eq!(Title::parse("  Dune ").unwrap().as_str(), "Dune");
        assert_eq!(Title::parse(" ").unwrap_err().field, "title");
        assert!(Title::parse(&"x".repeat(Title::MAX_CHARS + 1)).is_err());
        assert!(Description::parse_optional(Some("  ")).unwrap().is_none());
        assert!(PublishedYear::parse(-3001).is_err());
        let id = Uuid::now_v7();
        assert_eq!(CategoryIds::parse(&[id, id]).unwrap_err().field, "category_ids");
    }
}
