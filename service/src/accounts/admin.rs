//! The admin's view of users: listing them, changing roles, deleting and restoring
//! accounts, and making the first admin.

use super::*;

pub async fn list_users(
    db: &impl ConnectionTrait,
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
) -> Result<Written<Account>, ServiceError> {
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
    // The role shows in no cached read.
    let account = find_account(&txn, cipher, id, false).await?;
    Ok(txn.commit(account).await?)
}

pub async fn admin_delete_user(
    db: &DatabaseConnection,
    actor: &CurrentUser,
    id: Uuid,
) -> Result<Written<()>, ServiceError> {
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
) -> Result<Written<Account>, ServiceError> {
    let mut txn = begin_write_as(db, Some(actor)).await?;
    user::Entity::update_many()
        .col_expr(user::Column::DeletedAt, Expr::value(Option::<DateTime<Utc>>::None))
        .filter(user::Column::Id.eq(id))
        .filter(user::Column::DeletedAt.is_not_null())
        .exec(&txn)
        .await?;
    let account = find_account(&txn, cipher, id, false).await?;
    account_changed(&mut txn, id).await?;
    Ok(txn.commit(account).await?)
}

/// Makes `email` an admin: promotes (and restores) an existing account, or creates
/// one with `password`. There is no default admin and no default password.
pub async fn bootstrap_admin(
    db: &DatabaseConnection,
    email: &Email,
    password: Option<Password>,
) -> Result<Written<AdminBootstrap>, ServiceError> {
    let existing = find_by_email(email).one(db).await?;
    if let Some(user) = existing {
        let mut txn = begin_write_as(db, None).await?;
        let restored = user.deleted_at.is_some();
        let mut active = user.into_active_model();
        active.role = Set(Role::Admin);
        active.deleted_at = Set(None);
        let user = active.update(&txn).await?;
        revoke_all_tokens(&txn, user.id).await?;
        if restored {
            account_changed(&mut txn, user.id).await?;
        }
        return Ok(txn.commit(AdminBootstrap::Promoted).await?);
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
    Ok(txn.commit(AdminBootstrap::Created).await?)
}
