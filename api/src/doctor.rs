//! `api doctor`: one command that tells an operator whether a deployment is right,
//! reading the same configuration as the server. Each check is one line with a verdict
//! and, when it is not `ok`, the fix. `/health/ready` answers a load balancer's
//! narrower question (can this instance serve now?) and says nothing of a superuser
//! role, a writable audit log or metrics on the public port; those are what an
//! operator gets wrong once and never sees again, so they are checked here.
//!
//! Nothing is changed: no migration runs and no SQLite file is created.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use serde::Serialize;
use service::readiness::{self, RoleReport};

use crate::config::{ConfigError, Environment, Settings};

/// How long any one check may wait on a server.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    /// Not applicable here (a role check on SQLite, Redis not configured).
    Skip,
    Warn,
    Fail,
}

impl Verdict {
    fn is_problem(self) -> bool {
        matches!(self, Verdict::Warn | Verdict::Fail)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub verdict: Verdict,
    pub detail: String,
    /// What to do about it; absent when all is well.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    fn ok(check: &'static str, detail: impl Into<String>) -> Self {
        Self::new(check, Verdict::Ok, detail, None)
    }

    fn skip(check: &'static str, detail: impl Into<String>) -> Self {
        Self::new(check, Verdict::Skip, detail, None)
    }

    fn warn(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(check, Verdict::Warn, detail, Some(fix.into()))
    }

    fn fail(check: &'static str, detail: impl Into<String>, fix: impl Into<String>) -> Self {
        Self::new(check, Verdict::Fail, detail, Some(fix.into()))
    }

    fn new(check: &'static str, verdict: Verdict, detail: impl Into<String>, fix: Option<String>) -> Self {
        Self {
            check,
            verdict,
            detail: detail.into(),
            fix,
        }
    }
}

/// The whole examination, in the order it is printed.
#[derive(Debug, Serialize)]
pub struct Report {
    /// True when no check warns or fails: the command then exits 0.
    pub healthy: bool,
    pub checks: Vec<Finding>,
}

impl Report {
    fn new(checks: Vec<Finding>) -> Self {
        let healthy = checks.iter().all(|c| !c.verdict.is_problem());
        Self { healthy, checks }
    }

    /// One line per check: verdict, check, what was found, and the fix.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let verdict = match c.verdict {
                Verdict::Ok => "ok",
                Verdict::Skip => "skip",
                Verdict::Warn => "WARN",
                Verdict::Fail => "FAIL",
            };
            out.push_str(&format!("{verdict:<5} {:<13} {}", c.check, c.detail));
            if let Some(fix) = &c.fix {
                out.push_str(&format!(" -- fix: {fix}"));
            }
            out.push('\n');
        }
        match self.checks.iter().filter(|c| c.verdict.is_problem()).count() {
            0 => out.push_str("all is well\n"),
            n => out.push_str(&format!("{n} problem(s) found\n")),
        }
        out
    }
}

/// Examines the deployment `settings` describe (or says why they do not parse).
pub async fn examine(settings: Result<Settings, ConfigError>) -> Report {
    let settings = match settings {
        Ok(settings) => settings,
        Err(err) => {
            let fix = format!("set {} correctly (README, configuration)", err.name);
            return Report::new(vec![Finding::fail("configuration", err.to_string(), fix)]);
        }
    };
    let mut checks = vec![configuration(&settings), encryption(&settings), metrics(&settings)];
    match connect(&settings).await {
        Err(finding) => checks.push(*finding),
        Ok(db) => {
            checks.push(database(&db, &settings).await);
            let migrated = migrations(&db).await;
            let current = migrated.verdict != Verdict::Fail;
            checks.push(migrated);
            checks.extend(role(&db, current).await);
            checks.push(replicas(&settings, &db).await);
            db.close().await.ok();
        }
    }
    checks.push(redis(&settings).await);
    Report::new(checks)
}

fn configuration(settings: &Settings) -> Finding {
    let environment = match settings.environment {
        Environment::Development => "development",
        Environment::Production => "production",
    };
    Finding::ok("configuration", format!("APP_ENV={environment}; every setting parses"))
}

fn encryption(settings: &Settings) -> Finding {
    let ids = settings.security.cipher.key_ids();
    let older = match &ids[1..] {
        [] => String::new(),
        rest => format!("; {} decrypt older values", rest.join(", ")),
    };
    // Production refuses the development key at parse time; here it is expected.
    let development = if settings.security.using_development_key {
        " (the public development key: development only)"
    } else {
        ""
    };
    Finding::ok(
        "encryption",
        format!(
            "ENCRYPTION_KEYS parse: {} key(s), {} encrypts{older}{development}",
            ids.len(),
            ids[0]
        ),
    )
}

fn metrics(settings: &Settings) -> Finding {
    let Some(addr) = settings.observability.metrics_addr else {
        return Finding::skip("metrics", "METRICS_ADDR is unset: no metrics endpoint");
    };
    let public = (settings.server.host, settings.server.port);
    let overlaps = addr.ip() == public.0 || addr.ip().is_unspecified() || public.0.is_unspecified();
    if addr.port() == public.1 && overlaps {
        return Finding::fail(
            "metrics",
            format!("METRICS_ADDR {addr} is the API's own port {}", public.1),
            "give METRICS_ADDR a port of its own, reachable only by the scraper",
        );
    }
    Finding::ok(
        "metrics",
        format!("on {addr}, apart from the API on {}:{}", public.0, public.1),
    )
}

/// Connects as the server does: a multi-host `DATABASE_URL` (a failover pair) goes to
/// the host that is writable now.
async fn connect(settings: &Settings) -> Result<DatabaseConnection, Box<Finding>> {
    let url = &settings.database.pool.url;
    if let Some(path) = url.sqlite_file()
        && !path.exists()
    {
        return Err(Box::new(Finding::fail(
            "database",
            format!("no SQLite database at {}", path.display()),
            "start the API once (it creates and migrates it) or run `migration up`",
        )));
    }
    let mut pool = settings.database.pool.clone();
    pool.max_connections = 1;
    pool.min_connections = 0;
    let connected = within("database", service::database::primary::connect_following(&pool)).await?;
    connected.map(|(db, _)| db).map_err(|err| {
        Box::new(Finding::fail(
            "database",
            format!("cannot reach {}: {err}", url.location()),
            "check DATABASE_URL and that the server is up and accepts this role",
        ))
    })
}

/// Runs one check's round trips within [`CHECK_TIMEOUT`], or fails `check`.
async fn within<T>(check: &'static str, work: impl Future<Output = T>) -> Result<T, Box<Finding>> {
    tokio::time::timeout(CHECK_TIMEOUT, work).await.map_err(|_| {
        Box::new(Finding::fail(
            check,
            format!("no answer within {CHECK_TIMEOUT:?}"),
            "check the server, the network and the server's load",
        ))
    })
}

async fn database(db: &DatabaseConnection, settings: &Settings) -> Finding {
    match within("database", readiness::server_version(db)).await {
        Ok(Ok(version)) => Finding::ok(
            "database",
            format!("{version} at {}", settings.database.pool.url.location()),
        ),
        Ok(Err(_)) => Finding::fail(
            "database",
            "connected, but the server did not say its version",
            "check the server's logs",
        ),
        Err(timed_out) => *timed_out,
    }
}

async fn migrations(db: &DatabaseConnection) -> Finding {
    let expected = crate::startup::known_migrations();
    let applied = match within("migrations", readiness::applied_migrations(db)).await {
        Ok(Ok(applied)) => applied,
        Ok(Err(err)) => {
            tracing::debug!(error = %err, "reading seaql_migrations");
            return Finding::fail(
                "migrations",
                "cannot read seaql_migrations: none applied yet, or the role may not read it",
                "run `migration up` as the schema owner (or start the API with DATABASE_AUTO_MIGRATE=true); \
                 grant the API role SELECT on the tables",
            );
        }
        Err(timed_out) => return *timed_out,
    };
    let missing = readiness::not_in(&expected, &applied);
    if !missing.is_empty() {
        return Finding::fail(
            "migrations",
            format!(
                "{} of {} not applied: {}",
                missing.len(),
                expected.len(),
                missing.join(", ")
            ),
            "run `migration up` as the schema owner (or start the API with DATABASE_AUTO_MIGRATE=true)",
        );
    }
    let unknown = readiness::not_in(&applied, &expected);
    if !unknown.is_empty() {
        return Finding::warn(
            "migrations",
            format!(
                "the database has migrations this binary does not know: {}",
                unknown.join(", ")
            ),
            "deploy the release that added them (this binary is older than the schema)",
        );
    }
    Finding::ok("migrations", format!("all {} applied", expected.len()))
}

/// `schema_current`: the grants and the audit triggers are only judged on a schema
/// that has them.
async fn role(db: &DatabaseConnection, schema_current: bool) -> Vec<Finding> {
    let report = match within("role", readiness::role_report(db)).await {
        Ok(Ok(Some(report))) => report,
        Ok(Ok(None)) => {
            return vec![
                Finding::skip("role", "SQLite has no roles: whoever can open the file can do anything"),
                Finding::skip("grants", "SQLite has no grants"),
                Finding::skip(
                    "audit log",
                    "SQLite: written by triggers; the file's permissions guard it",
                ),
            ];
        }
        Ok(Err(err)) => {
            return vec![Finding::fail(
                "role",
                format!("cannot read the role's privileges: {err}"),
                "check the role exists and may read pg_roles",
            )];
        }
        Err(timed_out) => return vec![*timed_out],
    };
    if !schema_current {
        let why = "the schema is not current; checked once the migrations are applied";
        return vec![
            role_attributes(&report),
            Finding::skip("grants", why),
            Finding::skip("audit log", why),
        ];
    }
    vec![role_attributes(&report), grants(&report), audit_log(&report)]
}

const ROLES_DOC: &str = "docs/operations.md, two database roles";

fn role_attributes(report: &RoleReport) -> Finding {
    let what = match (report.superuser, report.bypass_rls) {
        (true, _) => "a superuser",
        (false, true) => "BYPASSRLS",
        (false, false) => {
            return Finding::ok(
                "role",
                format!(
                    "{}: not a superuser, no BYPASSRLS; row-level security applies",
                    report.name
                ),
            );
        }
    };
    Finding::warn(
        "role",
        format!("{} is {what}: row-level security protects nothing", report.name),
        format!("serve as a restricted role and migrate as the owner ({ROLES_DOC})"),
    )
}

fn grants(report: &RoleReport) -> Finding {
    if report.missing.is_empty() {
        return Finding::ok("grants", "every table the API reads and writes");
    }
    Finding::fail(
        "grants",
        format!("{} lacks {}", report.name, report.missing.join(", ")),
        format!("run the GRANTs of {ROLES_DOC}"),
    )
}

fn audit_log(report: &RoleReport) -> Finding {
    if !report.audit_trigger_is_definer {
        return Finding::fail(
            "audit log",
            "the audit triggers do not run as their owner: writes by a role without rights on audit_log fail",
            "run `migration up` as the schema owner",
        );
    }
    if report.superuser {
        return Finding::warn(
            "audit log",
            format!("{} is a superuser: it could rewrite history", report.name),
            format!("serve as a restricted role ({ROLES_DOC})"),
        );
    }
    if !report.audit_log_rights.is_empty() {
        let rights = report.audit_log_rights.join(", ");
        return Finding::warn(
            "audit log",
            format!("{} has {rights} on audit_log: it could rewrite history", report.name),
            format!(
                "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON audit_log FROM {} ({ROLES_DOC})",
                report.name
            ),
        );
    }
    Finding::ok("audit log", "read-only for this role; written by the owner's triggers")
}

async fn replicas(settings: &Settings, primary: &DatabaseConnection) -> Finding {
    if settings.replicas.pools.is_empty() {
        return Finding::skip("replicas", "none configured (DATABASE_REPLICA_URLS)");
    }
    let databases = match crate::startup::connect_replicas(settings, primary.clone()).await {
        Ok(databases) => databases,
        Err(err) => return Finding::fail("replicas", err.to_string(), "check DATABASE_REPLICA_URLS"),
    };
    if let Err(timed_out) = within("replicas", databases.check_replicas()).await {
        return *timed_out;
    }
    let max_lag = settings.replicas.max_lag;
    let mut down = Vec::new();
    let mut lagging = Vec::new();
    let mut states = Vec::new();
    for replica in &databases.replicas {
        let state = replica.state();
        let name = replica.name.clone();
        if !state.up {
            states.push(format!("{name} down"));
            down.push(name);
            continue;
        }
        states.push(format!(
            "{name} up, {} bytes, {} ms behind",
            state.lag_bytes,
            state.lag.as_millis()
        ));
        if state.lag > max_lag {
            lagging.push(name);
        }
    }
    for replica in &databases.replicas {
        replica.db.clone().close().await.ok();
    }
    let detail = states.join("; ");
    if !down.is_empty() {
        return Finding::fail(
            "replicas",
            detail,
            format!(
                "{} serve no reads: check they run as standbys of this primary",
                down.join(", ")
            ),
        );
    }
    if !lagging.is_empty() {
        return Finding::warn(
            "replicas",
            detail,
            format!(
                "{} lag more than DATABASE_REPLICA_MAX_LAG_MS ({} ms): reads go to the primary",
                lagging.join(", "),
                max_lag.as_millis()
            ),
        );
    }
    Finding::ok("replicas", detail)
}

async fn redis(settings: &Settings) -> Finding {
    let Some(url) = &settings.cache.redis_url else {
        return Finding::skip("redis", "REDIS_URL is unset: cache and login throttle are per instance");
    };
    let link = match service::redis_link::RedisLink::new(url.expose(), settings.cache.redis_timeout) {
        Ok(link) => link,
        Err(err) => return Finding::fail("redis", err.to_string(), "fix REDIS_URL"),
    };
    match link.probe(|_| async { Ok(()) }).await {
        Ok(()) => Finding::ok("redis", format!("{} answers", link.location())),
        Err(cause) => Finding::fail(
            "redis",
            format!("{} does not answer: {cause}", link.location()),
            "start Redis or fix REDIS_URL; until then each instance caches and throttles alone",
        ),
    }
}
