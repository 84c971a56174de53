//! Accounts: registration and profiles with an encrypted phone number here; logging
//! in and out with revocable bearer tokens in `sessions.rs`; the admin's view of users
//! in `admin.rs`. Both are re-exported, so callers name `accounts::login` either way.
//!
//! Every function takes a connection (or transaction) and already-parsed input
//! from [`types`]; authorisation (who may call what) is the API's job, except the
//! rules that protect the data itself, such as an admin not demoting themselves.

pub mod password;
pub mod token;
pub mod types;

mod admin;
mod sessions;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use entity::user::Role;
use entity::{api_token, profile, review, user};
use sea_orm::ExprTrait;
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect, Set,
};
use uuid::Uuid;

pub use admin::{admin_delete_user, bootstrap_admin, list_users, restore_user, set_role};
pub use password::{Hashing, HashingLimits};
use sessions::revoke_all_tokens;
pub use sessions::{authenticate, login, logout};
pub use types::{AllFields, Bio, DisplayName, Email, FieldError, Password, Phone};

use crate::ServiceError;
use crate::database::{Actor, WriteTxn, begin_write_as};
use crate::error::UniqueKey;
use crate::field_crypto::FieldCipher;
use crate::pagination::{self, Cursor, Ordering, Page, PageRequest};
use crate::visibility::soft_delete;
use crate::written::{Tag, Written};

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentUser {
    pub id: Uuid,
    pub role: Role,
    /// The token this request presented (what logout revokes).
    pub token_id: Uuid,
}

impl From<&CurrentUser> for Actor {
    fn from(user: &CurrentUser) -> Self {
        Actor {
            id: user.id,
            role: user.role,
        }
    }
}

/// A user with their profile, phone decrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub display_name: String,
    pub bio: Option<String>,
    pub phone: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

impl Account {
    fn assemble(user: user::Model, profile: Option<profile::Model>, cipher: &FieldCipher) -> Self {
        let (display_name, bio, phone) = match profile {
            Some(p) => {
                let phone = p
                    .phone
                    .as_deref()
                    .and_then(|sealed| match cipher.decrypt(sealed, user.id.as_bytes()) {
                        Ok(phone) => Some(phone),
                        Err(err) => {
                            // Never fall back to showing the stored value: it may belong to another row.
                            tracing::error!(user_id = %user.id, error = %err, "cannot decrypt profiles.phone");
                            None
                        }
                    });
                (p.display_name, p.bio, phone)
            }
            None => (String::new(), None, None),
        };
        Account {
            id: user.id,
            email: user.email,
            role: user.role,
            display_name,
            bio,
            phone,
            created_at: user.created_at,
            updated_at: user.updated_at,
            deleted_at: user.deleted_at,
        }
    }

    fn cursor(&self) -> Cursor {
        Cursor::time(self.created_at, self.id)
    }
}

pub struct NewAccount {
    pub email: Email,
    pub password: Password,
    pub display_name: DisplayName,
}

/// Profile fields to change. `None` leaves a field alone; `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub display_name: Option<DisplayName>,
    pub bio: Option<Option<Bio>>,
    pub phone: Option<Option<Phone>>,
}

#[derive(Debug)]
pub struct IssuedToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct UserFilter {
    pub role: Option<Role>,
    pub include_deleted: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum AdminBootstrap {
    Created,
    Promoted,
}

/// For tools that hash once, outside any request (see `password`'s module docs).
async fn hash_off_thread(password: String) -> Result<String, ServiceError> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|e| ServiceError::Internal(format!("password hashing task failed: {e}")))
}

/// Emails are unique ignoring case.
const EMAIL_TAKEN: &[UniqueKey] = &[UniqueKey::new(
    "uq_users_email_lower",
    "users.email",
    "an account with this email already exists",
)];

/// Creates the user and their profile in one transaction: both rows or neither.
pub async fn register(
    db: &DatabaseConnection,
    hashing: &Arc<Hashing>,
    cipher: &FieldCipher,
    new: NewAccount,
) -> Result<Written<Account>, ServiceError> {
    let password_hash = hashing.hash(new.password.expose().to_owned()).await?;
    // The new account is the actor of its own registration.
    let id = Uuid::now_v7();
    let txn = begin_write_as(db, Some(Actor { id, role: Role::User })).await?;
    let user = user::ActiveModel {
        id: Set(id),
        email: Set(new.email.as_str().to_owned()),
        password_hash: Set(password_hash),
        role: Set(Role::User),
        ..Default::default()
    }
    .insert(&txn)
    .await
    .map_err(ServiceError::conflict_on(EMAIL_TAKEN))?;
    let profile = profile::ActiveModel {
        user_id: Set(user.id),
        display_name: Set(new.display_name.as_str().to_owned()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    // A new reader: no cached read shows them yet.
    Ok(txn.commit(Account::assemble(user, Some(profile), cipher)).await?)
}

async fn find_account<C: ConnectionTrait>(
    db: &C,
    cipher: &FieldCipher,
    id: Uuid,
    include_deleted: bool,
) -> Result<Account, ServiceError> {
    let mut query = user::Entity::find_by_id(id).find_also_related(profile::Entity);
    if !include_deleted {
        query = query.filter(user::Column::DeletedAt.is_null());
    }
    let (user, profile) = query.one(db).await?.ok_or(ServiceError::NotFound("user"))?;
    Ok(Account::assemble(user, profile, cipher))
}

pub async fn account(db: &impl ConnectionTrait, cipher: &FieldCipher, id: Uuid) -> Result<Account, ServiceError> {
    find_account(db, cipher, id, false).await
}

/// Edits the actor's own profile: read (locked), written and read back in one
/// transaction, so the answer is exactly what was committed.
pub async fn update_profile(
    db: &DatabaseConnection,
    cipher: &FieldCipher,
    actor: Actor,
    changes: ProfileChanges,
) -> Result<Written<Account>, ServiceError> {
    let user_id = actor.id;
    let mut txn = begin_write_as(db, Some(actor)).await?;
    txn.changed([Tag::User(user_id)]);
    let profile = profile::Entity::find_by_id(user_id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(ServiceError::NotFound("profile"))?;
    let mut active = profile.into_active_model();
    if let Some(name) = changes.display_name {
        active.display_name = Set(name.as_str().to_owned());
    }
    if let Some(bio) = changes.bio {
        active.bio = Set(bio.map(|b| b.as_str().to_owned()));
    }
    if let Some(phone) = changes.phone {
        active.phone = Set(phone.map(|p| cipher.encrypt(p.as_str(), user_id.as_bytes())));
    }
    if active.is_changed() {
        active.update(&txn).await?;
    }
    let updated = find_account(&txn, cipher, user_id, false).await?;
    Ok(txn.commit(updated).await?)
}

/// What an account's deletion or restoration changes: its public profile, and the
/// rating of every book it reviewed (reviews by deleted accounts do not count).
async fn account_changed(txn: &mut WriteTxn, user_id: Uuid) -> Result<(), ServiceError> {
    let reviewed: Vec<Uuid> = review::Entity::find()
        .select_only()
        .column(review::Column::BookId)
        .distinct()
        .filter(review::Column::UserId.eq(user_id))
        .into_tuple()
        .all(&*txn)
        .await?;
    txn.changed(Tag::and_books(Tag::User(user_id), reviewed));
    Ok(())
}

/// Soft-deletes the account and revokes its tokens, in one transaction.
pub async fn delete_account(db: &DatabaseConnection, actor: Actor, user_id: Uuid) -> Result<Written<()>, ServiceError> {
    let mut txn = begin_write_as(db, Some(actor)).await?;
    soft_delete(&txn, (user::Column::Id, user::Column::DeletedAt), user_id, "user").await?;
    revoke_all_tokens(&txn, user_id).await?;
    account_changed(&mut txn, user_id).await?;
    Ok(txn.commit(()).await?)
}

/// Accounts by email, through the unique index on `lower(email)` (migration 21): the
/// service stores emails lower-cased, and the index keeps two that differ only in case
/// out, so the same expression finds the one account and uses the index.
fn find_by_email(email: &Email) -> sea_orm::Select<user::Entity> {
    user::Entity::find().filter(ExprTrait::eq(
        Expr::expr(Func::lower(Expr::col(user::Column::Email))),
        email.as_str(),
    ))
}
