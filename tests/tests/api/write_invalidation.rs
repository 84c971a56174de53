//! Every write endpoint, listed from the OpenAPI document, against the cached reads it
//! must invalidate. Each read is warmed until the cache serves it (`x-statement-count:
//! 0`), the write goes through the endpoint, and the read must then come from the
//! database again. A read of something the write does not touch stays cached, so a
//! write cannot pass by emptying the whole cache. An endpoint added without a case
//! here fails the test: the list is the routes', not this file's.

use reqwest::Method;
use serde_json::{Value, json};
use tests::{Backend, PASSWORD, TestApp, TestUser, backend_tests, spawn_app_with};
use uuid::Uuid;

backend_tests!(every_write_endpoint_invalidates_the_cached_reads_that_show_it);

/// One write and what it must make the cache forget.
struct Case {
    method: Method,
    path: String,
    token: Option<String>,
    body: Option<Value>,
    /// Cached reads that show what the write changes.
    stale: Vec<String>,
}

impl Case {
    fn new(method: Method, path: String, token: Option<&str>, body: Option<Value>, stale: Vec<String>) -> Self {
        Case {
            method,
            path,
            token: token.map(str::to_owned),
            body,
            stale,
        }
    }
}

/// The write operations `/openapi.json` documents, as `operationId`s.
async fn write_operations(app: &TestApp) -> Vec<String> {
    let doc = app.get_json("/openapi.json").await;
    let mut ids = Vec::new();
    for item in doc["paths"].as_object().expect("paths").values() {
        for (method, op) in item.as_object().expect("a path item") {
            if ["post", "put", "patch", "delete"].contains(&method.as_str()) {
                ids.push(op["operationId"].as_str().expect("an operationId").to_owned());
            }
        }
    }
    ids.sort();
    ids
}

/// A fresh book with a reviewed, categorised neighbourhood, so every case writes to
/// rows of its own.
struct Shelf {
    author: Uuid,
    book: Uuid,
    category: Uuid,
    reader: TestUser,
    review: Uuid,
}

async fn catalogue(app: &TestApp, admin: &TestUser, n: &str) -> Shelf {
    let author = app.create_author(admin, &format!("Author {n}")).await;
    let book = app.create_book(admin, author, &format!("Book {n}")).await;
    let category = id_of(
        app.post_json("/categories", &admin.token, json!({"name": format!("Category {n}")}))
            .await,
    )
    .await;
    let filed = app
        .put_json(
            &format!("/books/{book}/categories"),
            &admin.token,
            json!({"category_ids": [category]}),
        )
        .await;
    assert_eq!(filed.status(), 200);
    let reader = app.reader(&format!("reader-{n}@example.com")).await;
    let review = app.review(&reader.token, book, 4, "Kept me up.").await;
    Shelf {
        author,
        book,
        category,
        reader,
        review,
    }
}

async fn id_of(response: reqwest::Response) -> Uuid {
    assert!(response.status().is_success(), "{}", response.status());
    let body: Value = response.json().await.unwrap();
    body["id"].as_str().expect("an id").parse().unwrap()
}

/// The write `operation` and the reads it must invalidate, on rows made for it.
async fn case(app: &TestApp, admin: &TestUser, operation: &str) -> Case {
    let s = catalogue(app, admin, operation).await;
    let admin_token = Some(admin.token.as_str());
    let reader_token = Some(s.reader.token.as_str());
    let (book, author, category) = (s.book, s.author, s.category);
    let profile = format!("/users/{}", s.reader.id);
    let book_detail = format!("/books/{book}");
    let author_detail = format!("/authors/{author}");
    match operation {
        "register" => Case::new(
            Method::POST,
            "/auth/register".into(),
            None,
            Some(json!({"email": "newcomer@example.com", "password": PASSWORD, "display_name": "New"})),
            vec![],
        ),
        "log_in" => Case::new(
            Method::POST,
            "/auth/login".into(),
            None,
            Some(json!({"email": s.reader.email, "password": PASSWORD})),
            vec![],
        ),
        "log_out" => Case::new(Method::POST, "/auth/logout".into(), reader_token, None, vec![]),
        "update_my_profile" => Case::new(
            Method::PATCH,
            "/me/profile".into(),
            reader_token,
            Some(json!({"display_name": "Renamed"})),
            vec![profile],
        ),
        "delete_my_account" => Case::new(
            Method::DELETE,
            "/me".into(),
            reader_token,
            None,
            vec![profile, book_detail],
        ),
        "shelve_book" => Case::new(
            Method::PUT,
            format!("/me/shelf/{book}"),
            reader_token,
            Some(json!({"status": "reading"})),
            vec![],
        ),
        "unshelve_book" => {
            let shelved = app
                .put_json(&format!("/me/shelf/{book}"), &s.reader.token, json!({"status": "read"}))
                .await;
            assert_eq!(shelved.status(), 201);
            Case::new(Method::DELETE, format!("/me/shelf/{book}"), reader_token, None, vec![])
        }
        "create_review" => {
            let other = app.reader(&format!("second-{operation}@example.com")).await;
            Case::new(
                Method::POST,
                format!("/books/{book}/reviews"),
                Some(other.token.as_str()),
                Some(json!({"rating": 1, "body": "Not for me."})),
                vec![book_detail],
            )
        }
        "update_review" => Case::new(
            Method::PATCH,
            format!("/reviews/{}", s.review),
            reader_token,
            Some(json!({"rating": 2})),
            vec![book_detail],
        ),
        "delete_review" => Case::new(
            Method::DELETE,
            format!("/reviews/{}", s.review),
            reader_token,
            None,
            vec![book_detail],
        ),
        "create_book" => Case::new(
            Method::POST,
            "/books".into(),
            admin_token,
            Some(json!({"author_id": author, "title": "A second book"})),
            vec![author_detail],
        ),
        "update_book" => {
            let other = app.create_author(admin, "Other author").await;
            Case::new(
                Method::PATCH,
                book_detail.clone(),
                admin_token,
                Some(json!({"title": "Moved", "author_id": other})),
                vec![book_detail, author_detail, format!("/authors/{other}")],
            )
        }
        "delete_book" => Case::new(
            Method::DELETE,
            book_detail.clone(),
            admin_token,
            None,
            vec![book_detail, author_detail],
        ),
        "set_book_categories" => Case::new(
            Method::PUT,
            format!("/books/{book}/categories"),
            admin_token,
            Some(json!({"category_ids": []})),
            vec![book_detail],
        ),
        "create_author" => Case::new(
            Method::POST,
            "/authors".into(),
            admin_token,
            Some(json!({"name": "Newcomer"})),
            vec![],
        ),
        "update_author" => Case::new(
            Method::PATCH,
            author_detail.clone(),
            admin_token,
            Some(json!({"name": "Renamed author"})),
            vec![author_detail, book_detail],
        ),
        "delete_author" => Case::new(
            Method::DELETE,
            author_detail.clone(),
            admin_token,
            None,
            vec![author_detail, book_detail],
        ),
        "create_category" => Case::new(
            Method::POST,
            "/categories".into(),
            admin_token,
            Some(json!({"name": "A child", "parent_id": category})),
            vec![
                format!("/categories/{category}"),
                format!("/categories/{category}/tree"),
            ],
        ),
        "update_category" => Case::new(
            Method::PATCH,
            format!("/categories/{category}"),
            admin_token,
            Some(json!({"name": format!("Renamed {operation}")})),
            vec![format!("/categories/{category}"), book_detail],
        ),
        "delete_category" => Case::new(
            Method::DELETE,
            format!("/categories/{category}"),
            admin_token,
            None,
            vec![format!("/categories/{category}/tree"), book_detail],
        ),
        "update_user" => Case::new(
            Method::PATCH,
            format!("/admin/users/{}", s.reader.id),
            admin_token,
            Some(json!({"role": "admin"})),
            vec![],
        ),
        "delete_user" => Case::new(
            Method::DELETE,
            format!("/admin/users/{}", s.reader.id),
            admin_token,
            None,
            vec![profile, book_detail],
        ),
        "restore_user" => {
            let deleted = app
                .delete_as(&format!("/admin/users/{}", s.reader.id), &admin.token)
                .await;
            assert_eq!(deleted.status(), 204);
            // A deleted reader's profile is a 404, which is never cached; their
            // review's weight in the book's rating is.
            Case::new(
                Method::POST,
                format!("/admin/users/{}/restore", s.reader.id),
                admin_token,
                None,
                vec![book_detail],
            )
        }
        "refresh_reader_stats" => Case::new(
            Method::POST,
            "/admin/stats/refresh".into(),
            admin_token,
            None,
            vec![profile],
        ),
        other => {
            panic!("{other} writes, and this test has no case for it: add one saying which cached reads it changes")
        }
    }
}

/// Whether `path` was served from the cache this time.
async fn from_cache(app: &TestApp, path: &str) -> bool {
    app.get(path)
        .await
        .headers()
        .get("x-statement-count")
        .is_some_and(|count| count == "0")
}

async fn every_write_endpoint_invalidates_the_cached_reads_that_show_it(backend: Backend) {
    // Every reader signs in from 127.0.0.1: more than the per-client login limit.
    let app = spawn_app_with(backend, |s| s.security.throttle.per_client = 10_000).await;
    let admin = app.admin().await;
    let operations = write_operations(&app).await;
    assert!(
        operations.len() >= 20,
        "only {} write operations documented",
        operations.len()
    );
    let bystander = catalogue(&app, &admin, "bystander").await;
    let untouched = format!("/books/{}", bystander.book);
    for operation in &operations {
        let case = case(&app, &admin, operation).await;
        for path in case.stale.iter().chain([&untouched]) {
            app.cached(path).await;
        }
        let response = app
            .send(
                case.method.clone(),
                &case.path,
                case.token.as_deref(),
                case.body.clone(),
            )
            .await;
        assert!(
            response.status().is_success(),
            "{operation}: {} {} answered {}",
            case.method,
            case.path,
            response.status()
        );
        for path in &case.stale {
            assert!(
                !from_cache(&app, path).await,
                "{operation} changed what {path} shows, and the cache still served it"
            );
        }
        assert!(
            from_cache(&app, &untouched).await,
            "{operation} emptied the cache of {untouched}, which it does not touch"
        );
    }
}
