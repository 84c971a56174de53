//! SQLite's planner, asked about the statements the service really runs (captured as
//! they execute): a book's reviews and rating are found through indexes, with the
//! checks that each review's author and book are live as index probes, never a scan of
//! every account or book per query; and a book's detail is one statement.

use std::sync::{Arc, Mutex};

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Statement};
use service::pagination::PageRequest;
use tests::{Backend, TestDatabase, fixtures};

#[tokio::test]
async fn a_reviews_author_is_checked_by_primary_key_not_by_scanning_accounts() {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let mut db = database.connect().await;
    Migrator::up(&db, None).await.unwrap();
    // A realistic spread: each book's reviews are a small share of all reviews.
    let readers = fixtures::readers(&db, 100).await;
    let authors = fixtures::authors(&db, 5, "Author").await;
    let mut books = Vec::new();
    for author in authors {
        books.extend(fixtures::books(&db, author, 4).await);
    }
    fixtures::reviews(&db, &readers, &books, 4).await;
    let book = books[7];
    db.execute_unprepared("ANALYZE").await.unwrap();

    let ran: Arc<Mutex<Vec<Statement>>> = Arc::default();
    let log = ran.clone();
    db.set_metric_callback(move |info| log.lock().unwrap().push(info.statement.clone()));
    let page = service::reviews::list_for_book(&db, book, &PageRequest::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 20);
    let detail = service::books::get(&db, book).await.unwrap();
    assert_eq!(detail.review_count, 100);

    let statements: Vec<Statement> = ran.lock().unwrap().clone();
    let details: Vec<&Statement> = statements.iter().filter(|s| s.sql.contains("category_name")).collect();
    assert_eq!(details.len(), 1, "a book's detail is one statement: {statements:?}");
    assert!(
        details[0].sql.contains("LEFT JOIN \"book_categories\""),
        "a book's categories come through the junction table: {}",
        details[0].sql
    );
    let about_users: Vec<&Statement> = statements.iter().filter(|s| s.sql.contains("\"users\"")).collect();
    assert!(about_users.len() >= 2, "both reads check the reviewers: {statements:?}");
    for statement in about_users {
        let explain = Statement {
            sql: format!("EXPLAIN QUERY PLAN {}", statement.sql),
            ..statement.clone()
        };
        let steps: Vec<String> = db
            .query_all_raw(explain)
            .await
            .unwrap()
            .iter()
            .map(|row| row.try_get::<String>("", "detail").unwrap())
            .collect();
        println!("{}\n  {}", statement.sql, steps.join("\n  "));
        assert!(steps.iter().any(|s| s.starts_with("SEARCH users")), "{steps:?}");
        // A derived table is computed once (MATERIALIZE, its own steps searched by
        // index) and then scanned: that reads its result, not a table.
        let derived: Vec<&str> = steps.iter().filter_map(|s| s.strip_prefix("MATERIALIZE ")).collect();
        for step in &steps {
            let scanned = step.strip_prefix("SCAN ");
            assert!(
                scanned.is_none_or(|name| derived.contains(&name)),
                "every table is searched by an index, none scanned: {step}\n{}",
                statement.sql
            );
        }
    }
}
