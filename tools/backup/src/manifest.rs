//! The manifest written beside every backup: what it holds and how to check it.
//!
//! Per-table row counts and checksums are computed from the same snapshot the dump is
//! taken from (see `postgres::create` and `sqlite::create`), so a backup made while the
//! API writes still matches its manifest exactly. `verify` recomputes them from a
//! restored copy: a backup is only trusted once it has been restored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::BackupError;

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDigest {
    pub rows: u64,
    /// SHA-256 over the table's rows, each rendered as text, sorted bytewise.
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Postgres,
    Sqlite,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format_version: u32,
    pub created_at: DateTime<Utc>,
    pub backend: Backend,
    /// The database it was taken from, password removed.
    pub source: String,
    /// The latest migration applied to the source.
    pub schema_version: Option<String>,
    /// The backup file's name, in the same directory as the manifest.
    pub file: String,
    pub size_bytes: u64,
    /// SHA-256 of the backup file.
    pub file_sha256: String,
    pub tables: BTreeMap<String, TableDigest>,
    /// The programs that wrote it, with their versions.
    pub tools: BTreeMap<String, String>,
}

impl Manifest {
    /// The manifest of `backup`, just taken: the caller fills in what only the whole
    /// file tells (`source`, `size_bytes`, `file_sha256`).
    pub fn of(
        backup: &Path,
        backend: Backend,
        schema_version: Option<String>,
        tables: BTreeMap<String, TableDigest>,
        tools: BTreeMap<String, String>,
    ) -> Self {
        Manifest {
            format_version: FORMAT_VERSION,
            created_at: Utc::now(),
            backend,
            source: String::new(),
            schema_version,
            file: backup.file_name().unwrap_or_default().to_string_lossy().into_owned(),
            size_bytes: 0,
            file_sha256: String::new(),
            tables,
            tools,
        }
    }

    /// `<backup file>.manifest.json`.
    pub fn path_for(backup: &Path) -> PathBuf {
        let mut name = backup.file_name().unwrap_or_default().to_os_string();
        name.push(".manifest.json");
        backup.with_file_name(name)
    }

    pub fn read(path: &Path) -> Result<Self, BackupError> {
        let text = std::fs::read_to_string(path).map_err(|e| BackupError::io(path, e))?;
        serde_json::from_str(&text).map_err(|e| BackupError::Manifest {
            path: path.to_owned(),
            reason: e.to_string(),
        })
    }

    pub fn write(&self, path: &Path) -> Result<(), BackupError> {
        let text = serde_json::to_string_pretty(self).expect("a manifest serializes");
        std::fs::write(path, text + "\n").map_err(|e| BackupError::io(path, e))
    }

    pub fn total_rows(&self) -> u64 {
        self.tables.values().map(|t| t.rows).sum()
    }
}

/// One table whose content differs from the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub table: String,
    pub expected: Option<TableDigest>,
    pub found: Option<TableDigest>,
}

/// Every table that is missing, extra or different, by name.
pub fn compare(expected: &BTreeMap<String, TableDigest>, found: &BTreeMap<String, TableDigest>) -> Vec<Difference> {
    let names: std::collections::BTreeSet<&String> = expected.keys().chain(found.keys()).collect();
    names
        .into_iter()
        .filter(|name| expected.get(*name) != found.get(*name))
        .map(|name| Difference {
            table: name.clone(),
            expected: expected.get(name).cloned(),
            found: found.get(name).cloned(),
        })
        .collect()
}

/// Hashes rows rendered as text, independent of the order the database returned them.
pub fn digest(mut rows: Vec<String>) -> TableDigest {
    use sha2::{Digest, Sha256};
    rows.sort_unstable();
    let mut hasher = Sha256::new();
    for row in &rows {
        hasher.update(row.as_bytes());
        hasher.update([0u8]);
    }
    TableDigest {
        rows: rows.len() as u64,
        sha256: hex(&hasher.finalize()),
    }
}

/// SHA-256 of a file, streamed.
pub fn file_sha256(path: &Path) -> Result<String, BackupError> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|e| BackupError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file.read(&mut buffer).map_err(|e| BackupError::io(path, e))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_ignores_row_order_but_not_content() {
        let a = digest(vec!["1,'x'".into(), "2,'y'".into()]);
        let b = digest(vec!["2,'y'".into(), "1,'x'".into()]);
        let c = digest(vec!["1,'x'".into(), "2,'z'".into()]);
        assert_eq!(a, b);
        assert_ne!(a.sha256, c.sha256);
        assert_eq!(a.rows, 2);
    }

    #[test]
    fn comparing_names_every_table_that_differs() {
        let t = |rows, sha: &str| TableDigest {
            rows,
            sha256: sha.into(),
        };
        let expected = BTreeMap::from([("books".into(), t(2, "a")), ("authors".into(), t(1, "b"))]);
        let found = BTreeMap::from([
            ("books".into(), t(1, "c")),
            ("authors".into(), t(1, "b")),
            ("x".into(), t(0, "d")),
        ]);
        let tables: Vec<_> = compare(&expected, &found).into_iter().map(|d| d.table).collect();
        assert_eq!(tables, ["books", "x"]);
    }
}
