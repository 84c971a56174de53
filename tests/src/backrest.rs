//! pgBackRest for the drills, configured from the files `deploy/pgbackrest/` ships with
//! only the per-host settings changed, so what the drills prove is what operators
//! install.

use std::path::{Path, PathBuf};

use crate::cluster::as_postgres;

/// The stanza every shipped file names.
pub const STANZA: &str = "bookworm";

pub fn pgbackrest() -> PathBuf {
    ["/usr/bin/pgbackrest", "/usr/local/bin/pgbackrest"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .expect("pgBackRest is installed (Debian package pgbackrest; .ci/run installs it)")
}

/// A file of the repository's `deploy/` directory, e.g. `deploy("pgbackrest/postgresql.conf")`.
pub fn deploy(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy").join(file)
}

/// deploy/pgbackrest/pgbackrest.conf with the per-host settings replaced (or added to
/// `[global]`, like `lock-path`, or to the stanza, like `pg2-path`).
pub fn shipped_config_with(per_host: &[(&str, String)]) -> String {
    let shipped = std::fs::read_to_string(deploy("pgbackrest/pgbackrest.conf")).expect("the shipped configuration");
    let mut lines: Vec<String> = shipped
        .lines()
        .map(|line| match line.split_once('=') {
            Some((key, _)) => match per_host.iter().find(|(k, _)| *k == key.trim()) {
                Some((key, value)) => format!("{key}={value}"),
                None => line.to_owned(),
            },
            None => line.to_owned(),
        })
        .collect();
    for (key, value) in per_host {
        if !lines.iter().any(|l| l.starts_with(&format!("{key}="))) {
            let section = if key.starts_with("pg") {
                "[bookworm]"
            } else {
                "[global]"
            };
            let at = lines
                .iter()
                .position(|l| l.trim() == section)
                .unwrap_or_else(|| panic!("a {section} section"));
            lines.insert(at + 1, format!("{key}={value}"));
        }
    }
    lines.join("\n") + "\n"
}

/// Runs a pgBackRest command on the shipped stanza as `postgres`; returns its output.
pub fn backrest(config: &Path, cipher: &str, args: &[&str]) -> String {
    let config = format!("--config={}", config.display());
    let mut all = vec![config.as_str(), "--stanza", STANZA];
    all.extend(args);
    let output = as_postgres(&pgbackrest(), &all, &[("PGBACKREST_REPO1_CIPHER_PASS", cipher)]);
    String::from_utf8_lossy(&output.stdout).into_owned()
}
