//! Accounts: registration, login with revocable bearer tokens, profiles with an
//! encrypted phone number, and the admin's view of users.
//!
//! Every function takes a connection (or transaction) and already-parsed input
//! from [`types`]; authorisation (who may call what) is the API's job, except the
//! rules that protect the data itself, such as an admin not demoting themselves.

pub mod password;
pub mod token;
pub mod types;

use chrono::{DateTime, Duration, Utc};
use entity::user::Role;
use entity::{api_token, profile, user};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, IntoActiveModel, QueryFilter, Set,
};
use uuid::Uuid;

pub use types::{Bio, DisplayName, Email, FieldError, FieldErrors, Password, Phone};

use crate::ServiceError;
use crate::database::{Actor, begin_write_as};
use crate::field_crypto::FieldCipher;
use crate::pagination::{self, Cursor, Ordering, Page, PageRequest};

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

async fn hash_off_thread(password: String) -> Result<String, ServiceError> {
    tokio::task::spawn_blocking(move || password::hash(&password))
        .await
        .map_err(|e| ServiceError::Internal(format!("password hashing task failed: {e}")))
}

/// Creates the user and their profile in one transaction: both rows or neither.
pub async fn register(db: &DatabaseConnection, cipher: &FieldCipher, new: NewAccount) -> Result<Account, ServiceError> {
    let password_hash = hash_off_thread(new.password.expose().to_owned()).await?;
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
    .map_err(ServiceError::conflict_on_unique(
        "an account with this email already exists",
    ))?;
    let profile = profile::ActiveModel {
        user_id: Set(user.id),
        display_name: Set(new.display_name.as_str().to_owned()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(Account::assemble(user, Some(profile), cipher))
}

/// Verifies the credentials and issues a new token. Unknown accounts, deleted
/// accounts and wrong passwords are indistinguishable to the caller: same error,
/// and (thanks to a dummy verification) about the same time.
pub async fn login(
    db: &DatabaseConnection,
    email: &str,
    password: &str,
    ttl: Duration,
) -> Result<IssuedToken, ServiceError> {
    let found = match Email::parse(email) {
        Ok(email) => {
            user::Entity::find()
                .filter(user::Column::Email.eq(email.as_str()))
                .filter(user::Column::DeletedAt.is_null())
                .one(db)
                .await?
        }
        Err(_) => None,
    };
    let password = password.to_owned();
    let Some(user) = found else {
        tokio::task::spawn_blocking(move || password::spend_one_verification(&password))
            .await
            .map_err(|e| ServiceError::Internal(e.to_string()))?;
        return Err(ServiceError::InvalidCredentials);
    };
    let stored = user.password_hash.clone();
    let (matches, password) = tokio::task::spawn_blocking(move || (password::verify(&password, &stored), password))
        .await
        .map_err(|e| ServiceError::Internal(e.to_string()))?;
    if !matches {
        return Err(ServiceError::InvalidCredentials);
    }
    if password::needs_rehash(&user.password_hash) {
        let upgraded = hash_off_thread(password).await?;
        let mut active = user.clone().into_active_model();
        active.password_hash = Set(upgraded);
        let txn = begin_write_as(
            db,
            Some(Actor {
                id: user.id,
                role: user.role,
            }),
        )
        .await?;
        active.update(&txn).await?;
        txn.commit().await?;
        tracing::info!(user_id = %user.id, "upgraded a password hash to the current parameters");
    }

    let new_token = token::generate();
    let expires_at = Utc::now() + ttl;
    api_token::ActiveModel {
        user_id: Set(user.id),
        token_hash: Set(new_token.hash),
        expires_at: Set(expires_at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(IssuedToken {
        token: new_token.secret,
        expires_at,
    })
}

/// The caller behind a presented bearer token, if it is known, unexpired, not
/// revoked and its account not deleted. One query.
pub async fn authenticate(db: &DatabaseConnection, presented: &str) -> Result<Option<CurrentUser>, ServiceError> {
    let Some(hash) = token::hash_presented(presented) else {
        return Ok(None);
    };
    let found = api_token::Entity::find()
        .filter(api_token::Column::TokenHash.eq(hash))
        .filter(api_token::Column::RevokedAt.is_null())
        .filter(api_token::Column::ExpiresAt.gt(Utc::now()))
        .find_also_related(user::Entity)
        .filter(user::Column::DeletedAt.is_null())
        .one(db)
        .await?;
    Ok(found.and_then(|(token, user)| {
        user.map(|u| CurrentUser {
            id: u.id,
            role: u.role,
            token_id: token.id,
        })
    }))
}

pub async fn logout(db: &DatabaseConnection, caller: &CurrentUser) -> Result<(), ServiceError> {
    api_token::Entity::update_many()
        .col_expr(api_token::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(api_token::Column::Id.eq(caller.token_id))
        .filter(api_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

async fn revoke_all_tokens<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<u64, ServiceError> {
    let result = api_token::Entity::update_many()
        .col_expr(api_token::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(api_token::Column::UserId.eq(user_id))
        .filter(api_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected)
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

pub async fn account(db: &DatabaseConnection, cipher: &FieldCipher, id: Uuid) -> Result<Account, ServiceError> {
    find_account(db, cipher, id, false).await
}

/// Edits the actor's own profile.
pub async fn update_profile(
    db: &DatabaseConnection,
    cipher: &FieldCipher,
    actor: Actor,
    changes: ProfileChanges,
) -> Result<Account, ServiceError> {
    let user_id = actor.id;
    let profile = profile::Entity::find_by_id(user_id)
        .one(db)
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
        let txn = begin_write_as(db, Some(actor)).await?;
        active.update(&txn).await?;
        txn.commit().await?;
    }
    account(db, cipher, user_id).await
}

/// Soft-deletes the account and revokes its tokens, in one transaction.
pub async fn delete_account(db: &DatabaseConnection, actor: Actor, user_id: Uuid) -> Result<(), ServiceError> {
    let txn = begin_write_as(db, Some(actor)).await?;
    let deleted = user::Entity::update_many()
        .col_expr(user::Column::DeletedAt, Expr::value(Utc::now()))
        .filter(user::Column::Id.eq(user_id))
        .filter(user::Column::DeletedAt.is_null())
        .exec(&txn)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(ServiceError::NotFound("user"));
    }
    revoke_all_tokens(&txn, user_id).await?;
    txn.commit().await?;
    Ok(())
}

pub async fn list_users(
    db: &DatabaseConnection,
    cipher: &FieldCipher,
    filter: UserFilter,
    page: &PageRequest,
) -> Result<Page<Account>, ServiceError> {
    let mut query = user::Entity::find().find_also_related(profile::Entity);
    if let Some(role) = filter.role {
        query = query.filter(user::Column::Role.eq(role));
    }
    if !filter.include_deleted {
        query = query.filter(user::Column::DeletedAt.is_null());
    }
    let order = Ordering::newest_first(user::Column::CreatedAt, user::Column::Id);
    let rows = order.apply(query, page)?.all(db).await?;
    let accounts = rows.into_iter().map(|(u, p)| Account::assemble(u, p, cipher)).collect();
    Ok(pagination::finish(accounts, page, Account::cursor))
}

/// Changes a user's role and revokes their tokens, so the change is felt at once
/// and the user signs in again under the new role. Admins cannot change their own
/// role: that is how the last admin locks everyone out.
pub async fn set_role(
    db: &DatabaseConnection,
    cipher: &FieldCipher,
    actor: &CurrentUser,
    id: Uuid,
    role: Role,
) -> Result<Account, ServiceError> {
    if actor.id == id {
        return Err(ServiceError::Conflict("you cannot change your own role".into()));
    }
    let txn = begin_write_as(db, Some(actor.into())).await?;
    let user = user::Entity::find_by_id(id)
        .filter(user::Column::DeletedAt.is_null())
        .one(&txn)
        .await?
        .ok_or(ServiceError::NotFound("user"))?;
    if user.role != role {
        let mut active = user.into_active_model();
        active.role = Set(role);
        active.update(&txn).await?;
        revoke_all_tokens(&txn, id).await?;
    }
    let account = find_account(&txn, cipher, id, false).await?;
    txn.commit().await?;
    Ok(account)
}

pub async fn admin_delete_user(db: &DatabaseConnection, actor: &CurrentUser, id: Uuid) -> Result<(), ServiceError> {
    if actor.id == id {
        return Err(ServiceError::Conflict(
            "use DELETE /me to delete your own account".into(),
        ));
    }
    delete_account(db, actor.into(), id).await
}

pub async fn restore_user(
    db: &DatabaseConnection,
    cipher: &FieldCipher,
    actor: Actor,
    id: Uuid,
) -> Result<Account, ServiceError> {
    let txn = begin_write_as(db, Some(actor)).await?;
    user::Entity::update_many()
        .col_expr(user::Column::DeletedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::DeletedAt.is_not_null())
        .exec(&txn)
        .await?;
    let account = find_account(&txn, cipher, id, false).await?;
    txn.commit().await?;
    Ok(account)
}

/// Makes `email` an admin: promotes (and restores) an existing account, or creates
/// one with `password`. There is no default admin and no default password.
pub async fn bootstrap_admin(
    db: &DatabaseConnection,
    email: &Email,
    password: Option<Password>,
) -> Result<AdminBootstrap, ServiceError> {
    let existing = user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(db)
        .await?;
    if let Some(user) = existing {
        let txn = begin_write_as(db, None).await?;
        let mut active = user.into_active_model();
        active.role = Set(Role::Admin);
        active.deleted_at = Set(None);
        let user = active.update(&txn).await?;
        revoke_all_tokens(&txn, user.id).await?;
        txn.commit().await?;
        return Ok(AdminBootstrap::Promoted);
    }
    let password =
        password.ok_or_else(|| ServiceError::Invalid("a password is needed to create a new admin".into()))?;
    let password_hash = hash_off_thread(password.expose().to_owned()).await?;
    let id = Uuid::now_v7();
    let txn = begin_write_as(db, Some(Actor { id, role: Role::Admin })).await?;
    let user = user::ActiveModel {
        id: Set(id),
        email: Set(email.as_str().to_owned()),
        password_hash: Set(password_hash),
        role: Set(Role::Admin),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    profile::ActiveModel {
        user_id: Set(user.id),
        display_name: Set("Administrator".into()),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    txn.commit().await?;
    Ok(AdminBootstrap::Created)
}
