//! `POST /admin/stats/refresh`: recompute the reader statistics now.

use actix_web::{HttpResponse, post, web};
use serde::Serialize;
use service::stats;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::Admin;
use crate::context::AppContext;
use crate::problem::responses::AdminOnly;
use crate::problem::responses::NeedsToken;
use crate::problem::{ApiError, Problem};

/// This module's routes, in the order they are matched.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(refresh);
}

#[derive(Serialize, ToSchema)]
pub struct RefreshView {
    /// Readers in the statistics after the refresh.
    pub readers: u64,
    pub took_ms: u64,
}

#[utoipa::path(operation_id = "admin_stats_refresh", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, body = RefreshView, description = "Refreshed"),
        AdminOnly,
        (status = 500, body = Problem, content_type = "application/problem+json", description = "The refresh failed; see the logs"),
        NeedsToken,
    ))]
#[post("/admin/stats/refresh")]
pub async fn refresh(ctx: web::Data<AppContext>, _admin: Admin) -> Result<HttpResponse, ApiError> {
    let done = ctx.publish(stats::refresh(ctx.primary()).await?).await;
    Ok(HttpResponse::Ok().json(RefreshView {
        readers: done.readers,
        took_ms: done.took.as_millis() as u64,
    }))
}
