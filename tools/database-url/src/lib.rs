//! Which database URLs Bookworm runs on, the one every program opens when
//! `DATABASE_URL` is unset, and the `--database-url` argument every command-line tool
//! takes. A crate of its own, with nothing in it but the standard library (and clap
//! for the argument), so that both `entity` and the migration CLI, which may depend on
//! no other crate of ours, share one copy.

/// The database every Bookworm program opens when `DATABASE_URL` is unset: an SQLite
/// file in the working directory, created on first use.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://bookworm.db?mode=rwc";

/// `Err` with what to do when `url` names a database Bookworm does not run on.
pub fn check_database_url(url: &str) -> Result<(), &'static str> {
    let supported = ["sqlite:", "postgres://", "postgresql://"];
    if supported.iter().any(|scheme| url.starts_with(scheme)) {
        Ok(())
    } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
        Err("MySQL and MariaDB are not supported yet: use sqlite:// or postgres://")
    } else {
        Err("must start with sqlite:// or postgres://")
    }
}

/// A warning when `url` is the default SQLite URL and would create a new, empty
/// database in `dir` although the workspace (with its `bookworm.db`) is further up:
/// `cargo run` from a crate's directory keeps that directory, so `bookworm.db` there
/// is another database, silently empty. `None` when the file exists, when `dir` is the
/// workspace root, or when no workspace is above it (an installed binary).
pub fn stray_default_database(url: &str, dir: &std::path::Path) -> Option<String> {
    const FILE: &str = "bookworm.db";
    if url != DEFAULT_DATABASE_URL || dir.join(FILE).exists() || is_workspace_root(dir) {
        return None;
    }
    let root = dir.ancestors().skip(1).find(|d| is_workspace_root(d))?;
    Some(format!(
        "DATABASE_URL is unset, so the default {url} would create a new, empty {FILE} in {}; \
         the workspace's is {}. Run from {}, or set DATABASE_URL",
        dir.display(),
        root.join(FILE).display(),
        root.display()
    ))
}

fn is_workspace_root(dir: &std::path::Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml")).is_ok_and(|manifest| manifest.contains("[workspace]"))
}

/// `--database-url` / `DATABASE_URL`, as every tool takes it (`#[command(flatten)]`).
#[cfg(feature = "clap")]
#[derive(clap::Args, Debug, Clone)]
pub struct DatabaseArg {
    /// The database: `sqlite://file.db?mode=rwc` or `postgres://user@host/db`.
    #[arg(
        short = 'u',
        long = "database-url",
        env = "DATABASE_URL",
        default_value = DEFAULT_DATABASE_URL,
        hide_env_values = true,
        global = true
    )]
    pub url: String,
}

#[cfg(feature = "clap")]
impl DatabaseArg {
    /// Prints the stray-database warning to standard error when it applies to the
    /// working directory.
    pub fn warn_if_stray(&self) {
        if let Some(warning) = std::env::current_dir()
            .ok()
            .and_then(|dir| stray_default_database(&self.url, &dir))
        {
            eprintln!("warning: {warning}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace with one crate directory, under the system's temporary directory.
    struct Workspace(std::path::PathBuf);

    impl Workspace {
        fn new() -> Self {
            let root = std::env::temp_dir().join(format!(
                "bookworm-database-url-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
            std::fs::create_dir_all(root.join("api")).unwrap();
            std::fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = [\"api\"]\n").unwrap();
            std::fs::write(root.join("api/Cargo.toml"), "[package]\nname = \"api\"\n").unwrap();
            Workspace(root)
        }
    }

    impl Drop for Workspace {
        fn drop(&mut self) {
            std::fs::remove_dir_all(&self.0).ok();
        }
    }

    #[test]
    fn the_default_database_in_a_crate_directory_is_called_out() {
        let ws = Workspace::new();
        let warning = stray_default_database(DEFAULT_DATABASE_URL, &ws.0.join("api")).expect("a warning");
        assert!(
            warning.contains(&ws.0.join("bookworm.db").display().to_string()),
            "{warning}"
        );

        assert_eq!(
            stray_default_database(DEFAULT_DATABASE_URL, &ws.0),
            None,
            "the root is fine"
        );
        assert_eq!(
            stray_default_database("sqlite://other.db?mode=rwc", &ws.0.join("api")),
            None
        );
        std::fs::write(ws.0.join("api/bookworm.db"), b"").unwrap();
        assert_eq!(
            stray_default_database(DEFAULT_DATABASE_URL, &ws.0.join("api")),
            None,
            "an existing file is the user's choice"
        );
        assert_eq!(
            stray_default_database(DEFAULT_DATABASE_URL, &std::env::temp_dir()),
            None
        );
    }
}
