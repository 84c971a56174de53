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
                Self::create_on(&admin_url).await
            }
        }
    }

    /// An empty database on the PostgreSQL server `admin_url` names (a server a test
    /// started itself, say), created through that admin role.
    pub async fn create_on(admin_url: &str) -> Self {
        let name = format!("bookworm_test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect_admin(admin_url).await;
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
        admin.close().await.ok();
        let mut url = reqwest::Url::parse(admin_url).expect("the admin URL is a URL");
        url.set_path(&name);
        TestDatabase {
            backend: Backend::Postgres,
            url: url.to_string(),
            owner: Owner::Postgres {
                admin_url: admin_url.to_owned(),
                name,
            },
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
        self.connect_with(2).await
    }

    /// A pool of our own of at most `connections`.
    pub async fn connect_with(&self, connections: u32) -> DatabaseConnection {
        let mut options = ConnectOptions::new(self.url.as_str());
        options
            .max_connections(connections)
            .min_connections(0)
            .sqlx_logging(false);
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

/// A one-connection pool logged in as a role of [`TestDatabase::create_app_role`] or
/// [`TestDatabase::create_owner_role`], for SQL run directly as that role.
pub async fn connect_as(url: &str) -> DatabaseConnection {
    let mut options = ConnectOptions::new(url);
    options.max_connections(1).min_connections(0).sqlx_logging(false);
    Database::connect(options).await.expect("the role can log in")
}

/// `(rolsuper, rolbypassrls)` of the role `db` is logged in as: either one would let
/// it skip row-level security.
pub async fn superuser_and_bypassrls(db: &DatabaseConnection) -> (bool, bool) {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            DbBackend::Postgres,
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user",
        ))
        .await
        .expect("read the role's attributes")
        .expect("the current role exists");
    (row.try_get_by_index(0).unwrap(), row.try_get_by_index(1).unwrap())
}

/// A PostgreSQL role like the one production runs the API as: it can log in, owns
/// nothing, is neither superuser nor BYPASSRLS, and holds only the grants of
/// `docs/operations.md`. Dropped (with its grants) when the test ends.
pub struct AppRole {
    pub name: String,
    /// The test database, logged in as this role.
    pub url: String,
    admin_url: String,
    database_url: String,
}

pub const APP_ROLE_PASSWORD: &str = "bookworm-app-test";

/// The grants of the production API role (`docs/operations.md`), for role `{role}`
/// on database `{database}`.
pub fn app_role_grants(role: &str, database: &str) -> Vec<String> {
    vec![
        format!("GRANT CONNECT ON DATABASE \"{database}\" TO {role}"),
        // Nothing in the API needs temporary tables, and they can shadow real ones.
        format!("REVOKE TEMPORARY ON DATABASE \"{database}\" FROM PUBLIC"),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {role}"),
        format!("REVOKE INSERT, UPDATE, DELETE ON audit_log, seaql_migrations FROM {role}"),
        // As the docs' single REVOKE, for a role some tests create before the last
        // migration (which then takes the write rights back itself).
        format!(
            "DO $$ BEGIN IF to_regclass('public.user_stats_refreshes') IS NOT NULL THEN \
             REVOKE INSERT, UPDATE, DELETE ON user_stats_refreshes FROM {role}; END IF; END $$"
        ),
        format!("GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {role}"),
        format!("ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role}"),
    ]
}

impl TestDatabase {
    /// Creates a schema-owner role like production's `bookworm_owner`: it owns this
    /// (still empty) database and so its `public` schema, and is neither superuser nor
    /// BYPASSRLS. Migrate through its `url` to have it own every object.
    pub async fn create_owner_role(&self) -> AppRole {
        self.create_role("bookworm_owner", "NOSUPERUSER NOBYPASSRLS", |role, database| {
            vec![format!("ALTER DATABASE \"{database}\" OWNER TO {role}")]
        })
        .await
    }

    /// Creates a backup role as docs/backup.md describes: it may log in and read
    /// everything, row-level security included (BYPASSRLS, `pg_read_all_data`), and
    /// write nothing.
    pub async fn create_backup_role(&self) -> AppRole {
        self.create_role("bookworm_backup", "NOSUPERUSER BYPASSRLS", |role, database| {
            vec![
                format!("GRANT pg_read_all_data TO {role}"),
                format!("GRANT CONNECT ON DATABASE \"{database}\" TO {role}"),
            ]
        })
        .await
    }

    /// Creates a LOGIN role named `<prefix>_<random>` with `attributes`, then runs
    /// `then(role, database)` as the admin. Dropped (with what it owns) with the handle.
    async fn create_role(
        &self,
        prefix: &str,
        attributes: &str,
        then: impl FnOnce(&str, &str) -> Vec<String>,
    ) -> AppRole {
        let Owner::Postgres { admin_url, name } = &self.owner else {
            panic!("roles are a PostgreSQL feature")
        };
        let role = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
        let admin = connect_admin(admin_url).await;
        let create = format!("CREATE ROLE {role} LOGIN PASSWORD '{APP_ROLE_PASSWORD}' {attributes}");
        for sql in std::iter::once(create).chain(then(&role, name)) {
            admin
                .execute_unprepared(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        admin.close().await.ok();
        self.role_handle(role)
    }

    fn role_handle(&self, role: String) -> AppRole {
        let Owner::Postgres { admin_url, .. } = &self.owner else {
            panic!("roles are a PostgreSQL feature")
        };
        let mut url = reqwest::Url::parse(&self.url).expect("a URL");
        url.set_username(&role).expect("a user name");
        url.set_password(Some(APP_ROLE_PASSWORD)).expect("a password");
        AppRole {
            name: role,
            url: url.to_string(),
            admin_url: admin_url.clone(),
            database_url: self.url.clone(),
        }
    }

    /// PostgreSQL: hands this database to `owner` and applies the database-level part of
    /// the documented grants for `app` (a dump carries table grants, not these).
    pub async fn set_up_for(&self, owner: &AppRole, app: &AppRole) {
        let Owner::Postgres { admin_url, name } = &self.owner else {
            panic!("roles are a PostgreSQL feature")
        };
        let admin = connect_admin(admin_url).await;
        for sql in [
            format!("ALTER DATABASE \"{name}\" OWNER TO {}", owner.name),
            format!("GRANT CONNECT ON DATABASE \"{name}\" TO {}", app.name),
            format!("REVOKE TEMPORARY ON DATABASE \"{name}\" FROM PUBLIC"),
        ] {
            admin
                .execute_unprepared(&sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
        admin.close().await.ok();
    }

    /// Creates the API's restricted role for this (already migrated) database.
    pub async fn create_app_role(&self) -> AppRole {
        self.app_role(None).await
    }

    /// Like [`create_app_role`](Self::create_app_role), with the grants run by `owner`
    /// as docs/operations.md says, so default privileges are the owner's (a dump of a
    /// database set up this way restores as the owner).
    pub async fn create_app_role_granted_by(&self, owner: &AppRole) -> AppRole {
        self.app_role(Some(owner)).await
    }

    async fn app_role(&self, grantor: Option<&AppRole>) -> AppRole {
        let Owner::Postgres { name: database, .. } = &self.owner else {
            panic!("roles are a PostgreSQL feature")
        };
        let handle = self
            .create_role(
                "bookworm_app",
                "NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE",
                |_, _| Vec::new(),
            )
            .await;
        let role = handle.name.clone();
        let owner = match grantor {
            Some(grantor) => crate::database::connect_as(&grantor.url).await,
            None => self.connect().await,
        };
        for grant in app_role_grants(&role, database) {
            owner
                .execute_unprepared(&grant)
                .await
                .unwrap_or_else(|e| panic!("{grant}: {e}"));
        }
        owner.close().await.ok();
        handle
    }
}

impl AppRole {
    /// This role's URL for another database on the same server.
    pub fn url_on(&self, database: &TestDatabase) -> String {
        let mut url = reqwest::Url::parse(&self.url).expect("a URL");
        let target = reqwest::Url::parse(&database.url).expect("a URL");
        url.set_path(target.path());
        url.to_string()
    }
}

impl Drop for AppRole {
    fn drop(&mut self) {
        let (role, admin_url, database_url) = (self.name.clone(), self.admin_url.clone(), self.database_url.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                // What it owns goes back to the admin (the test database itself included),
                // its grants are dropped (in the test database, if it still exists), then the role.
                let admin_db = connect_admin(&admin_url).await;
                admin_db
                    .execute_unprepared(&format!("REASSIGN OWNED BY {role} TO CURRENT_USER"))
                    .await
                    .ok();
                admin_db.close().await.ok();
                let mut options = ConnectOptions::new(database_url.as_str());
                options.max_connections(1).sqlx_logging(false);
                if let Ok(db) = Database::connect(options).await {
                    db.execute_unprepared(&format!("REASSIGN OWNED BY {role} TO CURRENT_USER"))
                        .await
                        .ok();
                    db.execute_unprepared(&format!("DROP OWNED BY {role}")).await.ok();
                    db.close().await.ok();
                }
                let admin = connect_admin(&admin_url).await;
                let dropped = admin.execute_unprepared(&format!("DROP ROLE IF EXISTS {role}")).await;
                admin.close().await.ok();
                dropped.err().map(|e| eprintln!("could not drop role {role}: {e}"))
            })
        })
        .join();
    }
}
