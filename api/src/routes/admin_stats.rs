//! `POST /admin/stats/refresh`: recompute the reader statistics now.

use actix_web::{HttpResponse, post};
use serde::Serialize;
use service::stats;
use utoipa::ToSchema;

use crate::auth::Admin;
use crate::context::Ctx;
use crate::problem::responses::AdminOnly;
use crate::problem::responses::NeedsToken;
use crate::problem::{Problem, Reply};

routes!(refresh);

#[derive(Serialize, ToSchema)]
pub struct RefreshView {
    /// Readers in the statistics after the refresh.
    pub readers: u64,
    pub took_ms: u64,
}

/// Refresh reader statistics
///
/// Recomputes the per-reader statistics now instead of waiting for the background refresh. Admins only.
#[utoipa::path(operation_id = "refresh_reader_stats", tag = "admin", security(("bearer" = [])),
    responses(
        (status = 200, body = RefreshView, description = "Refreshed"), AdminOnly,
        (status = 500, body = Problem, content_type = "application/problem+json", description = "The refresh failed; see the logs"), NeedsToken))]
#[post("/admin/stats/refresh")]
pub async fn refresh(ctx: Ctx, _admin: Admin) -> Reply {
    let done = ctx.publish(stats::refresh(ctx.primary_pool()).await?).await;
    Ok(HttpResponse::Ok().json(RefreshView {
        readers: done.readers,
        took_ms: done.took.as_millis() as u64,
    }))
}
