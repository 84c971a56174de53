//! The audit log, as admins read it, and its upkeep. Rows are written by database
//! triggers only (migration 15); this module never inserts.
//!
//! Upkeep keeps the log from growing forever. On PostgreSQL the log is partitioned by
//! month (migration 18) and `bookworm_audit_maintain()`, owned by the schema owner,
//! creates the coming months' partitions and drops whole expired ones; the retention it
//! applies lives where only the owner can change it ([`set_retention`]). SQLite has no partitions: expired rows are deleted in small
//! batches, each its own short write, so the API's writers never wait long.

use chrono::{Datelike, TimeZone, Utc};
use entity::audit_log;
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use uuid::Uuid;

use crate::ServiceError;
use crate::pagination::{Cursor, CursorKey, Page, PageRequest};

/// The tables whose changes are audited.
pub const AUDITED_TABLES: &[&str] = &["users", "books", "reviews"];

#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub table: Option<String>,
    pub record_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
}

/// Entries newest first, keyset-paginated on the identity column (its order is the
/// order the changes committed in).
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &AuditFilter,
    page: &PageRequest,
) -> Result<Page<audit_log::Model>, ServiceError> {
    let mut query = audit_log::Entity::find();
    if let Some(table) = &filter.table {
        if !AUDITED_TABLES.contains(&table.as_str()) {
            return Err(ServiceError::Invalid(format!(
                "table must be one of {}",
                AUDITED_TABLES.join(", ")
            )));
        }
        query = query.filter(audit_log::Column::TableName.eq(table.as_str()));
    }
    if let Some(record) = filter.record_id {
        query = query.filter(audit_log::Column::RecordId.eq(record));
    }
    if let Some(actor) = filter.actor_id {
        query = query.filter(audit_log::Column::ActorId.eq(actor));
    }
    if let Some(after) = &page.after {
        let CursorKey::Int(id) = after.key else {
            return Err(ServiceError::Invalid("the cursor is not valid for this list".into()));
        };
        query = query.filter(audit_log::Column::Id.lt(id));
    }
    let mut rows = query
        .order_by_desc(audit_log::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    let more = rows.len() as u64 > page.limit;
    rows.truncate(page.limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| {
            Cursor {
                key: CursorKey::Int(r.id),
                id: Uuid::nil(),
            }
            .encode()
        })
    } else {
        None
    };
    Ok(Page {
        items: rows,
        next_cursor,
    })
}

/// Rows deleted per statement when SQLite applies the retention.
const SQLITE_BATCH: u64 = 1_000;

/// Runs the audit log's upkeep once and says what it did (`created audit_log_y2026m12`,
/// `dropped audit_log_y2024m10`, `deleted 1000 rows changed before 2024-11-01`).
/// `retention_months` (0: keep everything) applies on SQLite; PostgreSQL applies the
/// retention the owner stored ([`set_retention`]).
pub async fn maintain(db: &impl ConnectionTrait, retention_months: u32) -> Result<Vec<String>, ServiceError> {
    let backend = db.get_database_backend();
    match backend {
        DbBackend::Postgres => {
            let rows = db
                .query_all_raw(sea_orm::Statement::from_string(
                    backend,
                    "SELECT bookworm_audit_maintain()",
                ))
                .await?;
            Ok(rows
                .iter()
                .map(|row| row.try_get_by_index::<String>(0))
                .collect::<Result<_, _>>()?)
        }
        _ if retention_months == 0 => Ok(Vec::new()),
        _ => {
            let cutoff = retention_cutoff(Utc::now(), retention_months);
            // The text form the rows are stored in, so the comparison is exact.
            let bound = cutoff.format("%Y-%m-%dT%H:%M:%S%.3f+00:00").to_string();
            let mut deleted = 0;
            loop {
                let batch = db
                    .execute_raw(crate::database::raw_statement(
                        backend,
                        "DELETE FROM audit_log WHERE id IN \
                         (SELECT id FROM audit_log WHERE changed_at < $1 ORDER BY id LIMIT $2)",
                        [bound.clone().into(), (SQLITE_BATCH as i64).into()],
                    ))
                    .await?
                    .rows_affected();
                deleted += batch;
                if batch < SQLITE_BATCH {
                    break;
                }
            }
            Ok(if deleted == 0 {
                Vec::new()
            } else {
                vec![format!("deleted {deleted} rows changed before {}", cutoff.date_naive())]
            })
        }
    }
}

/// The first instant kept: the start of the month `months` before `now`'s month. Whole
/// months older than that are expired.
pub fn retention_cutoff(now: chrono::DateTime<Utc>, months: u32) -> chrono::DateTime<Utc> {
    let index = now.year() * 12 + now.month0() as i32 - months as i32;
    Utc.with_ymd_and_hms(index.div_euclid(12), index.rem_euclid(12) as u32 + 1, 1, 0, 0, 0)
        .single()
        .expect("the first of a month at midnight UTC exists")
}

/// Stores the retention PostgreSQL's maintenance function applies, in a table of the
/// `bookworm_audit` schema that only the schema owner can reach: call this on the
/// owner's connection (the one that runs migrations).
pub async fn set_retention(db: &impl ConnectionTrait, months: u32) -> Result<(), ServiceError> {
    let backend = db.get_database_backend();
    if backend != DbBackend::Postgres {
        return Ok(());
    }
    db.execute_raw(sea_orm::Statement::from_sql_and_values(
        backend,
        "UPDATE bookworm_audit.settings SET retention_months = $1",
        [i64::from(months).into()],
    ))
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cutoff_is_the_start_of_a_month_counted_back() {
        let now = Utc.with_ymd_and_hms(2026, 11, 25, 10, 0, 0).unwrap();
        assert_eq!(
            retention_cutoff(now, 0),
            Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            retention_cutoff(now, 11),
            Utc.with_ymd_and_hms(2025, 12, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            retention_cutoff(now, 24),
            Utc.with_ymd_and_hms(2024, 11, 1, 0, 0, 0).unwrap()
        );
    }
}
