//! `GET /admin/audit`: the trigger-written audit log.

use actix_web::{HttpResponse, get};
use chrono::{DateTime, Utc};
use entity::audit_log::{self, AuditAction};
use serde::{Deserialize, Serialize};
use service::audit::{self, AuditFilter};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Admin;
use crate::context::Ctx;
use crate::extract::{Page, PageQuery, Query};
use crate::problem::Reply;
use crate::problem::responses::{AdminOnly, BadQuery, NeedsToken};

routes!(list);

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// `users`, `books` or `reviews`.
    pub table: Option<String>,
    pub record_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct AuditEntryView {
    pub id: i64,
    pub table_name: String,
    pub record_id: Uuid,
    pub action: AuditAction,
    /// Who made the change; null for changes made outside the API (raw SQL, tools).
    pub actor_id: Option<Uuid>,
    pub changed_at: DateTime<Utc>,
}

impl From<audit_log::Model> for AuditEntryView {
    fn from(e: audit_log::Model) -> Self {
        AuditEntryView {
            id: e.id,
            table_name: e.table_name,
            record_id: e.record_id,
            action: e.action,
            actor_id: e.actor_id,
            changed_at: e.changed_at,
        }
    }
}

crate::views::page!(AuditPage, AuditEntryView);

/// The token check, then the page.
pub const LIST_STATEMENTS: u32 = 2;

/// List audit log entries
///
/// Every recorded change, newest first, filtered by table, row or actor. Admins only.
#[utoipa::path(operation_id = "list_audit_entries", tag = "admin", params(AuditQuery, PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, body = AuditPage, description = "Audit entries, newest first"), AdminOnly, BadQuery, NeedsToken))]
#[get("/admin/audit")]
pub async fn list(ctx: Ctx, _admin: Admin, query: Query<AuditQuery>, Page(page): Page) -> Reply {
    let query = query.into_inner();
    let filter = AuditFilter {
        table: query.table,
        record_id: query.record_id,
        actor_id: query.actor_id,
    };
    let entries = audit::list(&ctx.primary(), &filter, &page).await?;
    Ok(HttpResponse::Ok().json(AuditPage::from(entries)))
}
