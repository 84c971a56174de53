//! Operator commands of the `api` binary besides serving, as functions the binary and
//! the tests share. They connect the way the server does: as `DATABASE_URL`, with
//! migrations applied through `DATABASE_MIGRATION_URL` when it is set, so they work in
//! the two-role production set-up where the API's own role may not run DDL.

use service::accounts::{self, AdminBootstrap, Email, Password};

use crate::config::Settings;

/// `api create-admin`: makes `email` an admin, creating the account (with `password`)
/// if it does not exist yet. Returns what it did and the address as stored (normalised).
pub async fn create_admin(
    settings: &Settings,
    email: &str,
    password: Option<String>,
) -> Result<(AdminBootstrap, Email), String> {
    let email = Email::parse(email).map_err(|e| format!("--email {}", e.message))?;
    let password = password
        .map(|p| Password::parse(&p))
        .transpose()
        .map_err(|e| format!("password {}", e.message))?;
    let db = service::database::connect(&settings.database.pool)
        .await
        .map_err(|e| format!("cannot reach the database at {}: {e}", settings.database.pool.url))?;
    if settings.database.auto_migrate {
        crate::startup::migrate(settings, &db)
            .await
            .map_err(|e| e.to_string())?;
    }
    let outcome = accounts::bootstrap_admin(&db, &email, password)
        .await
        .map_err(|e| e.to_string());
    db.close().await.ok();
    let written = outcome?;
    if !written.tags().is_empty() {
        tracing::warn!(
            "the account was restored: running API instances show it in cached reads once their entries expire (CACHE_TTL_SECS)"
        );
    }
    // The command reaches no API instance's cache; the warning above says so.
    #[allow(clippy::disallowed_methods)]
    let outcome = written.unpublished();
    Ok((outcome, email))
}
