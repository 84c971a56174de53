//! Liveness and readiness probes. `live` never touches the database, so an
//! orchestrator does not restart a healthy process because the database blinked;
//! `ready` answers 503 while the database is unreachable, taking the instance out of
//! rotation until it recovers.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::context::AppContext;
use crate::problem::ApiError;

pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn ready(ctx: web::Data<AppContext>) -> Result<HttpResponse, ApiError> {
    match service::database::ping(&ctx.db, ctx.ready_timeout).await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({ "status": "ok", "database": "ok" }))),
        Err(err) => {
            tracing::warn!(error = %err, "readiness check failed");
            Err(ApiError::Unavailable("the database is unreachable"))
        }
    }
}
