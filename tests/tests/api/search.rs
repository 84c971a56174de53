//! Full-text search: relevance, visibility, hostile input and paging.

use std::collections::HashSet;

use serde_json::{Value, json};
use tests::{Backend, TestApp, TestUser, backend_tests, fixtures, spawn_app};

async fn titles(app: &TestApp, path: &str) -> Vec<String> {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    let body: Value = response.json().await.unwrap();
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["title"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn book(app: &TestApp, admin: &TestUser, author: uuid::Uuid, title: &str, description: &str) -> String {
    let body = json!({"author_id": author, "title": title, "description": description});
    let response = app.post_json("/books", &admin.token, body).await;
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn books_are_found_by_their_words_best_match_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    book(
        &app,
        &admin,
        author,
        "Tales of the Coast",
        "A keeper tends the lighthouse through winter storms.",
    )
    .await;
    book(
        &app,
        &admin,
        author,
        "The Lighthouse",
        "A family returns to an island house.",
    )
    .await;
    book(&app, &admin, author, "Mountain Songs", "Nothing about the sea at all.").await;

    let found = titles(&app, "/search/books?q=lighthouse").await;

    assert_eq!(
        found,
        ["The Lighthouse", "Tales of the Coast"],
        "a title match outranks a description match"
    );
    assert_eq!(
        titles(&app, "/search/books?q=storms").await,
        ["Tales of the Coast"],
        "stemmed words match (storm/storms)"
    );
    assert_eq!(titles(&app, "/search/books?q=volcano").await, Vec::<String>::new());
}

async fn deleted_books_and_reviews_are_never_found(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let reader = app.reader("reader@example.com").await;
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    let gone = book(&app, &admin, author, "The Vanishing Atlas", "Maps.").await;
    let kept = book(&app, &admin, author, "Atlas of Islands", "More maps.").await;
    let review = json!({"rating": 5, "body": "An extraordinary atlas."});
    let posted = app
        .post_json(&format!("/books/{kept}/reviews"), &reader.token, review)
        .await;
    let review_id = posted.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    assert_eq!(titles(&app, "/search/reviews?q=extraordinary").await.len(), 1);
    app.delete_as(&format!("/books/{gone}"), &admin.token).await;
    app.delete_as(&format!("/reviews/{review_id}"), &reader.token).await;

    assert_eq!(titles(&app, "/search/books?q=atlas").await, ["Atlas of Islands"]);
    assert_eq!(titles(&app, "/search/reviews?q=extraordinary").await.len(), 0);
}

async fn hostile_and_odd_queries_give_results_or_400_never_500(backend: Backend) {
    let app = spawn_app(backend).await;
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    fixtures::books(&app.db, author, 3).await;

    let odd = [
        "\"",
        "'",
        "book\"",
        "\"book",
        "book OR",
        "-book",
        "title:book",
        "book*",
        "NEAR(book",
        "'; DROP TABLE books; --",
        "book AND NOT (",
        "ünïcödé 書籍",
        "%_\\",
        &"book ".repeat(40),
    ];
    for q in odd {
        for target in ["books", "reviews"] {
            let response = app
                .client
                .get(app.url(&format!("/search/{target}")))
                .query(&[("q", q)])
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            assert!(status == 200 || status == 400, "{target} q={q:?} gave {status}");
        }
    }
    for (q, why) in [("", "empty"), ("   ", "blank"), ("\"'-*", "no words")] {
        let response = app
            .client
            .get(app.url("/search/books"))
            .query(&[("q", q)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{why}");
    }
    let too_long = "a".repeat(201);
    assert_eq!(
        app.client
            .get(app.url("/search/books"))
            .query(&[("q", &too_long)])
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(app.get("/search/books").await.status(), 400, "q is required");
    assert_eq!(
        titles(&app, "/search/books?q=book").await.len(),
        3,
        "the table is still there"
    );
}

async fn search_results_page_without_repeats_in_constant_statements(backend: Backend) {
    let app = spawn_app(backend).await;
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    let all: HashSet<String> = fixtures::books(&app.db, author, 60)
        .await
        .into_iter()
        .map(|id| id.to_string())
        .collect();

    let seen: Vec<String> = app
        .walk_pages("/search/books?q=book&limit=7", None)
        .await
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen.len(), 60);
    assert_eq!(seen.into_iter().collect::<HashSet<_>>(), all);

    let count = |limit: &'static str| {
        let request = app
            .client
            .get(app.url("/search/books"))
            .query(&[("q", "book"), ("limit", limit)]);
        async move {
            request.send().await.unwrap().headers()["x-statement-count"]
                .to_str()
                .unwrap()
                .parse::<u32>()
                .unwrap()
        }
    };
    let (one, fifty) = (count("1").await, count("50").await);
    assert_eq!(one, fifty);
    assert!(fifty <= api::routes::search::SEARCH_STATEMENTS, "{fifty}");
}

backend_tests!(
    books_are_found_by_their_words_best_match_first,
    deleted_books_and_reviews_are_never_found,
    hostile_and_odd_queries_give_results_or_400_never_500,
    search_results_page_without_repeats_in_constant_statements,
);
