//! HTTP routes, one module per resource. Handlers stay thin: parse the request, call
//! the service layer, publish what a write changed, map the result. What no route
//! takes is answered by `openapi::unrouted`, from the document these routes make.

/// A module's `routes` function: its handlers, registered in the order they are
/// matched. Adding an endpoint is its handler plus its name here.
macro_rules! routes {
    ($($handler:ident),+ $(,)?) => {
        /// This module's routes, in the order they are matched.
        pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
            $(cfg.service($handler);)+
        }
    };
}

pub mod admin_audit;
pub mod admin_stats;
pub mod admin_users;
pub mod auth;
pub mod authors;
pub mod books;
pub mod categories;
pub mod health;
pub mod me;
pub mod reviews;
pub mod search;
pub mod shelf;
pub mod users;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, HttpResponse, web};
use utoipa_actix_web::service_config::ServiceConfig;

use crate::problem::{ApiError, Reply};

/// Every documented route: each module registers its own, and the OpenAPI document is
/// collected from these same registrations (`openapi::Document`), so a route cannot be
/// served undocumented or documented unserved.
///
/// Busiest first: actix tries a request against each route in turn, running a regular
/// expression for each one with a `{parameter}`, so the catalogue's reads come before
/// the accounts and the admin pages (a book's detail tried nine such routes before its
/// own when it came eighth: docs/performance.md). No two routes here match one path,
/// so the order changes nothing else.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.configure(books::routes)
        .configure(reviews::routes)
        .configure(authors::routes)
        .configure(categories::routes)
        .configure(search::routes)
        .configure(users::routes)
        .configure(shelf::routes)
        .configure(me::routes)
        .configure(auth::routes)
        .configure(health::routes)
        .configure(admin_users::routes)
        .configure(admin_stats::routes)
        .configure(admin_audit::routes);
}

/// `201 Created`: the new resource's view, and where it lives in `Location`.
pub(crate) fn created(location: String, view: impl serde::Serialize) -> Reply {
    Ok(HttpResponse::Created().insert_header(("Location", location)).json(view))
}

/// For PATCH bodies: tells `"field": null` (`Some(None)`, clear it) from a missing
/// field (`None`, leave it alone).
pub(crate) fn patch_field<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

/// Extractor configuration: malformed bodies, paths and queries become problems with
/// a useful `detail` instead of actix's plain-text errors.
pub fn extractor_config(max_body_bytes: usize) -> (web::JsonConfig, web::PathConfig, web::QueryConfig) {
    let json = web::JsonConfig::default()
        .limit(max_body_bytes)
        .error_handler(move |err, _req: &HttpRequest| json_error(err, max_body_bytes).into());
    let path =
        web::PathConfig::default().error_handler(|err: PathError, _req| ApiError::NotFound.with_log(&err).into());
    let query = web::QueryConfig::default().error_handler(|err: QueryPayloadError, _req| {
        ApiError::BadRequest(format!("invalid query string: {err}")).into()
    });
    (json, path, query)
}

fn json_error(err: JsonPayloadError, limit: usize) -> ApiError {
    match err {
        JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
            ApiError::PayloadTooLarge { limit }
        }
        JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
        JsonPayloadError::Deserialize(e) => ApiError::BadRequest(format!("invalid JSON body: {e}")),
        other => ApiError::BadRequest(format!("could not read the request body: {other}")),
    }
}

impl ApiError {
    fn with_log(self, cause: &dyn std::fmt::Display) -> Self {
        tracing::debug!(%cause, "request rejected");
        self
    }
}
