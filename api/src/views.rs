//! Response bodies shared by several routes. Entity models never go to JSON
//! directly: these say exactly what a client sees (and what the OpenAPI document
//! promises), whatever columns the tables grow.

use chrono::{DateTime, Utc};
use entity::shelf_entry::ShelfStatus;
use entity::user::Role;
use entity::{author, book, category};
use serde::Serialize;
use service::accounts::Account;
use service::books::{BookDetail, BookItem, Named};
use service::reviews::ReviewItem;
use service::shelves::ShelfItem;
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Serialize, ToSchema)]
pub struct AuthorRef {
    pub id: Uuid,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct CategoryRef {
    pub id: Uuid,
    pub name: String,
}

#[derive(Serialize, ToSchema)]
pub struct BookRef {
    pub id: Uuid,
    pub title: String,
}

impl From<Named> for AuthorRef {
    fn from(a: Named) -> Self {
        AuthorRef { id: a.id, name: a.name }
    }
}

impl From<Named> for CategoryRef {
    fn from(c: Named) -> Self {
        CategoryRef { id: c.id, name: c.name }
    }
}

impl From<&category::Model> for CategoryRef {
    fn from(c: &category::Model) -> Self {
        CategoryRef {
            id: c.id,
            name: c.name.clone(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct AuthorView {
    pub id: Uuid,
    pub name: String,
    pub bio: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<author::Model> for AuthorView {
    fn from(a: author::Model) -> Self {
        AuthorView {
            id: a.id,
            name: a.name,
            bio: a.bio,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// A book as lists show it: with its author and categories.
#[derive(Serialize, ToSchema)]
pub struct BookView {
    pub id: Uuid,
    pub title: String,
    pub description: Option<String>,
    /// ISBN-13, digits only.
    pub isbn: Option<String>,
    pub published_year: Option<i32>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub author: AuthorRef,
    pub categories: Vec<CategoryRef>,
}

impl From<BookItem> for BookView {
    fn from(item: BookItem) -> Self {
        let b = item.book;
        BookView {
            id: b.id,
            title: b.title,
            description: b.description,
            isbn: b.isbn,
            published_year: b.published_year,
            created_at: b.created_at,
            updated_at: b.updated_at,
            author: item.author.into(),
            categories: item.categories.into_iter().map(CategoryRef::from).collect(),
        }
    }
}

/// A single book: its list view plus its rating.
#[derive(Serialize, ToSchema)]
pub struct BookDetailView {
    #[serde(flatten)]
    pub book: BookView,
    /// Mean rating of its live reviews; null without reviews.
    pub average_rating: Option<f64>,
    pub review_count: i64,
}

impl From<BookDetail> for BookDetailView {
    fn from(d: BookDetail) -> Self {
        BookDetailView {
            book: d.item.into(),
            average_rating: d.average_rating,
            review_count: d.review_count,
        }
    }
}

/// A book listed under its author.
#[derive(Serialize, ToSchema)]
pub struct AuthorBook {
    pub id: Uuid,
    pub title: String,
    pub published_year: Option<i32>,
}

impl From<book::Model> for AuthorBook {
    fn from(b: book::Model) -> Self {
        AuthorBook {
            id: b.id,
            title: b.title,
            published_year: b.published_year,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ReviewerView {
    pub user_id: Uuid,
    pub display_name: String,
}

#[derive(Serialize, ToSchema)]
pub struct ReviewView {
    pub id: Uuid,
    /// 1 to 5.
    pub rating: i16,
    pub title: Option<String>,
    pub body: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub reviewer: ReviewerView,
    pub book: BookRef,
}

impl From<ReviewItem> for ReviewView {
    fn from(item: ReviewItem) -> Self {
        let r = item.review;
        ReviewView {
            id: r.id,
            rating: r.rating,
            title: r.title,
            body: r.body,
            created_at: r.created_at,
            updated_at: r.updated_at,
            reviewer: ReviewerView {
                user_id: r.user_id,
                display_name: item.reviewer.map(|p| p.display_name).unwrap_or_default(),
            },
            book: BookRef {
                id: item.book.id,
                title: item.book.title,
            },
        }
    }
}

#[derive(Serialize, ToSchema)]
pub struct ShelfBook {
    pub id: Uuid,
    pub title: String,
    pub published_year: Option<i32>,
    pub author: AuthorRef,
}

#[derive(Serialize, ToSchema)]
pub struct ShelfEntryView {
    pub status: ShelfStatus,
    pub added_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub book: ShelfBook,
}

impl From<ShelfItem> for ShelfEntryView {
    fn from(item: ShelfItem) -> Self {
        ShelfEntryView {
            status: item.entry.status,
            added_at: item.entry.added_at,
            updated_at: item.entry.updated_at,
            book: ShelfBook {
                id: item.book.id,
                title: item.book.title,
                published_year: item.book.published_year,
                author: AuthorRef {
                    id: item.author.id,
                    name: item.author.name,
                },
            },
        }
    }
}

/// Declares a page type: `{ items: [...], next_cursor }`.
macro_rules! page {
    ($name:ident, $item:ty) => {
        #[derive(Serialize, ToSchema)]
        pub struct $name {
            pub items: Vec<$item>,
            /// Pass as `cursor` to get the next page; null on the last page.
            pub next_cursor: Option<String>,
        }

        impl<T: Into<$item>> From<service::pagination::Page<T>> for $name {
            fn from(page: service::pagination::Page<T>) -> Self {
                $name {
                    items: page.items.into_iter().map(Into::into).collect(),
                    next_cursor: page.next_cursor,
                }
            }
        }
    };
}

pub(crate) use page;

page!(AuthorPage, AuthorView);
page!(BookPage, BookView);
page!(ReviewPage, ReviewView);
page!(ShelfPage, ShelfEntryView);
page!(CategoryPage, CategoryView);

#[derive(Serialize, ToSchema)]
pub struct CategoryView {
    pub id: Uuid,
    pub name: String,
    pub parent_id: Option<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<category::Model> for CategoryView {
    fn from(c: category::Model) -> Self {
        CategoryView {
            id: c.id,
            name: c.name,
            parent_id: c.parent_id,
            created_at: c.created_at,
            updated_at: c.updated_at,
        }
    }
}

/// An account as its owner (or an admin) sees it: the phone number included.
#[derive(Serialize, ToSchema)]
pub struct AccountView {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub display_name: String,
    pub bio: Option<String>,
    pub phone: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Present (admin listings only) when the account is soft-deleted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        AccountView {
            id: a.id,
            email: a.email,
            role: a.role,
            display_name: a.display_name,
            bio: a.bio,
            phone: a.phone,
            created_at: a.created_at,
            updated_at: a.updated_at,
            deleted_at: a.deleted_at,
        }
    }
}
