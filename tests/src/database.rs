//! One fresh database per test: a file in a temporary directory for SQLite, a newly
//! created, uniquely named database for PostgreSQL that is dropped (WITH FORCE,
//! closing any connection the server still holds) when the test ends, pass or fail.

use std::fmt;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend};
use tempfile::TempDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn db_backend(self) -> DbBackend {
        match self {
            Backend::Sqlite => DbBackend::Sqlite,
            Backend::Postgres => DbBackend::Postgres,
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

pub struct TestDatabase {
    pub backend: Backend,
    pub url: String,
    owner: Owner,
}

enum Owner {
    Sqlite(#[allow(dead_code)] TempDir),
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// Creates an empty database. Panics (failing the test) when the backend was
    /// requested but cannot be reached.
    pub async fn create(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("create a temporary directory");
                let url = format!("sqlite://{}?mode=rwc", dir.path().join("bookworm.db").display());
                TestDatabase {
                    backend,
                    url,
                    owner: Owner::Sqlite(dir),
                }
            }
            Backend::Postgres => {
                let admin_url = std::env::var("TEST_POSTGRES_URL")
                    .expect("PostgreSQL tests were compiled in, so TEST_POSTGRES_URL must be set");
                let name = format!("bookworm_test_{}", uuid::Uuid::new_v4().simple());
                let admin = connect_admin(&admin_url).await;
                admin
                    .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                    .await
                    .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
                admin.close().await.ok();
                let mut url = reqwest::Url::parse(&admin_url).expect("TEST_POSTGRES_URL is a URL");
                url.set_path(&name);
                TestDatabase {
                    backend,
                    url: url.to_string(),
                    owner: Owner::Postgres { admin_url, name },
                }
            }
        }
    }

    /// PostgreSQL only: refuse new connections to this database and end the open ones.
    pub async fn refuse_connections(&self) {
        let Owner::Postgres { admin_url, name } = &self.owner else {
            panic!("only a PostgreSQL database can refuse connections")
        };
        let admin = connect_admin(admin_url).await;
        for sql in [
            format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"),
            format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"),
        ] {
            admin.execute_unprepared(&sql).await.expect("take the database offline");
        }
        admin.close().await.ok();
    }

    /// A small pool of our own, for arranging data and inspecting results.
    pub async fn connect(&self) -> DatabaseConnection {
        let mut options = ConnectOptions::new(self.url.as_str());
        options.max_connections(2).min_connections(0).sqlx_logging(false);
        Database::connect(options).await.expect("connect to the test database")
    }
}

async fn connect_admin(admin_url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(admin_url);
    options
        .max_connections(1)
        .min_connections(0)
        .connect_timeout(std::time::Duration::from_secs(5))
        .sqlx_logging(false);
    Database::connect(options)
        .await
        .unwrap_or_else(|e| panic!("TEST_POSTGRES_URL is set, but PostgreSQL cannot be reached: {e}"))
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let Owner::Postgres { admin_url, name } = &self.owner else {
            return;
        };
        let (admin_url, name) = (admin_url.clone(), name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on; a
        // separate thread with its own runtime does the async clean-up.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                let admin = connect_admin(&admin_url).await;
                let result = admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await;
                admin.close().await.ok();
                result
                    .err()
                    .map(|e| eprintln!("could not drop test database {name}: {e}"))
            })
        })
        .join();
        if dropped.is_err() {
            eprintln!("the clean-up thread for a test database panicked");
        }
    }
}
