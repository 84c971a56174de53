//! SQLite: `VACUUM INTO` writes a consistent, compacted copy of the database from one
//! read transaction, so the API may keep writing meanwhile (WAL mode). The copy is an
//! ordinary database file: the manifest is computed from it, and restoring is copying
//! it into place.

use std::collections::BTreeMap;
use std::path::Path;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};

use crate::BackupError;
use crate::manifest::{self, Backend, Manifest, TableDigest};

async fn open(path: &Path, mode: &str) -> Result<DatabaseConnection, BackupError> {
    let url = format!("sqlite://{}?mode={mode}", path.display());
    let mut options = ConnectOptions::new(url);
    options.max_connections(1).min_connections(0).sqlx_logging(false);
    Ok(Database::connect(options).await?)
}

async fn strings(db: &DatabaseConnection, sql: &str, values: Vec<sea_orm::Value>) -> Result<Vec<String>, BackupError> {
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(DbBackend::Sqlite, sql, values))
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?)
}

pub(crate) async fn create(
    source: &Path,
    backup: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Manifest, BackupError> {
    if !source.exists() {
        return Err(BackupError::io(
            source,
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such database file"),
        ));
    }
    let db = open(source, "ro").await?;
    progress("copying the database (VACUUM INTO)");
    let target = backup.to_string_lossy().replace('\'', "''");
    db.execute_unprepared(&format!("VACUUM INTO '{target}'")).await?;
    db.close().await.ok();

    progress("counting and checksumming every table in the copy");
    let copy = open(backup, "ro").await?;
    let tables = digests(&copy).await?;
    let schema_version = strings(&copy, "SELECT max(version) FROM seaql_migrations", vec![])
        .await
        .ok()
        .and_then(|v| v.into_iter().next());
    let sqlite_version = strings(&copy, "SELECT sqlite_version()", vec![]).await?;
    copy.close().await.ok();
    let tools = BTreeMap::from([("sqlite".into(), sqlite_version.concat())]);
    Ok(Manifest::of(backup, Backend::Sqlite, schema_version, tables, tools))
}

/// Per-table digests of the database file at `path`, opened read-only.
pub(crate) async fn digests_at(path: &Path) -> Result<BTreeMap<String, TableDigest>, BackupError> {
    let db = open(path, "ro").await?;
    let result = digests(&db).await;
    db.close().await.ok();
    result
}

/// Every ordinary table (not FTS5 virtual tables nor their shadow tables, which are
/// derived from the tables they index), each row rendered with `quote()` per column.
async fn digests(db: &DatabaseConnection) -> Result<BTreeMap<String, TableDigest>, BackupError> {
    let virtual_tables = strings(
        db,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE 'CREATE VIRTUAL TABLE%'",
        vec![],
    )
    .await?;
    let tables = strings(
        db,
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        vec![],
    )
    .await?;
    let mut digests = BTreeMap::new();
    for table in tables {
        let derived = virtual_tables
            .iter()
            .any(|v| table == *v || table.starts_with(&format!("{v}_")));
        if derived {
            continue;
        }
        let columns = strings(
            db,
            "SELECT name FROM pragma_table_info(?) ORDER BY cid",
            vec![table.clone().into()],
        )
        .await?;
        let row = columns
            .iter()
            .map(|c| format!("quote(\"{}\")", c.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" || ',' || ");
        let sql = format!("SELECT {row} FROM \"{}\"", table.replace('"', "\"\""));
        digests.insert(table, manifest::digest(strings(db, &sql, vec![]).await?));
    }
    Ok(digests)
}

/// Copies the backup over `target` (refusing a database with tables unless `force`),
/// through a temporary file and a rename, so a crash never leaves half a database.
/// Nothing may have `target` open meanwhile: stop the API first.
pub(crate) async fn restore(
    backup: &Path,
    target: &Path,
    force: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<(), BackupError> {
    if target.exists() && !force {
        let db = open(target, "ro").await?;
        let tables = strings(&db, "SELECT name FROM sqlite_master WHERE type = 'table'", vec![]).await;
        db.close().await.ok();
        if !tables?.is_empty() {
            return Err(BackupError::NotEmpty(target.display().to_string()));
        }
    }
    progress("copying the backup into place");
    let staging = target.with_extension("restoring");
    std::fs::copy(backup, &staging).map_err(|e| BackupError::io(&staging, e))?;
    // A write-ahead log left by the old database would be replayed into the new one.
    for suffix in ["-wal", "-shm"] {
        let mut side = target.as_os_str().to_owned();
        side.push(suffix);
        match std::fs::remove_file(&side) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(BackupError::io(Path::new(&side), e)),
        }
    }
    std::fs::rename(&staging, target).map_err(|e| BackupError::io(target, e))
}
