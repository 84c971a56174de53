//! Bulk test data written straight through the entity crate: fast, and independent
//! of the API under test. Names are numbered so their order is predictable.

use entity::shelf_entry::ShelfStatus;
use entity::{author, book, book_category, category, profile, review, shelf_entry, user};
use sea_orm::{DatabaseConnection, EntityTrait, Set};
use uuid::Uuid;

pub async fn authors(db: &DatabaseConnection, n: usize, prefix: &str) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let rows = ids.iter().enumerate().map(|(i, id)| author::ActiveModel {
        id: Set(*id),
        name: Set(format!("{prefix} {i:03}")),
        ..Default::default()
    });
    insert(db, rows.collect()).await;
    ids
}

pub async fn books(db: &DatabaseConnection, author_id: Uuid, n: usize) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let rows = ids.iter().enumerate().map(|(i, id)| book::ActiveModel {
        id: Set(*id),
        author_id: Set(author_id),
        title: Set(format!("Book {i:03}")),
        published_year: Set(Some(1900 + (i as i32 % 120))),
        ..Default::default()
    });
    insert(db, rows.collect()).await;
    ids
}

pub async fn categories(db: &DatabaseConnection, parent: Option<Uuid>, n: usize, prefix: &str) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let rows = ids.iter().enumerate().map(|(i, id)| category::ActiveModel {
        id: Set(*id),
        parent_id: Set(parent),
        name: Set(format!("{prefix} {i:03}")),
        ..Default::default()
    });
    insert(db, rows.collect()).await;
    ids
}

pub async fn file_under_categories(db: &DatabaseConnection, book_ids: &[Uuid], category_ids: &[Uuid]) {
    let rows = book_ids.iter().flat_map(|b| {
        category_ids.iter().map(move |c| book_category::ActiveModel {
            book_id: Set(*b),
            category_id: Set(*c),
        })
    });
    insert(db, rows.collect()).await;
}

/// Readers with profiles ("Reader 000"...), who cannot log in.
pub async fn readers(db: &DatabaseConnection, n: usize) -> Vec<Uuid> {
    let ids: Vec<Uuid> = (0..n).map(|_| Uuid::now_v7()).collect();
    let users = ids.iter().map(|id| user::ActiveModel {
        id: Set(*id),
        email: Set(format!("reader-{id}@example.com")),
        password_hash: Set("!".into()),
        role: Set(user::Role::User),
        ..Default::default()
    });
    insert(db, users.collect()).await;
    let profiles = ids.iter().enumerate().map(|(i, id)| profile::ActiveModel {
        user_id: Set(*id),
        display_name: Set(format!("Reader {i:03}")),
        ..Default::default()
    });
    insert(db, profiles.collect()).await;
    ids
}

/// One review by each of `users` of each of `books`.
pub async fn reviews(db: &DatabaseConnection, users: &[Uuid], books: &[Uuid], rating: i16) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let mut rows = Vec::new();
    for user in users {
        for book in books {
            let id = Uuid::now_v7();
            ids.push(id);
            rows.push(review::ActiveModel {
                id: Set(id),
                user_id: Set(*user),
                book_id: Set(*book),
                rating: Set(rating),
                body: Set("Worth reading.".into()),
                ..Default::default()
            });
        }
    }
    insert(db, rows).await;
    ids
}

pub async fn shelve(db: &DatabaseConnection, user: Uuid, books: &[Uuid], status: ShelfStatus) {
    let rows = books.iter().map(|b| shelf_entry::ActiveModel {
        user_id: Set(user),
        book_id: Set(*b),
        status: Set(status),
        ..Default::default()
    });
    insert(db, rows.collect()).await;
}

async fn insert<A>(db: &DatabaseConnection, rows: Vec<A>)
where
    A: sea_orm::ActiveModelTrait + Send,
{
    for chunk in rows.chunks(500) {
        <A::Entity as EntityTrait>::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await
            .expect("insert fixtures");
    }
}
