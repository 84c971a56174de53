//! `POST /auth/register`, `POST /auth/login`, `POST /auth/logout`.

use std::net::IpAddr;

use actix_web::{HttpRequest, HttpResponse, post};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use service::accounts::{self, AllFields, DisplayName, Email, NewAccount, Password};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::context::Ctx;
use crate::extract::Json;
use crate::problem::responses::{BadToken, HashingBusy, Invalid, JsonBody, NeedsToken};
use crate::problem::{ApiError, Problem, Reply};
use crate::routes::created;
use crate::views::AccountView;

routes!(register, login, logout);

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    #[schema(format = Email, max_length = 255)]
    pub email: String,
    /// 12 to 128 characters.
    #[schema(min_length = 12, max_length = 128)]
    pub password: String,
    #[schema(min_length = 1, max_length = 100)]
    pub display_name: String,
}

impl TryFrom<RegisterRequest> for NewAccount {
    type Error = ApiError;

    fn try_from(body: RegisterRequest) -> Result<Self, ApiError> {
        let (email, password, display_name) = (
            Email::parse(&body.email),
            Password::parse(&body.password),
            DisplayName::parse(&body.display_name),
        )
            .all()?;
        Ok(NewAccount {
            email,
            password,
            display_name,
        })
    }
}

/// Create an account
///
/// Registers a reader account with its profile. Sign in with POST /auth/login to get a token.
#[utoipa::path(operation_id = "register", tag = "accounts", request_body = RegisterRequest,
    responses(
        (status = 201, body = AccountView, description = "Account and profile created"),
        (status = 409, body = Problem, content_type = "application/problem+json", description = "Email cannot be registered"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "Too many registrations from this address; see Retry-After"), HashingBusy, JsonBody, BadToken, Invalid))]
#[post("/auth/register")]
pub async fn register(req: HttpRequest, ctx: Ctx, body: Json<RegisterRequest>) -> Reply {
    ctx.throttle.registration(client_address(&req)).await?;
    let new = NewAccount::try_from(body.into_inner())?;
    let account = accounts::register(ctx.primary_pool(), &ctx.hashing, &ctx.cipher, new)
        .await
        .map_err(|err| match err {
            // Say no more than "taken": which accounts exist is not the caller's business.
            service::ServiceError::Conflict(_) => ApiError::Conflict("this email cannot be registered".into()),
            other => other.into(),
        })?;
    let account = ctx.publish(account).await;
    created("/me".into(), AccountView::from(account))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <token>`. Shown once; only a hash is stored.
    pub token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    pub expires_at: DateTime<Utc>,
}

/// Sign in
///
/// Exchanges an email and password for a bearer token. Failed attempts are throttled per account and per client.
#[utoipa::path(operation_id = "log_in", tag = "accounts", request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse, description = "A new bearer token"),
        (status = 401, body = Problem, content_type = "application/problem+json", description = "Invalid email or password"),
        (status = 429, body = Problem, content_type = "application/problem+json", description = "Too many attempts; see Retry-After"), HashingBusy, JsonBody))]
#[post("/auth/login")]
pub async fn login(req: HttpRequest, ctx: Ctx, body: Json<LoginRequest>) -> Reply {
    ctx.throttle.login_attempt(&body.email, client_address(&req)).await?;
    let issued = accounts::login(
        ctx.primary_pool(),
        &ctx.hashing,
        &body.email,
        &body.password,
        ctx.token_ttl,
    )
    .await?;
    Ok(HttpResponse::Ok().json(TokenResponse {
        token: issued.token,
        token_type: "Bearer",
        expires_at: issued.expires_at,
    }))
}

/// The TCP peer (see `throttle` for why not `X-Forwarded-For`).
fn client_address(req: &HttpRequest) -> IpAddr {
    req.peer_addr().map_or(IpAddr::from([0, 0, 0, 0]), |addr| addr.ip())
}

/// Sign out
///
/// Revokes the bearer token used for this request.
#[utoipa::path(operation_id = "log_out", tag = "accounts", security(("bearer" = [])),
    responses(
        (status = 204, description = "The token used is revoked"), NeedsToken))]
#[post("/auth/logout")]
pub async fn logout(ctx: Ctx, Authenticated(user): Authenticated) -> Reply {
    accounts::logout(&ctx.primary(), &user).await?;
    Ok(HttpResponse::NoContent().finish())
}
