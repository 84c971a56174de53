//! The OpenAPI 3.1 document, generated from the handlers' annotations (utoipa) and
//! served at `GET /openapi.json`. Its paths are collected (utoipa-actix-web) from the
//! very registrations that route requests (`routes::configure`), so no list of
//! handlers is kept here to drift. CI runs schemathesis against it, so a handler that
//! answers something its annotation does not promise fails the build.
//!
//! The same paths tell a wrong method (405, with `Allow`) from a wrong address (404):
//! each method of a path is an actix resource of its own, so actix alone cannot.

use std::sync::{Arc, LazyLock};

use actix_web::{App, HttpRequest, HttpResponse, web};

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use crate::problem::ApiError;
use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(title = "Bookworm", description = "The backend of a reading community: catalogue, reviews, shelves.",
        license(name = "MIT OR Apache-2.0", identifier = "MIT OR Apache-2.0")),
    // Relative first, so the reference page and a client fetching the document talk
    // to the server that served it; then the default local run, for a saved copy.
    servers(
        (url = "/", description = "The server this document was fetched from"),
        (url = "http://127.0.0.1:8080", description = "A local run with the default HOST and PORT"),
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "accounts", description = "Registration, sessions and your own account"),
        (name = "admin", description = "User management (admins only)"),
        (name = "authors", description = "The catalogue's authors; admins edit them"),
        (name = "books", description = "The catalogue; admins edit it, anyone reads it"),
        (name = "categories", description = "The category tree books are filed under"),
        (name = "reviews", description = "Readers' reviews of books"),
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
        let doc = public_unless_declared(doc);
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

    /// The document as indented JSON, for people and linters.
    pub fn pretty(&self) -> String {
        let value: serde_json::Value = serde_json::from_slice(&self.json).expect("the document is JSON");
        serde_json::to_string_pretty(&value).expect("JSON serializes")
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

/// Marks every operation that declares no security as public (`security: []`), so a
/// reader of the document can tell "public" from "forgot". The marking is not trusted:
/// `tests/tests/api/openapi.rs` calls every operation without a token and checks that
/// exactly the ones with a security requirement answer 401.
fn public_unless_declared(mut doc: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    for item in doc.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.post,
            &mut item.put,
            &mut item.patch,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            operation.security.get_or_insert_with(Vec::new);
        }
    }
    doc
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

/// `GET /docs/…`: the interactive reference, Swagger UI rendering `/openapi.json`.
/// The UI's files are compiled into the binary (`utoipa-swagger-ui`'s `vendored` and
/// `debug-embed` features), so the page works with no network beyond this server:
/// behind a firewall, offline, in a CI that vendors everything. Loading Scalar from a
/// CDN (what this page did before) was rejected for that reason; vendoring Scalar's
/// 5 MB script by hand because a crate already packages Swagger UI and keeps it current.
pub async fn reference(file: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let file = reference_file(&file)?;
    Ok(HttpResponse::Ok()
        .content_type(file.content_type)
        .body(file.bytes.into_owned()))
}

/// `GET /docs`: the page itself. `NormalizePath` trims the slash of `/docs/`, so the
/// page names its directory in a `<base>` for its relative links to reach `/docs/…`.
pub async fn reference_index() -> Result<HttpResponse, ApiError> {
    let page = reference_file("index.html")?;
    let html = String::from_utf8_lossy(&page.bytes)
        .replacen("<head>", "<head>\n  <base href=\"/docs/\">", 1)
        .replacen("<title>Swagger UI</title>", "<title>Bookworm API reference</title>", 1);
    Ok(HttpResponse::Ok().content_type(page.content_type).body(html))
}

fn reference_file(name: &str) -> Result<utoipa_swagger_ui::SwaggerFile<'static>, ApiError> {
    static CONFIG: LazyLock<Arc<utoipa_swagger_ui::Config<'static>>> = LazyLock::new(|| {
        Arc::new(
            utoipa_swagger_ui::Config::new(["/openapi.json"])
                .display_operation_id(true)
                // Not swagger.io's validator badge: it sends the document's address away.
                .validator_url("none"),
        )
    });
    match utoipa_swagger_ui::serve(name, CONFIG.clone()) {
        Ok(Some(file)) => Ok(file),
        Ok(None) => Err(ApiError::NotFound),
        Err(err) => {
            tracing::error!(error = %err, "the reference page could not be rendered");
            Err(ApiError::Internal)
        }
    }
}
