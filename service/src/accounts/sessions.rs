//! Sessions: logging in for a revocable bearer token, checking one, logging out.

use super::*;

/// Verifies the credentials and issues a new token. Unknown accounts, deleted
/// accounts and wrong passwords are indistinguishable to the caller: same error,
/// and (thanks to a dummy verification) about the same time.
pub async fn login(
    db: &DatabaseConnection,
    hashing: &Arc<Hashing>,
    email: &str,
    password: &str,
    ttl: Duration,
) -> Result<IssuedToken, ServiceError> {
    let found = match Email::parse(email) {
        Ok(email) => {
            find_by_email(&email)
                .filter(user::Column::DeletedAt.is_null())
                .one(db)
                .await?
        }
        Err(_) => None,
    };
    let Some(user) = found else {
        hashing.spend_one_verification(password.to_owned()).await?;
        return Err(ServiceError::InvalidCredentials);
    };
    let matches = hashing.verify(password.to_owned(), user.password_hash.clone()).await?;
    if !matches {
        return Err(ServiceError::InvalidCredentials);
    }
    if password::needs_rehash(&user.password_hash) {
        let upgraded = hashing.hash(password.to_owned()).await?;
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
        // No cached read shows a password hash.
        txn.commit(()).await?.nothing_cached();
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
pub async fn authenticate(db: &impl ConnectionTrait, presented: &str) -> Result<Option<CurrentUser>, ServiceError> {
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

pub async fn logout(db: &impl ConnectionTrait, caller: &CurrentUser) -> Result<(), ServiceError> {
    api_token::Entity::update_many()
        .col_expr(api_token::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(api_token::Column::Id.eq(caller.token_id))
        .filter(api_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

pub(super) async fn revoke_all_tokens<C: ConnectionTrait>(db: &C, user_id: Uuid) -> Result<u64, ServiceError> {
    let result = api_token::Entity::update_many()
        .col_expr(api_token::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(api_token::Column::UserId.eq(user_id))
        .filter(api_token::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}
