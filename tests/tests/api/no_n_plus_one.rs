//! No response is built with a query per row. For every list and get endpoint, a
//! page (or embed) of 1 and of 50 must cost the same number of statements, and no
//! more than the budget declared beside the handler. The count comes from the
//! server's own statement counter (`x-statement-count`).

use api::routes;
use entity::shelf_entry::ShelfStatus;
use reqwest::Method;
use sea_orm::EntityTrait;
use tests::{Backend, TestApp, backend_tests, fixtures, spawn_app};

async fn statements(app: &TestApp, path: &str, token: Option<&str>) -> u32 {
    let response = app.send(Method::GET, path, token, None).await;
    assert_eq!(response.status(), 200, "GET {path}");
    let count = response
        .headers()
        .get("x-statement-count")
        .unwrap_or_else(|| panic!("no statement count on {path}"));
    count.to_str().unwrap().parse().unwrap()
}

/// Same count for both paths, and within `budget`.
async fn assert_flat(app: &TestApp, small: &str, large: &str, token: Option<&str>, budget: u32) {
    let (one, fifty) = (statements(app, small, token).await, statements(app, large, token).await);
    assert!(one >= 1, "{small} reported no statements: the counter is not counting");
    assert_eq!(
        one, fifty,
        "{large} ran {fifty} statements but {small} ran {one}: a query per row on {}",
        app.backend
    );
    assert!(
        fifty <= budget,
        "{large} ran {fifty} statements; the budget is {budget}"
    );
}

async fn page_len(app: &TestApp, path: &str, token: Option<&str>) -> usize {
    let body: serde_json::Value = app.send(Method::GET, path, token, None).await.json().await.unwrap();
    body["items"].as_array().unwrap().len()
}

async fn author_and_book_lists_and_details(backend: Backend) {
    let app = spawn_app(backend).await;
    let authors = fixtures::authors(&app.db, 60, "Author").await;
    let prolific = fixtures::books(&app.db, authors[0], 55).await;
    let single = fixtures::books(&app.db, authors[1], 1).await;
    let genres = fixtures::categories(&app.db, None, 3, "Genre").await;
    fixtures::file_under_categories(&app.db, &prolific, &genres).await;
    fixtures::file_under_categories(&app.db, &single, &genres[..1]).await;

    assert_eq!(page_len(&app, "/authors?limit=50", None).await, 50);
    assert_flat(
        &app,
        "/authors?limit=1",
        "/authors?limit=50",
        None,
        routes::authors::LIST_STATEMENTS,
    )
    .await;
    let (a0, a1) = (authors[0], authors[1]);
    assert_flat(
        &app,
        &format!("/authors/{a1}"),
        &format!("/authors/{a0}"),
        None,
        routes::authors::GET_STATEMENTS,
    )
    .await;

    assert_eq!(page_len(&app, "/books?limit=50", None).await, 50);
    for sort in ["created", "title", "year"] {
        let (small, large) = (
            format!("/books?limit=1&sort={sort}"),
            format!("/books?limit=50&sort={sort}"),
        );
        assert_flat(&app, &small, &large, None, routes::books::LIST_STATEMENTS).await;
    }
    let by_genre = format!("/books?limit=50&category_id={}", genres[0]);
    assert_eq!(page_len(&app, &by_genre, None).await, 50);
    assert_flat(
        &app,
        &format!("/books?limit=1&category_id={}", genres[0]),
        &by_genre,
        None,
        routes::books::LIST_STATEMENTS,
    )
    .await;

    // A book with one category and no reviews costs what one with three and fifty does.
    let readers = fixtures::readers(&app.db, 50).await;
    fixtures::reviews(&app.db, &readers, &prolific[..1], 4).await;
    let (busy, quiet) = (prolific[0], single[0]);
    assert_flat(
        &app,
        &format!("/books/{quiet}"),
        &format!("/books/{busy}"),
        None,
        routes::books::GET_STATEMENTS,
    )
    .await;
}

async fn category_lists_details_and_trees(backend: Backend) {
    let app = spawn_app(backend).await;
    let roots = fixtures::categories(&app.db, None, 60, "Root").await;
    let children = fixtures::categories(&app.db, Some(roots[0]), 50, "Child").await;
    let grandchildren = fixtures::categories(&app.db, Some(children[0]), 50, "Grandchild").await;
    fixtures::categories(&app.db, Some(grandchildren[0]), 50, "Leaf").await;
    let lone_child = fixtures::categories(&app.db, Some(roots[1]), 1, "Only").await;

    assert_flat(
        &app,
        "/categories?limit=1",
        "/categories?limit=50",
        None,
        routes::categories::LIST_STATEMENTS,
    )
    .await;
    let (big, small) = (roots[0], roots[1]);
    assert_flat(
        &app,
        &format!("/categories/{small}"),
        &format!("/categories/{big}"),
        None,
        routes::categories::GET_STATEMENTS,
    )
    .await;
    // A breadcrumb of one level and of three.
    let (shallow, deep) = (lone_child[0], grandchildren[0]);
    assert_flat(
        &app,
        &format!("/categories/{shallow}"),
        &format!("/categories/{deep}"),
        None,
        routes::categories::GET_STATEMENTS,
    )
    .await;
    assert_flat(
        &app,
        &format!("/categories/{small}/tree"),
        &format!("/categories/{big}/tree"),
        None,
        routes::categories::TREE_STATEMENTS,
    )
    .await;
}

async fn review_lists_and_details(backend: Backend) {
    let app = spawn_app(backend).await;
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    let books = fixtures::books(&app.db, author, 55).await;
    let readers = fixtures::readers(&app.db, 55).await;
    fixtures::reviews(&app.db, &readers, &books[..1], 5).await;
    fixtures::reviews(&app.db, &readers[..1], &books[1..], 3).await;
    let lonely_book = books[54];
    fixtures::reviews(&app.db, &readers[1..2], &[lonely_book], 2).await;

    let (popular, lonely) = (books[0], lonely_book);
    assert_eq!(
        page_len(&app, &format!("/books/{popular}/reviews?limit=50"), None).await,
        50
    );
    assert_flat(
        &app,
        &format!("/books/{lonely}/reviews?limit=50"),
        &format!("/books/{popular}/reviews?limit=50"),
        None,
        routes::reviews::LIST_STATEMENTS,
    )
    .await;
    let (prolific, quiet) = (readers[0], readers[2]);
    assert_eq!(
        page_len(&app, &format!("/users/{prolific}/reviews?limit=50"), None).await,
        50
    );
    assert_flat(
        &app,
        &format!("/users/{quiet}/reviews?limit=50"),
        &format!("/users/{prolific}/reviews?limit=50"),
        None,
        routes::reviews::LIST_STATEMENTS,
    )
    .await;
    let page: serde_json::Value = app
        .get(&format!("/books/{popular}/reviews?limit=1"))
        .await
        .json()
        .await
        .unwrap();
    let review = page["items"][0]["id"].as_str().unwrap().to_owned();
    assert!(statements(&app, &format!("/reviews/{review}"), None).await <= routes::reviews::GET_STATEMENTS);
}

async fn shelf_and_admin_lists(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let reader = app.reader("reader@example.com").await;
    let authors = fixtures::authors(&app.db, 55, "Author").await;
    let mut books = Vec::new();
    for author in &authors {
        books.extend(fixtures::books(&app.db, *author, 1).await);
    }
    fixtures::shelve(&app.db, reader.id, &books, ShelfStatus::WantToRead).await;
    fixtures::readers(&app.db, 55).await;

    assert_eq!(page_len(&app, "/me/shelf?limit=50", Some(&reader.token)).await, 50);
    assert_flat(
        &app,
        "/me/shelf?limit=1",
        "/me/shelf?limit=50",
        Some(&reader.token),
        routes::shelf::LIST_STATEMENTS,
    )
    .await;
    assert_eq!(page_len(&app, "/admin/users?limit=50", Some(&admin.token)).await, 50);
    assert_flat(
        &app,
        "/admin/users?limit=1",
        "/admin/users?limit=50",
        Some(&admin.token),
        routes::admin_users::LIST_STATEMENTS,
    )
    .await;
    assert_eq!(page_len(&app, "/admin/audit?limit=50", Some(&admin.token)).await, 50);
    assert_flat(
        &app,
        "/admin/audit?limit=1",
        "/admin/audit?limit=50",
        Some(&admin.token),
        routes::admin_audit::LIST_STATEMENTS,
    )
    .await;
    assert!(statements(&app, "/me", Some(&reader.token)).await <= routes::me::GET_STATEMENTS);
}

/// The counter itself: a deliberate query-per-row loop is seen as exactly that.
async fn the_counter_sees_a_query_per_row(backend: Backend) {
    let app = spawn_app(backend).await;
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    let books = fixtures::books(&app.db, author, 5).await;

    let ((), counted) = service::database::with_statement_count(async {
        for id in &books {
            entity::Book::find_by_id(*id).one(&app.app_db).await.unwrap();
        }
    })
    .await;

    assert_eq!(counted, 5);
}

backend_tests!(
    the_counter_sees_a_query_per_row,
    author_and_book_lists_and_details,
    category_lists_details_and_trees,
    review_lists_and_details,
    shelf_and_admin_lists,
);
