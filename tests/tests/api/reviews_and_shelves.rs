//! Reviews and shelves over HTTP: ownership, one live review per reader and book,
//! ratings, and the shelf's life cycle.

use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use tests::{Backend, backend_tests, fixtures, json_of, spawn_app};
use uuid::Uuid;

async fn a_book(app: &tests::TestApp) -> Uuid {
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    fixtures::books(&app.db, author, 1).await[0]
}

async fn readers_review_once_and_the_rating_summary_follows(backend: Backend) {
    let app = spawn_app(backend).await;
    let book = a_book(&app).await;
    let ada = app.reader("ada@example.com").await;
    let bob = app.reader("bob@example.com").await;
    let path = format!("/books/{book}/reviews");

    let created = app
        .post_json(
            &path,
            &ada.token,
            json!({"rating": 5, "title": "Superb", "body": "Loved it."}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let review = json_of(created).await;
    assert_eq!(review["reviewer"]["display_name"], "Reader");
    assert_eq!(review["book"]["id"], book.to_string());
    let again = app
        .post_json(&path, &ada.token, json!({"rating": 1, "body": "Changed my mind."}))
        .await;
    assert_eq!(again.status(), 409, "one live review per reader and book");
    assert_eq!(
        app.post_json(&path, &bob.token, json!({"rating": 2, "body": "Meh."}))
            .await
            .status(),
        201
    );

    let detail = json_of(app.get(&format!("/books/{book}")).await).await;
    assert_eq!(detail["review_count"], 2);
    assert_eq!(detail["average_rating"], 3.5);

    // Deleting frees the slot, and the summary only counts live reviews.
    let id = review["id"].as_str().unwrap();
    assert_eq!(app.delete_as(&format!("/reviews/{id}"), &ada.token).await.status(), 204);
    assert_eq!(app.get(&format!("/reviews/{id}")).await.status(), 404);
    let detail = json_of(app.get(&format!("/books/{book}")).await).await;
    assert_eq!(
        (detail["review_count"].clone(), detail["average_rating"].clone()),
        (json!(1), json!(2.0))
    );
    let listed = json_of(app.get(&path).await).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 1);
    let rewritten = app
        .post_json(&path, &ada.token, json!({"rating": 4, "body": "On reflection."}))
        .await;
    assert_eq!(rewritten.status(), 201);
}

async fn ratings_and_texts_are_validated(backend: Backend) {
    let app = spawn_app(backend).await;
    let book = a_book(&app).await;
    let ada = app.reader("ada@example.com").await;
    let path = format!("/books/{book}/reviews");

    for rating in [0, 6, -1] {
        let response = app
            .post_json(&path, &ada.token, json!({"rating": rating, "body": "x"}))
            .await;
        assert_eq!(response.status(), 422, "rating {rating}");
        assert_eq!(json_of(response).await["errors"][0]["field"], "rating");
    }
    let empty = app
        .post_json(&path, &ada.token, json!({"rating": 3, "body": "   "}))
        .await;
    assert_eq!(empty.status(), 422);
    let fractional = app
        .post_json(&path, &ada.token, json!({"rating": 3.5, "body": "x"}))
        .await;
    assert_eq!(fractional.status(), 400);
    let anonymous = app
        .send(Method::POST, &path, None, Some(json!({"rating": 3, "body": "x"})))
        .await;
    assert_eq!(anonymous.status(), 401);
    let unknown_book = app
        .post_json(
            &format!("/books/{}/reviews", Uuid::now_v7()),
            &ada.token,
            json!({"rating": 3, "body": "x"}),
        )
        .await;
    assert_eq!(unknown_book.status(), 404);
}

async fn only_the_author_or_an_admin_changes_a_review(backend: Backend) {
    let app = spawn_app(backend).await;
    let book = a_book(&app).await;
    let admin = app.admin().await;
    let ada = app.reader("ada@example.com").await;
    let eve = app.reader("eve@example.com").await;
    let review = app.review(&ada.token, book, 4, "Good.").await;
    let path = format!("/reviews/{review}");

    assert_eq!(
        app.patch_json(&path, &eve.token, json!({"rating": 1})).await.status(),
        403
    );
    assert_eq!(app.delete_as(&path, &eve.token).await.status(), 403);
    assert_eq!(
        app.send(Method::PATCH, &path, None, Some(json!({"rating": 1})))
            .await
            .status(),
        401
    );

    let edited = app
        .patch_json(&path, &ada.token, json!({"rating": 5, "title": null}))
        .await;
    assert_eq!(edited.status(), 200);
    let edited = json_of(edited).await;
    assert_eq!(
        (edited["rating"].clone(), edited["body"].clone()),
        (json!(5), json!("Good."))
    );
    let moderated = app
        .patch_json(&path, &admin.token, json!({"body": "[removed by a moderator]"}))
        .await;
    assert_eq!(moderated.status(), 200);
    assert_eq!(app.delete_as(&path, &admin.token).await.status(), 204);
    assert_eq!(
        app.patch_json(&path, &ada.token, json!({"rating": 2})).await.status(),
        404
    );
}

async fn a_deleted_readers_reviews_leave_lists_and_counts(backend: Backend) {
    let app = spawn_app(backend).await;
    let book = a_book(&app).await;
    let ada = app.reader("ada@example.com").await;
    app.post_json(
        &format!("/books/{book}/reviews"),
        &ada.token,
        json!({"rating": 5, "body": "Yes."}),
    )
    .await;

    assert_eq!(app.delete_as("/me", &ada.token).await.status(), 204);

    assert_eq!(
        json_of(app.get(&format!("/books/{book}/reviews")).await).await["items"],
        json!([])
    );
    assert_eq!(
        json_of(app.get(&format!("/books/{book}")).await).await["review_count"],
        0
    );
    assert_eq!(app.get(&format!("/users/{}/reviews", ada.id)).await.status(), 404);
}

async fn the_shelf_adds_updates_filters_and_removes(backend: Backend) {
    let app = spawn_app(backend).await;
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    let books = fixtures::books(&app.db, author, 3).await;
    let ada = app.reader("ada@example.com").await;
    let put = |book: Uuid, status: &'static str| {
        let (app, token) = (&app, ada.token.clone());
        async move {
            app.put_json(&format!("/me/shelf/{book}"), &token, json!({"status": status}))
                .await
        }
    };

    assert_eq!(put(books[0], "want_to_read").await.status(), 201);
    assert_eq!(put(books[1], "reading").await.status(), 201);
    let updated = put(books[0], "read").await;
    assert_eq!(updated.status(), 200);
    let updated = json_of(updated).await;
    assert_eq!(updated["status"], "read");
    assert_eq!(updated["book"]["author"]["name"], "Author 000");
    assert_eq!(put(books[2], "devoured").await.status(), 400, "an unknown status");

    let reading = json_of(app.get_as("/me/shelf?status=reading", &ada.token).await).await;
    let ids: Vec<&str> = reading["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["book"]["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [books[1].to_string()]);
    let all = json_of(app.get_as("/me/shelf", &ada.token).await).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 2);

    let remove = format!("/me/shelf/{}", books[1]);
    assert_eq!(app.delete_as(&remove, &ada.token).await.status(), 204);
    assert_eq!(app.delete_as(&remove, &ada.token).await.status(), 404);
    assert_eq!(app.get("/me/shelf").await.status(), 401);
    let other = app.reader("bob@example.com").await;
    let bobs = json_of(app.get_as("/me/shelf", &other.token).await).await;
    assert_eq!(bobs["items"], json!([]), "shelves are private to their reader");
}

/// Found by schemathesis: on SQLite a transaction that reads and then writes failed
/// with "database is locked" (a 500) when another request committed in between.
/// Write transactions now take the write lock up front and wait their turn.
async fn concurrent_writes_all_succeed(backend: Backend) {
    const STATUSES: [&str; 3] = ["want_to_read", "reading", "read"];
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let ada = app.reader("ada@example.com").await;
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    let books = fixtures::books(&app.db, author, 5).await;

    let mut requests = Vec::new();
    for round in 0..8 {
        for (i, book) in books.iter().enumerate() {
            let title = json!({"title": format!("Edition {round}-{i}")});
            requests.push(
                app.request(Method::PATCH, &format!("/books/{book}"), Some(&admin.token))
                    .json(&title)
                    .send(),
            );
            let status = json!({ "status": STATUSES[round % 3] });
            requests.push(
                app.request(Method::PUT, &format!("/me/shelf/{book}"), Some(&ada.token))
                    .json(&status)
                    .send(),
            );
        }
    }
    let responses = futures_util::future::join_all(requests).await;
    let statuses: Vec<u16> = responses
        .iter()
        .map(|r| r.as_ref().unwrap().status().as_u16())
        .collect();

    assert!(statuses.iter().all(|s| matches!(s, 200 | 201)), "{statuses:?}");
}

/// However many requests race to shelve the same new book, exactly one answers 201
/// (the one whose insert made the row), the rest 200, and one row is committed.
async fn shelving_a_new_book_says_created_exactly_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.reader("ada@example.com").await;
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    let books = fixtures::books(&app.db, author, 25).await;

    for book in books {
        let requests = (0..12).map(|i| {
            let status = ["want_to_read", "reading", "read"][i % 3];
            app.request(Method::PUT, &format!("/me/shelf/{book}"), Some(&ada.token))
                .json(&json!({ "status": status }))
                .send()
        });
        let responses = futures_util::future::join_all(requests).await;
        let statuses: Vec<u16> = responses
            .iter()
            .map(|r| r.as_ref().unwrap().status().as_u16())
            .collect();

        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "book {book}: {statuses:?}"
        );
        assert!(statuses.iter().all(|s| matches!(s, 200 | 201)), "{statuses:?}");
        let stored = entity::ShelfEntry::find()
            .filter(entity::shelf_entry::Column::BookId.eq(book))
            .count(&app.db)
            .await
            .unwrap();
        assert_eq!(stored, 1);
    }
}

/// Readers review a book while an admin deletes it, many rounds. Every review request
/// either succeeds, and its answer is the review that was committed, or fails, and
/// nothing was committed for it: never a 404 for a review that was written.
async fn a_review_racing_its_books_deletion_is_all_or_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let mut readers = Vec::new();
    for i in 0..4 {
        readers.push(app.reader(&format!("reader{i}@example.com")).await);
    }
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    let books = fixtures::books(&app.db, author, 30).await;
    let (mut written, mut refused) = (0, 0);

    for book in books {
        let reviews = readers.iter().map(|reader| {
            app.request(Method::POST, &format!("/books/{book}/reviews"), Some(&reader.token))
                .json(&json!({"rating": 4, "body": "Raced its deletion."}))
                .send()
        });
        let book_path = format!("/books/{book}");
        let deletion = app.delete_as(&book_path, &admin.token);
        let (answers, deleted) = tokio::join!(futures_util::future::join_all(reviews), deletion);
        assert_eq!(deleted.status(), 204);

        for (reader, answer) in readers.iter().zip(answers) {
            let answer = answer.unwrap();
            let status = answer.status().as_u16();
            let body = json_of(answer).await;
            let stored = entity::Review::find()
                .filter(entity::review::Column::BookId.eq(book))
                .filter(entity::review::Column::UserId.eq(reader.id))
                .all(&app.db)
                .await
                .unwrap();
            match status {
                201 => {
                    written += 1;
                    assert_eq!(stored.len(), 1, "book {book}: {body}");
                    assert_eq!(body["id"], stored[0].id.to_string());
                }
                404 => {
                    refused += 1;
                    assert!(
                        stored.is_empty(),
                        "book {book}: a 404 for a committed review {stored:?}"
                    );
                }
                other => panic!("book {book}: {other} {body}"),
            }
        }
    }
    assert!(written + refused == 120, "{written} written, {refused} refused");
}

backend_tests!(
    a_review_racing_its_books_deletion_is_all_or_nothing,
    shelving_a_new_book_says_created_exactly_once,
    readers_review_once_and_the_rating_summary_follows,
    ratings_and_texts_are_validated,
    only_the_author_or_an_admin_changes_a_review,
    a_deleted_readers_reviews_leave_lists_and_counts,
    the_shelf_adds_updates_filters_and_removes,
    concurrent_writes_all_succeed,
);
