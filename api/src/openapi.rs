//! The OpenAPI 3.1 document, generated from the handlers' annotations (utoipa) and
//! served at `GET /openapi.json`. Its paths are collected (utoipa-actix-web) from the
//! very registrations that route requests (`routes::configure`), so no list of
//! handlers is kept here to drift. CI runs schemathesis against it, so a handler that
//! answers something its annotation does not promise fails the build.
//!
//! The same paths tell a wrong method (405, with `Allow`) from a wrong address (404):
//! each method of a path is an actix resource of its own, so actix alone cannot.

use actix_web::{App, HttpRequest, HttpResponse, web};

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::problem::ApiError;
use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Bookworm", description = "The backend of a reading community: catalogue, reviews, shelves."),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Registration, sessions and your own account"),
        (name = "admin", description = "User management (admins only)"),
        (name = "authors"), (name = "books"), (name = "categories"), (name = "reviews"),
        (name = "shelf", description = "Your reading shelf"),
        (name = "search", description = "Full-text search"),
        (name = "health", description = "Probes for orchestrators"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A token from POST /auth/login"))
                    .build(),
            ),
        );
    }
}

/// What no route took: `405` with `Allow` when the path is a route's and only the method
/// is wrong (each method of a path is a route of its own, so actix cannot tell), else `404`.
pub async fn unrouted(req: HttpRequest, document: web::Data<Document>) -> Result<HttpResponse, ApiError> {
    match document.methods_for(req.path()) {
        Some(allowed) => Err(ApiError::MethodNotAllowed(allowed)),
        None => Err(ApiError::NotFound),
    }
}

/// The document, rendered once, and the routes it lists.
pub struct Document {
    json: web::Bytes,
    /// Each path template, split at `/`, with the methods it takes (`GET, PATCH`).
    routes: Vec<(Vec<String>, String)>,
}

impl Document {
    pub fn new() -> Self {
        let (_, doc) = App::new()
            .into_utoipa_app()
            .openapi(ApiDoc::openapi())
            .configure(routes::configure)
            .split_for_parts();
        let routes = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let methods = [
                    ("GET", item.get.is_some()),
                    ("POST", item.post.is_some()),
                    ("PUT", item.put.is_some()),
                    ("PATCH", item.patch.is_some()),
                    ("DELETE", item.delete.is_some()),
                ];
                let allowed: Vec<&str> = methods.iter().filter(|(_, on)| *on).map(|(m, _)| *m).collect();
                (segments(path), allowed.join(", "))
            })
            .chain([(segments("/openapi.json"), "GET".to_owned())])
            .collect();
        let json = serde_json::to_vec(&doc).expect("the OpenAPI document serializes");
        Self {
            json: json.into(),
            routes,
        }
    }

    /// The methods a route at `path` takes, if any route matches it.
    pub fn methods_for(&self, path: &str) -> Option<String> {
        let asked = segments(path);
        self.routes
            .iter()
            .find(|(template, _)| {
                template.len() == asked.len()
                    && template
                        .iter()
                        .zip(&asked)
                        .all(|(t, a)| t == a || (t.starts_with('{') && !a.is_empty()))
            })
            .map(|(_, methods)| methods.clone())
    }
}

impl Default for Document {
    fn default() -> Self {
        Self::new()
    }
}

fn segments(path: &str) -> Vec<String> {
    path.trim_matches('/').split('/').map(str::to_owned).collect()
}

pub async fn document(document: web::Data<Document>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(document.json.clone())
}

/// `GET /docs`: the interactive reference, Scalar rendering `/openapi.json` in the
/// browser. Nothing is built or bundled here: the page loads Scalar's standalone
/// script from jsDelivr, pinned to one version and checked by its hash (subresource
/// integrity), so a changed file is refused rather than run. Swagger UI's crate was
/// rejected because its build script downloads the UI; vendoring Scalar (5 MB of
/// JavaScript) because it would weigh on every build and binary.
pub async fn reference() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(REFERENCE_PAGE)
}

const REFERENCE_PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Bookworm API reference</title>
</head>
<body>
  <div id="app"></div>
  <script src="https://cdn.jsdelivr.net/npm/@scalar/api-reference@1.76.4/dist/browser/standalone.js"
          integrity="sha384-hwB9WroDTpZaI38gr+u9CXA6ksz5gUYgD2GxXazKl/agT1L2GWUiRFWGJYNiFu4Q"
          crossorigin="anonymous"></script>
  <script>Scalar.createApiReference('#app', { url: '/openapi.json' })</script>
  <noscript>The reference needs JavaScript; the document itself is at <a href="/openapi.json">/openapi.json</a>.</noscript>
</body>
</html>
"#;
