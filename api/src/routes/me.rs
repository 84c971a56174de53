//! The caller's own account: `GET /me`, `PATCH /me/profile`, `DELETE /me`.

use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use entity::user::Role;
use serde::{Deserialize, Deserializer, Serialize};
use service::accounts::{self, Account, Bio, DisplayName, FieldErrors, Phone, ProfileChanges};
use uuid::Uuid;

use crate::auth::{Authenticated, Member};
use crate::context::AppContext;
use crate::problem::ApiError;

/// An account as its owner (or an admin) sees it: the phone number included.
#[derive(Serialize)]
pub struct AccountView {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub display_name: String,
    pub bio: Option<String>,
    pub phone: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<Account> for AccountView {
    fn from(a: Account) -> Self {
        AccountView {
            id: a.id,
            email: a.email,
            role: a.role,
            display_name: a.display_name,
            bio: a.bio,
            phone: a.phone,
            created_at: a.created_at,
            updated_at: a.updated_at,
            deleted_at: a.deleted_at,
        }
    }
}

pub async fn get(ctx: web::Data<AppContext>, Authenticated(user): Authenticated) -> Result<HttpResponse, ApiError> {
    let account = accounts::account(&ctx.db, &ctx.cipher, user.id).await?;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}

/// Absent fields stay as they are; `null` clears `bio` or `phone`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfilePatch {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    pub bio: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub phone: Option<Option<String>>,
}

/// Distinguishes `"field": null` (Some(None)) from a missing field (None).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

impl ProfilePatch {
    fn parse(self) -> Result<ProfileChanges, ApiError> {
        let mut errors = FieldErrors::default();
        let changes = ProfileChanges {
            display_name: self.display_name.and_then(|n| errors.take(DisplayName::parse(&n))),
            bio: match self.bio {
                Some(Some(bio)) => errors.take(Bio::parse(&bio)).map(Some),
                Some(None) => Some(None),
                None => None,
            },
            phone: match self.phone {
                Some(Some(phone)) => errors.take(Phone::parse(&phone)).map(Some),
                Some(None) => Some(None),
                None => None,
            },
        };
        errors.into_result()?;
        Ok(changes)
    }
}

pub async fn update_profile(
    ctx: web::Data<AppContext>,
    Member(user): Member,
    body: web::Json<ProfilePatch>,
) -> Result<HttpResponse, ApiError> {
    let changes = body.into_inner().parse()?;
    let account = accounts::update_profile(&ctx.db, &ctx.cipher, user.id, changes).await?;
    Ok(HttpResponse::Ok().json(AccountView::from(account)))
}

pub async fn delete(ctx: web::Data<AppContext>, Authenticated(user): Authenticated) -> Result<HttpResponse, ApiError> {
    accounts::delete_account(&ctx.db, user.id).await?;
    Ok(HttpResponse::NoContent().finish())
}
