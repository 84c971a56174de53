//! `api doctor` as an operator runs it: on a deployment that is right it passes every
//! check; on each thing an operator gets wrong it names the check, says what it found
//! and how to fix it, and does not pass. PostgreSQL runs in the documented two-role
//! set-up (the API as a restricted role, the schema owned by another).

use api::config::{RedisUrl, Settings};
use api::doctor::{Finding, Report, Verdict, examine};
use migration::{Migrator, MigratorTrait};
use service::database::DatabaseUrl;
use tests::cluster::free_port;
use tests::{AppRole, Backend, TestDatabase, backend_tests, connect_as, test_settings};

/// A migrated database and the settings the API would serve it with: on PostgreSQL as
/// the restricted role, with the schema owned by the owner role.
struct Deployment {
    database: TestDatabase,
    settings: Settings,
    roles: Option<(AppRole, AppRole)>,
}

async fn deployment(backend: Backend, migrations: Option<u32>) -> Deployment {
    let database = TestDatabase::create(backend).await;
    if backend == Backend::Sqlite {
        let db = database.connect_with(1).await;
        Migrator::up(&db, migrations).await.expect("migrate");
        db.close().await.ok();
        let settings = test_settings(&database.url);
        return Deployment {
            database,
            settings,
            roles: None,
        };
    }
    let owner = database.create_owner_role().await;
    let db = connect_as(&owner.url).await;
    Migrator::up(&db, migrations).await.expect("the owner migrates");
    db.close().await.ok();
    let app = database.create_app_role_granted_by(&owner).await;
    let mut settings = test_settings(&app.url);
    settings.database.migration_url = Some(DatabaseUrl::new(owner.url.clone()));
    Deployment {
        database,
        settings,
        roles: Some((owner, app)),
    }
}

fn finding<'a>(report: &'a Report, check: &str) -> &'a Finding {
    report
        .checks
        .iter()
        .find(|c| c.check == check)
        .unwrap_or_else(|| panic!("no {check} check in {}", report.to_text()))
}

/// The check named `check`, which must have come to `verdict`.
fn judged<'a>(report: &'a Report, check: &str, verdict: Verdict) -> &'a Finding {
    let found = finding(report, check);
    assert_eq!(found.verdict, verdict, "{}", report.to_text());
    found
}

/// The owner runs `sql` (on PostgreSQL), as an operator fixing or breaking grants would.
#[cfg(postgres)]
async fn as_owner(deployment: &Deployment, sql: &str) {
    use sea_orm::ConnectionTrait;
    let (owner, _) = deployment.roles.as_ref().expect("PostgreSQL");
    let db = connect_as(&owner.url).await;
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    db.close().await.ok();
}

async fn a_correct_deployment_passes_every_check(backend: Backend) {
    let deployment = deployment(backend, None).await;

    let report = examine(Ok(deployment.settings.clone())).await;

    assert_eq!(
        deployment.roles.is_some(),
        backend == Backend::Postgres,
        "two roles on PostgreSQL"
    );
    assert!(report.healthy, "{}", report.to_text());
    let names: Vec<&str> = report.checks.iter().map(|c| c.check).collect();
    assert_eq!(
        names,
        [
            "configuration",
            "encryption",
            "metrics",
            "database",
            "migrations",
            "role",
            "grants",
            "audit log",
            "replicas",
            "redis"
        ]
    );
    let product = if backend == Backend::Sqlite {
        "SQLite 3."
    } else {
        "PostgreSQL 1"
    };
    assert!(
        finding(&report, "database").detail.starts_with(product),
        "{}",
        report.to_text()
    );
    let all = Migrator::migrations().len();
    assert_eq!(finding(&report, "migrations").detail, format!("all {all} applied"));
    let checked_roles = if backend == Backend::Postgres {
        Verdict::Ok
    } else {
        Verdict::Skip
    };
    for check in ["role", "grants", "audit log"] {
        assert_eq!(finding(&report, check).verdict, checked_roles, "{}", report.to_text());
    }
    assert!(report.checks.iter().all(|c| c.fix.is_none()));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["healthy"], true);
    assert_eq!(json["checks"][4]["check"], "migrations");
    assert_eq!(json["checks"][4]["verdict"], "ok");
    drop(deployment.database);
}

async fn a_schema_behind_the_binary_is_named_with_the_missing_migration(backend: Backend) {
    let all = Migrator::migrations().len() as u32;
    let deployment = deployment(backend, Some(all - 1)).await;

    let report = examine(Ok(deployment.settings.clone())).await;

    assert!(!report.healthy);
    let migrations = finding(&report, "migrations");
    assert_eq!(migrations.verdict, Verdict::Fail);
    let last = Migrator::migrations().last().unwrap().name().to_owned();
    assert!(migrations.detail.contains(&last), "{}", migrations.detail);
    assert!(migrations.fix.as_deref().unwrap().contains("migration up"));
}

async fn a_dead_redis_and_metrics_on_the_public_port_fail(backend: Backend) {
    let mut deployment = deployment(backend, None).await;
    let settings = &mut deployment.settings;
    settings.server.port = 8080;
    settings.observability.metrics_addr = Some("0.0.0.0:8080".parse().unwrap());
    settings.cache.redis_url = Some(RedisUrl::new(format!("redis://:hunter2@127.0.0.1:{}", free_port())));

    let report = examine(Ok(deployment.settings.clone())).await;

    assert!(!report.healthy);
    let metrics = judged(&report, "metrics", Verdict::Fail);
    assert!(metrics.detail.contains("own port 8080"), "{}", metrics.detail);
    judged(&report, "redis", Verdict::Fail);
    assert!(!report.to_text().contains("hunter2"), "{}", report.to_text());
    assert_eq!(finding(&report, "database").verdict, Verdict::Ok);
}

#[tokio::test]
async fn a_setting_that_does_not_parse_is_the_one_finding() {
    let settings = Settings::from_lookup(|name| (name == "METRICS_ADDR").then(|| "not an address".to_owned()));

    let report = examine(settings).await;

    assert!(!report.healthy);
    assert_eq!(report.checks.len(), 1, "{}", report.to_text());
    assert_eq!(report.checks[0].check, "configuration");
    assert!(report.checks[0].detail.contains("METRICS_ADDR"), "{}", report.to_text());
}

/// The production mistakes only PostgreSQL can make: serving as a superuser, a role
/// missing a grant, a role that may rewrite the audit log, a replica that is down.
#[cfg(postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_mistakes_are_named_with_their_fix() {
    use service::database::PoolSettings;

    let deployment = deployment(Backend::Postgres, None).await;
    let (_, app) = deployment.roles.as_ref().unwrap();

    // A missing grant, and rights on the audit log the API must not have.
    as_owner(&deployment, &format!("REVOKE INSERT ON reviews FROM {}", app.name)).await;
    as_owner(&deployment, &format!("GRANT UPDATE ON audit_log TO {}", app.name)).await;
    let report = examine(Ok(deployment.settings.clone())).await;
    assert!(!report.healthy);
    let grants = judged(&report, "grants", Verdict::Fail);
    assert!(grants.detail.ends_with("lacks INSERT on reviews"), "{}", grants.detail);
    let audit = judged(&report, "audit log", Verdict::Warn);
    assert!(audit.fix.as_deref().unwrap().starts_with("REVOKE"), "{audit:?}");
    assert_eq!(finding(&report, "role").verdict, Verdict::Ok);

    // The superuser the tests connect as: row-level security does not bind it.
    let mut as_superuser = deployment.settings.clone();
    as_superuser.database.pool.url = DatabaseUrl::new(deployment.database.url.clone());
    let report = examine(Ok(as_superuser)).await;
    let role = judged(&report, "role", Verdict::Warn);
    assert!(role.detail.contains("superuser"), "{}", role.detail);

    // Each replica with its state and lag: the primary's own host, listed as a
    // replica (it serves reads as the primary would), and one that is down, named
    // without its password.
    let mut with_replicas = deployment.settings.clone();
    let dead = format!("postgres://reader:s3cret@127.0.0.1:{}/bookworm", free_port());
    with_replicas.replicas.pools = vec![
        PoolSettings::with_defaults(DatabaseUrl::new(app.url.clone())),
        PoolSettings::with_defaults(DatabaseUrl::new(dead)),
    ];
    let report = examine(Ok(with_replicas)).await;
    let replicas = judged(&report, "replicas", Verdict::Fail);
    let primary = DatabaseUrl::new(app.url.clone()).location();
    assert!(
        replicas
            .detail
            .starts_with(&format!("{primary} up, 0 bytes, 0 ms behind; ")),
        "{}",
        replicas.detail
    );
    assert!(replicas.detail.ends_with("/bookworm down"), "{}", replicas.detail);
    assert!(!report.to_text().contains("s3cret"));
}

backend_tests!(
    a_correct_deployment_passes_every_check,
    a_schema_behind_the_binary_is_named_with_the_missing_migration,
    a_dead_redis_and_metrics_on_the_public_port_fail,
);

/// A failover pair's URL names both nodes; the doctor connects as the server does, to
/// the one that is writable, and reports healthy though the first named is down.
#[cfg(postgres)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failover_pair_url_is_followed_to_the_writable_node() {
    let mut deployment = deployment(Backend::Postgres, None).await;
    let url = deployment.settings.database.pool.url.expose().to_owned();
    let parsed = reqwest::Url::parse(&url).unwrap();
    let node = format!("{}:{}", parsed.host_str().unwrap(), parsed.port().unwrap_or(5432));
    let pair = url.replacen(&format!("@{node}/"), &format!("@127.0.0.1:{},{node}/", free_port()), 1)
        + "?target_session_attrs=read-write";
    deployment.settings.database.pool.url = DatabaseUrl::new(pair);

    let report = examine(Ok(deployment.settings.clone())).await;

    assert!(report.healthy, "{}", report.to_text());
    judged(&report, "database", Verdict::Ok);
}
