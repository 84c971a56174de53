//! The caller's own account: `GET /me`, `PATCH /me/profile`, `DELETE /me`.

use actix_web::{HttpResponse, delete, get, patch};
use serde::Deserialize;
use service::accounts::{self, AllFields, Bio, DisplayName, Phone, ProfileChanges};
use utoipa::ToSchema;

use crate::auth::{Authenticated, Member};
use crate::context::Ctx;
use crate::extract::Json;
use crate::problem::responses::{Invalid, JsonBody, NeedsToken};
use crate::problem::{ApiError, Problem, Reply};
use crate::routes::patch_field;
use crate::views::AccountView;

routes!(get, delete, update_profile);

/// The token check, then the account joined with its profile.
pub const GET_STATEMENTS: u32 = 2;

/// Your account
///
/// The signed-in account with its profile.
#[utoipa::path(operation_id = "get_my_account", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 200, body = AccountView, description = "Your account"), NeedsToken))]
#[get("/me")]
pub async fn get(ctx: Ctx, Authenticated(user): Authenticated) -> Reply {
    let account = accounts::account(&ctx.primary(), &ctx.cipher, user.id).await?;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}

/// Absent fields stay as they are; `null` clears `bio` or `phone`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 100)]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<String>, max_length = 2000)]
    pub bio: Option<Option<String>>,
    /// International format, e.g. `+44 20 7946 0958`. Stored encrypted.
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
}

impl TryFrom<ProfilePatch> for ProfileChanges {
    type Error = ApiError;

    fn try_from(body: ProfilePatch) -> Result<Self, ApiError> {
        let (display_name, bio, phone) = (
            body.display_name.map(|n| DisplayName::parse(&n)).transpose(),
            body.bio.map(|b| b.map(|b| Bio::parse(&b)).transpose()).transpose(),
            body.phone.map(|p| p.map(|p| Phone::parse(&p)).transpose()).transpose(),
        )
            .all()?;
        Ok(ProfileChanges {
            display_name,
            bio,
            phone,
        })
    }
}

/// Edit your profile
///
/// Changes your display name, bio or phone number (stored encrypted); send null to clear the bio or phone.
#[utoipa::path(operation_id = "update_my_profile", tag = "accounts", request_body = ProfilePatch, security(("bearer" = [])),
    responses(
        (status = 200, body = AccountView, description = "Updated"),
        (status = 403, body = Problem, content_type = "application/problem+json", description = "Guest account"), JsonBody, NeedsToken, Invalid))]
#[patch("/me/profile")]
pub async fn update_profile(ctx: Ctx, Member(user): Member, body: Json<ProfilePatch>) -> Reply {
    let changes = ProfileChanges::try_from(body.into_inner())?;
    let account = ctx
        .publish(accounts::update_profile(ctx.primary_pool(), &ctx.cipher, (&user).into(), changes).await?)
        .await;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}

/// Delete your account
///
/// Soft-deletes your account and revokes all your tokens.
#[utoipa::path(operation_id = "delete_my_account", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 204, description = "Your account is soft-deleted and all its tokens revoked"), NeedsToken))]
#[delete("/me")]
pub async fn delete(ctx: Ctx, Authenticated(user): Authenticated) -> Reply {
    ctx.publish(accounts::delete_account(ctx.primary_pool(), (&user).into(), user.id).await?)
        .await;
    Ok(HttpResponse::NoContent().finish())
}
