//! Building and running the server. [`Application::build`] does everything that can
//! fail — connect, migrate, bind — before a single request is accepted, and reports
//! failures as one clear [`StartupError`]; the binary and the tests share it.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_web::dev::{Server, ServerHandle};
use actix_web::middleware::{ErrorHandlers, NormalizePath, TrailingSlash, from_fn};
use actix_web::{App, HttpServer, web};
use migration::{Migrator, MigratorTrait};
use sea_orm::{DatabaseConnection, DbErr};
use service::accounts::Hashing;
use service::cache::Cache;
use service::database::DatabaseUrl;
use service::database::primary::PrimaryFollower;
use service::redis_link::RedisLink;
use service::replicas::{Databases, Replica};
use utoipa_actix_web::AppExt;

use crate::config::{Environment, Settings};
use crate::context::AppContext;
use crate::problem::problem_for_bare_errors;
use crate::throttle::Throttle;
use crate::{background, middleware, routes};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot reach the database at {url} (check DATABASE_URL and that the server is up): {source}")]
    Database { url: DatabaseUrl, source: DbErr },
    #[error("applying migrations failed: {0}")]
    Migration(String),
    #[error("{0}")]
    Redis(#[from] service::redis_link::BadRedisUrl),
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: String, source: std::io::Error },
}

pub struct Application {
    port: u16,
    metrics_port: Option<u16>,
    db: DatabaseConnection,
    hashing: Arc<Hashing>,
    server: Server,
    draining: Arc<AtomicBool>,
    drain: Duration,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let (db, follower) = service::database::primary::connect_following(&settings.database.pool)
            .await
            .map_err(|source| StartupError::Database {
                url: settings.database.pool.url.clone(),
                source,
            })?;
        Self::build_following(settings, db, follower).await
    }

    /// Like [`build`](Self::build) with a connection made by the caller.
    pub async fn build_with_db(settings: Settings, db: DatabaseConnection) -> Result<Self, StartupError> {
        Self::build_following(settings, db, None).await
    }

    async fn build_following(
        settings: Settings,
        mut db: DatabaseConnection,
        follower: Option<Arc<PrimaryFollower>>,
    ) -> Result<Self, StartupError> {
        // Before any clone: clones share the callback.
        service::database::count_statements(&mut db);
        tracing::info!(database = %settings.database.pool.url, "connected to the database");
        let addr = format!("{}:{}", settings.server.host, settings.server.port);
        let listener = TcpListener::bind(&addr).map_err(|source| StartupError::Bind {
            addr: addr.clone(),
            source,
        })?;
        let port = listener
            .local_addr()
            .map_err(|source| StartupError::Bind { addr, source })?
            .port();
        if settings.database.auto_migrate {
            migrate(&settings, &db).await?;
        }

        if settings.environment == Environment::Development && catalogue_is_empty(&db).await {
            tracing::info!(
                "the catalogue is empty. For demo data and two demo logins (reader and admin), \
                 run in another terminal: cargo run -p seed -- --demo"
            );
        }
        if settings.security.using_development_key {
            tracing::warn!(
                "ENCRYPTION_KEYS is not set: encrypting with the built-in development key, which is public. \
                 Set ENCRYPTION_KEYS before storing real data; APP_ENV=production refuses to start without it."
            );
        }
        if settings.environment == Environment::Production
            && service::readiness::skips_row_security(&db).await.unwrap_or(false)
        {
            tracing::warn!(
                "the API's database role is a superuser or has BYPASSRLS, so row-level security does not \
                 apply to it: run the API as a restricted role and migrate as the owner \
                 (docs/operations.md, two database roles)"
            );
        }
        let mut databases = connect_replicas(&settings, db.clone()).await?;
        if let Some(follower) = follower {
            tokio::spawn(follower.clone().follow(PRIMARY_CHECK_EVERY));
            databases = databases.with_follower(follower);
        }
        let databases = Arc::new(databases);
        if !databases.replicas.is_empty() {
            databases.check_replicas().await;
            tokio::spawn(service::replicas::watch(databases.clone(), REPLICA_CHECK_EVERY));
        }
        let redis = connect_redis(&settings).await?;
        let throttle = Arc::new(match &redis {
            Some(link) => Throttle::shared(settings.security.throttle, link.clone()),
            None => Throttle::new(settings.security.throttle),
        });
        let cache = Arc::new(match (&redis, settings.cache.enabled) {
            (_, false) => Cache::off(),
            (Some(link), true) => Cache::redis(link.clone(), settings.cache.ttl),
            (None, true) => Cache::local(settings.cache.ttl, settings.cache.max_bytes),
        });
        tracing::info!(
            backend = cache.backend().as_str(),
            ttl_secs = settings.cache.ttl.as_secs(),
            "cache"
        );
        let draining = Arc::new(AtomicBool::new(false));
        let ctx = AppContext {
            databases,
            ready_timeout: settings.database.pool.connect_timeout,
            expected_migrations: Arc::new(known_migrations()),
            cipher: settings.security.cipher.clone(),
            token_ttl: settings.security.token_ttl,
            hashing: Hashing::new(settings.security.hashing),
            throttle: throttle.clone(),
            cache,
            expose_statement_count: settings.environment == Environment::Development,
            draining: draining.clone(),
        };
        background::start(&ctx, throttle, &settings);
        let metrics_port = match settings.observability.metrics_addr {
            Some(addr) => {
                let bind = |source| StartupError::Bind {
                    addr: addr.to_string(),
                    source,
                };
                let listener = TcpListener::bind(addr).map_err(bind)?;
                let bound = listener.local_addr().map_err(bind)?.port();
                tokio::spawn(crate::metrics::serve(listener, ctx.clone()).map_err(bind)?);
                tracing::info!(%addr, port = bound, "serving metrics at /metrics");
                Some(bound)
            }
            None => None,
        };
        let hashing = ctx.hashing.clone();
        let server = run(listener, ctx, &settings).map_err(|source| StartupError::Bind {
            addr: format!("{}:{port}", settings.server.host),
            source,
        })?;
        tracing::info!(host = %settings.server.host, port, "listening");
        Ok(Self {
            port,
            metrics_port,
            db,
            hashing,
            server,
            draining,
            drain: settings.server.shutdown_drain,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port `/metrics` is served on, when `METRICS_ADDR` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// This server's password-hashing budget, as its metrics see it.
    pub fn hashing(&self) -> &Arc<Hashing> {
        &self.hashing
    }

    /// Serves until SIGTERM or SIGINT, then shuts down without failing a request:
    ///
    /// 1. readiness answers 503 from then on, so a load balancer stops sending;
    /// 2. on SIGTERM (an orchestrator's stop), the server keeps serving for
    ///    `SHUTDOWN_DRAIN_SECS` while the balancer notices; SIGINT (Ctrl-C at a
    ///    terminal) or a second signal skips the wait;
    /// 3. it stops accepting and lets in-flight requests finish (up to
    ///    `SHUTDOWN_TIMEOUT_SECS`), then closes the pool.
    ///
    /// actix's own signal handling was rejected because it stops accepting at once: a
    /// balancer still routing to the instance would get refused connections.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        tokio::spawn(stop_on_signal(handle, self.draining.clone(), self.drain));
        self.server.await?;
        tracing::info!("server stopped");
        self.db.close().await.ok();
        Ok(())
    }
}

async fn stop_on_signal(server: ServerHandle, draining: Arc<AtomicBool>, drain: Duration) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        tracing::error!("cannot listen for SIGTERM and SIGINT; stop the process with SIGKILL");
        return;
    };
    let terminated = tokio::select! {
        _ = term.recv() => true,
        _ = int.recv() => false,
    };
    draining.store(true, Ordering::Release);
    if terminated && !drain.is_zero() {
        tracing::info!(
            drain_secs = drain.as_secs_f64(),
            "SIGTERM received: reporting not ready and serving on while the load balancer moves away"
        );
        tokio::select! {
            _ = tokio::time::sleep(drain) => {}
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    }
    tracing::info!("shutting down: no new connections; finishing the requests in flight");
    server.stop(true).await;
}

/// True when no author exists yet: a brand-new database, which the development log
/// points at the demo data. An error reads as "not empty": this is only a hint.
async fn catalogue_is_empty(db: &DatabaseConnection) -> bool {
    use sea_orm::EntityTrait;
    entity::Author::find()
        .one(db)
        .await
        .is_ok_and(|author| author.is_none())
}

/// How often each replica's health and lag are checked.
const REPLICA_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// One lazily connected pool per replica (a replica that is down must not stop
/// start-up), with the primary's session settings and statement counting.
pub(crate) async fn connect_replicas(
    settings: &Settings,
    primary: DatabaseConnection,
) -> Result<Databases, StartupError> {
    let mut replicas = Vec::new();
    for replica in &settings.replicas.pools {
        let mut db = service::database::connect_lazily(replica)
            .await
            .map_err(|source| StartupError::Database {
                url: replica.url.clone(),
                source,
            })?;
        service::database::count_statements(&mut db);
        tracing::info!(replica = %replica.url.location(), "read replica configured");
        replicas.push(Replica::new(replica.url.location(), db));
    }
    Ok(Databases::new(primary, replicas, settings.replicas.max_lag).with_primary_url(&settings.database.pool.url))
}

/// How often a multi-host `DATABASE_URL`'s primary is checked: with the manager's own
/// promotion taking about a second, writes find the new primary within two or so.
const PRIMARY_CHECK_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// How often Redis is probed: how soon an outage, and a return, are noticed.
const REDIS_PROBE_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// The shared Redis, when `REDIS_URL` is set. A Redis that is down at start-up does
/// not stop it: the probe keeps trying, and until it succeeds everything runs locally.
async fn connect_redis(settings: &Settings) -> Result<Option<Arc<RedisLink>>, StartupError> {
    let Some(url) = &settings.cache.redis_url else {
        return Ok(None);
    };
    let link = Arc::new(RedisLink::new(url.expose(), settings.cache.redis_timeout)?);
    if let Err(cause) = link.probe(service::cache::recover_after_outage).await {
        tracing::warn!(
            redis = %link.location(),
            cause,
            "Redis is not usable yet: reads skip the cache and login throttling is per instance until it is"
        );
    }
    tokio::spawn({
        let link = link.clone();
        async move {
            link.watch(REDIS_PROBE_EVERY, service::cache::recover_after_outage)
                .await
        }
    });
    Ok(Some(link))
}

/// Applies pending migrations and stores `AUDIT_RETENTION_MONTHS` with the audit log's
/// maintenance function, as the schema owner when `DATABASE_MIGRATION_URL` is set. It
/// uses a connection of its own, with the migration timeouts (`migration::session`):
/// the API's statement timeout is a request's budget, too short for a migration.
/// The migrations this binary was built with, oldest first.
pub(crate) fn known_migrations() -> Vec<String> {
    Migrator::migrations().iter().map(|m| m.name().to_owned()).collect()
}

pub async fn migrate(settings: &Settings, db: &DatabaseConnection) -> Result<(), StartupError> {
    let months = settings.database.audit_retention_months;
    let retention = |err: service::ServiceError| {
        StartupError::Migration(format!(
            "storing AUDIT_RETENTION_MONTHS={months} needs the schema owner: {err}"
        ))
    };
    let url = settings
        .database
        .migration_url
        .as_ref()
        .unwrap_or(&settings.database.pool.url);
    // A second connection to an in-memory SQLite database would be another database.
    let in_memory = url.backend() == Some(sea_orm::DbBackend::Sqlite) && url.sqlite_file().is_none();
    let own = if in_memory {
        None
    } else {
        let connected = migration::session::connect(
            url.expose(),
            settings.database.pool.connect_timeout,
            settings.database.migration_timeouts,
        )
        .await
        .map_err(|source| StartupError::Database {
            url: url.clone(),
            source,
        })?;
        Some(connected)
    };
    let migrator = own.as_ref().unwrap_or(db);
    // During a rolling deploy the new release migrates first, and an instance of the
    // previous one may restart after that: it must serve on the newer schema (which
    // the expand/contract rules of docs/operations.md keep compatible), not refuse to
    // start because sea-orm-migration finds applied migrations it has no file for.
    let applied = service::readiness::applied_migrations(migrator)
        .await
        .unwrap_or_default();
    let newer = service::readiness::not_in(&applied, &known_migrations());
    if !newer.is_empty() {
        tracing::warn!(
            migrations = %newer.join(", "),
            "the schema is newer than this binary (a deploy in progress?): not migrating, serving on it"
        );
        if let Some(own) = own {
            own.close().await.ok();
        }
        return Ok(());
    }
    Migrator::up(migrator, None).await.map_err(|e| {
        // explain() says the owner must migrate; here, which setting names that role.
        let setting = match (
            migration::session::refused_for_privileges(&e),
            settings.database.migration_url.is_some(),
        ) {
            (false, _) => "",
            (true, true) => "; DATABASE_MIGRATION_URL must name the schema's owner",
            (true, false) => {
                "; set DATABASE_MIGRATION_URL to the schema owner's URL, or \
                 DATABASE_AUTO_MIGRATE=false and migrate as a separate step"
            }
        };
        StartupError::Migration(format!("{}{setting}", migration::session::explain(&e)))
    })?;
    service::audit::set_retention(migrator, months)
        .await
        .map_err(retention)?;
    if let Some(own) = own {
        own.close().await.ok();
    }
    tracing::info!("migrations are up to date");
    Ok(())
}

fn run(listener: TcpListener, ctx: AppContext, settings: &Settings) -> std::io::Result<Server> {
    let ctx = web::Data::new(ctx);
    let document = web::Data::new(crate::openapi::Document::new());
    let (json, path, query) = routes::extractor_config(settings.server.max_body_bytes);
    let server = HttpServer::new(move || {
        App::new()
            .into_utoipa_app()
            .configure(routes::configure)
            .into_app()
            .service(web::resource("/openapi.json").get(crate::openapi::document))
            .service(web::resource("/docs").get(crate::openapi::reference_index))
            .service(web::resource("/docs/{file:.*}").get(crate::openapi::reference))
            .app_data(ctx.clone())
            .app_data(document.clone())
            .app_data(json.clone())
            .app_data(path.clone())
            .app_data(query.clone())
            .default_service(web::to(crate::openapi::unrouted))
            .wrap(from_fn(middleware::statement_count))
            .wrap(from_fn(middleware::consistency_token))
            .wrap(from_fn(middleware::pinned_connections))
            .wrap(ErrorHandlers::new().default_handler(problem_for_bare_errors))
            .wrap(from_fn(middleware::cache_control))
            .wrap(NormalizePath::new(TrailingSlash::Trim))
            .wrap(from_fn(crate::metrics::http_metrics))
            .wrap(from_fn(crate::request_log::request_log))
    })
    .workers(settings.server.workers)
    .shutdown_timeout(settings.server.shutdown_timeout.as_secs())
    .disable_signals()
    .listen(listener)?
    .run();
    Ok(server)
}
