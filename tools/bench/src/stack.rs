//! What the figures run against: seeded databases set up the production way (a schema
//! owner migrates and seeds, the API logs in as the restricted role with row-level
//! security on), the real release `api` binary as a child process, and the counters
//! read from outside it — PostgreSQL's own statement statistics, the kernel's socket
//! and memory counters.
//!
//! Databases and roles come from the test harness (`tests`), so the bench sets them up
//! exactly as the black-box tests do, and drops them the same way when it ends.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use seed::SeedConfig;
use tests::{AppRole, Backend, TestDatabase};

/// A seeded PostgreSQL database with its owner and API roles.
pub struct PgStack {
    pub database: TestDatabase,
    /// The API's restricted role (no superuser, no BYPASSRLS).
    pub app: AppRole,
    /// Owns the schema; held so the role lives as long as the database.
    _owner: AppRole,
    pub books: u64,
}

impl PgStack {
    pub async fn create(admin_url: &str, config: &SeedConfig) -> Result<Self, String> {
        let database = TestDatabase::create_on(admin_url).await;
        let owner = database.create_owner_role().await;
        let owner_db = connect(&owner.url).await?;
        Migrator::up(&owner_db, None)
            .await
            .map_err(|e| format!("migrate: {e}"))?;
        let report = seed::run(&owner_db, config).await.map_err(|e| format!("seed: {e}"))?;
        owner_db.close().await.ok();
        let app = database.create_app_role_granted_by(&owner).await;
        let admin = connect(&database.url).await?;
        admin.execute_unprepared("ANALYZE").await.map_err(|e| e.to_string())?;
        admin.close().await.ok();
        Ok(Self {
            database,
            app,
            _owner: owner,
            books: report.books,
        })
    }

    /// The database's name on its server.
    pub fn name(&self) -> String {
        self.database.url.rsplit('/').next().unwrap_or_default().to_owned()
    }
}

/// A seeded SQLite database in a temporary directory: the default set-up.
pub async fn sqlite(config: &SeedConfig) -> Result<TestDatabase, String> {
    let database = TestDatabase::create(Backend::Sqlite).await;
    let db = connect(&database.url).await?;
    Migrator::up(&db, None).await.map_err(|e| format!("migrate: {e}"))?;
    seed::run(&db, config).await.map_err(|e| format!("seed: {e}"))?;
    db.execute_unprepared("ANALYZE").await.map_err(|e| e.to_string())?;
    db.close().await.ok();
    Ok(database)
}

pub async fn connect(url: &str) -> Result<DatabaseConnection, String> {
    let mut options = sea_orm::ConnectOptions::new(url);
    options.max_connections(2).min_connections(0).sqlx_logging(false);
    Database::connect(options)
        .await
        .map_err(|e| format!("connect to {}: {e}", service::database::DatabaseUrl::new(url)))
}

/// Ids picked evenly across the table, for requests that should not all hit one row.
pub async fn sample_ids(url: &str, table: &str, count: usize) -> Result<Vec<String>, String> {
    let db = connect(url).await?;
    let backend = db.get_database_backend();
    let live = if table == "categories" {
        ""
    } else {
        "WHERE deleted_at IS NULL"
    };
    let sql = format!("SELECT CAST(id AS TEXT) FROM {table} {live} ORDER BY id LIMIT 20000");
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .map_err(|e| e.to_string())?;
    db.close().await.ok();
    let all: Vec<String> = rows.iter().filter_map(|r| r.try_get_by_index(0).ok()).collect();
    if all.is_empty() {
        return Err(format!("no rows in {table}"));
    }
    let step = (all.len() / count.max(1)).max(1);
    Ok(all.into_iter().step_by(step).take(count).collect())
}

/// The `api` binary next to this one, built first (in the same profile) when the bench
/// runs under `cargo run`, so `cargo run --release -p bench` measures the current code.
pub fn default_api_binary() -> Result<PathBuf, String> {
    let dir = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("target/release"));
    if let Some(cargo) = std::env::var_os("CARGO") {
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "api", "--bin", "api"]);
        if dir.ends_with("release") {
            build.arg("--release");
        }
        let status = build.status().map_err(|e| format!("cargo build -p api: {e}"))?;
        if !status.success() {
            return Err("cargo build -p api failed".into());
        }
    }
    Ok(dir.join("api"))
}

/// The real API binary, started as a child process on a free loopback port.
pub struct ApiProcess {
    child: Child,
    binary: PathBuf,
    pub base_url: String,
    /// `/metrics`, for the processes started with them on.
    pub metrics_url: Option<String>,
    pub pid: u32,
    /// What it serves: its `DATABASE_URL`.
    pub database_url: String,
}

enum StartError {
    /// The process ended before it was ready.
    Exited(String),
    Other(String),
}

/// How a measured API caches its detail reads.
#[derive(Debug, Clone)]
pub enum Caching {
    /// Every read reaches the database: the figures compared with the raw driver.
    Off,
    InProcess,
    Redis(String),
}

impl ApiProcess {
    /// An API with its cache off, so it is the queries, not the cache, that are measured.
    pub async fn start(binary: &Path, database_url: &str, max_connections: u32) -> Result<Self, String> {
        Self::start_caching(binary, database_url, max_connections, Caching::Off).await
    }

    /// Tries three times: the ports are picked free and then bound by the API, and in
    /// between an outgoing connection of this busy machine may take one (a full run
    /// once lost its P6 API that way).
    pub async fn start_caching(
        binary: &Path,
        database_url: &str,
        max_connections: u32,
        caching: Caching,
    ) -> Result<Self, String> {
        let mut attempt = 1;
        loop {
            match Self::try_start(binary, database_url, max_connections, caching.clone()).await {
                Err(StartError::Exited(why)) if attempt < 3 => {
                    eprintln!("  {why}; starting it again on other ports");
                    attempt += 1;
                }
                Err(StartError::Exited(why) | StartError::Other(why)) => return Err(why),
                Ok(api) => return Ok(api),
            }
        }
    }

    async fn try_start(
        binary: &Path,
        database_url: &str,
        max_connections: u32,
        caching: Caching,
    ) -> Result<Self, StartError> {
        let port = tests::cluster::free_port();
        let mut command = Command::new(binary);
        let metrics_url = match &caching {
            Caching::Off => {
                command
                    .env("CACHE_ENABLED", "false")
                    .env_remove("METRICS_ADDR")
                    .env_remove("REDIS_URL");
                None
            }
            Caching::InProcess | Caching::Redis(_) => {
                let metrics_port = tests::cluster::free_port();
                command
                    .env("CACHE_ENABLED", "true")
                    .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"));
                match &caching {
                    Caching::Redis(url) => command.env("REDIS_URL", url),
                    _ => command.env_remove("REDIS_URL"),
                };
                Some(format!("http://127.0.0.1:{metrics_port}/metrics"))
            }
        };
        command
            .env("DATABASE_URL", plaintext(database_url))
            .env("DATABASE_AUTO_MIGRATE", "false")
            .env("DATABASE_MAX_CONNECTIONS", max_connections.to_string())
            .env("HOST", "127.0.0.1")
            .env("PORT", port.to_string())
            // Periodic work would show up in the statement counts.
            .env("STATS_REFRESH_SECS", "0")
            .env_remove("DATABASE_REPLICA_URLS");
        // Last, so that a setting measured with `--api-env` wins over the bench's own.
        command.envs(API_ENV.get().into_iter().flatten().map(|(k, v)| (k, v)));
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                StartError::Other(format!(
                    "start {}: {e} (build it with `cargo build --release -p api`)",
                    binary.display()
                ))
            })?;
        let pid = child.id();
        let mut api = Self {
            child,
            binary: binary.to_owned(),
            base_url: format!("http://127.0.0.1:{port}"),
            metrics_url,
            pid,
            database_url: database_url.to_owned(),
        };
        let client = crate::load::client();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(status)) = api.child.try_wait() {
                return Err(StartError::Exited(format!("the API exited during start-up: {status}")));
            }
            let ready = client.get(format!("{}/health/ready", api.base_url)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            if Instant::now() > deadline {
                api.stop();
                return Err(StartError::Other("the API was not ready within 60 s".into()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(api)
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    /// `(VmRSS, VmHWM)` in MiB: resident now, and the most it has been.
    pub fn memory_mib(&self) -> (f64, f64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid)).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                .map_or(f64::NAN, |kib| kib / 1024.0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Messages this process has sent to `port` (TCP data segments, from `ss`): each
    /// statement, and each of sqlx's pings, is one.
    pub fn segments_sent_to(&self, port: u16) -> u64 {
        segments_sent(self.pid, port)
    }

    pub fn stop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// Sum of `data_segs_out` over `pid`'s TCP connections to `port` on loopback.
pub fn segments_sent(pid: u32, port: u16) -> u64 {
    let output = Command::new("ss")
        .args(["-tinpH", "state", "established", "dport", &format!("= :{port}")])
        .output();
    let Ok(output) = output else { return 0 };
    let text = String::from_utf8_lossy(&output.stdout);
    let owner = format!("pid={pid},");
    let mut total = 0;
    let mut ours = false;
    for line in text.lines() {
        if !line.starts_with(char::is_whitespace) {
            ours = line.contains(&owner);
            continue;
        }
        if ours {
            total += line
                .split_whitespace()
                .find_map(|field| field.strip_prefix("data_segs_out:"))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}

/// The port in a PostgreSQL URL.
/// `--api-env`: set for every API the bench starts.
pub static API_ENV: std::sync::OnceLock<Vec<(String, String)>> = std::sync::OnceLock::new();

/// `url` with `sslmode=disable` on PostgreSQL. The baseline speaks plaintext
/// (tokio-postgres without a TLS connector); sqlx prefers TLS whenever the server
/// offers it, as Debian's does, and TLS on loopback cost Bookworm about a tenth of its
/// detail throughput (docs/performance.md). Both contenders go without.
pub fn plaintext(url: &str) -> String {
    if !url.starts_with("postgres") || url.contains("sslmode=") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode=disable")
}

pub fn port_of(url: &str) -> u16 {
    reqwest::Url::parse(url).ok().and_then(|u| u.port()).unwrap_or(5432)
}

/// Statement counts by PostgreSQL's `pg_stat_statements`, for one database and role.
pub struct StatementCounter {
    admin: DatabaseConnection,
    database: String,
    role: String,
}

impl StatementCounter {
    /// Needs `pg_stat_statements` in the server's `shared_preload_libraries`.
    pub async fn new(admin_url: &str, database: &str, role: &str) -> Result<Self, String> {
        let admin = connect(admin_url).await?;
        let preload: String = scalar(&admin, "SELECT current_setting('shared_preload_libraries')").await?;
        if !preload.contains("pg_stat_statements") {
            return Err("pg_stat_statements is not in shared_preload_libraries".into());
        }
        admin
            .execute_unprepared("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            .await
            .map_err(|e| e.to_string())?;
        Ok(Self {
            admin,
            database: database.to_owned(),
            role: role.to_owned(),
        })
    }

    pub async fn reset(&self) -> Result<(), String> {
        // Only this database's and role's statistics: the server may be shared.
        let sql = format!(
            "SELECT pg_stat_statements_reset((SELECT oid FROM pg_roles WHERE rolname = '{}'), \
             (SELECT oid FROM pg_database WHERE datname = '{}'), 0)",
            self.role, self.database
        );
        self.admin
            .execute_unprepared(&sql)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// `(calls, query)` since the last reset, most called first.
    pub async fn calls(&self) -> Result<Vec<(i64, String)>, String> {
        let sql = format!(
            "SELECT CAST(s.calls AS BIGINT), s.query FROM pg_stat_statements s \
             JOIN pg_database d ON d.oid = s.dbid JOIN pg_roles r ON r.oid = s.userid \
             WHERE d.datname = '{}' AND r.rolname = '{}' ORDER BY s.calls DESC",
            self.database, self.role
        );
        let rows = self
            .admin
            .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .map_err(|e| e.to_string())?;
        Ok(rows
            .iter()
            .filter_map(|r| Some((r.try_get_by_index(0).ok()?, r.try_get_by_index(1).ok()?)))
            .collect())
    }
}

pub async fn scalar<T: sea_orm::TryGetable>(db: &DatabaseConnection, sql: &str) -> Result<T, String> {
    let row = db
        .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .map_err(|e| format!("{sql}: {e}"))?
        .ok_or_else(|| format!("{sql}: no row"))?;
    row.try_get_by_index(0).map_err(|e| format!("{sql}: {e}"))
}
