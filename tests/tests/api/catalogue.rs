//! Authors, books and categories over HTTP: who may curate, what is validated,
//! what soft deletion hides, and the category tree's rules.

use std::collections::HashSet;

use reqwest::Method;
use serde_json::{Value, json};
use tests::{
    Backend, TestApp, TestDatabase, TestUser, backend_tests, field_errors, fixtures, json_of, spawn_app, spawn_app_on,
};
use uuid::Uuid;

async fn post_book(app: &TestApp, admin: &TestUser, body: Value) -> reqwest::Response {
    app.post_json("/books", &admin.token, body).await
}

async fn only_admins_curate_the_catalogue(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let reader = app.reader("reader@example.com").await;
    let author = app.create_author(&admin, "Ursula K. Le Guin").await;

    let writes = [
        (Method::POST, "/authors".to_owned(), Some(json!({"name": "X"}))),
        (Method::PATCH, format!("/authors/{author}"), Some(json!({"name": "Y"}))),
        (Method::DELETE, format!("/authors/{author}"), None),
        (
            Method::POST,
            "/books".to_owned(),
            Some(json!({"author_id": author, "title": "T"})),
        ),
        (Method::POST, "/categories".to_owned(), Some(json!({"name": "Fantasy"}))),
    ];
    for (method, path, body) in writes {
        let anonymous = app.send(method.clone(), &path, None, body.clone()).await;
        assert_eq!(anonymous.status(), 401, "anonymous {method} {path}");
        let as_reader = app.send(method.clone(), &path, Some(&reader.token), body).await;
        assert_eq!(as_reader.status(), 403, "reader {method} {path}");
    }
    // Everyone may read.
    assert_eq!(app.get(&format!("/authors/{author}")).await.status(), 200);
    assert_eq!(app.get_as("/books", &reader.token).await.status(), 200);
    let author_now = json_of(app.get(&format!("/authors/{author}")).await).await;
    assert_eq!(author_now["name"], "Ursula K. Le Guin", "no write got through");
}

async fn books_are_validated_field_by_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let author = app.create_author(&admin, "Author").await;

    let response = post_book(
        &app,
        &admin,
        json!({"author_id": Uuid::now_v7(), "title": " ", "isbn": "978-0-306-40615-8", "published_year": 9999}),
    )
    .await;
    assert_eq!(response.status(), 422);
    let mut fields: Vec<String> = field_errors(&json_of(response).await)
        .into_iter()
        .map(|(field, _)| field)
        .collect();
    fields.sort();
    assert_eq!(fields, ["isbn", "published_year", "title"]);

    let unknown_author = post_book(&app, &admin, json!({"author_id": Uuid::now_v7(), "title": "Orphan"})).await;
    assert_eq!(unknown_author.status(), 422);
    assert_eq!(json_of(unknown_author).await["errors"][0]["field"], "author_id");

    let created = post_book(
        &app,
        &admin,
        json!({"author_id": author, "title": "Dune", "isbn": "0-441-17271-7"}),
    )
    .await;
    assert_eq!(created.status(), 201);
    assert_eq!(
        json_of(created).await["isbn"],
        "9780441172719",
        "ISBN-10 is stored as ISBN-13"
    );
    let duplicate = post_book(
        &app,
        &admin,
        json!({"author_id": author, "title": "Dune again", "isbn": "9780441172719"}),
    )
    .await;
    assert_eq!(duplicate.status(), 409);
}

async fn soft_deleted_books_and_authors_disappear_everywhere(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let reader = app.reader("reader@example.com").await;
    let author = app.create_author(&admin, "Author").await;
    let other = app.create_author(&admin, "Other").await;
    let book: Uuid = json_of(post_book(&app, &admin, json!({"author_id": author, "title": "Gone"})).await).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let kept: Uuid = json_of(post_book(&app, &admin, json!({"author_id": other, "title": "Kept"})).await).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let review = json!({"rating": 4, "body": "Good."});
    assert_eq!(
        app.post_json(&format!("/books/{book}/reviews"), &reader.token, review)
            .await
            .status(),
        201
    );

    assert_eq!(
        app.delete_as(&format!("/books/{book}"), &admin.token).await.status(),
        204
    );

    assert_eq!(app.get(&format!("/books/{book}")).await.status(), 404);
    assert_eq!(app.get(&format!("/books/{book}/reviews")).await.status(), 404);
    assert_eq!(
        app.delete_as(&format!("/books/{book}"), &admin.token).await.status(),
        404
    );
    let listed: Vec<String> = json_of(app.get("/books").await).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(listed, ["Kept"]);
    let author_view = json_of(app.get(&format!("/authors/{author}")).await).await;
    assert_eq!(author_view["books"], json!([]), "not embedded under its author either");
    let reader_reviews = json_of(app.get(&format!("/users/{}/reviews", reader.id)).await).await;
    assert_eq!(reader_reviews["items"], json!([]), "nor its reviews");
    let shelve = app
        .put_json(
            &format!("/me/shelf/{book}"),
            &reader.token,
            json!({"status": "reading"}),
        )
        .await;
    assert_eq!(shelve.status(), 404);

    // Deleting an author hides them and their books.
    assert_eq!(
        app.delete_as(&format!("/authors/{other}"), &admin.token).await.status(),
        204
    );
    assert_eq!(app.get(&format!("/authors/{other}")).await.status(), 404);
    assert_eq!(app.get(&format!("/books/{kept}")).await.status(), 404);
    assert_eq!(json_of(app.get("/books").await).await["items"], json!([]));
    assert_eq!(
        json_of(app.get("/authors").await).await["items"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn unknown_and_malformed_ids_are_404(backend: Backend) {
    let app = spawn_app(backend).await;
    let nobody = Uuid::now_v7();
    for path in [
        format!("/authors/{nobody}"),
        format!("/books/{nobody}"),
        format!("/books/{nobody}/reviews"),
        format!("/users/{nobody}/reviews"),
        format!("/reviews/{nobody}"),
        format!("/categories/{nobody}"),
        format!("/categories/{nobody}/tree"),
        "/books/not-a-uuid".to_owned(),
        "/categories/42/tree".to_owned(),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status(), 404, "{path}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
}

async fn a_category_cannot_move_under_its_own_descendant(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let post = |body: Value| app.post_json("/categories", &admin.token, body);
    let fiction: Uuid = json_of(post(json!({"name": "Fiction"})).await).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let fantasy: Uuid = json_of(post(json!({"name": "Fantasy", "parent_id": fiction})).await).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let epic: Uuid = json_of(post(json!({"name": "Epic", "parent_id": fantasy})).await).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let app = &app;
    let patch = |id: Uuid, body: Value| {
        let path = format!("/categories/{id}");
        let token = admin.token.clone();
        async move { app.patch_json(&path, &token, body).await }
    };

    for target in [epic, fantasy, fiction] {
        let response = patch(fiction, json!({"parent_id": target})).await;
        assert_eq!(response.status(), 409, "moving Fiction under {target}");
    }
    assert_eq!(
        post(json!({"name": "Fantasy", "parent_id": fiction})).await.status(),
        409,
        "sibling names are unique"
    );

    // A legal move, then the breadcrumb follows it.
    let science: Uuid = json_of(post(json!({"name": "Science"})).await).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        patch(fantasy, json!({"parent_id": science, "name": "Speculative"}))
            .await
            .status(),
        200
    );
    let detail = json_of(app.get(&format!("/categories/{epic}")).await).await;
    let path: Vec<&str> = detail["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(path, ["Science", "Speculative"]);

    // Deleting a category makes its children roots.
    assert_eq!(
        app.delete_as(&format!("/categories/{science}"), &admin.token)
            .await
            .status(),
        204
    );
    let moved = json_of(app.get(&format!("/categories/{fantasy}")).await).await;
    assert_eq!(moved["parent_id"], Value::Null);
    let roots: HashSet<String> = json_of(app.get("/categories").await).await["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(roots, HashSet::from(["Fiction".to_owned(), "Speculative".to_owned()]));

    // Found by schemathesis: deleting a parent must not orphan a child into a second
    // root with an existing root's name; the delete is refused instead of failing with a 500.
    let clash: Uuid = json_of(post(json!({"name": "Speculative", "parent_id": fiction})).await).await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let refused = app.delete_as(&format!("/categories/{fiction}"), &admin.token).await;
    assert_eq!(refused.status(), 409, "two roots would share a name");
    assert!(
        app.get(&format!("/categories/{clash}")).await.status().is_success(),
        "nothing was deleted"
    );
}

async fn a_books_detail_lists_its_categories_by_name_with_its_rating(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let author = app.create_author(&admin, "Author").await;
    let fiction = new_category(&app, &admin, "Fiction").await;
    let poetry = new_category(&app, &admin, "Poetry").await;
    let westerns = new_category(&app, &admin, "Westerns").await;
    // Two categories of one name, under different parents: ordered by id between them.
    let mut classics = Vec::new();
    for parent in [&fiction, &poetry] {
        let created = app
            .post_json(
                "/categories",
                &admin.token,
                json!({"name": "Classics", "parent_id": parent}),
            )
            .await;
        assert_eq!(created.status(), 201);
        classics.push(json_of(created).await["id"].as_str().unwrap().to_owned());
    }
    classics.sort();
    let book = json_of(post_book(&app, &admin, json!({"author_id": author, "title": "Filed"})).await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let unfiled = json_of(post_book(&app, &admin, json!({"author_id": author, "title": "Unfiled"})).await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let filed = app
        .put_json(
            &format!("/books/{book}/categories"),
            &admin.token,
            json!({"category_ids": [westerns, classics[1], poetry, classics[0]]}),
        )
        .await;
    assert_eq!(filed.status(), 200);
    for (reader, rating) in [("one@example.com", 5), ("two@example.com", 2)] {
        let reader = app.reader(reader).await;
        let review = json!({"rating": rating, "body": "Read it."});
        let posted = app
            .post_json(&format!("/books/{book}/reviews"), &reader.token, review)
            .await;
        assert_eq!(posted.status(), 201);
    }

    let detail = json_of(app.get(&format!("/books/{book}")).await).await;
    let categories: Vec<(String, String)> = detail["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("Classics", &classics[0]),
        ("Classics", &classics[1]),
        ("Poetry", &poetry),
        ("Westerns", &westerns),
    ]
    .map(|(name, id)| (name.to_owned(), id.clone()));
    assert_eq!(categories, expected);
    assert_eq!(detail["author"]["id"], json!(author));
    assert_eq!(detail["average_rating"], 3.5);
    assert_eq!(detail["review_count"], 2);

    let alone = json_of(app.get(&format!("/books/{unfiled}")).await).await;
    assert_eq!(alone["categories"], json!([]));
    assert_eq!(alone["average_rating"], Value::Null);
    assert_eq!(alone["review_count"], 0);
}

async fn filtering_by_category_covers_its_whole_subtree(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    let books = fixtures::books(&app.db, author, 4).await;
    let root = fixtures::categories(&app.db, None, 1, "Fiction").await[0];
    let child = fixtures::categories(&app.db, Some(root), 1, "Fantasy").await[0];
    let grandchild = fixtures::categories(&app.db, Some(child), 1, "Epic").await[0];
    let elsewhere = fixtures::categories(&app.db, None, 1, "Science").await[0];
    fixtures::file_under_categories(&app.db, &books[0..1], &[root]).await;
    fixtures::file_under_categories(&app.db, &books[1..2], &[grandchild]).await;
    fixtures::file_under_categories(&app.db, &books[2..3], &[elsewhere]).await;
    let set = app
        .put_json(
            &format!("/books/{}/categories", books[3]),
            &admin.token,
            json!({"category_ids": [child]}),
        )
        .await;
    assert_eq!(set.status(), 200);
    assert_eq!(json_of(set).await["categories"][0]["name"], "Fantasy 000");

    let ids = |body: Value| -> HashSet<Uuid> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap().parse().unwrap())
            .collect()
    };
    let under_root = ids(json_of(app.get(&format!("/books?category_id={root}")).await).await);
    assert_eq!(under_root, HashSet::from([books[0], books[1], books[3]]));
    let under_child = ids(json_of(app.get(&format!("/books?category_id={child}")).await).await);
    assert_eq!(under_child, HashSet::from([books[1], books[3]]));
    let tree = json_of(app.get(&format!("/categories/{root}/tree")).await).await;
    assert_eq!(tree["children"][0]["children"][0]["name"], "Epic 000");
}

async fn walking_120_books_in_pages_misses_and_repeats_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let authors = fixtures::authors(&app.db, 3, "Author").await;
    let mut all = HashSet::new();
    for author in &authors {
        all.extend(fixtures::books(&app.db, *author, 40).await);
    }

    for sort in ["created", "title", "year"] {
        let seen: Vec<Uuid> = app
            .walk_pages(&format!("/books?sort={sort}&limit=7"), None)
            .await
            .iter()
            .map(|b| b["id"].as_str().unwrap().parse().unwrap())
            .collect();
        assert_eq!(seen.len(), 120, "sort={sort}");
        assert_eq!(
            seen.iter().copied().collect::<HashSet<_>>(),
            all,
            "sort={sort}: every book exactly once"
        );
    }

    let garbage = app.get("/books?cursor=definitely-not-a-cursor").await;
    assert_eq!(garbage.status(), 400);
    let title_cursor = json_of(app.get("/books?sort=title&limit=1").await).await["next_cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let mixed = app.get(&format!("/books?sort=created&cursor={title_cursor}")).await;
    assert_eq!(mixed.status(), 400, "a cursor from another sort order");
    let capped = json_of(app.get("/books?limit=1000").await).await;
    assert_eq!(capped["items"].as_array().unwrap().len(), 100, "limit is capped at 100");
    assert_eq!(app.get("/books?limit=0").await.status(), 400);
    assert_eq!(app.get("/books?limit=-3").await.status(), 400);
}

/// Each unique key answers with what breaking it means, on both backends, which name
/// their keys differently in their errors.
async fn each_unique_key_answers_with_what_it_means(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let reader = app.reader("reader@example.com").await;
    let author = app.create_author(&admin, "Author").await;
    async fn conflict(response: reqwest::Response) -> String {
        assert_eq!(response.status(), 409);
        json_of(response).await["detail"].as_str().unwrap().to_owned()
    }

    let dune = json!({"author_id": author, "title": "Dune", "isbn": "978-0-306-40615-7"});
    let book = json_of(post_book(&app, &admin, dune.clone()).await).await["id"].clone();
    assert_eq!(
        conflict(post_book(&app, &admin, dune).await).await,
        "a book with this ISBN already exists"
    );

    let review = json!({"rating": 5, "body": "Yes."});
    let reviews = format!("/books/{}/reviews", book.as_str().unwrap());
    assert_eq!(
        app.post_json(&reviews, &reader.token, review.clone()).await.status(),
        201
    );
    assert_eq!(
        conflict(app.post_json(&reviews, &reader.token, review).await).await,
        "you have already reviewed this book"
    );

    let sibling = "a category with this name already exists at this level";
    let fiction = json!({"name": "Fiction"});
    let root = json_of(app.post_json("/categories", &admin.token, fiction.clone()).await).await["id"].clone();
    assert_eq!(
        conflict(app.post_json("/categories", &admin.token, fiction).await).await,
        sibling,
        "a root"
    );
    let sf = json!({"name": "SF", "parent_id": root});
    assert_eq!(
        app.post_json("/categories", &admin.token, sf.clone()).await.status(),
        201
    );
    assert_eq!(
        conflict(app.post_json("/categories", &admin.token, sf).await).await,
        sibling,
        "a child"
    );
    let root_sf = app.post_json("/categories", &admin.token, json!({"name": "SF"})).await;
    assert_eq!(root_sf.status(), 201, "a root may share a child's name");
    let orphaning = app
        .delete_as(&format!("/categories/{}", root.as_str().unwrap()), &admin.token)
        .await;
    assert!(conflict(orphaning).await.contains("same name as a root category"));
}

/// Two admins move two categories under each other at the same moment. Each move alone
/// is fine; together they would close a cycle. The cycle check and the move are one
/// transaction and moves take turns (on PostgreSQL, as the restricted role production
/// runs with), so one wins and the other is a 409, every round: each answer is compared
/// with what the database holds afterwards.
async fn concurrent_moves_never_close_a_cycle(backend: Backend) {
    let database = std::sync::Arc::new(TestDatabase::create(backend).await);
    let owner = database.connect().await;
    <migration::Migrator as migration::MigratorTrait>::up(&owner, None)
        .await
        .unwrap();
    let restricted = match backend {
        Backend::Postgres => Some(database.create_app_role().await),
        Backend::Sqlite => None,
    };
    let app = spawn_app_on(&database, |s| {
        s.database.auto_migrate = false;
        if let Some(role) = &restricted {
            s.database.pool.url = service::database::DatabaseUrl::new(role.url.clone());
        }
    })
    .await;
    let admin = app.admin().await;
    for round in 0..20 {
        let a = new_category(&app, &admin, &format!("A{round}")).await;
        let b = new_category(&app, &admin, &format!("B{round}")).await;
        let (a_moved, b_moved) = tokio::join!(move_under(&app, &admin, &a, &b), move_under(&app, &admin, &b, &a));
        let statuses = (a_moved.status().as_u16(), b_moved.status().as_u16());
        assert!(
            statuses == (200, 409) || statuses == (409, 200),
            "round {round}: one move wins, the other is refused; got {statuses:?}"
        );
        let a_parent = app.get_json(&format!("/categories/{a}")).await["parent_id"].clone();
        let b_parent = app.get_json(&format!("/categories/{b}")).await["parent_id"].clone();
        let expected = |won: bool, parent: &str| if won { json!(parent) } else { Value::Null };
        assert_eq!(a_parent, expected(statuses.0 == 200, &b), "round {round}");
        assert_eq!(b_parent, expected(statuses.1 == 200, &a), "round {round}");
    }
    owner.close().await.ok();
}

async fn new_category(app: &TestApp, admin: &TestUser, name: &str) -> String {
    let created = json_of(
        app.post_json("/categories", &admin.token, json!({ "name": name }))
            .await,
    )
    .await;
    created["id"].as_str().expect("an id").to_owned()
}

async fn move_under(app: &TestApp, admin: &TestUser, child: &str, parent: &str) -> reqwest::Response {
    app.patch_json(
        &format!("/categories/{child}"),
        &admin.token,
        json!({ "parent_id": parent }),
    )
    .await
}

backend_tests!(
    concurrent_moves_never_close_a_cycle,
    each_unique_key_answers_with_what_it_means,
    only_admins_curate_the_catalogue,
    books_are_validated_field_by_field,
    soft_deleted_books_and_authors_disappear_everywhere,
    unknown_and_malformed_ids_are_404,
    a_category_cannot_move_under_its_own_descendant,
    filtering_by_category_covers_its_whole_subtree,
    a_books_detail_lists_its_categories_by_name_with_its_rating,
    walking_120_books_in_pages_misses_and_repeats_nothing,
);
