//! Emails become one canonical form (see `service::accounts::Email`): the domain in
//! its IDNA ASCII form, the local part in NFC and lower case. Before, the domain was
//! stored as typed, so `ada@café.com` and its decomposed or full-width spellings were
//! different accounts. This rewrites each stored address that is not canonical, so
//! that its owner still signs in by any spelling of it.
//!
//! Only addresses with a non-ASCII character can change (the service lower-cased
//! everything else already), so only those rows are read. Where two stored addresses
//! have the same canonical form, the older account keeps it and the newer one stays
//! as stored, reachable by no spelling a login accepts: the migration names each such
//! address in a warning for an operator to resolve (the rows are never merged or
//! deleted by a migration). `down` leaves the rewritten addresses as they are: the
//! canonical form is a valid address under the old rules too.
//!
//! The normalisation is a frozen copy of the service's, like every identifier here: a
//! later change to the service's rules must not change what this migration did.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};
use unicode_normalization::UnicodeNormalization;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The canonical form of a stored address, or `None` if it has none (left alone).
fn canonical(stored: &str) -> Option<String> {
    let (local, domain) = stored.trim().rsplit_once('@')?;
    let local: String = local.nfc().collect::<String>().to_lowercase().nfc().collect();
    let domain = idna::domain_to_ascii(domain).ok()?;
    Some(format!("{local}@{domain}"))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        let backend = manager.get_database_backend();
        let non_ascii = match backend {
            DbBackend::Postgres => "octet_length(email) <> char_length(email)",
            _ => "length(CAST(email AS BLOB)) <> length(email)",
        };
        let rows = db
            .query_all_raw(Statement::from_string(
                backend,
                format!("SELECT email FROM users WHERE {non_ascii} ORDER BY created_at, id"),
            ))
            .await?;
        let (set, taken) = match backend {
            DbBackend::Postgres => ("$1", "$2"),
            _ => ("?", "?"),
        };
        let update = format!(
            "UPDATE users SET email = {set} WHERE email = {taken}
             AND NOT EXISTS (SELECT 1 FROM users other WHERE lower(other.email) = lower({set}))"
        );
        for row in rows {
            let stored: String = row.try_get_by_index(0)?;
            let Some(canonical) = canonical(&stored).filter(|c| *c != stored) else {
                continue;
            };
            // PostgreSQL numbers its parameters; SQLite binds `?` in order of appearance.
            let values = match backend {
                DbBackend::Postgres => vec![canonical.clone().into(), stored.clone().into()],
                _ => vec![
                    canonical.clone().into(),
                    stored.clone().into(),
                    canonical.clone().into(),
                ],
            };
            let done = db
                .execute_raw(Statement::from_sql_and_values(backend, &update, values))
                .await?;
            if done.rows_affected() == 0 {
                eprintln!(
                    "warning: the account {stored:?} was left as stored: an older account already has its canonical form {canonical:?}. Nobody can sign in to it until an operator resolves the pair."
                );
            }
        }
        Ok(())
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn stored_spellings_meet_in_one_form() {
        assert_eq!(canonical("ada@caf\u{e9}.com").as_deref(), Some("ada@xn--caf-dma.com"));
        assert_eq!(canonical("ada@cafe\u{301}.com").as_deref(), Some("ada@xn--caf-dma.com"));
        assert_eq!(canonical("ada@example\u{3002}com").as_deref(), Some("ada@example.com"));
        assert_eq!(canonical("ada@example.com").as_deref(), Some("ada@example.com"));
    }
}
