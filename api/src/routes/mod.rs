//! HTTP routes, one module per resource. Handlers stay thin: parse, call the
//! service layer, map the result.

pub mod admin_users;
pub mod auth;
pub mod health;
pub mod me;

use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::problem::ApiError;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health/live").get(health::live))
        .service(web::resource("/health/ready").get(health::ready))
        .service(web::resource("/auth/register").post(auth::register))
        .service(web::resource("/auth/login").post(auth::login))
        .service(web::resource("/auth/logout").post(auth::logout))
        .service(web::resource("/me").get(me::get).delete(me::delete))
        .service(web::resource("/me/profile").patch(me::update_profile))
        .service(web::resource("/admin/users").get(admin_users::list))
        .service(
            web::resource("/admin/users/{id}")
                .patch(admin_users::update)
                .delete(admin_users::delete),
        )
        .service(web::resource("/admin/users/{id}/restore").post(admin_users::restore));
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
