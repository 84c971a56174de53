//! The schema enforces its own rules, whoever writes to it: CHECKs, uniqueness,
//! foreign keys with their ON DELETE actions, and `updated_at` kept by triggers.
//! Rows are written through the entity crate or raw SQL, never through the API.

use std::time::Duration;

use chrono::{DateTime, Utc};
use entity::shelf_entry::ShelfStatus;
use entity::{api_token, author, book, book_category, category, profile, review, shelf_entry, user};
use migration::{Migrator, MigratorTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, ExecResult, PaginatorTrait,
    QueryFilter, Set, SqlErr, Statement, Value,
};
use tests::{Backend, TestDatabase, backend_tests};
use uuid::Uuid;

struct Fixture {
    _database: TestDatabase,
    db: DatabaseConnection,
    user: Uuid,
    author: Uuid,
    book: Uuid,
    root: Uuid,
    child: Uuid,
}

async fn fixture(backend: Backend) -> Fixture {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    Migrator::up(&db, None).await.unwrap();

    let user = new_user(&db, "reader@example.com").await;
    let author = author::ActiveModel {
        name: Set("Ursula K. Le Guin".into()),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap()
    .id;
    let book = new_book(&db, author, "A Wizard of Earthsea", Some("9780553383041")).await;
    let root = new_category(&db, None, "Fiction").await.unwrap();
    let child = new_category(&db, Some(root), "Fantasy").await.unwrap();
    book_category::ActiveModel {
        book_id: Set(book),
        category_id: Set(child),
    }
    .insert(&db)
    .await
    .unwrap();
    new_review(&db, user, book, 5).await.unwrap();
    shelf_entry::ActiveModel {
        user_id: Set(user),
        book_id: Set(book),
        status: Set(ShelfStatus::Read),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    api_token::ActiveModel {
        user_id: Set(user),
        token_hash: Set("a".repeat(64)),
        expires_at: Set(Utc::now() + chrono::Duration::days(1)),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();

    Fixture {
        _database: database,
        db,
        user,
        author,
        book,
        root,
        child,
    }
}

async fn new_user(db: &DatabaseConnection, email: &str) -> Uuid {
    let user = user::ActiveModel {
        email: Set(email.into()),
        password_hash: Set("!".into()),
        role: Set(user::Role::User),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    profile::ActiveModel {
        user_id: Set(user.id),
        display_name: Set("Reader".into()),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap();
    user.id
}

async fn new_book(db: &DatabaseConnection, author: Uuid, title: &str, isbn: Option<&str>) -> Uuid {
    book::ActiveModel {
        author_id: Set(author),
        title: Set(title.into()),
        isbn: Set(isbn.map(Into::into)),
        ..Default::default()
    }
    .insert(db)
    .await
    .unwrap()
    .id
}

async fn new_category(db: &DatabaseConnection, parent: Option<Uuid>, name: &str) -> Result<Uuid, DbErr> {
    let category = category::ActiveModel {
        parent_id: Set(parent),
        name: Set(name.into()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(category.id)
}

async fn new_review(db: &DatabaseConnection, user: Uuid, book: Uuid, rating: i16) -> Result<review::Model, DbErr> {
    review::ActiveModel {
        user_id: Set(user),
        book_id: Set(book),
        rating: Set(rating),
        body: Set("A classic.".into()),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// Raw SQL with `$1`-style placeholders on both backends (SQLite reads them as `?1`).
async fn raw(db: &DatabaseConnection, sql: &str, values: Vec<Value>) -> Result<ExecResult, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DbBackend::Sqlite => sql.replace('$', "?"),
        _ => sql.to_owned(),
    };
    db.execute_raw(Statement::from_sql_and_values(backend, sql, values))
        .await
}

fn assert_check_violation(result: Result<ExecResult, DbErr>, what: &str) {
    let err = result.expect_err(&format!("{what} must be rejected"));
    let message = err.to_string().to_lowercase();
    assert!(
        ["check constraint", "invalid input value for enum", "value too long"]
            .iter()
            .any(|m| message.contains(m)),
        "{what}: rejected for the wrong reason: {message}"
    );
}

fn assert_unique_violation<T: std::fmt::Debug>(result: Result<T, DbErr>, what: &str) {
    let err = result.expect_err(&format!("{what} must be rejected"));
    assert!(
        matches!(err.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))),
        "{what}: {err}"
    );
}

fn assert_foreign_key_violation<T: std::fmt::Debug>(result: Result<T, DbErr>, what: &str) {
    let err = result.expect_err(&format!("{what} must be rejected"));
    assert!(
        matches!(err.sql_err(), Some(SqlErr::ForeignKeyConstraintViolation(_))),
        "{what}: {err}"
    );
}

/// (creation time, updated_at) of the table's first row.
async fn timestamps(db: &DatabaseConnection, table: &str) -> (DateTime<Utc>, DateTime<Utc>) {
    let backend = db.get_database_backend();
    let created = if table == "shelf_entries" {
        "added_at"
    } else {
        "created_at"
    };
    let row = db
        .query_one_raw(Statement::from_string(
            backend,
            format!("SELECT {created}, updated_at FROM {table} LIMIT 1"),
        ))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{table} has a row"));
    (row.try_get_by_index(0).unwrap(), row.try_get_by_index(1).unwrap())
}

async fn a_raw_update_moves_updated_at_on_every_table(backend: Backend) {
    let f = fixture(backend).await;
    let tables = [
        ("users", "email = email"),
        ("profiles", "bio = 'updated'"),
        ("authors", "bio = 'updated'"),
        ("books", "description = 'updated'"),
        ("categories", "name = name"),
        ("reviews", "body = 'updated'"),
        ("shelf_entries", "status = 'reading'"),
    ];
    let mut before = Vec::new();
    for (table, _) in tables {
        before.push(timestamps(&f.db, table).await);
    }
    tokio::time::sleep(Duration::from_millis(20)).await;

    for ((table, set), (created, updated)) in tables.into_iter().zip(before) {
        // The statement never mentions updated_at: the trigger must keep it.
        f.db.execute_unprepared(&format!("UPDATE {table} SET {set}"))
            .await
            .unwrap();
        let (created_after, updated_after) = timestamps(&f.db, table).await;
        assert!(updated_after > updated, "{table}.updated_at did not move on {backend}");
        assert_eq!(created_after, created, "{table}.created_at changed on {backend}");
    }
}

async fn check_constraints_reject_bad_rows(backend: Backend) {
    let f = fixture(backend).await;
    let id = || Value::from(Uuid::now_v7());

    assert_check_violation(
        raw(
            &f.db,
            "INSERT INTO users (id, email, password_hash, role) VALUES ($1, 'x@example.com', '!', 'superuser')",
            vec![id()],
        )
        .await,
        "an unknown role",
    );
    let long_email = format!("{}@example.com", "a".repeat(250));
    assert_check_violation(
        raw(
            &f.db,
            "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, '!')",
            vec![id(), long_email.into()],
        )
        .await,
        "an email over 255 characters",
    );
    for rating in [0, 6] {
        assert_check_violation(
            raw(
                &f.db,
                "INSERT INTO reviews (id, user_id, book_id, rating, body) VALUES ($1, $2, $3, $4, 'x')",
                vec![id(), f.user.into(), f.book.into(), Value::from(rating as i16)],
            )
            .await,
            &format!("a rating of {rating}"),
        );
    }
    let other_user = new_user(&f.db, "other@example.com").await;
    assert_check_violation(
        raw(
            &f.db,
            "INSERT INTO shelf_entries (user_id, book_id, status) VALUES ($1, $2, 'lost')",
            vec![other_user.into(), f.book.into()],
        )
        .await,
        "an unknown shelf status",
    );
    assert_check_violation(
        raw(
            &f.db,
            "INSERT INTO audit_log (table_name, record_id, action) VALUES ('books', $1, 'TRUNCATE')",
            vec![id()],
        )
        .await,
        "an unknown audit action",
    );
    assert_check_violation(
        raw(
            &f.db,
            "INSERT INTO books (id, author_id, title, isbn) VALUES ($1, $2, 'Short', '123')",
            vec![id(), f.author.into()],
        )
        .await,
        "an ISBN that is not 13 characters",
    );
    assert_check_violation(
        raw(
            &f.db,
            "UPDATE categories SET parent_id = id WHERE id = $1",
            vec![f.root.into()],
        )
        .await,
        "a category that is its own parent",
    );
    let negative = raw(
        &f.db,
        "INSERT INTO user_stats (user_id, review_count) VALUES ($1, -1)",
        vec![f.user.into()],
    )
    .await;
    match backend {
        // On PostgreSQL the statistics are a materialized view: nothing writes to them.
        Backend::Postgres => assert!(negative.unwrap_err().to_string().contains("materialized view")),
        Backend::Sqlite => assert_check_violation(negative, "a negative review count"),
    }

    // The long texts, bounded by the service, are bounded here too, on insert and update.
    let over = |max: usize| Value::from("x".repeat(max + 1));
    assert_check_violation(
        raw(
            &f.db,
            "INSERT INTO authors (id, name, bio) VALUES ($1, 'A', $2)",
            vec![id(), over(10_000)],
        )
        .await,
        "an author's bio over 10,000 characters",
    );
    assert_check_violation(
        raw(
            &f.db,
            "UPDATE authors SET bio = $2 WHERE id = $1",
            vec![f.author.into(), over(10_000)],
        )
        .await,
        "an author's bio made longer than 10,000 characters",
    );
    assert_check_violation(
        raw(
            &f.db,
            "UPDATE books SET description = $2 WHERE id = $1",
            vec![f.book.into(), over(20_000)],
        )
        .await,
        "a description over 20,000 characters",
    );
    assert_check_violation(
        raw(
            &f.db,
            "UPDATE profiles SET bio = $2 WHERE user_id = $1",
            vec![f.user.into(), over(2_000)],
        )
        .await,
        "a reader's bio over 2,000 characters",
    );
    assert_check_violation(
        raw(
            &f.db,
            "UPDATE reviews SET body = $2 WHERE user_id = $1",
            vec![f.user.into(), over(20_000)],
        )
        .await,
        "a review body over 20,000 characters",
    );
    assert_check_violation(
        raw(
            &f.db,
            "UPDATE reviews SET body = '' WHERE user_id = $1",
            vec![f.user.into()],
        )
        .await,
        "an empty review body",
    );
    raw(
        &f.db,
        "UPDATE authors SET bio = $2 WHERE id = $1",
        vec![f.author.into(), Value::from("x".repeat(10_000))],
    )
    .await
    .expect("a bio of exactly 10,000 characters is valid");

    // The boundaries themselves are accepted.
    new_review(&f.db, other_user, f.book, 1)
        .await
        .expect("rating 1 is valid");
}

async fn unique_rules_reject_duplicates(backend: Backend) {
    let f = fixture(backend).await;

    let dup_email = user::ActiveModel {
        email: Set("reader@example.com".into()),
        password_hash: Set("!".into()),
        role: Set(user::Role::User),
        ..Default::default()
    }
    .insert(&f.db)
    .await;
    assert_unique_violation(dup_email, "a second account with the same email");
    let dup_email_in_capitals = user::ActiveModel {
        email: Set("Reader@Example.COM".into()),
        password_hash: Set("!".into()),
        role: Set(user::Role::User),
        ..Default::default()
    }
    .insert(&f.db)
    .await;
    assert_unique_violation(dup_email_in_capitals, "the same email in other letter case");

    let dup_isbn = book::ActiveModel {
        author_id: Set(f.author),
        title: Set("Another".into()),
        isbn: Set(Some("9780553383041".into())),
        ..Default::default()
    }
    .insert(&f.db)
    .await;
    assert_unique_violation(dup_isbn, "a second book with the same ISBN");
    // Books without an ISBN never collide.
    new_book(&f.db, f.author, "No ISBN 1", None).await;
    new_book(&f.db, f.author, "No ISBN 2", None).await;

    assert_unique_violation(
        new_category(&f.db, Some(f.root), "Fantasy").await,
        "a sibling with the same name",
    );
    assert_unique_violation(
        new_category(&f.db, None, "Fiction").await,
        "a second root with the same name",
    );
    new_category(&f.db, Some(f.child), "Fantasy")
        .await
        .expect("the same name under another parent is fine");

    let dup_shelf = shelf_entry::ActiveModel {
        user_id: Set(f.user),
        book_id: Set(f.book),
        status: Set(ShelfStatus::Reading),
        ..Default::default()
    }
    .insert(&f.db)
    .await;
    assert_unique_violation(dup_shelf, "the same book twice on one shelf");

    let dup_token = api_token::ActiveModel {
        user_id: Set(f.user),
        token_hash: Set("a".repeat(64)),
        expires_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(&f.db)
    .await;
    assert_unique_violation(dup_token, "a reused token hash");
}

async fn only_one_live_review_per_reader_and_book(backend: Backend) {
    let f = fixture(backend).await;

    assert_unique_violation(new_review(&f.db, f.user, f.book, 3).await, "a second live review");

    raw(
        &f.db,
        "UPDATE reviews SET deleted_at = $1 WHERE user_id = $2",
        vec![Utc::now().into(), f.user.into()],
    )
    .await
    .unwrap();
    new_review(&f.db, f.user, f.book, 3)
        .await
        .expect("a new review once the old one is soft-deleted");
    assert_unique_violation(new_review(&f.db, f.user, f.book, 4).await, "a second live review again");
}

async fn foreign_keys_reject_dangling_references(backend: Backend) {
    let f = fixture(backend).await;

    let orphan = book::ActiveModel {
        author_id: Set(Uuid::now_v7()),
        title: Set("Orphan".into()),
        ..Default::default()
    }
    .insert(&f.db)
    .await;
    assert_foreign_key_violation(orphan, "a book by an unknown author");
    assert_foreign_key_violation(
        new_review(&f.db, f.user, Uuid::now_v7(), 4).await,
        "a review of an unknown book",
    );
    assert_foreign_key_violation(
        new_category(&f.db, Some(Uuid::now_v7()), "Lost").await,
        "a category under an unknown parent",
    );
}

async fn deleting_an_author_cascades_to_books_and_everything_on_them(backend: Backend) {
    let f = fixture(backend).await;

    entity::Author::delete_by_id(f.author).exec(&f.db).await.unwrap();

    assert_eq!(entity::Book::find().count(&f.db).await.unwrap(), 0);
    assert_eq!(entity::Review::find().count(&f.db).await.unwrap(), 0);
    assert_eq!(entity::BookCategory::find().count(&f.db).await.unwrap(), 0);
    assert_eq!(entity::ShelfEntry::find().count(&f.db).await.unwrap(), 0);
    assert_eq!(
        entity::Category::find().count(&f.db).await.unwrap(),
        2,
        "categories stay"
    );
    assert_eq!(entity::User::find().count(&f.db).await.unwrap(), 1, "readers stay");
}

async fn deleting_a_user_cascades_to_their_own_rows(backend: Backend) {
    let f = fixture(backend).await;

    entity::User::delete_by_id(f.user).exec(&f.db).await.unwrap();

    assert_eq!(entity::Profile::find().count(&f.db).await.unwrap(), 0);
    assert_eq!(entity::ApiToken::find().count(&f.db).await.unwrap(), 0);
    assert_eq!(entity::Review::find().count(&f.db).await.unwrap(), 0);
    assert_eq!(entity::ShelfEntry::find().count(&f.db).await.unwrap(), 0);
    assert_eq!(
        entity::Book::find().count(&f.db).await.unwrap(),
        1,
        "the catalogue stays"
    );
}

async fn deleting_a_category_orphans_its_children(backend: Backend) {
    let f = fixture(backend).await;
    let grandchild = new_category(&f.db, Some(f.child), "Epic").await.unwrap();

    entity::Category::delete_by_id(f.root).exec(&f.db).await.unwrap();

    let child = entity::Category::find_by_id(f.child)
        .one(&f.db)
        .await
        .unwrap()
        .expect("the child stays");
    assert_eq!(child.parent_id, None, "ON DELETE SET NULL makes it a root");
    let grandchild = entity::Category::find_by_id(grandchild)
        .one(&f.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(grandchild.parent_id, Some(f.child), "only direct children are touched");

    entity::Category::delete_by_id(f.child).exec(&f.db).await.unwrap();
    let links = entity::BookCategory::find()
        .filter(book_category::Column::CategoryId.eq(f.child))
        .count(&f.db)
        .await
        .unwrap();
    assert_eq!(links, 0, "links to a deleted category cascade");
    assert!(
        entity::Book::find_by_id(f.book).one(&f.db).await.unwrap().is_some(),
        "the book stays"
    );
}

backend_tests!(
    a_raw_update_moves_updated_at_on_every_table,
    check_constraints_reject_bad_rows,
    unique_rules_reject_duplicates,
    only_one_live_review_per_reader_and_book,
    foreign_keys_reject_dangling_references,
    deleting_an_author_cascades_to_books_and_everything_on_them,
    deleting_a_user_cascades_to_their_own_rows,
    deleting_a_category_orphans_its_children,
);
