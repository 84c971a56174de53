//! PostgreSQL: `pg_dump --format=custom` (compressed, restorable table by table with
//! `pg_restore`) run inside a snapshot this tool exports from a REPEATABLE READ
//! transaction. The manifest's counts and checksums are read in that same transaction,
//! so they describe exactly the rows the dump holds, however busy the server is.
//!
//! The server's own tools are used, never a reimplementation: found on `PATH`, or else
//! under `/usr/lib/postgresql/<version>/bin` (newest first). The password travels in
//! `PGPASSWORD`, never on a command line.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use sea_orm::{
    AccessMode, ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, IsolationLevel, Statement,
    TransactionTrait,
};
use tokio::process::Command;

use crate::manifest::{self, Backend, Manifest, TableDigest};
use crate::{BackupError, split_password};

/// Session settings that make `row::text` the same on every server and session.
const STABLE_TEXT: &str = "SET LOCAL timezone = 'UTC'; SET LOCAL datestyle = 'ISO, YMD'; \
     SET LOCAL intervalstyle = 'postgres'; SET LOCAL extra_float_digits = 1; SET LOCAL bytea_output = 'hex'";

async fn connect(url: &str) -> Result<DatabaseConnection, BackupError> {
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(1)
        .min_connections(0)
        .connect_timeout(std::time::Duration::from_secs(10))
        .sqlx_logging(false);
    Ok(Database::connect(options).await?)
}

async fn strings<C: ConnectionTrait>(db: &C, sql: &str) -> Result<Vec<String>, BackupError> {
    let rows = db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get_by_index::<String>(0))
        .collect::<Result<_, _>>()?)
}

/// The path of a PostgreSQL client program.
pub(crate) fn tool(name: &str) -> Result<PathBuf, BackupError> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name));
    let mut packaged: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|version| version.path().join("bin").join(name))
        .collect();
    packaged.sort_by(|a, b| b.cmp(a));
    on_path
        .chain(packaged)
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| BackupError::Tool {
            tool: name.into(),
            message: "not found on PATH nor under /usr/lib/postgresql/*/bin; install the PostgreSQL client \
                      (Debian: apt-get install postgresql-client) matching the server's major version"
                .into(),
        })
}

/// Runs a PostgreSQL client program against `url`, failing with its own error text.
async fn run(name: &str, url: &str, args: &[&str]) -> Result<String, BackupError> {
    let (bare, password) = split_password(url);
    let mut command = Command::new(tool(name)?);
    command
        .args(args)
        .arg(format!("--dbname={bare}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    let output = command.output().await.map_err(|e| BackupError::Tool {
        tool: name.into(),
        message: e.to_string(),
    })?;
    if !output.status.success() {
        return Err(BackupError::Tool {
            tool: name.into(),
            message: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

async fn version(name: &str) -> String {
    let Ok(path) = tool(name) else {
        return "unknown".into();
    };
    match Command::new(path).arg("--version").output().await {
        Ok(out) => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        Err(_) => "unknown".into(),
    }
}

/// Tables whose rows row-level security would hide from the connected role. pg_dump
/// refuses such tables (it runs with `row_security = off`), and dumping with security
/// on was rejected: it would silently leave out whatever a read policy filters.
const BOUND_BY_ROW_SECURITY: &str = "\
    SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
    WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relrowsecurity \
      AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE')) \
      AND NOT (SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user) \
    ORDER BY 1";

pub(crate) async fn create(url: &str, backup: &Path, progress: &mut dyn FnMut(&str)) -> Result<Manifest, BackupError> {
    tool("pg_dump")?;
    let db = connect(url).await?;
    let bound = strings(&db, BOUND_BY_ROW_SECURITY).await?;
    if !bound.is_empty() {
        db.close().await.ok();
        return Err(BackupError::Unsupported(format!(
            "this role is bound by row-level security on {}, so a dump would fail or miss rows; back up as a \
             role with BYPASSRLS and pg_read_all_data (docs/backup.md)",
            bound.join(", ")
        )));
    }
    let txn = db
        .begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly))
        .await?;
    txn.execute_unprepared(STABLE_TEXT).await?;
    let snapshot = strings(&txn, "SELECT pg_export_snapshot()").await?.concat();
    progress("dumping (pg_dump --format=custom) from an exported snapshot");
    let file = backup.to_string_lossy().into_owned();
    let args = ["--format=custom", "--snapshot", &snapshot, "--file", &file];
    let dump = run("pg_dump", url, &args);
    let checksums = async {
        let tables = digests(&txn).await?;
        let schema_version = strings(&txn, "SELECT max(version) FROM seaql_migrations")
            .await
            .ok()
            .and_then(|v| v.into_iter().next());
        let server = strings(&txn, "SHOW server_version").await?.concat();
        Ok::<_, BackupError>((tables, schema_version, server))
    };
    // The snapshot lives as long as this transaction: keep it open until pg_dump is done.
    let (dumped, checksums) = tokio::join!(dump, checksums);
    txn.commit().await.ok();
    db.close().await.ok();
    if let Err(err) = dumped {
        std::fs::remove_file(backup).ok();
        return Err(err);
    }
    let (tables, schema_version, server) = checksums?;
    progress("counted and checksummed every table in the same snapshot");
    let tools = BTreeMap::from([("pg_dump".into(), version("pg_dump").await), ("server".into(), server)]);
    Ok(Manifest::of(backup, Backend::Postgres, schema_version, tables, tools))
}

/// Every table of the `public` schema, each row as `row::text` in stable settings.
/// Materialized views are left out: they are derived, and a restore recomputes them.
async fn digests<C: ConnectionTrait>(txn: &C) -> Result<BTreeMap<String, TableDigest>, BackupError> {
    let tables = strings(
        txn,
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
    )
    .await?;
    let mut digests = BTreeMap::new();
    for table in tables {
        let sql = format!("SELECT t::text FROM public.\"{}\" AS t", table.replace('"', "\"\""));
        digests.insert(table, manifest::digest(strings(txn, &sql).await?));
    }
    Ok(digests)
}

/// Digests of the database at `url`, read in one consistent snapshot.
pub(crate) async fn digests_at(url: &str) -> Result<BTreeMap<String, TableDigest>, BackupError> {
    let db = connect(url).await?;
    let txn = db
        .begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly))
        .await?;
    txn.execute_unprepared(STABLE_TEXT).await?;
    let result = digests(&txn).await;
    txn.commit().await.ok();
    db.close().await.ok();
    result
}

/// Restores into the database at `url`: into an empty one, or over an existing one with
/// `force` (`--clean`). Objects are owned by the restoring role (`--no-owner`): restore
/// as the schema owner. Table grants come back from the dump; grants on the database
/// itself (CONNECT, TEMPORARY) are not in a dump and belong to the set-up
/// (docs/operations.md).
pub(crate) async fn restore(
    backup: &Path,
    url: &str,
    force: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<(), BackupError> {
    let db = connect(url).await?;
    let existing = strings(
        &db,
        "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')",
    )
    .await?;
    db.close().await.ok();
    if !existing.is_empty() && !force {
        return Err(BackupError::NotEmpty(crate::redact(url)));
    }
    progress("restoring (pg_restore)");
    let file = backup.to_string_lossy().into_owned();
    // Row security on: the owner restores, and FORCE'd policies bind it. Rows are loaded
    // before the policies exist (they are post-data), so this only lets the closing
    // REFRESH of user_stats read reviews as the API's own refresh does, through the
    // permissive read policy, instead of failing under `row_security = off`.
    let mut args = vec![
        "--no-owner",
        "--exit-on-error",
        "--single-transaction",
        "--enable-row-security",
    ];
    if force {
        args.extend(["--clean", "--if-exists"]);
    }
    args.push(&file);
    run("pg_restore", url, &args).await.map(|_| ())
}

/// Restores into a scratch database created through `scratch_url`, reads its digests,
/// and drops it again, whatever happened.
pub(crate) async fn digests_of_scratch_restore(
    backup: &Path,
    scratch_url: &str,
    progress: &mut dyn FnMut(&str),
) -> Result<BTreeMap<String, TableDigest>, BackupError> {
    let name = format!("bookworm_verify_{}", uuid::Uuid::now_v7().simple());
    let admin = connect(scratch_url).await?;
    admin.execute_unprepared(&format!("CREATE DATABASE \"{name}\"")).await?;
    let url = with_database(scratch_url, &name);
    progress(&format!("restoring into scratch database {name}"));
    let result = async {
        restore(backup, &url, false, progress).await?;
        digests_at(&url).await
    }
    .await;
    admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
        .await?;
    admin.close().await.ok();
    result
}

/// `url` pointing at database `name` instead.
fn with_database(url: &str, name: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("postgres", url));
    let (authority, query) = match rest.find('/') {
        Some(slash) => {
            let (authority, path) = rest.split_at(slash);
            (authority, path.find('?').map(|q| &path[q..]).unwrap_or(""))
        }
        None => match rest.find('?') {
            Some(q) => (&rest[..q], &rest[q..]),
            None => (rest, ""),
        },
    };
    format!("{scheme}://{authority}/{name}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_can_point_at_another_database() {
        assert_eq!(
            with_database("postgres://u:p@h:5432/bookworm?sslmode=require", "scratch"),
            "postgres://u:p@h:5432/scratch?sslmode=require"
        );
        assert_eq!(with_database("postgres://u@h", "scratch"), "postgres://u@h/scratch");
    }
}
