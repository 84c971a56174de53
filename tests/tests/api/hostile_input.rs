//! What a hostile client sends: NUL characters, arrays for objects, floats for
//! integers, tampered cursors. Every one is a 4xx problem, and nothing is stored.

use reqwest::Method;
use serde_json::{Value, json};
use tests::{Backend, backend_tests, fixtures, spawn_app};
use uuid::Uuid;

/// Follows a local `$ref` (`#/components/schemas/Name`); panics on a dangling one.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let target = doc
                .pointer(reference.trim_start_matches('#'))
                .unwrap_or_else(|| panic!("dangling $ref {reference}"));
            resolve(doc, target)
        }
        None => schema,
    }
}

/// Does this schema accept a string (alone, nullable, or among alternatives)?
fn takes_text(doc: &Value, schema: &Value) -> bool {
    let schema = resolve(doc, schema);
    let typed = match &schema["type"] {
        Value::String(t) => t == "string",
        Value::Array(types) => types.iter().any(|t| t == "string"),
        _ => false,
    };
    let alternatives = ["oneOf", "anyOf", "allOf"].iter().any(|key| {
        schema[*key]
            .as_array()
            .is_some_and(|all| all.iter().any(|s| takes_text(doc, s)))
    });
    typed || alternatives
}

/// Asserts a 400 problem that names `field` as holding a NUL.
async fn assert_nul_refused(response: reqwest::Response, field: &str, what: &str) {
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, 400, "{what}: {body}");
    assert_eq!(body["errors"][0]["field"], field, "{what}: {body}");
    assert!(
        body["errors"][0]["message"].as_str().unwrap().contains("NUL"),
        "{what}: {body}"
    );
}

async fn every_text_parameter_and_field_refuses_a_nul(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let doc: Value = app.get("/openapi.json").await.json().await.unwrap();
    let id = Uuid::now_v7();
    let mut checked = 0;

    for (template, operations) in doc["paths"].as_object().unwrap() {
        let path = template
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    id.to_string()
                } else {
                    seg.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for (method, operation) in operations.as_object().unwrap() {
            let method: Method = method.to_uppercase().parse().unwrap();
            let what = |field: &str| format!("{method} {template} {field}");
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                let name = parameter["name"].as_str().unwrap();
                if parameter["in"] != "query" || !takes_text(&doc, &parameter["schema"]) {
                    continue;
                }
                let url = format!("{path}?{name}=a%00b");
                let response = app
                    .request(method.clone(), &url, Some(&admin.token))
                    .send()
                    .await
                    .unwrap();
                assert_nul_refused(response, name, &what(name)).await;
                checked += 1;
            }
            let Some(schema) = operation.pointer("/requestBody/content/application~1json/schema") else {
                continue;
            };
            let schema = resolve(&doc, schema);
            for (field, property) in schema["properties"].as_object().into_iter().flatten() {
                if !takes_text(&doc, property) {
                    continue;
                }
                let body = json!({ field: "a\u{0}b" });
                let response = app.send(method.clone(), &path, Some(&admin.token), Some(body)).await;
                assert_nul_refused(response, field, &what(field)).await;
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "the sweep found only {checked} text inputs");
}

async fn a_nul_in_a_profile_is_refused_and_nothing_is_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.reader("ada@example.com").await;
    let patch = |body: Value| app.patch_json("/me/profile", &ada.token, body);
    assert_eq!(patch(json!({"bio": "Reads a lot."})).await.status(), 200);

    assert_nul_refused(patch(json!({"bio": "a\u{0}b"})).await, "bio", "bio").await;
    assert_nul_refused(patch(json!({"display_name": "Ada\u{0}"})).await, "display_name", "name").await;

    let me: Value = app.get_as("/me", &ada.token).await.json().await.unwrap();
    assert_eq!(me["bio"], "Reads a lot.");
    assert_eq!(me["display_name"], "Reader");
}

async fn an_array_is_not_an_object_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.reader("ada@example.com").await;

    let positional = app
        .patch_json("/me/profile", &ada.token, json!(["Positional Name", "positional bio"]))
        .await;

    assert_eq!(positional.status(), 400);
    let problem: Value = positional.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("JSON object"), "{problem}");
    let me: Value = app.get_as("/me", &ada.token).await.json().await.unwrap();
    assert_eq!(
        (me["display_name"].as_str(), me["bio"].as_str()),
        (Some("Reader"), None)
    );
}

async fn a_whole_float_is_an_integer_and_a_fraction_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let ada = app.reader("ada@example.com").await;
    let author = fixtures::authors(&app.db, 1, "Author").await[0];
    let books = fixtures::books(&app.db, author, 2).await;
    let review = async |book: Uuid, rating: Value| {
        app.post_json(
            &format!("/books/{book}/reviews"),
            &ada.token,
            json!({"rating": rating, "body": "Fine."}),
        )
        .await
    };

    let created = review(books[0], json!(4.0)).await;
    assert_eq!(created.status(), 201);
    assert_eq!(created.json::<Value>().await.unwrap()["rating"], 4);
    assert_eq!(review(books[1], json!(4.5)).await.status(), 400);
}

async fn a_tampered_cursor_holding_a_nul_is_a_bad_request(backend: Backend) {
    use base64::Engine;
    let app = spawn_app(backend).await;
    let tampered = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("s:a\u{0}b|{}", Uuid::now_v7()));

    for list in ["/books?sort=title&cursor=", "/authors?cursor=", "/categories?cursor="] {
        let response = app.get(&format!("{list}{tampered}")).await;
        assert_eq!(response.status(), 400, "{list}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
    }
}

async fn private_responses_are_never_stored_by_caches(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin().await;
    let private = ["/me", "/me/shelf", "/admin/users", "/admin/audit"];

    for path in private {
        let response = app.get_as(path, &admin.token).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-store", "{path}");
    }
    let anonymous = app.get("/me").await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["cache-control"], "no-store");
    let login = app.login(&admin.email, tests::PASSWORD).await;
    assert_eq!(login.headers()["cache-control"], "no-store", "a token response");
    assert_eq!(app.get("/books").await.headers()["cache-control"], "no-store", "a list");
}

backend_tests!(
    every_text_parameter_and_field_refuses_a_nul,
    a_nul_in_a_profile_is_refused_and_nothing_is_stored,
    an_array_is_not_an_object_body,
    a_whole_float_is_an_integer_and_a_fraction_is_refused,
    a_tampered_cursor_holding_a_nul_is_a_bad_request,
    private_responses_are_never_stored_by_caches,
);
