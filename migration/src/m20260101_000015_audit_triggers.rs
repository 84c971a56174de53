//! Every INSERT, UPDATE and DELETE on users, books and reviews writes an audit_log row
//! from a trigger, in the same transaction, so changes made with raw SQL outside the
//! API are audited too.
//!
//! PostgreSQL: one plpgsql function reads the actor from the transaction-local setting
//! `app.current_user_id` (empty or unset means unknown). It is SECURITY DEFINER so the
//! API's role needs no INSERT right on audit_log and cannot forge entries. SQLite:
//! triggers cannot read session state, so they write the row and the service stamps
//! the actor in the same transaction before committing. `UPDATE OF` lists the audited
//! columns so the updated_at trigger's own UPDATE is not logged twice.

use crate::dialect;
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Audited tables and the columns whose change counts as an UPDATE.
const AUDITED: &[(&str, &str)] = &[
    ("users", "email, password_hash, role, deleted_at"),
    (
        "books",
        "author_id, title, description, isbn, published_year, deleted_at",
    ),
    ("reviews", "user_id, book_id, rating, title, body, deleted_at"),
];

const POSTGRES_FUNCTION: &str = "
CREATE FUNCTION bookworm_audit() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public AS $$
BEGIN
    INSERT INTO audit_log (table_name, record_id, action, actor_id)
    VALUES (TG_TABLE_NAME,
            CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END,
            TG_OP,
            NULLIF(current_setting('app.current_user_id', true), '')::uuid);
    RETURN NULL;
END;
$$;
";

fn up_postgres() -> String {
    let mut sql = POSTGRES_FUNCTION.to_owned();
    for (table, _) in AUDITED {
        sql.push_str(&format!(
            "CREATE TRIGGER {table}_audit AFTER INSERT OR UPDATE OR DELETE ON {table}
             FOR EACH ROW EXECUTE FUNCTION bookworm_audit();\n"
        ));
    }
    sql
}

fn up_sqlite() -> String {
    let mut sql = String::new();
    for (table, columns) in AUDITED {
        sql.push_str(&format!(
            "CREATE TRIGGER {table}_audit_insert AFTER INSERT ON {table} BEGIN
                 INSERT INTO audit_log (table_name, record_id, action) VALUES ('{table}', NEW.id, 'INSERT');
             END;
             CREATE TRIGGER {table}_audit_update AFTER UPDATE OF {columns} ON {table} BEGIN
                 INSERT INTO audit_log (table_name, record_id, action) VALUES ('{table}', NEW.id, 'UPDATE');
             END;
             CREATE TRIGGER {table}_audit_delete AFTER DELETE ON {table} BEGIN
                 INSERT INTO audit_log (table_name, record_id, action) VALUES ('{table}', OLD.id, 'DELETE');
             END;\n"
        ));
    }
    sql
}

fn down_postgres() -> String {
    let mut sql = String::new();
    for (table, _) in AUDITED {
        sql.push_str(&format!("DROP TRIGGER {table}_audit ON {table};\n"));
    }
    sql + "DROP FUNCTION bookworm_audit();\n"
}

fn down_sqlite() -> String {
    let mut sql = String::new();
    for (table, _) in AUDITED {
        for action in ["insert", "update", "delete"] {
            sql.push_str(&format!("DROP TRIGGER {table}_audit_{action};\n"));
        }
    }
    sql
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        dialect::per_backend(manager, &up_postgres(), &up_sqlite()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        dialect::per_backend(manager, &down_postgres(), &down_sqlite()).await
    }
}
