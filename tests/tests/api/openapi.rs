//! The OpenAPI document describes every endpoint the server routes. It is collected
//! from the same registrations that route requests, so the tests check what that
//! promises rather than keep a list of their own: every documented operation is
//! served, every other method on a documented path is a 405 naming the documented
//! ones, and every operation is described as clients need it.

use reqwest::Method;
use serde_json::Value;
use tests::{Backend, backend_tests, spawn_app};

/// Every `(method, path)` the document lists.
fn operations(doc: &Value) -> Vec<(String, String)> {
    doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .filter(|key| *key != "parameters")
                .map(move |method| (method.clone(), path.clone()))
        })
        .collect()
}

/// `path` with every `{parameter}` filled with an id nothing has.
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "00000000-0000-0000-0000-000000000000"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

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
    let operations = operations(&doc);
    assert!(
        operations.len() >= 43,
        "only {} operations documented",
        operations.len()
    );
    assert!(operations.contains(&("get".to_owned(), "/books/{id}".to_owned())));

    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let mut operation_ids: Vec<&str> = operations
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
    for (method, path) in &operations {
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
        let security = op["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{method} {path} says nothing of security; public is `security: []`"));
        let needs_token = !security.is_empty();
        let says_401 = responses.contains_key("401");
        let summary = op["summary"].as_str().unwrap_or_default();
        assert!(
            !summary.is_empty() && summary.len() <= 60,
            "{method} {path}: summary {summary:?}"
        );
        let id = op["operationId"].as_str().unwrap();
        assert!(
            id.split('_')
                .all(|word| !word.is_empty() && word.bytes().all(|b| b.is_ascii_lowercase())),
            "{method} {path}: operationId {id} is not a snake_case method name"
        );
        assert!(
            !needs_token || says_401,
            "{method} {path} takes a token but documents no 401"
        );
    }
}

async fn every_documented_operation_is_served_and_other_methods_are_405(backend: Backend) {
    let app = spawn_app(backend).await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();

    for (method, path) in operations(&doc) {
        // No token and an empty body: a served route answers 401, 400, 422 or its
        // own "… not found", never the router's 404 or 405.
        let url = concrete(&path);
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let body = (method != Method::GET && method != Method::DELETE).then(|| serde_json::json!({}));
        let response = app.send(method.clone(), &url, None, body).await;
        let status = response.status();
        let problem: Value = response.json().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {path}");
        // What the document says of security is what the server does: an operation
        // marked public never asks for a token, and every other one does.
        let public = doc["paths"][&path][method.as_str().to_lowercase()]["security"] == serde_json::json!([]);
        assert_eq!(
            status == 401,
            !public,
            "{method} {path} answered {status} without a token"
        );
        assert!(
            status != 404 || problem["detail"] != "no resource at this address",
            "{method} {path} is documented but not routed"
        );
    }

    let paths = doc["paths"].as_object().unwrap();
    for (path, item) in paths {
        let documented: Vec<String> = ["get", "post", "put", "patch", "delete"]
            .into_iter()
            .filter(|m| item.get(*m).is_some())
            .map(str::to_uppercase)
            .collect();
        let other = ["PUT", "POST", "PATCH"]
            .into_iter()
            .find(|m| !documented.iter().any(|d| d == m))
            .unwrap();
        let response = app
            .send(
                Method::from_bytes(other.as_bytes()).unwrap(),
                &concrete(path),
                None,
                None,
            )
            .await;
        assert_eq!(response.status(), 405, "{other} {path}");
        assert_eq!(response.headers()["allow"], documented.join(", ").as_str(), "{path}");
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

/// `/docs` shows the whole reference in a browser that cannot reach beyond this
/// machine, and nothing on the page asks for anything from elsewhere: every operation
/// in the document is listed, and every request the page made went to this server.
/// One backend is enough: the page does not touch the database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_page_works_with_no_network_beyond_this_machine() {
    let app = spawn_app(Backend::Sqlite).await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let url = app.url("/docs");

    let visit = tokio::task::spawn_blocking(move || tests::browser::visit_offline(&url))
        .await
        .unwrap();

    let listed = visit.dom.matches(r#"class="opblock-summary-path""#).count();
    assert_eq!(listed, operations(&doc).len(), "operations shown on the page");
    assert!(visit.dom.contains("List books"), "summaries are shown");
    let own = app.url("/");
    let elsewhere: Vec<&String> = visit.requests.iter().filter(|u| !u.starts_with(&own)).collect();
    assert!(elsewhere.is_empty(), "the page asked beyond this server: {elsewhere:?}");
    assert!(
        visit.requests.contains(&app.url("/openapi.json")),
        "{:?}",
        visit.requests
    );
}

/// Every operation the document marks as needing a token refuses a caller without
/// the right with a 401 or 403, 20 times out of 20, whatever the body holds: the
/// body is not read before the caller is authorised. The list comes from the
/// document; the role from its 403 ("Not an admin": admins only; any other 403:
/// members, so a read-only guest account is refused).
async fn every_operation_that_needs_a_role_refuses_before_reading_the_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let reader = app.reader("reader@example.com").await;
    let guest = app.reader("guest@example.com").await;
    let demoted = app
        .patch_json(
            &format!("/admin/users/{}", guest.id),
            &admin.token,
            serde_json::json!({"role": "guest"}),
        )
        .await;
    assert_eq!(demoted.status(), 200, "a role change ends the sessions: sign in again");
    let guest_token = app.token_for(&guest.email, tests::PASSWORD).await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let bodies = [r#"{}"#, r#"{"unknown": 1}"#, r#"["an", "array"]"#, r#"{"truncated": "#];

    let mut checked = 0;
    for (method, path) in operations(&doc) {
        let op = &doc["paths"][&path][&method];
        if !op["security"]
            .as_array()
            .is_some_and(|s| s.iter().any(|r| r.get("bearer").is_some()))
        {
            continue;
        }
        let mut callers = vec![(None, 401), (Some("bw_not-a-token-anyone-has"), 401)];
        match op["responses"]["403"]["description"].as_str() {
            Some("Not an admin") => callers.push((Some(reader.token.as_str()), 403)),
            Some(_) => callers.push((Some(guest_token.as_str()), 403)),
            None => {}
        }
        let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        for (token, expected) in callers {
            for attempt in 0..20 {
                let response = app
                    .request(method.clone(), &concrete(&path), token)
                    .header("content-type", "application/json")
                    .body(bodies[attempt % bodies.len()])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    response.status().as_u16(),
                    expected,
                    "{method} {path} with token {token:?}, body {}",
                    bodies[attempt % bodies.len()]
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 60, "only {checked} operation and caller pairs checked");
}

backend_tests!(
    every_operation_that_needs_a_role_refuses_before_reading_the_body,
    the_document_is_openapi_3_1_and_lists_every_operation,
    every_documented_operation_is_served_and_other_methods_are_405,
    every_reference_in_the_document_resolves,
);
