//! Following the primary across a failover. `DATABASE_URL` may name several hosts in
//! libpq's multi-host form (`postgres://app@h1:5432,h2:5432/bookworm?target_session_attrs=read-write`),
//! as a failover pair under pg_auto_failover is addressed. sqlx connects to one host
//! only (its issue 179), so Bookworm does what libpq does: it connects the pool to the
//! first host that is writable, and a [`PrimaryFollower`] checks twice a second that
//! it still is. When the pool's host stops answering, or answers as a standby, every
//! host is probed again and the pool is pointed at the one that is now writable
//! (`Pool::set_connect_options`); connections made before the move are discarded as
//! they come out of the pool (a `before_acquire` check on their age), so requests move
//! with it. Pool size, session settings and the statement counter belong to the pool
//! and carry over; nothing restarts.
//!
//! While no host is writable (the manager is promoting, or switching over), a request
//! that takes an idle connection from the pool waits (in the same `before_acquire`
//! check) for the follower to find the new primary, within the pool's acquire timeout
//! (`DATABASE_CONNECT_TIMEOUT_MS`), instead of failing at once on the old one: a
//! switchover shorter than that timeout costs most writes a delay, not a 503. A
//! request that finds no idle connection opens one to the old host and fails there as
//! before. Reads do not wait; they go to the replicas.
//!
//! Rejected: a proxy in front (HAProxy asking each node's role) — a moving part more in
//! every deployment when the manager already knows the primary; and re-creating the
//! pool on a move — every holder of the old `DatabaseConnection` (the application
//! context, the statement counter, the readiness probe) would need to learn of the new
//! one. A single-host URL is used exactly as before, without a follower.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
use sea_orm::sqlx::{ConnectOptions as _, Connection as _, Row as _};
use sea_orm::{Database, DatabaseConnection, DbBackend, DbErr};
use tokio::sync::Notify;

use super::{DatabaseUrl, PoolSettings};

/// One `host:port` of a multi-host URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    pub name: String,
    pub port: u16,
}

impl std::fmt::Display for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.name.contains(':') {
            write!(f, "[{}]:{}", self.name, self.port)
        } else {
            write!(f, "{}:{}", self.name, self.port)
        }
    }
}

/// What `target_session_attrs` asks of the host the pool uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `read-write`: a host that is not in recovery and whose sessions are not
    /// read-only by default (a primary being demoted is made read-only first).
    ReadWrite,
    /// `primary`: a host that is not in recovery.
    Primary,
    /// `any`: the first host that answers.
    Any,
}

/// The hosts of a PostgreSQL URL and what it asks of them. Errors name what is wrong.
pub fn parse_hosts(url: &DatabaseUrl) -> Result<(Vec<Host>, Option<Target>), String> {
    let raw = url.expose();
    let Some((_, rest)) = raw.split_once("://") else {
        return Err("not a URL".into());
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let hostlist = authority.rsplit_once('@').map_or(authority, |(_, hosts)| hosts);
    let mut hosts = Vec::new();
    for part in hostlist.split(',') {
        let (name, port) = if let Some(bracketed) = part.strip_prefix('[') {
            let (name, after) = bracketed.split_once(']').ok_or("an IPv6 host lacks its ]")?;
            (name, after.strip_prefix(':'))
        } else {
            match part.rsplit_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (part, None),
            }
        };
        if name.is_empty() {
            return Err(format!("an empty host in {hostlist:?}"));
        }
        let port = match port {
            Some(port) => port.parse().map_err(|_| format!("port {port:?} is not a number"))?,
            None => 5432,
        };
        hosts.push(Host {
            name: name.to_owned(),
            port,
        });
    }
    let query = rest.split_once('?').map_or("", |(_, query)| query);
    let target = query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == "target_session_attrs")
        .map(|(_, value)| match value {
            "read-write" => Ok(Target::ReadWrite),
            "primary" => Ok(Target::Primary),
            "any" => Ok(Target::Any),
            other => Err(format!(
                "target_session_attrs={other} is not for DATABASE_URL, which writes: use read-write, primary or any (replicas go in DATABASE_REPLICA_URLS)"
            )),
        })
        .transpose()?;
    Ok((hosts, target))
}

/// `url` pointed at `host` alone, without `target_session_attrs` (which sqlx does not know).
pub fn for_host(url: &DatabaseUrl, host: &Host) -> DatabaseUrl {
    let raw = url.expose();
    let (scheme, rest) = raw.split_once("://").unwrap_or(("postgres", raw));
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let userinfo = authority.rsplit_once('@').map(|(user, _)| format!("{user}@"));
    let (path, query) = tail.split_once('?').unwrap_or((tail, ""));
    let query: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty() && !pair.starts_with("target_session_attrs="))
        .collect();
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{}", query.join("&"))
    };
    DatabaseUrl::new(format!(
        "{scheme}://{}{host}{path}{query}",
        userinfo.unwrap_or_default()
    ))
}

/// Keeps a pool on the writable host of a multi-host URL; see the module docs.
pub struct PrimaryFollower {
    hosts: Vec<Host>,
    target: Target,
    timeout: Duration,
    pool: DatabaseConnection,
    current: AtomicUsize,
    /// What the pool's `before_acquire` check reads, shared with it.
    shared: std::sync::Arc<Shared>,
    /// Kept connections to discard when the pool moves.
    spares: Mutex<Vec<super::Spare>>,
}

/// The follower's state that the pool's `before_acquire` check reads.
struct Shared {
    /// Connections opened before this instant belong to a former primary.
    moved_at: Mutex<Instant>,
    /// The last check found no host fit to write to: reads need not try the primary.
    lost: AtomicBool,
    /// Woken when a check finds a host fit to write to again.
    found: Notify,
}

impl Shared {
    /// Returns once a check has found a host to write to; the pool's acquire timeout
    /// bounds the wait.
    async fn wait_while_lost(&self) {
        while self.lost.load(Ordering::SeqCst) {
            let notified = self.found.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.lost.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

/// Opens the primary's pool. For a multi-host URL (or one with `target_session_attrs`)
/// the pool goes to the first host that fits, and the follower that keeps it there is
/// returned too; for a single host it is [`super::connect`].
pub async fn connect_following(
    settings: &PoolSettings,
) -> Result<(DatabaseConnection, Option<std::sync::Arc<PrimaryFollower>>), DbErr> {
    if settings.url.backend() != Some(DbBackend::Postgres) {
        return Ok((super::connect(settings).await?, None));
    }
    let (hosts, target) = parse_hosts(&settings.url).map_err(|e| DbErr::Custom(format!("DATABASE_URL: {e}")))?;
    if hosts.len() == 1 && target.is_none() {
        return Ok((super::connect(settings).await?, None));
    }
    let target = target.unwrap_or(Target::ReadWrite);
    let first = for_host(&settings.url, &hosts[0]);
    let base: PgConnectOptions = first
        .expose()
        .parse()
        .map_err(|e| DbErr::Custom(format!("DATABASE_URL: {e}")))?;
    let found = find(&base, &hosts, target, settings.connect_timeout)
        .await
        .ok_or_else(|| {
            DbErr::Conn(sea_orm::RuntimeErr::Internal(format!(
                "no host of {} is {}",
                settings.url,
                match target {
                    Target::ReadWrite | Target::Primary => "writable",
                    Target::Any => "reachable",
                }
            )))
        })?;
    let shared = std::sync::Arc::new(Shared {
        moved_at: Mutex::new(Instant::now()),
        lost: AtomicBool::new(false),
        found: Notify::new(),
    });
    let on_found = PoolSettings {
        url: for_host(&settings.url, &hosts[found]),
        ..settings.clone()
    };
    let mut options = on_found.connect_options();
    let checked = shared.clone();
    options.map_sqlx_postgres_before_acquire(move |_, meta| {
        let shared = checked.clone();
        let opened = Instant::now().checked_sub(meta.age);
        Box::pin(async move {
            shared.wait_while_lost().await;
            let moved = *shared.moved_at.lock().unwrap_or_else(|e| e.into_inner());
            Ok(opened.is_none_or(|opened| opened >= moved))
        })
    });
    let pool = Database::connect(options).await?;
    let follower = PrimaryFollower {
        hosts,
        target,
        timeout: settings.connect_timeout,
        pool: pool.clone(),
        current: AtomicUsize::new(found),
        shared,
        spares: Mutex::default(),
    };
    follower.publish();
    tracing::info!(primary = %follower.current(), "the database pool follows the primary of a multi-host DATABASE_URL");
    Ok((pool, Some(std::sync::Arc::new(follower))))
}

/// The index of the first host that fits `target`, probing in order.
async fn find(base: &PgConnectOptions, hosts: &[Host], target: Target, timeout: Duration) -> Option<usize> {
    for (index, host) in hosts.iter().enumerate() {
        if probe(base, host, timeout).await.is_some_and(|role| role.fits(target)) {
            return Some(index);
        }
    }
    None
}

/// What a probe learns of a host.
#[derive(Debug, Clone, Copy)]
struct Role {
    in_recovery: bool,
    read_only: bool,
}

impl Role {
    /// libpq's rules for `target_session_attrs`.
    fn fits(self, target: Target) -> bool {
        match target {
            Target::ReadWrite => !self.in_recovery && !self.read_only,
            Target::Primary => !self.in_recovery,
            Target::Any => true,
        }
    }
}

/// What `host` is, on a connection of its own; `None` if it does not answer.
async fn probe(base: &PgConnectOptions, host: &Host, timeout: Duration) -> Option<Role> {
    let options = base
        .clone()
        .host(&host.name)
        .port(host.port)
        .disable_statement_logging();
    let asked = async {
        let mut conn = PgConnection::connect_with(&options).await.ok()?;
        let row = sea_orm::sqlx::query("SELECT pg_is_in_recovery(), current_setting('transaction_read_only') = 'on'")
            .fetch_one(&mut conn)
            .await
            .ok()?;
        let _ = conn.close().await;
        Some(Role {
            in_recovery: row.try_get(0).ok()?,
            read_only: row.try_get(1).ok()?,
        })
    };
    tokio::time::timeout(timeout, asked).await.ok().flatten()
}

impl PrimaryFollower {
    /// Discards what `spare` keeps whenever the pool loses its primary or moves to
    /// another host.
    pub fn on_move_discard(&self, spare: super::Spare) {
        self.spares.lock().unwrap_or_else(|e| e.into_inner()).push(spare);
    }

    /// The host the pool is on now.
    pub fn current(&self) -> &Host {
        &self.hosts[self.current.load(Ordering::SeqCst)]
    }

    /// Whether the last check found no host to write to (a failover in progress).
    pub fn lost(&self) -> bool {
        self.shared.lost.load(Ordering::SeqCst)
    }

    /// Whether `host:port` is one of the URL's hosts: a node of the failover pair.
    pub fn is_member(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.to_string() == host)
    }

    /// Checks every `every`, for as long as the process runs.
    pub async fn follow(self: std::sync::Arc<Self>, every: Duration) {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            self.check().await;
        }
    }

    /// One check: is the pool's host still what the URL asks for? If not, find the
    /// host that is and move the pool there. The check is a connection of its own,
    /// not one from the pool: with the host gone, the pool would retry connecting for
    /// its whole acquire timeout before saying so.
    pub async fn check(&self) {
        let pg_pool = self.pool.get_postgres_connection_pool();
        let base = (*pg_pool.connect_options()).clone();
        let fits = probe(&base, self.current(), self.timeout)
            .await
            .is_some_and(|role| role.fits(self.target));
        if fits {
            self.set_found();
            return;
        }
        let Some(found) = find(&base, &self.hosts, self.target, self.timeout).await else {
            if !self.shared.lost.swap(true, Ordering::SeqCst) {
                // A write must not begin on a connection a request took before now.
                self.spares_change();
            }
            tracing::warn!(primary = %self.current(), "the primary does not answer and no other host is writable yet");
            return;
        };
        if found == self.current.load(Ordering::SeqCst) {
            self.set_found();
            return;
        }
        let from = self.current().clone();
        let to = &self.hosts[found];
        pg_pool.set_connect_options(base.host(&to.name).port(to.port));
        *self.shared.moved_at.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.spares_change();
        self.current.store(found, Ordering::SeqCst);
        self.set_found();
        self.publish();
        metrics::counter!("bookworm_db_primary_changes_total").increment(1);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        metrics::gauge!("bookworm_db_primary_changed_at_seconds").set(now);
        tracing::warn!(%from, to = %to, "the primary moved; the pool follows it");
    }

    /// Starts a new epoch for the spares (see [`super::Spare::primary_changed`]).
    fn spares_change(&self) {
        for spare in self.spares.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            spare.primary_changed();
        }
    }

    /// A host fits again: requests waiting for a connection go on (to the new host, if
    /// the pool moved: their pre-move connections are discarded on the way out).
    fn set_found(&self) {
        if self.shared.lost.swap(false, Ordering::SeqCst) {
            self.shared.found.notify_waiters();
        }
    }

    /// `bookworm_db_primary{host}`: 1 for the host the pool is on, 0 for the others.
    pub fn publish(&self) {
        let current = self.current.load(Ordering::SeqCst);
        for (index, host) in self.hosts.iter().enumerate() {
            metrics::gauge!("bookworm_db_primary", "host" => host.to_string()).set(if index == current {
                1.0
            } else {
                0.0
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_host_urls_list_their_hosts_and_target() {
        let url = DatabaseUrl::new(
            "postgres://app:pw@h1:5433,h2,[::1]:5434/bookworm?target_session_attrs=read-write&sslmode=disable",
        );
        let (hosts, target) = parse_hosts(&url).unwrap();
        let names: Vec<String> = hosts.iter().map(Host::to_string).collect();
        assert_eq!(names, ["h1:5433", "h2:5432", "[::1]:5434"]);
        assert_eq!(target, Some(Target::ReadWrite));
        assert_eq!(
            for_host(&url, &hosts[1]).expose(),
            "postgres://app:pw@h2:5432/bookworm?sslmode=disable"
        );
        let single = DatabaseUrl::new("postgres://app@db/bookworm");
        assert_eq!(parse_hosts(&single).unwrap().1, None);
        assert_eq!(
            for_host(&single, &parse_hosts(&single).unwrap().0[0]).expose(),
            "postgres://app@db:5432/bookworm"
        );
        let standby = DatabaseUrl::new("postgres://h1,h2/db?target_session_attrs=standby");
        assert!(parse_hosts(&standby).unwrap_err().contains("DATABASE_REPLICA_URLS"));
        assert!(parse_hosts(&DatabaseUrl::new("postgres://h1:x/db")).is_err());
    }

    #[test]
    fn read_write_refuses_a_primary_being_demoted_as_libpq_does() {
        let draining = Role {
            in_recovery: false,
            read_only: true,
        };
        let standby = Role {
            in_recovery: true,
            read_only: true,
        };
        let primary = Role {
            in_recovery: false,
            read_only: false,
        };
        assert!(!draining.fits(Target::ReadWrite));
        assert!(draining.fits(Target::Primary));
        assert!(!standby.fits(Target::Primary));
        assert!(standby.fits(Target::Any));
        assert!(primary.fits(Target::ReadWrite));
    }
}
