//! Logical backups of a Bookworm database: `create`, `list`, `prune`, `restore`,
//! `verify`, on PostgreSQL and SQLite.
//!
//! Each backend uses its own engine's consistent copy rather than reading rows through
//! the ORM: `pg_dump --format=custom` inside an exported snapshot on PostgreSQL, and
//! `VACUUM INTO` on SQLite, both safe while the API keeps writing. A JSON manifest
//! beside each backup records per-table row counts and checksums taken from that same
//! snapshot; `verify` restores the backup somewhere and recomputes them, so "we have a
//! backup" always means "we have restored it and it matched".
//!
//! Physical backups and point-in-time recovery are pgBackRest's job, not this tool's
//! (docs/backup.md compares the two).

pub mod manifest;
mod postgres;
pub mod retention;
mod sqlite;

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};
use sea_orm::DbErr;

pub use manifest::{Backend, Difference, Manifest, TableDigest};
pub use retention::Policy;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: unreadable manifest: {reason}")]
    Manifest { path: PathBuf, reason: String },
    #[error("database error: {0}")]
    Database(#[from] DbErr),
    #[error("{tool}: {message}")]
    Tool { tool: String, message: String },
    #[error("{0} is not empty; restore into an empty database, or pass --force to replace its contents")]
    NotEmpty(String),
    #[error("{0}")]
    Unsupported(String),
}

impl BackupError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        BackupError::Io {
            path: path.to_owned(),
            source,
        }
    }
}

/// Where a database lives, parsed from its URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    Postgres(String),
    Sqlite(PathBuf),
}

impl Location {
    pub(crate) fn parse(url: &str) -> Result<Self, BackupError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Location::Postgres(url.to_owned()));
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//");
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() || path == ":memory:" {
                return Err(BackupError::Unsupported(
                    "an in-memory SQLite database cannot be backed up".into(),
                ));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        Err(BackupError::Unsupported(format!(
            "{}: not supported: use sqlite:// or postgres://",
            redact(url)
        )))
    }
}

/// The URL with any password replaced by `***`, for manifests and messages.
pub fn redact(url: &str) -> String {
    match split_password(url) {
        (bare, Some(_)) => bare.replacen('@', ":***@", 1),
        (bare, None) => bare,
    }
}

/// Splits the password out of a URL, so that it can travel to `pg_dump` in the
/// environment (`PGPASSWORD`) instead of its command line, which `ps` shows to anyone.
pub(crate) fn split_password(url: &str) -> (String, Option<String>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return (url.to_owned(), None);
    };
    match userinfo.split_once(':') {
        Some((user, password)) => (
            format!("{scheme}://{user}@{host}{tail}"),
            Some(percent_decode(password)),
        ),
        None => (url.to_owned(), None),
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A finished backup: its file and its manifest.
#[derive(Debug, Clone)]
pub struct Created {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub took: std::time::Duration,
}

/// Takes a backup of the database at `url` into `dir`. `progress` hears each step.
pub async fn create(url: &str, dir: &Path, progress: &mut dyn FnMut(&str)) -> Result<Created, BackupError> {
    let started = Instant::now();
    std::fs::create_dir_all(dir).map_err(|e| BackupError::io(dir, e))?;
    let created_at = Utc::now();
    let stamp = created_at.format("%Y%m%dT%H%M%S%.3fZ");
    let mut manifest = match Location::parse(url)? {
        Location::Postgres(url) => {
            let path = dir.join(format!("bookworm-postgres-{stamp}.dump"));
            postgres::create(&url, &path, progress).await?
        }
        Location::Sqlite(source) => {
            let path = dir.join(format!("bookworm-sqlite-{stamp}.sqlite"));
            sqlite::create(&source, &path, progress).await?
        }
    };
    manifest.created_at = created_at;
    manifest.source = redact(url);
    let path = dir.join(&manifest.file);
    progress("checksumming the backup file");
    manifest.size_bytes = std::fs::metadata(&path).map_err(|e| BackupError::io(&path, e))?.len();
    manifest.file_sha256 = manifest::file_sha256(&path)?;
    manifest.tools.insert("backup".into(), env!("CARGO_PKG_VERSION").into());
    manifest.write(&Manifest::path_for(&path))?;
    Ok(Created {
        path,
        manifest,
        took: started.elapsed(),
    })
}

/// A backup found in a directory; `manifest` is the reason it could not be read, if so.
#[derive(Debug)]
pub struct Listed {
    pub manifest_path: PathBuf,
    pub manifest: Result<Manifest, String>,
}

impl Listed {
    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        self.manifest.as_ref().ok().map(|m| m.created_at)
    }
}

/// Every backup manifest in `dir`, newest first; unreadable ones last.
pub fn list(dir: &Path) -> Result<Vec<Listed>, BackupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BackupError::io(dir, e)),
    };
    let mut found: Vec<Listed> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.to_string_lossy().ends_with(".manifest.json"))
        .map(|manifest_path| Listed {
            manifest: Manifest::read(&manifest_path).map_err(|e| e.to_string()),
            manifest_path,
        })
        .collect();
    found.sort_by_key(|l| std::cmp::Reverse(l.created_at()));
    Ok(found)
}

/// What `prune` did (or, with `dry_run`, would do).
#[derive(Debug, Default)]
pub struct Pruned {
    pub kept: Vec<PathBuf>,
    pub deleted: Vec<PathBuf>,
    /// Backups left alone because their manifest could not be read.
    pub unreadable: Vec<PathBuf>,
}

/// Applies `policy` to the backups in `dir`, deleting each backup that it does not keep
/// together with its manifest. Never deletes the newest, nor one it cannot read.
pub fn prune(dir: &Path, policy: Policy, dry_run: bool) -> Result<Pruned, BackupError> {
    let mut pruned = Pruned::default();
    let (readable, unreadable): (Vec<Listed>, Vec<Listed>) = list(dir)?.into_iter().partition(|l| l.manifest.is_ok());
    pruned.unreadable = unreadable.into_iter().map(|l| l.manifest_path).collect();
    let dates: Vec<DateTime<Utc>> = readable.iter().filter_map(Listed::created_at).collect();
    let keep = retention::keep(policy, &dates);
    for (index, listed) in readable.into_iter().enumerate() {
        let manifest = listed.manifest.expect("partitioned on readability");
        let backup = listed.manifest_path.with_file_name(&manifest.file);
        if keep.contains(&index) {
            pruned.kept.push(backup);
            continue;
        }
        if !dry_run {
            for path in [&backup, &listed.manifest_path] {
                match std::fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(BackupError::io(path, e)),
                }
            }
        }
        pruned.deleted.push(backup);
    }
    Ok(pruned)
}

/// The outcome of a verification: the manifest, and every table that differs.
#[derive(Debug)]
pub struct Verified {
    pub manifest: Manifest,
    /// The backup file's checksum matches its manifest.
    pub file_intact: bool,
    pub differences: Vec<Difference>,
}

impl Verified {
    pub fn ok(&self) -> bool {
        self.file_intact && self.differences.is_empty()
    }
}

/// The backup `given` names: a path to it, or its name as `list` prints it, which is
/// looked up in `dir` (`BACKUP_DIR`). A path that exists wins; a bare name that is not
/// in `dir` either is an error naming both places looked in.
pub fn locate(dir: &Path, given: &Path) -> Result<PathBuf, BackupError> {
    if given.exists() {
        return Ok(given.to_owned());
    }
    let in_dir = dir.join(given);
    if given.components().count() == 1 && in_dir.exists() {
        return Ok(in_dir);
    }
    Err(BackupError::Io {
        path: given.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("no such file, and no backup of that name in {}", dir.display()),
        ),
    })
}

fn manifest_of(backup: &Path) -> Result<Manifest, BackupError> {
    Manifest::read(&Manifest::path_for(backup))
}

/// Restores `backup` into the (empty, unless `force`) database at `into`, then
/// verifies the restored copy against the manifest.
pub async fn restore(
    backup: &Path,
    into: &str,
    force: bool,
    progress: &mut dyn FnMut(&str),
) -> Result<Verified, BackupError> {
    let manifest = manifest_of(backup)?;
    let found = match (&manifest.backend, Location::parse(into)?) {
        (Backend::Postgres, Location::Postgres(url)) => {
            postgres::restore(backup, &url, force, progress).await?;
            postgres::digests_at(&url).await?
        }
        (Backend::Sqlite, Location::Sqlite(path)) => {
            sqlite::restore(backup, &path, force, progress).await?;
            sqlite::digests_at(&path).await?
        }
        (backend, _) => {
            return Err(BackupError::Unsupported(format!(
                "a {backend:?} backup restores into a database of the same kind"
            )));
        }
    };
    Ok(Verified {
        file_intact: manifest::file_sha256(backup)? == manifest.file_sha256,
        differences: manifest::compare(&manifest.tables, &found),
        manifest,
    })
}

/// Checks `backup` against its manifest: the file's checksum, then every table's rows,
/// recomputed from `against` if given (a database it was restored into), else from a
/// fresh restore. A PostgreSQL backup is restored into a scratch database created
/// through `scratch_url` (a role that may create databases) and dropped afterwards.
pub async fn verify(
    backup: &Path,
    against: Option<&str>,
    scratch_url: Option<&str>,
    progress: &mut dyn FnMut(&str),
) -> Result<Verified, BackupError> {
    let manifest = manifest_of(backup)?;
    progress("checksumming the backup file");
    let file_intact = manifest::file_sha256(backup)? == manifest.file_sha256;
    let found = match (against, &manifest.backend) {
        (Some(url), _) => match Location::parse(url)? {
            Location::Postgres(url) => postgres::digests_at(&url).await?,
            Location::Sqlite(path) => sqlite::digests_at(&path).await?,
        },
        (None, Backend::Sqlite) => sqlite::digests_at(backup).await?,
        (None, Backend::Postgres) => {
            let scratch = scratch_url.ok_or_else(|| {
                BackupError::Unsupported(
                    "verifying a PostgreSQL backup restores it into a scratch database: set DATABASE_URL to a \
                     role that may create databases, or pass --against"
                        .into(),
                )
            })?;
            postgres::digests_of_scratch_restore(backup, scratch, progress).await?
        }
    };
    Ok(Verified {
        file_intact,
        differences: manifest::compare(&manifest.tables, &found),
        manifest,
    })
}

/// `1.5 MiB`-style sizes for people.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_is_found_by_path_or_by_the_name_list_prints() {
        let dir = tempfile::tempdir().unwrap();
        let name = Path::new("bookworm-sqlite-20261205T120000.000Z.sqlite");
        std::fs::write(dir.path().join(name), b"backup").unwrap();

        assert_eq!(locate(dir.path(), name).unwrap(), dir.path().join(name));
        let by_path = dir.path().join(name);
        assert_eq!(locate(Path::new("elsewhere"), &by_path).unwrap(), by_path);
        let missing = locate(dir.path(), Path::new("bookworm-none.sqlite")).unwrap_err();
        assert!(missing.to_string().contains("no backup of that name in"), "{missing}");
        // A relative path with a directory is taken as a path, never looked up.
        assert!(locate(dir.path(), &Path::new("sub").join(name)).is_err());
    }

    #[test]
    fn passwords_leave_urls_for_the_environment() {
        let (bare, password) = split_password("postgres://app:p%40ss@db:5432/bookworm?sslmode=require");
        assert_eq!(bare, "postgres://app@db:5432/bookworm?sslmode=require");
        assert_eq!(password.as_deref(), Some("p@ss"));
        assert_eq!(redact("postgres://app:secret@db/x"), "postgres://app:***@db/x");
        assert_eq!(split_password("postgres://app@db/x").1, None);
    }

    #[test]
    fn sqlite_urls_name_a_file() {
        assert_eq!(
            Location::parse("sqlite://data/bookworm.db?mode=rwc").unwrap(),
            Location::Sqlite("data/bookworm.db".into())
        );
        assert_eq!(
            Location::parse("sqlite:///var/lib/b.db").unwrap(),
            Location::Sqlite("/var/lib/b.db".into())
        );
        assert!(Location::parse("sqlite::memory:").is_err());
        assert!(
            Location::parse("mysql://root:pw@db/x")
                .unwrap_err()
                .to_string()
                .contains("not supported")
        );
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024), "3.0 MiB");
    }
}
