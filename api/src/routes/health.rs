//! Liveness and readiness probes. `live` never touches the database, so an
//! orchestrator does not restart a healthy process because the database blinked;
//! `ready` answers 503 while this instance cannot do its work — the database is
//! unreachable, its role cannot read the tables it serves, or the schema is behind the
//! binary (`service::readiness`) — taking it out of rotation until that is fixed.
//!
//! One exception: with the primary unreachable while a read replica is up, the
//! instance can still serve every read (signed-in ones too), so `ready` answers 200
//! with `status: degraded`. Failing it would take every instance out of rotation at
//! once — a full outage during a failover the replicas could have bridged.

use actix_web::{HttpResponse, get};
use serde::Serialize;
use utoipa::ToSchema;

use crate::context::Ctx;
use crate::problem::{ApiError, Problem, Reply};

routes!(live, ready);

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or on the readiness probe `degraded`: the primary is unreachable and
    /// reads are served by replicas while writes answer 503.
    pub status: &'static str,
    /// On the readiness probe: `ok`, or `primary unreachable` when degraded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database: Option<&'static str>,
    /// The primary's `host:port` when `DATABASE_URL` names several hosts and the pool
    /// follows whichever is writable (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary: Option<String>,
    /// Each read replica as last checked (readiness only, when replicas are configured).
    /// A replica that is down does not make the instance unready: reads go to the primary.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaHealth>,
}

#[derive(Serialize, ToSchema)]
pub struct ReplicaHealth {
    /// `host:port/database`.
    pub name: String,
    /// `up` or `down`.
    pub state: &'static str,
    /// WAL bytes the primary has written that the replica has not replayed.
    pub lag_bytes: u64,
    /// How far behind it is in time; 0 when caught up.
    pub lag_ms: u64,
    /// How long ago the check that measured this began; absent before the first.
    pub checked_ms_ago: Option<u64>,
}

/// Liveness probe
///
/// Answers while the process runs; never touches the database.
#[utoipa::path(operation_id = "check_liveness", tag = "health", responses((status = 200, body = Health, description = "The process is up")))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Health {
        status: "ok",
        database: None,
        primary: None,
        replicas: Vec::new(),
    })
}

/// Readiness probe
///
/// Whether this instance can serve: the database answers, its role can read every table, the schema is current. 503 takes it out of a load balancer's rotation.
#[utoipa::path(operation_id = "check_readiness", tag = "health",
    responses(
        (status = 200, body = Health, description = "The database answers, every served table is readable, the schema is current; or `degraded`: the primary is unreachable and replicas serve the reads"),
        (status = 503, body = Problem, content_type = "application/problem+json", description = "Not ready; `detail` says why"),
    ))]
#[get("/health/ready")]
pub async fn ready(ctx: Ctx) -> Reply {
    if ctx.draining.load(std::sync::atomic::Ordering::Acquire) {
        return Err(ApiError::NotReady("shutting down".into()));
    }
    // While the follower knows no host is writable, asking the pool would only wait
    // out the probe's timeout for a primary that is not there yet.
    let checked = if ctx.databases.follower().is_some_and(|f| f.lost()) {
        Err(service::readiness::NotReady::Unreachable)
    } else {
        service::readiness::check(ctx.primary_pool(), ctx.ready_timeout, &ctx.expected_migrations).await
    };
    let degraded = match checked {
        Ok(()) => false,
        Err(service::readiness::NotReady::Unreachable) if ctx.databases.any_replica_up() => {
            tracing::warn!("the primary is unreachable; ready but degraded: replicas serve reads, writes answer 503");
            true
        }
        Err(reason) => {
            tracing::warn!(%reason, "readiness check failed");
            return Err(ApiError::NotReady(reason.to_string()));
        }
    };
    Ok(HttpResponse::Ok().json(Health {
        status: if degraded { "degraded" } else { "ok" },
        database: Some(if degraded { "primary unreachable" } else { "ok" }),
        primary: ctx.databases.follower().map(|f| f.current().to_string()),
        replicas: ctx
            .databases
            .replicas
            .iter()
            .map(|replica| {
                let state = replica.state();
                ReplicaHealth {
                    name: replica.name.clone(),
                    state: if state.up { "up" } else { "down" },
                    lag_bytes: state.lag_bytes,
                    lag_ms: state.lag.as_millis() as u64,
                    checked_ms_ago: state.checked_at.map(|at| at.elapsed().as_millis() as u64),
                }
            })
            .collect(),
    }))
}
