//! Admin management of users: list, change role, soft-delete, restore.

use actix_web::{HttpResponse, delete, get, patch, post, web};
use entity::user::Role;
use serde::{Deserialize, Serialize};
use service::accounts::{self, UserFilter};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::auth::Admin;
use crate::context::Ctx;
use crate::extract::{Json, Page, PageQuery, Query};
use crate::problem::responses::{AdminOnly, BadQuery, JsonBody, NeedsToken, NotFound};
use crate::problem::{Problem, Reply};
use crate::views::AccountView;

routes!(list, update, delete, restore);

/// The token check, then the page joined with profiles.
pub const LIST_STATEMENTS: u32 = 2;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    pub role: Option<Role>,
    /// Include soft-deleted accounts.
    #[serde(default)]
    pub include_deleted: bool,
}

crate::views::page!(UserPage, AccountView);

/// List accounts
///
/// Every account, newest first, optionally by role; deleted ones too with include_deleted. Admins only.
#[utoipa::path(operation_id = "list_users", tag = "admin", params(ListQuery, PageQuery), security(("bearer" = [])),
    responses(
        (status = 200, body = UserPage, description = "Accounts, newest first"), AdminOnly, BadQuery, NeedsToken))]
#[get("/admin/users")]
pub async fn list(ctx: Ctx, _admin: Admin, query: Query<ListQuery>, Page(page): Page) -> Reply {
    let query = query.into_inner();
    let filter = UserFilter {
        role: query.role,
        include_deleted: query.include_deleted,
    };
    let users = accounts::list_users(&ctx.primary(), &ctx.cipher, filter, &page).await?;
    Ok(HttpResponse::Ok().json(UserPage::from(users)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    pub role: Role,
}

/// Change an account's role
///
/// Promotes or demotes an account; its tokens are revoked so the new role applies at once. Not your own. Admins only.
#[utoipa::path(operation_id = "update_user", tag = "admin", params(("id" = Uuid, Path)), request_body = UserPatch,
    security(("bearer" = [])),
    responses(
        (status = 200, body = AccountView, description = "Role changed; the user's tokens are revoked"), AdminOnly, NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Your own role"), JsonBody, NeedsToken))]
#[patch("/admin/users/{id}")]
pub async fn update(ctx: Ctx, Admin(admin): Admin, id: web::Path<Uuid>, body: Json<UserPatch>) -> Reply {
    let account = ctx
        .publish(accounts::set_role(ctx.primary_pool(), &ctx.cipher, &admin, id.into_inner(), body.role).await?)
        .await;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}

/// Delete an account
///
/// Soft-deletes the account and revokes its tokens; it can be restored. Not your own. Admins only.
#[utoipa::path(operation_id = "delete_user", tag = "admin", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses(
        (status = 204, description = "Soft-deleted; the user's tokens are revoked"), AdminOnly, NotFound,
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Yourself"), NeedsToken))]
#[delete("/admin/users/{id}")]
pub async fn delete(ctx: Ctx, Admin(admin): Admin, id: web::Path<Uuid>) -> Reply {
    ctx.publish(accounts::admin_delete_user(ctx.primary_pool(), &admin, *id).await?)
        .await;
    Ok(HttpResponse::NoContent().finish())
}

/// Restore a deleted account
///
/// Brings a soft-deleted account back. Admins only.
#[utoipa::path(operation_id = "restore_user", tag = "admin", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses(
        (status = 200, body = AccountView, description = "Restored"), AdminOnly, NotFound, NeedsToken))]
#[post("/admin/users/{id}/restore")]
pub async fn restore(ctx: Ctx, Admin(admin): Admin, id: web::Path<Uuid>) -> Reply {
    let account = ctx
        .publish(accounts::restore_user(ctx.primary_pool(), &ctx.cipher, (&admin).into(), *id).await?)
        .await;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}
