//! The README's five-minute tour answers as the README shows: the same requests,
//! against a real server, give bodies with the same fields (values differ: ids and
//! times are new each run). A field renamed, added or dropped fails here until the
//! README's sample is brought up to date.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use tests::{Backend, PASSWORD, backend_tests, spawn_app};

/// The one-line JSON bodies of the tour, in the order the README shows them.
fn tour_samples() -> Vec<Value> {
    include_str!("../../../README.md")
        .lines()
        .skip_while(|l| *l != "## A five-minute tour")
        .take_while(|l| !l.starts_with("## Running the API"))
        .filter(|l| l.starts_with('{'))
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// Field names, nested ones as `outer.inner`.
fn fields(value: &Value) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    if let Value::Object(map) = value {
        for (key, inner) in map {
            names.insert(key.clone());
            let inner = match inner {
                Value::Array(items) => items.first().unwrap_or(&Value::Null),
                other => other,
            };
            names.extend(fields(inner).into_iter().map(|f| format!("{key}.{f}")));
        }
    }
    names
}

async fn the_readme_tour_answers_as_shown(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let author = app.create_author(&admin, "Noor Bergstrom").await;
    let book = app.create_book(&admin, author, "A Burning Archive").await;
    let category: Value = app
        .post_json("/categories", &admin.token, json!({"name": "Award Winners"}))
        .await
        .json()
        .await
        .unwrap();
    let filed = json!({"category_ids": [category["id"]]});
    let filed = app
        .put_json(&format!("/books/{book}/categories"), &admin.token, filed)
        .await;
    assert!(filed.status().is_success());
    let samples = tour_samples();
    assert_eq!(samples.len(), 7, "the tour's one-line bodies: {samples:#?}");

    let registered = app.register("ada@example.com", PASSWORD, "Ada Lovelace").await;
    let registered: Value = registered.json().await.unwrap();
    let logged_in: Value = app.login("ada@example.com", PASSWORD).await.json().await.unwrap();
    let token = logged_in["token"].as_str().unwrap();
    let review = json!({"rating": 5, "title": "A map of fire", "body": "Every chapter burns brighter than the last."});
    let reviewed: Value = app
        .post_json(&format!("/books/{book}/reviews"), token, review)
        .await
        .json()
        .await
        .unwrap();
    let found = app.get_json("/search/books?q=burning+archive&limit=1").await;
    let profile_path = format!("/users/{}", registered["id"].as_str().unwrap());
    let profile = app.get_json(&profile_path).await;
    let refreshed: Value = app
        .post_as("/admin/stats/refresh", &admin.token)
        .await
        .json()
        .await
        .unwrap();
    let profile_after = app.get_json(&profile_path).await;

    let live = [
        registered,
        logged_in,
        reviewed,
        found,
        profile,
        refreshed,
        profile_after,
    ];
    for (sample, live) in samples.iter().zip(&live) {
        assert_eq!(
            fields(sample),
            fields(live),
            "README sample {sample}\nlive answer {live}"
        );
    }
    assert_eq!(
        live[4]["review_count"], 0,
        "not counted before the refresh, as the README says"
    );
    assert_eq!(live[6]["review_count"], 1);
    assert!(live[6]["as_of"].is_string());
}

backend_tests!(the_readme_tour_answers_as_shown);
