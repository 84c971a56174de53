//! The OpenAPI document describes every endpoint the server routes.

use serde_json::Value;
use tests::{Backend, backend_tests, spawn_app};

const OPERATIONS: &[(&str, &str)] = &[
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("post", "/auth/register"),
    ("post", "/auth/login"),
    ("post", "/auth/logout"),
    ("get", "/me"),
    ("delete", "/me"),
    ("patch", "/me/profile"),
    ("get", "/me/shelf"),
    ("put", "/me/shelf/{book_id}"),
    ("delete", "/me/shelf/{book_id}"),
    ("get", "/admin/users"),
    ("patch", "/admin/users/{id}"),
    ("delete", "/admin/users/{id}"),
    ("post", "/admin/users/{id}/restore"),
    ("get", "/authors"),
    ("post", "/authors"),
    ("get", "/authors/{id}"),
    ("patch", "/authors/{id}"),
    ("delete", "/authors/{id}"),
    ("get", "/books"),
    ("post", "/books"),
    ("get", "/books/{id}"),
    ("patch", "/books/{id}"),
    ("delete", "/books/{id}"),
    ("put", "/books/{id}/categories"),
    ("get", "/books/{id}/reviews"),
    ("post", "/books/{id}/reviews"),
    ("get", "/users/{id}/reviews"),
    ("get", "/users/{id}"),
    ("post", "/admin/stats/refresh"),
    ("get", "/admin/audit"),
    ("get", "/reviews/{id}"),
    ("patch", "/reviews/{id}"),
    ("delete", "/reviews/{id}"),
    ("get", "/categories"),
    ("post", "/categories"),
    ("get", "/categories/{id}"),
    ("patch", "/categories/{id}"),
    ("delete", "/categories/{id}"),
    ("get", "/categories/{id}/tree"),
    ("get", "/search/books"),
    ("get", "/search/reviews"),
];

async fn the_document_is_openapi_3_1_and_lists_every_operation(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = app.get("/openapi.json").await;

    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect();
    documented.sort();
    let mut expected: Vec<(String, String)> = OPERATIONS.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    expected.sort();
    assert_eq!(documented, expected);

    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let mut operation_ids: Vec<&str> = OPERATIONS
        .iter()
        .map(|(m, p)| {
            doc["paths"][p][m]["operationId"]
                .as_str()
                .expect("every operation has an id")
        })
        .collect();
    operation_ids.sort();
    let count = operation_ids.len();
    operation_ids.dedup();
    assert_eq!(operation_ids.len(), count, "operationIds must be unique");
    for (method, path) in OPERATIONS {
        let op = &doc["paths"][path][method];
        let responses = op["responses"].as_object().unwrap();
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                assert!(
                    response["content"]["application/problem+json"].is_object(),
                    "{method} {path} {status} is not documented as problem+json"
                );
            }
        }
        let needs_token = op["security"].as_array().is_some_and(|s| !s.is_empty());
        let says_401 = responses.contains_key("401");
        assert!(
            !needs_token || says_401,
            "{method} {path} takes a token but documents no 401"
        );
    }
}

/// Every `"$ref"` anywhere in `value`, with where it was found.
fn references<'a>(value: &'a Value, at: String, found: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", Value::String(target)) => found.push((at.clone(), target)),
                    _ => references(child, format!("{at}/{key}"), found),
                }
            }
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                references(item, format!("{at}/{index}"), found);
            }
        }
        _ => {}
    }
}

async fn every_reference_in_the_document_resolves(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();

    let mut found = Vec::new();
    references(&doc, String::new(), &mut found);

    assert!(found.len() > 20, "the document uses shared schemas: {}", found.len());
    for (at, target) in found {
        let pointer = target
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("{at}: only local references are used, not {target}"));
        assert!(doc.pointer(pointer).is_some(), "{at}: dangling $ref {target}");
    }
}

backend_tests!(
    the_document_is_openapi_3_1_and_lists_every_operation,
    every_reference_in_the_document_resolves,
);
