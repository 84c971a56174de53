//! Configuration from environment variables (and `.env`, loaded by the binary).
//!
//! Every setting has a safe local default so `cargo run -p api` needs nothing. A
//! malformed value stops start-up with the variable's name; a value that may hold a
//! secret (the database URL) is never echoed back. Reading goes through a lookup
//! function rather than `std::env` directly, so tests can pass a map instead of
//! mutating the process environment.

use std::fmt::Display;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Duration;

use migration::session::MigrationTimeouts;
use service::accounts::HashingLimits;
use service::database::{DatabaseUrl, PoolSettings};
use service::field_crypto::FieldCipher;

use crate::throttle::ThrottleLimits;

pub use entity::DEFAULT_DATABASE_URL;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Development,
    Production,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Every setting, grouped by what it configures. Each section is read from its own
/// environment variables (README, "Configuration").
#[derive(Debug, Clone)]
pub struct Settings {
    pub environment: Environment,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub replicas: ReplicaSettings,
    pub security: SecuritySettings,
    pub cache: CacheSettings,
    pub observability: ObservabilitySettings,
}

/// The HTTP server.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub host: IpAddr,
    pub port: u16,
    /// How long in-flight requests may take to finish after SIGTERM.
    pub shutdown_timeout: Duration,
    /// After SIGTERM, how long to keep serving while reporting not ready, so a load
    /// balancer stops sending before the listener closes.
    pub shutdown_drain: Duration,
    /// Largest accepted JSON request body, in bytes.
    pub max_body_bytes: usize,
    /// Request threads (actix workers), each with its own runtime.
    pub workers: usize,
}

/// The primary, its migrations and its upkeep.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// `DATABASE_URL` and the primary's pool.
    pub pool: PoolSettings,
    /// Apply pending migrations at start-up.
    pub auto_migrate: bool,
    /// Who applies them: the schema owner, when the API itself runs as a restricted
    /// role (`DATABASE_URL`). Unset: `DATABASE_URL`'s role.
    pub migration_url: Option<DatabaseUrl>,
    /// The lock and statement timeouts migrations run with, not the requests' ones.
    pub migration_timeouts: MigrationTimeouts,
    /// How often the background task refreshes the reader statistics; `None` = never.
    pub stats_refresh: Option<Duration>,
    /// Audit log entries older than this many whole months are removed; 0 keeps all.
    pub audit_retention_months: u32,
}

/// PostgreSQL read replicas: plain reads go there when they can answer correctly.
#[derive(Debug, Clone)]
pub struct ReplicaSettings {
    pub pools: Vec<PoolSettings>,
    /// A replica further behind than this serves no reads.
    pub max_lag: Duration,
}

/// Secrets, sessions and the limits that protect sign-in.
#[derive(Debug, Clone)]
pub struct SecuritySettings {
    /// Encrypts sensitive profile fields; see `service::field_crypto`.
    pub cipher: FieldCipher,
    /// True when `cipher` is the built-in development key.
    pub using_development_key: bool,
    /// Lifetime of a bearer token issued at login.
    pub token_ttl: chrono::TimeDelta,
    pub throttle: ThrottleLimits,
    /// How many password hashes may run at once, and how long a request waits for one.
    pub hashing: HashingLimits,
}

/// The cache of public detail reads (`service::cache`), and the Redis that makes it,
/// and the login throttle, shared between instances.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    pub enabled: bool,
    /// How long an entry is kept: the bound on staleness if an invalidation is lost.
    pub ttl: Duration,
    /// Bytes of bodies the in-process cache may hold (not used with Redis).
    pub max_bytes: u64,
    /// Shared by every instance: the cache and the login throttle. `None`: both in process.
    pub redis_url: Option<RedisUrl>,
    /// Longest wait for one Redis call before Redis counts as down.
    pub redis_timeout: Duration,
}

/// Logs and metrics.
#[derive(Debug, Clone)]
pub struct ObservabilitySettings {
    pub log_format: LogFormat,
    /// Where `GET /metrics` is served; `None` turns metrics off.
    pub metrics_addr: Option<std::net::SocketAddr>,
}

/// `REDIS_URL`, which may hold a password: never printed.
#[derive(Clone)]
pub struct RedisUrl(String);

impl RedisUrl {
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisUrl(..)")
    }
}

#[derive(Debug, thiserror::Error)]
#[error("invalid setting {name}: {reason}")]
pub struct ConfigError {
    pub name: &'static str,
    pub reason: String,
}

impl Settings {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let env = Env(&lookup);
        let environment = env.choice(
            "APP_ENV",
            &[
                ("development", Environment::Development),
                ("production", Environment::Production),
            ],
            Environment::Development,
        )?;
        let pool = database(&env)?;
        let (cipher, using_development_key) = cipher(&env, environment)?;
        Ok(Settings {
            environment,
            server: ServerSettings {
                host: env.parse("HOST", IpAddr::from([127, 0, 0, 1]))?,
                port: env.parse("PORT", 8080)?,
                shutdown_timeout: Duration::from_secs(env.parse("SHUTDOWN_TIMEOUT_SECS", 30)?),
                shutdown_drain: Duration::from_secs(env.parse("SHUTDOWN_DRAIN_SECS", 5)?),
                max_body_bytes: env.parse("MAX_BODY_BYTES", 64 * 1024)?,
                workers: workers(&env)?,
            },
            replicas: ReplicaSettings {
                pools: replicas(&env, &pool)?,
                max_lag: env.millis("DATABASE_REPLICA_MAX_LAG_MS", Duration::from_secs(5))?,
            },
            database: DatabaseSettings {
                pool,
                auto_migrate: env.choice("DATABASE_AUTO_MIGRATE", BOOLEANS, true)?,
                migration_url: env.raw("DATABASE_MIGRATION_URL").map(DatabaseUrl::new),
                migration_timeouts: migration_timeouts(&env)?,
                stats_refresh: match env.parse("STATS_REFRESH_SECS", 300u64)? {
                    0 => None,
                    secs => Some(Duration::from_secs(secs)),
                },
                audit_retention_months: env.parse("AUDIT_RETENTION_MONTHS", 24)?,
            },
            security: SecuritySettings {
                cipher,
                using_development_key,
                token_ttl: token_ttl(&env)?,
                throttle: throttle(&env)?,
                hashing: hashing(&env)?,
            },
            cache: cache(&env)?,
            observability: ObservabilitySettings {
                // Production logs go to a shipper, which wants one JSON object per line.
                log_format: env.choice(
                    "LOG_FORMAT",
                    &[("text", LogFormat::Text), ("json", LogFormat::Json)],
                    match environment {
                        Environment::Production => LogFormat::Json,
                        Environment::Development => LogFormat::Text,
                    },
                )?,
                metrics_addr: env
                    .raw("METRICS_ADDR")
                    .map(|addr| {
                        addr.parse().map_err(|e: std::net::AddrParseError| ConfigError {
                            name: "METRICS_ADDR",
                            reason: format!("{addr:?}: {e} (expected host:port, e.g. 127.0.0.1:9090)"),
                        })
                    })
                    .transpose()?,
            },
        })
    }
}

/// actix-web's limit: it panics at start-up above it.
const MAX_WORKERS: usize = 512;

/// `SERVER_WORKERS`: one per core unless set, within what actix-web accepts.
fn workers<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<usize, ConfigError> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let workers = env.at_least_one("SERVER_WORKERS", cores.min(MAX_WORKERS))?;
    if workers > MAX_WORKERS {
        return Err(ConfigError {
            name: "SERVER_WORKERS",
            reason: format!("must be at most {MAX_WORKERS}"),
        });
    }
    Ok(workers)
}

/// The migration connection's timeouts, within what PostgreSQL accepts.
fn migration_timeouts<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<MigrationTimeouts, ConfigError> {
    let within_limit = |name: &'static str, default| {
        let value = env.millis(name, default)?;
        if value.as_millis() > u128::from(MigrationTimeouts::MAX_MILLIS) {
            return Err(ConfigError {
                name,
                reason: format!("must be at most {} (about 24 days)", MigrationTimeouts::MAX_MILLIS),
            });
        }
        Ok(value)
    };
    Ok(MigrationTimeouts {
        lock: within_limit("DATABASE_MIGRATION_LOCK_TIMEOUT_MS", MigrationTimeouts::DEFAULT_LOCK)?,
        statement: within_limit(
            "DATABASE_MIGRATION_STATEMENT_TIMEOUT_MS",
            MigrationTimeouts::DEFAULT_STATEMENT,
        )?,
    })
}

/// `DATABASE_URL` and the primary's pool.
fn database<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<PoolSettings, ConfigError> {
    let url = DatabaseUrl::new(env.raw("DATABASE_URL").unwrap_or(DEFAULT_DATABASE_URL.into()));
    if let Err(reason) = entity::check_database_url(url.expose()) {
        return Err(ConfigError {
            name: "DATABASE_URL",
            reason: reason.into(),
        });
    }
    let defaults = PoolSettings::with_defaults(url);
    let database = PoolSettings {
        max_connections: env.at_least_one("DATABASE_MAX_CONNECTIONS", defaults.max_connections)?,
        min_connections: env.parse("DATABASE_MIN_CONNECTIONS", defaults.min_connections)?,
        connect_timeout: env.positive_millis("DATABASE_CONNECT_TIMEOUT_MS", defaults.connect_timeout)?,
        idle_timeout: env.millis("DATABASE_IDLE_TIMEOUT_MS", defaults.idle_timeout)?,
        statement_timeout: env.millis("DATABASE_STATEMENT_TIMEOUT_MS", defaults.statement_timeout)?,
        check_idle_after: env.millis("DATABASE_CHECK_IDLE_AFTER_MS", defaults.check_idle_after)?,
        ..defaults
    };
    if database.min_connections > database.max_connections {
        return Err(ConfigError {
            name: "DATABASE_MIN_CONNECTIONS",
            reason: format!(
                "must not exceed DATABASE_MAX_CONNECTIONS ({})",
                database.max_connections
            ),
        });
    }
    Ok(database)
}

/// `DATABASE_REPLICA_URLS`, each with the primary's pool settings but its own size.
fn replicas<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    primary: &PoolSettings,
) -> Result<Vec<PoolSettings>, ConfigError> {
    let max_connections: u32 = env.at_least_one("DATABASE_REPLICA_MAX_CONNECTIONS", 40)?;
    Ok(replica_urls(env.raw("DATABASE_REPLICA_URLS"), primary)?
        .into_iter()
        .map(|url| PoolSettings {
            url,
            max_connections,
            min_connections: 0,
            ..primary.clone()
        })
        .collect())
}

/// `ENCRYPTION_KEYS`, required in production; the built-in development key otherwise
/// (the flag says so, for the start-up warning).
fn cipher<F: Fn(&str) -> Option<String>>(
    env: &Env<F>,
    environment: Environment,
) -> Result<(FieldCipher, bool), ConfigError> {
    let invalid = |reason: String| ConfigError {
        name: "ENCRYPTION_KEYS",
        reason,
    };
    match env.raw("ENCRYPTION_KEYS") {
        Some(spec) => {
            let cipher = FieldCipher::from_config(&spec).map_err(|e| invalid(e.to_string()))?;
            if environment == Environment::Production && cipher.includes_development_key() {
                return Err(invalid(
                    "holds the published development key, which protects nothing; \
                     generate a key of your own (see docs/security.md)"
                        .into(),
                ));
            }
            Ok((cipher, false))
        }
        None if environment == Environment::Production => Err(invalid(
            "must be set when APP_ENV=production (see docs/operations.md)".into(),
        )),
        None => Ok((
            FieldCipher::from_config(service::field_crypto::DEVELOPMENT_KEYS).expect("the development key is valid"),
            true,
        )),
    }
}

/// `TOKEN_TTL_HOURS`, as the expiry arithmetic uses it; a lifetime past any date is refused.
fn token_ttl<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<chrono::TimeDelta, ConfigError> {
    let hours: i64 = env.at_least_one("TOKEN_TTL_HOURS", 24 * 7)?;
    chrono::TimeDelta::try_hours(hours)
        .filter(|ttl| chrono::Utc::now().checked_add_signed(*ttl).is_some())
        .ok_or(ConfigError {
            name: "TOKEN_TTL_HOURS",
            reason: format!("{hours} hours is too long for a token lifetime"),
        })
}

/// The password-hashing budget (`service::accounts::password`).
fn hashing<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<HashingLimits, ConfigError> {
    let defaults = HashingLimits::per_core();
    Ok(HashingLimits {
        concurrency: env.at_least_one("PASSWORD_HASH_CONCURRENCY", defaults.concurrency)?,
        wait: env.positive_millis("PASSWORD_HASH_WAIT_MS", defaults.wait)?,
    })
}

/// The login and registration limits (`throttle`).
fn throttle<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<ThrottleLimits, ConfigError> {
    Ok(ThrottleLimits {
        per_account_and_client: env.at_least_one("LOGIN_ATTEMPTS_PER_ACCOUNT", 5)?,
        per_account: env.at_least_one("LOGIN_ATTEMPTS_PER_ACCOUNT_TOTAL", 100)?,
        per_client: env.at_least_one("LOGIN_ATTEMPTS_PER_CLIENT", 20)?,
        login_window: Duration::from_secs(env.at_least_one("LOGIN_WINDOW_SECS", 60)?),
        registrations_per_client: env.at_least_one("REGISTRATIONS_PER_CLIENT", 10)?,
        registration_window: Duration::from_secs(env.at_least_one("REGISTRATION_WINDOW_SECS", 3600)?),
    })
}

/// `REDIS_URL`, checked here so a typo stops start-up rather than every request.
fn redis_url<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Option<RedisUrl>, ConfigError> {
    let url = env.raw("REDIS_URL").map(RedisUrl::new);
    if let Some(url) = &url
        && redis::Client::open(url.expose()).is_err()
    {
        return Err(ConfigError {
            name: "REDIS_URL",
            reason: "is not a Redis URL (redis://[:password@]host[:port][/db])".into(),
        });
    }
    Ok(url)
}

fn cache<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<CacheSettings, ConfigError> {
    let cache = CacheSettings {
        enabled: env.choice("CACHE_ENABLED", BOOLEANS, true)?,
        ttl: Duration::from_secs(env.parse("CACHE_TTL_SECS", 60)?),
        max_bytes: env.parse::<u64>("CACHE_MAX_MIB", 64)?.saturating_mul(1024 * 1024),
        redis_url: redis_url(env)?,
        redis_timeout: env.positive_millis("REDIS_TIMEOUT_MS", Duration::from_millis(250))?,
    };
    if cache.enabled && (cache.ttl.is_zero() || cache.max_bytes == 0) {
        return Err(ConfigError {
            name: if cache.ttl.is_zero() {
                "CACHE_TTL_SECS"
            } else {
                "CACHE_MAX_MIB"
            },
            reason: "must be at least 1 (or set CACHE_ENABLED=false)".into(),
        });
    }
    Ok(cache)
}

/// `DATABASE_REPLICA_URLS`: comma-separated PostgreSQL URLs, only with a PostgreSQL
/// primary. Never echoed back: they hold passwords.
fn replica_urls(raw: Option<String>, primary: &PoolSettings) -> Result<Vec<DatabaseUrl>, ConfigError> {
    let urls: Vec<DatabaseUrl> = raw
        .iter()
        .flat_map(|list| list.split(','))
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(DatabaseUrl::new)
        .collect();
    let invalid = |reason: &str| ConfigError {
        name: "DATABASE_REPLICA_URLS",
        reason: reason.into(),
    };
    if urls.is_empty() {
        return Ok(urls);
    }
    if primary.url.backend() != Some(sea_orm::DbBackend::Postgres) {
        return Err(invalid(
            "read replicas need a PostgreSQL primary; SQLite has none, unset it",
        ));
    }
    if urls
        .iter()
        .any(|url| url.backend() != Some(sea_orm::DbBackend::Postgres))
    {
        return Err(invalid("each replica must be a postgres:// URL"));
    }
    Ok(urls)
}

const BOOLEANS: &[(&str, bool)] = &[
    ("true", true),
    ("1", true),
    ("yes", true),
    ("false", false),
    ("0", false),
    ("no", false),
];

struct Env<'a, F: Fn(&str) -> Option<String>>(&'a F);

impl<F: Fn(&str) -> Option<String>> Env<'_, F> {
    /// The trimmed value; an empty variable counts as unset.
    fn raw(&self, name: &str) -> Option<String> {
        (self.0)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    fn parse<T: FromStr>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: Display,
    {
        match self.raw(name) {
            None => Ok(default),
            Some(value) => value.parse().map_err(|e| ConfigError {
                name,
                reason: format!("{value:?}: {e}"),
            }),
        }
    }

    fn millis(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        let ms: u64 = self.parse(name, default.as_millis() as u64)?;
        Ok(Duration::from_millis(ms))
    }

    /// A count or a number of seconds where zero would mean "never" or "nothing".
    fn at_least_one<T: FromStr + PartialOrd + From<u8>>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T::Err: Display,
    {
        let value = self.parse(name, default)?;
        if value < T::from(1) {
            return Err(ConfigError {
                name,
                reason: "must be at least 1".into(),
            });
        }
        Ok(value)
    }

    /// A timeout, which zero would make fire at once.
    fn positive_millis(&self, name: &'static str, default: Duration) -> Result<Duration, ConfigError> {
        let value = self.millis(name, default)?;
        if value.is_zero() {
            return Err(ConfigError {
                name,
                reason: "must be positive".into(),
            });
        }
        Ok(value)
    }

    fn choice<T: Copy>(&self, name: &'static str, options: &[(&str, T)], default: T) -> Result<T, ConfigError> {
        let Some(value) = self.raw(name) else {
            return Ok(default);
        };
        options
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(&value))
            .map(|(_, v)| *v)
            .ok_or_else(|| ConfigError {
                name,
                reason: format!(
                    "{value:?} is not one of {}",
                    options.iter().map(|(k, _)| *k).collect::<Vec<_>>().join(", ")
                ),
            })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_environment() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.database.pool.url.expose(), DEFAULT_DATABASE_URL);
        assert_eq!((s.server.host.to_string().as_str(), s.server.port), ("127.0.0.1", 8080));
        assert_eq!(
            (s.database.pool.max_connections, s.database.pool.min_connections),
            (20, 0)
        );
        assert_eq!(s.database.pool.connect_timeout, Duration::from_secs(2));
        assert_eq!(s.database.pool.idle_timeout, Duration::from_secs(30));
        assert_eq!(s.database.pool.statement_timeout, Duration::from_secs(10));
        assert!(s.database.auto_migrate);
        assert_eq!(s.environment, Environment::Development);
        let cores = std::thread::available_parallelism().unwrap().get();
        assert_eq!(
            s.server.workers, cores,
            "one request thread per core, as actix-web's default"
        );
        assert_eq!(settings(&[("SERVER_WORKERS", "0")]).unwrap_err().name, "SERVER_WORKERS");
        let err = settings(&[("SERVER_WORKERS", "513")]).unwrap_err();
        assert!(err.to_string().contains("at most 512"), "actix-web would panic: {err}");
        assert_eq!(settings(&[("SERVER_WORKERS", "512")]).unwrap().server.workers, 512);
    }

    #[test]
    fn a_malformed_setting_is_named() {
        let err = settings(&[("PORT", "eighty")]).unwrap_err();
        assert_eq!(err.name, "PORT");
        assert!(err.to_string().contains("invalid setting PORT"), "{err}");

        let err = settings(&[("DATABASE_AUTO_MIGRATE", "maybe")]).unwrap_err();
        assert_eq!(err.name, "DATABASE_AUTO_MIGRATE");
    }

    #[test]
    fn migration_timeouts_default_and_stay_within_what_postgresql_accepts() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.database.migration_timeouts, MigrationTimeouts::default());
        let s = settings(&[("DATABASE_MIGRATION_LOCK_TIMEOUT_MS", "0")]).unwrap();
        assert_eq!(s.database.migration_timeouts.lock, Duration::ZERO);

        let err = settings(&[("DATABASE_MIGRATION_STATEMENT_TIMEOUT_MS", "2147483648")]).unwrap_err();
        assert_eq!(err.name, "DATABASE_MIGRATION_STATEMENT_TIMEOUT_MS");
        assert!(settings(&[("DATABASE_MIGRATION_LOCK_TIMEOUT_MS", "2147483647")]).is_ok());
    }

    #[test]
    fn pool_bounds_must_make_sense() {
        let err = settings(&[("DATABASE_MIN_CONNECTIONS", "30")]).unwrap_err();
        assert_eq!(err.name, "DATABASE_MIN_CONNECTIONS");
        let err = settings(&[("DATABASE_MAX_CONNECTIONS", "0")]).unwrap_err();
        assert_eq!(err.name, "DATABASE_MAX_CONNECTIONS");
    }

    #[test]
    fn an_unknown_database_scheme_is_refused_without_echoing_the_url() {
        let err = settings(&[("DATABASE_URL", "mysql://root:hunter2@db/x")]).unwrap_err();
        assert_eq!(err.name, "DATABASE_URL");
        assert!(
            err.to_string().contains("MySQL and MariaDB are not supported yet"),
            "{err}"
        );
        assert!(!err.to_string().contains("hunter2"));
    }

    #[test]
    fn env_example_and_readme_list_every_setting() {
        let asked = std::cell::RefCell::new(std::collections::BTreeSet::new());
        Settings::from_lookup(|name| {
            asked.borrow_mut().insert(name.to_owned());
            None
        })
        .unwrap();
        let example = include_str!("../../.env.example");
        let readme = include_str!("../../README.md");
        for name in asked.into_inner() {
            assert!(example.contains(&format!("# {name}=")), ".env.example lacks {name}");
            assert!(
                readme
                    .lines()
                    .any(|row| row.starts_with("| `") && row.contains(&format!("`{name}`"))),
                "no table row of the README names {name}"
            );
        }
    }

    #[test]
    fn a_token_lifetime_past_any_date_is_refused_at_start_up() {
        assert_eq!(
            settings(&[]).unwrap().security.token_ttl,
            chrono::TimeDelta::hours(24 * 7)
        );
        for bad in ["0", "99999999999999", "-1"] {
            assert_eq!(
                settings(&[("TOKEN_TTL_HOURS", bad)]).unwrap_err().name,
                "TOKEN_TTL_HOURS",
                "{bad}"
            );
        }
    }

    #[test]
    fn redis_and_the_cache_are_checked_and_the_redis_password_never_shown() {
        let s = settings(&[("REDIS_URL", "redis://:hunter2@cache.internal:6380/1")]).unwrap();
        assert_eq!(
            s.cache.redis_url.as_ref().unwrap().expose(),
            "redis://:hunter2@cache.internal:6380/1"
        );
        assert!(!format!("{s:?}").contains("hunter2"), "Debug output hides it");
        for bad in ["http://:hunter2@cache.internal", "redis://:hunter2@[::1"] {
            let err = settings(&[("REDIS_URL", bad)]).unwrap_err();
            assert_eq!(err.name, "REDIS_URL");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
        let defaults = settings(&[]).unwrap();
        assert!(defaults.cache.redis_url.is_none() && defaults.cache.enabled);
        assert_eq!(defaults.cache.ttl, Duration::from_secs(60));
        assert_eq!(settings(&[("CACHE_TTL_SECS", "0")]).unwrap_err().name, "CACHE_TTL_SECS");
        assert!(settings(&[("CACHE_TTL_SECS", "0"), ("CACHE_ENABLED", "false")]).is_ok());
        assert_eq!(
            settings(&[("REDIS_TIMEOUT_MS", "0")]).unwrap_err().name,
            "REDIS_TIMEOUT_MS"
        );
    }

    #[test]
    fn production_refuses_to_start_without_encryption_keys() {
        let err = settings(&[("APP_ENV", "production")]).unwrap_err();
        assert_eq!(err.name, "ENCRYPTION_KEYS");
        let dev = settings(&[]).unwrap();
        assert!(dev.security.using_development_key);
        let key = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let prod = settings(&[("APP_ENV", "production"), ("ENCRYPTION_KEYS", key)]).unwrap();
        assert!(!prod.security.using_development_key);
        assert_eq!(
            prod.observability.log_format,
            LogFormat::Json,
            "production logs JSON unless told otherwise"
        );
        assert_eq!(dev.observability.log_format, LogFormat::Text);
        assert_eq!(prod.security.cipher.active_key_id(), "k1");
    }

    #[test]
    fn production_refuses_the_published_development_key_under_any_id() {
        let published = service::field_crypto::DEVELOPMENT_KEYS.split_once(':').unwrap().1;
        let own = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        for keys in [format!("prod:{published}"), format!("{own},old:{published}")] {
            let err = settings(&[("APP_ENV", "production"), ("ENCRYPTION_KEYS", &keys)]).unwrap_err();
            assert_eq!(err.name, "ENCRYPTION_KEYS");
            assert!(err.reason.contains("development key"), "{err}");
            assert!(!err.to_string().contains(published), "the key is not echoed");
            assert!(
                settings(&[("ENCRYPTION_KEYS", &keys)]).is_ok(),
                "development accepts it"
            );
        }
    }

    #[test]
    fn replicas_need_a_postgresql_primary_and_are_never_echoed() {
        let err = settings(&[("DATABASE_REPLICA_URLS", "postgres://r:secret@replica/bookworm")]).unwrap_err();
        assert_eq!(err.name, "DATABASE_REPLICA_URLS");
        assert!(!err.to_string().contains("secret"));
        let primary = ("DATABASE_URL", "postgres://app@primary/bookworm");
        let err = settings(&[primary, ("DATABASE_REPLICA_URLS", "sqlite://x.db")]).unwrap_err();
        assert_eq!(err.name, "DATABASE_REPLICA_URLS");
        let two = settings(&[
            primary,
            (
                "DATABASE_REPLICA_URLS",
                "postgres://a@r1/bookworm, postgres://a@r2/bookworm",
            ),
            ("DATABASE_REPLICA_MAX_LAG_MS", "250"),
        ])
        .unwrap();
        assert_eq!(two.replicas.pools.len(), 2);
        assert_eq!(
            two.replicas.pools[0].max_connections, 40,
            "larger than the primary's 20"
        );
        assert_eq!(two.replicas.max_lag, Duration::from_millis(250));
        assert!(settings(&[primary]).unwrap().replicas.pools.is_empty());
    }

    #[test]
    fn a_bad_key_is_refused_without_echoing_it() {
        let err = settings(&[("ENCRYPTION_KEYS", "k1:c2VjcmV0LWJ1dC1zaG9ydA==")]).unwrap_err();
        assert_eq!(err.name, "ENCRYPTION_KEYS");
        assert!(!err.to_string().contains("c2VjcmV0"), "{err}");
    }

    #[test]
    fn overrides_are_read() {
        let s = settings(&[
            ("PORT", "0"),
            ("DATABASE_AUTO_MIGRATE", "false"),
            ("LOG_FORMAT", "JSON"),
            ("DATABASE_CONNECT_TIMEOUT_MS", "250"),
            ("SERVER_WORKERS", "3"),
        ])
        .unwrap();
        assert_eq!(s.server.workers, 3);
        assert_eq!(s.server.port, 0);
        assert!(!s.database.auto_migrate);
        assert_eq!(s.observability.log_format, LogFormat::Json);
        assert_eq!(s.database.pool.connect_timeout, Duration::from_millis(250));
    }
}
