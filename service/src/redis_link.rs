//! The one Redis connection of a process, shared by the cache and the login throttle,
//! and the one place that knows whether Redis is up.
//!
//! Redis is an accelerator here, never a dependency: when a call fails or outlasts its
//! timeout, the link is marked down, the outage is logged once and counted, and until
//! a probe finds Redis again every caller takes its local path at once (the database
//! for reads, the in-process throttle for logins) instead of waiting on a dead socket.
//!
//! While Redis was unreachable from here, writes made here could not invalidate
//! shared cache entries; they may still be in Redis (a restart reloads its snapshot;
//! a partition loses nothing). So after an outage the link runs the owner's recovery
//! step (the cache's epoch bump, which orphans every entry) before it reports Redis
//! up again: a missed invalidation cannot resurface. A process whose first probe
//! finds Redis has missed nothing and skips that step. Every instance probes on its
//! own, so each one that saw the outage flushes as it returns. The bound that is
//! left: when only some instances lose Redis (a partition; a restart breaks every
//! connection), the others serve what those missed until they reach Redis again and
//! flush, at most one cache TTL.
//!
//! The connection is `redis`'s `ConnectionManager`: multiplexed (one socket carries
//! every concurrent call) and reconnecting by itself. A pool was rejected: Redis
//! answers in microseconds and pipelines, so one connection is not the bottleneck.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, FromRedisValue, RedisResult};

pub struct RedisLink {
    conn: ConnectionManager,
    /// `host:port`, never the URL: it may carry a password.
    location: String,
    timeout: Duration,
    up: AtomicBool,
    /// Set when an outage begins; cleared once the recovery step has run.
    missed: AtomicBool,
}

/// Why a call did not reach Redis: the caller takes its local path either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    /// Known to be down: not even tried.
    Down,
    /// Tried, and failed or timed out just now.
    Failed,
}

#[derive(Debug, thiserror::Error)]
#[error("REDIS_URL is not a usable Redis URL (redis://[:password@]host[:port][/db])")]
pub struct BadRedisUrl;

impl RedisLink {
    /// Parses `url` and prepares a lazy connection: nothing is dialled until the first
    /// call, so a Redis that is down does not stop start-up.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, BadRedisUrl> {
        let client = Client::open(url).map_err(|_| BadRedisUrl)?;
        let location = match &client.get_connection_info().addr() {
            redis::ConnectionAddr::Tcp(host, port) => format!("{host}:{port}"),
            other => other.to_string(),
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(timeout);
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|_| BadRedisUrl)?;
        Ok(Self {
            conn,
            location,
            timeout,
            up: AtomicBool::new(false),
            missed: AtomicBool::new(false),
        })
    }

    /// `host:port`, safe to log.
    pub fn location(&self) -> &str {
        &self.location
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Runs one call on the shared connection when Redis is up. A call that fails or
    /// times out marks Redis down.
    pub async fn call<T, F>(&self, what: &'static str, call: impl FnOnce(ConnectionManager) -> F) -> Result<T, Skipped>
    where
        F: Future<Output = RedisResult<T>>,
    {
        if !self.is_up() {
            return Err(Skipped::Down);
        }
        match tokio::time::timeout(self.timeout, call(self.conn.clone())).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => {
                self.mark_down(what, &err.to_string());
                Err(Skipped::Failed)
            }
            Err(_) => {
                self.mark_down(what, "timed out");
                Err(Skipped::Failed)
            }
        }
    }

    fn mark_down(&self, what: &'static str, cause: &str) {
        metrics::counter!("bookworm_redis_errors_total", "redis" => self.location.clone(), "call" => what).increment(1);
        self.missed.store(true, Ordering::Release);
        if self.up.swap(false, Ordering::AcqRel) {
            metrics::counter!("bookworm_redis_outages_total", "redis" => self.location.clone()).increment(1);
            metrics::gauge!("bookworm_redis_up", "redis" => self.location.clone()).set(0.0);
            tracing::warn!(
                redis = %self.location,
                call = what,
                cause,
                "Redis is unreachable: reads skip the cache and login throttling is per instance until it returns"
            );
        }
    }

    /// Checks Redis once. If it answers and this process saw an outage, runs
    /// `recover` first; the link is up only when both succeed. `Err` says why not.
    pub async fn probe<R, F>(&self, recover: R) -> Result<(), String>
    where
        R: FnOnce(ConnectionManager) -> F,
        F: Future<Output = RedisResult<()>>,
    {
        let recovering = self.missed.swap(false, Ordering::AcqRel);
        let ping = async {
            let mut conn = self.conn.clone();
            let _: String = redis::cmd("PING").query_async(&mut conn).await?;
            if recovering {
                recover(self.conn.clone()).await?;
            }
            RedisResult::Ok(())
        };
        match tokio::time::timeout(self.timeout, ping).await {
            // A call failed while the recovery step ran: it may have missed an
            // invalidation too, so the next probe recovers again.
            Ok(Ok(())) if self.missed.load(Ordering::Acquire) => Err("a call failed during recovery".into()),
            Ok(Ok(())) => {
                let was_up = self.up.load(Ordering::Acquire);
                let recovered = recovering;
                self.up.store(true, Ordering::Release);
                metrics::gauge!("bookworm_redis_up", "redis" => self.location.clone()).set(1.0);
                if !was_up {
                    if recovered {
                        tracing::info!(redis = %self.location, "Redis is back; the shared cache starts empty");
                    } else {
                        tracing::info!(redis = %self.location, "connected to Redis");
                    }
                }
                Ok(())
            }
            Ok(Err(err)) => {
                let cause = err.to_string();
                self.mark_down("probe", &cause);
                Err(cause)
            }
            Err(_) => {
                self.mark_down("probe", "timed out");
                Err("timed out".into())
            }
        }
    }

    /// Probes every `every` for as long as the process runs, so an outage is noticed
    /// (and recovered from) even by an instance that serves no traffic meanwhile.
    pub async fn watch<R, F>(&self, every: Duration, recover: R)
    where
        R: Fn(ConnectionManager) -> F,
        F: Future<Output = RedisResult<()>>,
    {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let _ = self.probe(&recover).await;
        }
    }
}

/// Runs a prepared script, the form every caller uses.
pub async fn run_script<T: FromRedisValue>(
    script: &redis::Script,
    keys: &[String],
    args: &[String],
    mut conn: ConnectionManager,
) -> RedisResult<T> {
    let mut invocation = script.prepare_invoke();
    for key in keys {
        invocation.key(key);
    }
    for arg in args {
        invocation.arg(arg);
    }
    invocation.invoke_async(&mut conn).await
}
