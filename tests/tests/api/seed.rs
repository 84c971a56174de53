//! The seed tool's library: requested counts, a real category tree, determinism.

use std::collections::HashMap;

use migration::{Migrator, MigratorTrait};
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait, QueryOrder};
use seed::SeedConfig;
use tests::{Backend, TestDatabase, backend_tests, spawn_app_on};

const CONFIG: SeedConfig = SeedConfig {
    authors: 7,
    books_per_author: 6,
    users: 9,
    reviews_per_user: 4,
    category_depth: 3,
    seed: 7,
    demo_logins: false,
};

async fn seeded(backend: Backend, config: &SeedConfig) -> (TestDatabase, DatabaseConnection, seed::SeedReport) {
    let database = TestDatabase::create(backend).await;
    let db = database.connect().await;
    Migrator::up(&db, None).await.unwrap();
    let report = seed::run(&db, config).await.expect("seeding succeeds");
    (database, db, report)
}

async fn seeding_inserts_the_requested_counts(backend: Backend) {
    let (_database, db, report) = seeded(backend, &CONFIG).await;

    let (authors, books, users, reviews) = (7, 7 * 6, 9, 9 * 4);
    assert_eq!(report.authors, authors);
    assert_eq!(report.books, books);
    assert_eq!(report.users, users);
    assert_eq!(report.profiles, users);
    assert_eq!(report.reviews, reviews);
    assert_eq!(
        report.shelf_entries,
        users * 5,
        "each reader shelves the reviewed books and one more"
    );

    // The report matches what is really in the tables.
    assert_eq!(entity::Author::find().count(&db).await.unwrap(), report.authors);
    assert_eq!(entity::Book::find().count(&db).await.unwrap(), report.books);
    assert_eq!(entity::User::find().count(&db).await.unwrap(), report.users);
    assert_eq!(entity::Profile::find().count(&db).await.unwrap(), report.profiles);
    assert_eq!(entity::Review::find().count(&db).await.unwrap(), report.reviews);
    assert_eq!(
        entity::ShelfEntry::find().count(&db).await.unwrap(),
        report.shelf_entries
    );
    assert_eq!(entity::Category::find().count(&db).await.unwrap(), report.categories);
    assert_eq!(
        entity::BookCategory::find().count(&db).await.unwrap(),
        report.book_categories
    );
}

async fn every_book_has_one_to_three_categories_in_a_tree_of_the_requested_depth(backend: Backend) {
    let (_database, db, _) = seeded(backend, &CONFIG).await;

    let categories = entity::Category::find().all(&db).await.unwrap();
    let parent: HashMap<_, _> = categories.iter().map(|c| (c.id, c.parent_id)).collect();
    let depth_of = |mut id| {
        let mut depth = 1;
        while let Some(Some(p)) = parent.get(&id) {
            id = *p;
            depth += 1;
        }
        depth
    };
    let deepest = categories.iter().map(|c| depth_of(c.id)).max().unwrap();
    assert_eq!(deepest, CONFIG.category_depth);

    let mut per_book: HashMap<_, usize> = HashMap::new();
    for link in entity::BookCategory::find().all(&db).await.unwrap() {
        *per_book.entry(link.book_id).or_default() += 1;
    }
    assert_eq!(per_book.len() as u64, entity::Book::find().count(&db).await.unwrap());
    assert!(per_book.values().all(|n| (1..=3).contains(n)), "{per_book:?}");
}

async fn the_same_seed_gives_the_same_data(backend: Backend) {
    let (_a, first, _) = seeded(backend, &CONFIG).await;
    let (_b, second, _) = seeded(backend, &CONFIG).await;
    let (_c, other, _) = seeded(backend, &SeedConfig { seed: 8, ..CONFIG }).await;

    let books = |db: DatabaseConnection| async move {
        entity::Book::find()
            .order_by_asc(entity::book::Column::Id)
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|b| (b.id, b.title, b.isbn, b.created_at))
            .collect::<Vec<_>>()
    };
    let (first, second, other) = (books(first).await, books(second).await, books(other).await);
    assert_eq!(first, second);
    assert_ne!(first, other);
}

/// `--demo`'s accounts sign in through the API with the documented password, as the
/// role each is for.
async fn the_demo_logins_sign_in_through_the_api(backend: Backend) {
    let database = std::sync::Arc::new(TestDatabase::create(backend).await);
    let db = database.connect().await;
    Migrator::up(&db, None).await.unwrap();
    let report = seed::run(
        &db,
        &SeedConfig {
            demo_logins: true,
            ..CONFIG
        },
    )
    .await
    .unwrap();
    assert_eq!(report.demo_logins, 2);
    let app = spawn_app_on(&database, |_| {}).await;

    let reader = app.token_for("demo-reader@example.com", seed::DEMO_PASSWORD).await;
    let admin = app.token_for("demo-admin@example.com", seed::DEMO_PASSWORD).await;

    let as_reader = app
        .post_json("/authors", &reader, serde_json::json!({"name": "Nope"}))
        .await;
    assert_eq!(as_reader.status(), 403, "the reader is a reader");
    let as_admin = app
        .post_json("/authors", &admin, serde_json::json!({"name": "Octavia E. Butler"}))
        .await;
    assert_eq!(as_admin.status(), 201, "the admin curates");
}

backend_tests!(
    the_demo_logins_sign_in_through_the_api,
    seeding_inserts_the_requested_counts,
    every_book_has_one_to_three_categories_in_a_tree_of_the_requested_depth,
    the_same_seed_gives_the_same_data,
);
