//! The audit log. Rows are written by triggers (a later migration), so the table has
//! no foreign keys: an entry must outlive the row and the actor it describes.

use sea_orm_migration::prelude::*;

use crate::dialect;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        manager
            .create_table(
                Table::create()
                    .table(AuditLog::Table)
                    .col(
                        ColumnDef::new(AuditLog::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(AuditLog::TableName).string_len(63).not_null())
                    .col(ColumnDef::new(AuditLog::RecordId).uuid().not_null())
                    .col(
                        ColumnDef::new(AuditLog::Action)
                            .string_len(6)
                            .not_null()
                            .check(Expr::col(AuditLog::Action).is_in(["INSERT", "UPDATE", "DELETE"])),
                    )
                    .col(ColumnDef::new(AuditLog::ActorId).uuid().null())
                    .col(dialect::timestamp(backend, AuditLog::ChangedAt)?)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_record")
                    .table(AuditLog::Table)
                    .col(AuditLog::TableName)
                    .col(AuditLog::RecordId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_log_actor_id")
                    .table(AuditLog::Table)
                    .col(AuditLog::ActorId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AuditLog::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    TableName,
    RecordId,
    Action,
    ActorId,
    ChangedAt,
}
