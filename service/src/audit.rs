//! The audit log, as admins read it. Rows are written by database triggers only
//! (migration 15); this module never inserts.

use entity::audit_log;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
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
    db: &DatabaseConnection,
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
