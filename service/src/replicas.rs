//! Where a read runs: on a PostgreSQL read replica when one can answer it correctly,
//! else on the primary. This module is the one place that decides.
//!
//! A replica is used for a read only when it is up, no more than `max_lag` behind, and,
//! if the client sent a consistency token (the primary's WAL position after its last
//! write), has replayed at least that position. So a client always sees its own
//! writes, and a read without a token is at most `max_lag` stale. A dead or lagging
//! replica costs a trip to the primary, never a failed request: a replica that fails
//! mid-read is marked down and the read runs again on the primary.
//!
//! Lag is measured from WAL positions, as PostgreSQL's own monitoring does: a replica
//! that has replayed everything the primary has written is not lagging, however long
//! ago its last transaction was. `now() - pg_last_xact_replay_timestamp()` alone was
//! rejected: it keeps growing while the primary is idle. A time window after each write
//! (Rails' `delay`) was rejected too: it guesses, where a WAL position knows.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};

use crate::ServiceError;
use crate::database::primary::PrimaryFollower;
use crate::database::{Pinned, Spare};
use crate::error::Outage;
pub use crate::lsn::Lsn;

/// Why a read went where it went; a metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Replica,
    PrimaryNoReplica,
    PrimaryTokenAhead,
    PrimaryLagging,
    PrimaryReplicaDown,
    /// The primary was unreachable, so a read that belongs there ran on a replica.
    ReplicaPrimaryDown,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Replica => "replica",
            Route::PrimaryNoReplica => "primary-no-replica",
            Route::PrimaryTokenAhead => "primary-token-ahead",
            Route::PrimaryLagging => "primary-lagging",
            Route::PrimaryReplicaDown => "primary-replica-down",
            Route::ReplicaPrimaryDown => "replica-primary-down",
        }
    }
}

/// What the last health check saw of a replica.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicaState {
    pub up: bool,
    pub replay_lsn: Option<Lsn>,
    /// WAL the primary has written that the replica has not replayed.
    pub lag_bytes: u64,
    /// Zero when caught up; else time since the last transaction it replayed.
    pub lag: Duration,
    /// When the check that measured this began: before it read the primary's position,
    /// so the state says nothing of writes committed after this instant.
    pub checked_at: Option<Instant>,
}

impl ReplicaState {
    const UNKNOWN: ReplicaState = ReplicaState {
        up: false,
        replay_lsn: None,
        lag_bytes: 0,
        lag: Duration::ZERO,
        checked_at: None,
    };
}

pub struct Replica {
    /// `host:port/database`, for logs, metrics and the readiness body.
    pub name: String,
    pub db: DatabaseConnection,
    state: Mutex<ReplicaState>,
    /// Connections of its pool that requests finished with.
    spare: Spare,
}

impl Replica {
    /// The replica's pool, as the request's pinned connection to it.
    fn pinned(&self) -> Pinned<'_> {
        Pinned::new(&self.db, &self.spare)
    }

    pub fn new(name: String, db: DatabaseConnection) -> Self {
        Self {
            spare: Spare::for_pool(&db),
            name,
            db,
            state: Mutex::new(ReplicaState::UNKNOWN),
        }
    }

    pub fn state(&self) -> ReplicaState {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Routing and the metrics change together, so a scrape never contradicts routing.
    fn set_state(&self, state: ReplicaState) {
        let mut current = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *current = state;
        crate::metrics::replica_state(&self.name, state.up, state.lag_bytes, state.lag);
    }

    fn mark_down(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.up {
            tracing::warn!(replica = %self.name, "replica failed a read; using the primary until it is back");
        }
        state.up = false;
        crate::metrics::replica_state(&self.name, state.up, state.lag_bytes, state.lag);
    }
}

/// The primary and its read replicas.
pub struct Databases {
    pub primary: DatabaseConnection,
    /// Connections of the primary's pool that requests finished with.
    primary_spare: Spare,
    pub replicas: Vec<Replica>,
    pub max_lag: Duration,
    next: AtomicUsize,
    /// Where the primary is: followed across failovers, or fixed.
    primary_host: PrimaryHost,
}

enum PrimaryHost {
    Fixed(String),
    Followed(Arc<PrimaryFollower>),
}

impl Databases {
    pub fn new(primary: DatabaseConnection, replicas: Vec<Replica>, max_lag: Duration) -> Self {
        Self {
            primary_spare: Spare::for_pool(&primary),
            primary,
            replicas,
            max_lag,
            next: AtomicUsize::new(0),
            primary_host: PrimaryHost::Fixed(String::new()),
        }
    }

    /// The primary is the single host of `url`: a replica URL naming that host is the
    /// primary itself, and may serve reads as such.
    pub fn with_primary_url(mut self, url: &crate::database::DatabaseUrl) -> Self {
        let location = url.location();
        self.primary_host = PrimaryHost::Fixed(location.split('/').next().unwrap_or_default().to_owned());
        self
    }

    /// The primary moves with `follower` across failovers.
    pub fn with_follower(mut self, follower: Arc<PrimaryFollower>) -> Self {
        follower.on_move_discard(self.primary_spare.clone());
        self.primary_host = PrimaryHost::Followed(follower);
        self
    }

    /// The follower, when the primary is a multi-host URL's.
    pub fn follower(&self) -> Option<&Arc<PrimaryFollower>> {
        match &self.primary_host {
            PrimaryHost::Followed(follower) => Some(follower),
            PrimaryHost::Fixed(_) => None,
        }
    }

    /// Whether the replica named `name` (`host:port/database`), found out of recovery,
    /// is a primary the pool writes to: the fixed primary, or any node of a followed
    /// failover pair — the manager promotes one only after fencing the other, and the
    /// follower moves the pool to it within a check or two.
    fn is_primary(&self, name: &str) -> bool {
        let host = name.split('/').next().unwrap_or_default();
        match &self.primary_host {
            PrimaryHost::Fixed(primary) => !primary.is_empty() && primary == host,
            PrimaryHost::Followed(follower) => follower.is_member(host),
        }
    }

    /// Runs `work` on the primary; if the primary is unreachable, on a replica that is
    /// up (see `on_a_replica`). For the reads that must go on while the primary is
    /// gone, such as checking a bearer token.
    pub async fn primary_or_any_replica<T>(
        &self,
        work: impl AsyncFn(&Pinned<'_>) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        self.primary_else_a_replica(None, &work).await
    }

    /// The primary, as the request's pinned connection to it.
    pub fn primary_pinned(&self) -> Pinned<'_> {
        Pinned::new(&self.primary, &self.primary_spare)
    }

    /// Whether some replica can serve reads now.
    pub fn any_replica_up(&self) -> bool {
        self.replicas.iter().any(|r| r.state().up)
    }

    /// Picks where a read may run: a replica's index, or `None` for the primary.
    pub fn route(&self, token: Option<Lsn>) -> (Option<usize>, Route) {
        if self.replicas.is_empty() {
            return (None, Route::PrimaryNoReplica);
        }
        let states: Vec<ReplicaState> = self.replicas.iter().map(Replica::state).collect();
        let up: Vec<usize> = (0..states.len()).filter(|i| states[*i].up).collect();
        if up.is_empty() {
            return (None, Route::PrimaryReplicaDown);
        }
        let fresh: Vec<usize> = up.into_iter().filter(|i| states[*i].lag <= self.max_lag).collect();
        if fresh.is_empty() {
            return (None, Route::PrimaryLagging);
        }
        let able: Vec<usize> = match token {
            Some(token) => fresh
                .into_iter()
                .filter(|i| states[*i].replay_lsn.is_some_and(|lsn| lsn >= token))
                .collect(),
            None => fresh,
        };
        if able.is_empty() {
            return (None, Route::PrimaryTokenAhead);
        }
        let turn = self.next.fetch_add(1, Ordering::Relaxed);
        (Some(able[turn % able.len()]), Route::Replica)
    }

    /// Runs a read where [`route`](Self::route) says. If the replica fails with an
    /// outage, it is marked down and the read runs again on the primary; if the
    /// primary is unreachable (a failover in progress), on another replica that is up
    /// and has replayed the client's token. The request's connections go back to their
    /// pools as soon as `work` is done, not when the response has been rendered
    /// ([`give_back_connections`](crate::database::give_back_connections)).
    pub async fn read<T>(
        &self,
        token: Option<Lsn>,
        work: impl AsyncFn(&Pinned<'_>) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let result = self.routed(token, work).await;
        crate::database::give_back_connections();
        result
    }

    async fn routed<T>(
        &self,
        token: Option<Lsn>,
        work: impl AsyncFn(&Pinned<'_>) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let (replica, route) = self.route(token);
        crate::metrics::read_routed(route.as_str());
        if let Some(index) = replica {
            let replica = &self.replicas[index];
            match work(&replica.pinned()).await {
                Err(ServiceError::Unavailable { .. }) => {
                    replica.mark_down();
                    crate::metrics::read_routed(Route::PrimaryReplicaDown.as_str());
                }
                other => return other,
            }
        }
        self.primary_else_a_replica(token, &work).await
    }

    /// `work` on the primary; while it is unreachable, on a replica that has replayed
    /// `token` (see [`on_a_replica`](Self::on_a_replica)).
    async fn primary_else_a_replica<T>(
        &self,
        token: Option<Lsn>,
        work: &impl AsyncFn(&Pinned<'_>) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        match self.on_primary(work).await {
            Err(ServiceError::Unavailable {
                reason: Outage::Unreachable,
                source,
            }) => self.on_a_replica(token, work, source).await,
            other => other,
        }
    }

    /// `work` on the primary, unless the follower knows there is none to reach now:
    /// then at once the outage the pool would report after its acquire timeout.
    async fn on_primary<T>(
        &self,
        work: &impl AsyncFn(&Pinned<'_>) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        if self.follower().is_some_and(|f| f.lost()) {
            return Err(ServiceError::Unavailable {
                reason: Outage::Unreachable,
                source: sea_orm::DbErr::Conn(sea_orm::RuntimeErr::Internal(
                    "no host of DATABASE_URL is writable (a failover is in progress)".into(),
                )),
            });
        }
        work(&Pinned::new(&self.primary, &self.primary_spare)).await
    }

    /// The primary is unreachable: `work` on each replica in turn that has replayed
    /// `token`, however far behind otherwise (they were caught up with the primary
    /// when it went away, to within what replication had sent); a replica that fails
    /// too is marked down.
    async fn on_a_replica<T>(
        &self,
        token: Option<Lsn>,
        work: &impl AsyncFn(&Pinned<'_>) -> Result<T, ServiceError>,
        source: sea_orm::DbErr,
    ) -> Result<T, ServiceError> {
        // Those last seen up first; then the rest, whose state may be a moment old (a
        // standby restarting while the manager promotes it): failing the read is the
        // only alternative.
        let (up, down): (Vec<&Replica>, Vec<&Replica>) = self.replicas.iter().partition(|replica| replica.state().up);
        for replica in up.into_iter().chain(down) {
            if let Some(token) = token
                && replica.state().replay_lsn.is_none_or(|lsn| lsn < token)
                && !self.replays_soon(replica, token).await
            {
                continue;
            }
            crate::metrics::read_routed(Route::ReplicaPrimaryDown.as_str());
            match work(&replica.pinned()).await {
                Err(ServiceError::Unavailable { .. }) => replica.mark_down(),
                other => return other,
            }
        }
        Err(ServiceError::Unavailable {
            reason: Outage::Unreachable,
            source,
        })
    }

    /// The primary's current WAL position: at or after every write committed so far.
    /// `None` on SQLite, which has no replicas.
    pub async fn primary_position(&self) -> Result<Option<Lsn>, ServiceError> {
        if self.primary.get_database_backend() != DbBackend::Postgres {
            return Ok(None);
        }
        let row = Pinned::new(&self.primary, &self.primary_spare)
            .query_one_raw(Statement::from_string(
                DbBackend::Postgres,
                "SELECT pg_current_wal_lsn()::text",
            ))
            .await?;
        Ok(row
            .and_then(|r| r.try_get_by_index::<String>(0).ok())
            .and_then(|text| text.parse().ok()))
    }

    /// Whether `replica` has replayed `token`, or does within [`REPLAY_WAIT`]: checked
    /// again every 20 ms, since the state the periodic check recorded may be a check
    /// interval old. Not recorded: without the primary's position, these checks cannot
    /// say how far behind the replica is.
    async fn replays_soon(&self, replica: &Replica, token: Lsn) -> bool {
        let deadline = Instant::now() + REPLAY_WAIT;
        loop {
            let now = check(replica, None, self.is_primary(&replica.name), Instant::now()).await;
            if now.replay_lsn.is_some_and(|lsn| lsn >= token) {
                return true;
            }
            if !now.up || Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Checks every replica once: reachable, replaying, and how far behind.
    pub async fn check_replicas(&self) {
        let began = Instant::now();
        // With no writable host known, the pool would make this wait out its timeout.
        let primary = if self.follower().is_some_and(|f| f.lost()) {
            None
        } else {
            match self.primary_position().await {
                Ok(position) => position,
                Err(err) => {
                    tracing::debug!(error = %err, "cannot read the primary's WAL position");
                    None
                }
            }
        };
        for replica in &self.replicas {
            let before = replica.state();
            let now = check(replica, primary, self.is_primary(&replica.name), began).await;
            match (before.up, now.up) {
                (false, true) => tracing::info!(replica = %replica.name, "replica is serving reads"),
                (true, false) => tracing::warn!(replica = %replica.name, "replica is down; reads go to the primary"),
                _ => {}
            }
            replica.set_state(now);
        }
    }
}

/// How long a read waits, while the primary is unreachable, for a replica to replay
/// what its client last saw. A synchronous standby has already received every
/// acknowledged commit; replaying it takes milliseconds, and the replica state the
/// periodic check recorded is up to a check interval old.
const REPLAY_WAIT: Duration = Duration::from_secs(1);

/// `is_primary`: the node is the primary the pool writes to now (a replica list may
/// name every node of a failover pair), so it serves reads as the primary would.
async fn check(replica: &Replica, primary: Option<Lsn>, is_primary: bool, began: Instant) -> ReplicaState {
    let sql = "SELECT pg_is_in_recovery(), \
               CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() ELSE pg_current_wal_lsn() END::text, \
               coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)::float8";
    let row = tokio::time::timeout(
        Duration::from_secs(2),
        replica
            .db
            .query_one_raw(Statement::from_string(DbBackend::Postgres, sql)),
    )
    .await;
    let down = ReplicaState {
        checked_at: Some(began),
        ..ReplicaState::UNKNOWN
    };
    let Ok(Ok(Some(row))) = row else {
        return down;
    };
    let in_recovery: bool = row.try_get_by_index(0).unwrap_or(false);
    let replay: Option<Lsn> = row
        .try_get_by_index::<Option<String>>(1)
        .ok()
        .flatten()
        .and_then(|t| t.parse().ok());
    let since_replay: f64 = row.try_get_by_index(2).unwrap_or(0.0);
    if !in_recovery {
        if is_primary {
            return ReplicaState {
                up: replay.is_some(),
                replay_lsn: replay,
                lag_bytes: 0,
                lag: Duration::ZERO,
                checked_at: Some(began),
            };
        }
        // A primary that is not the one written to: a second primary (a split brain,
        // or a promotion the pool has not followed yet). Never read from it.
        tracing::debug!(replica = %replica.name, "the replica is a primary other than the one written to; not routing reads to it");
        return down;
    }
    let lag_bytes = match (primary, replay) {
        (Some(p), Some(r)) => p.0.saturating_sub(r.0),
        _ => 0,
    };
    ReplicaState {
        up: replay.is_some(),
        replay_lsn: replay,
        lag_bytes,
        lag: if lag_bytes == 0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(since_replay.max(0.0))
        },
        checked_at: Some(began),
    }
}

/// Checks the replicas every `every`, for as long as the process runs.
pub async fn watch(databases: std::sync::Arc<Databases>, every: Duration) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        databases.check_replicas().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_parse_and_print_as_postgresql_writes_them() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn.0, 0x16_B374_D848);
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert!("0/3000148".parse::<Lsn>().unwrap() < "1/0".parse::<Lsn>().unwrap());
        for bad in ["", "16", "/1", "1/", "x/1", "1/2/3", "123456789/0", "1/ 2"] {
            assert!(bad.parse::<Lsn>().is_err(), "{bad:?}");
        }
    }
}
