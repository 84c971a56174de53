//! SeaORM entities for the Bookworm schema, in the 2.0 dense format.
//!
//! This crate enables no database driver, so any workspace tool (the API, the seed
//! tool, a one-off script) can import it and choose its own driver and runtime.
//! It describes tables; it does not create them: the `migration` crate owns the
//! schema, and the two are kept in step by the round-trip tests in `tests/`.
//!
//! Primary keys are UUID v7, generated here on insert (see [`uuid_v7_primary_key`]),
//! not by a database default: they are unique across machines like v4, yet
//! time-ordered, so B-tree inserts stay at the right-hand edge of the index.
//!
//! Besides the tables, the few values every importer must agree on live here: the
//! default database URL, which URLs are supported, and the ISBN ([`isbn`]).

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

pub mod api_token;
pub mod audit_log;
pub mod author;
pub mod book;
pub mod book_category;
pub mod category;
pub mod isbn;
pub mod profile;
pub mod review;
pub mod shelf_entry;
pub mod user;
pub mod user_stats;

pub use api_token::Entity as ApiToken;
pub use audit_log::Entity as AuditLog;
pub use author::Entity as Author;
pub use book::Entity as Book;
pub use book_category::Entity as BookCategory;
pub use category::Entity as Category;
pub use profile::Entity as Profile;
pub use review::Entity as Review;
pub use shelf_entry::Entity as ShelfEntry;
pub use user::Entity as User;
pub use user_stats::Entity as UserStats;

/// Implements `ActiveModelBehavior` so that an insert without an `id` gets a fresh
/// UUID v7. Bulk `insert_many` bypasses the hook: callers of it set ids themselves.
#[macro_export]
macro_rules! uuid_v7_primary_key {
    () => {
        #[::sea_orm::entity::prelude::async_trait::async_trait]
        impl ::sea_orm::ActiveModelBehavior for ActiveModel {
            async fn before_save<C>(mut self, _db: &C, insert: bool) -> Result<Self, ::sea_orm::DbErr>
            where
                C: ::sea_orm::ConnectionTrait,
            {
                if insert && self.id.is_not_set() {
                    self.id = ::sea_orm::Set(::uuid::Uuid::now_v7());
                }
                Ok(self)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A workspace with one crate directory, under the system's temporary directory.
    struct Workspace(std::path::PathBuf);

    impl Workspace {
        fn new() -> Self {
            let root = std::env::temp_dir().join(format!("bookworm-entity-{}", uuid::Uuid::now_v7()));
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
