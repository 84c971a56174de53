//! HTTP routes, one module per resource. Handlers stay thin: parse, call the
//! service layer, map the result.

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

use crate::problem::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health/live").get(health::live))
        .service(web::resource("/health/ready").get(health::ready))
        .service(web::resource("/openapi.json").get(crate::openapi::document))
        .service(web::resource("/auth/register").post(auth::register))
        .service(web::resource("/auth/login").post(auth::login))
        .service(web::resource("/auth/logout").post(auth::logout))
        .service(web::resource("/me").get(me::get).delete(me::delete))
        .service(web::resource("/me/profile").patch(me::update_profile))
        .service(web::resource("/me/shelf").get(shelf::list))
        .service(
            web::resource("/me/shelf/{book_id}")
                .put(shelf::put)
                .delete(shelf::delete),
        )
        .service(web::resource("/admin/users").get(admin_users::list))
        .service(
            web::resource("/admin/users/{id}")
                .patch(admin_users::update)
                .delete(admin_users::delete),
        )
        .service(web::resource("/admin/users/{id}/restore").post(admin_users::restore))
        .service(web::resource("/authors").get(authors::list).post(authors::create))
        .service(
            web::resource("/authors/{id}")
                .get(authors::get)
                .patch(authors::update)
                .delete(authors::delete),
        )
        .service(web::resource("/books").get(books::list).post(books::create))
        .service(
            web::resource("/books/{id}")
                .get(books::get)
                .patch(books::update)
                .delete(books::delete),
        )
        .service(web::resource("/books/{id}/categories").put(books::set_categories))
        .service(
            web::resource("/books/{id}/reviews")
                .get(reviews::list_for_book)
                .post(reviews::create),
        )
        .service(web::resource("/users/{id}").get(users::get))
        .service(web::resource("/users/{id}/reviews").get(reviews::list_for_user))
        .service(web::resource("/admin/stats/refresh").post(admin_stats::refresh))
        .service(web::resource("/admin/audit").get(admin_audit::list))
        .service(
            web::resource("/reviews/{id}")
                .get(reviews::get)
                .patch(reviews::update)
                .delete(reviews::delete),
        )
        .service(
            web::resource("/categories")
                .get(categories::list_roots)
                .post(categories::create),
        )
        .service(
            web::resource("/categories/{id}")
                .get(categories::get)
                .patch(categories::update)
                .delete(categories::delete),
        )
        .service(web::resource("/categories/{id}/tree").get(categories::tree))
        .service(web::resource("/search/books").get(search::books))
        .service(web::resource("/search/reviews").get(search::reviews));
}

/// For PATCH bodies: tells `"field": null` (`Some(None)`, clear it) from a missing
/// field (`None`, leave it alone).
pub(crate) fn present<'de, D: serde::Deserializer<'de>, T: serde::Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
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
