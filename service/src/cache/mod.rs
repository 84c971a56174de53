//! Cache-aside for the public detail reads (a book, an author, a category and its
//! tree, a reader's public profile): in process by default, in Redis when several API
//! instances must share it, or off.
//!
//! Invalidation is by **tags with versions**. Each entry depends on tags (`book:ID`,
//! `author:ID`, `categories`, ...), each tag has a random version, and an entry is
//! stored with the versions it was read under (its *stamp*). A write replaces the
//! versions of the tags it touched, after its commit; an entry whose stamp no longer
//! matches is a miss. Reading the stamp *before* loading from the database is what
//! defeats the classic race: a slow read that loaded the old row before a write
//! committed stores it under the old stamp, which the write has already replaced, so
//! it is never served. Deleting keys on write was rejected for exactly that race; a
//! short lock per key was rejected as a second round trip on every miss.
//!
//! A write records the tags it touched inside its own transaction, including those of
//! entries it reaches indirectly (renaming an author touches every one of their books),
//! and hands them over with its result ([`Written`], [`Cache::publish`]).
//!
//! With read replicas, a replaced tag version carries the primary's WAL position after
//! the write, and a miss is loaded at or after the highest position in its stamp, so
//! an entry stored under a new version reflects the write that made it. A client's
//! consistency token is honoured the same way on a miss; on a hit the entry is served,
//! because any write of the client's that changed it replaced its stamp before the
//! client got its token.
//!
//! Concurrent misses of one key in one process share one database load; across N
//! instances a key costs at most N loads after each invalidation.

mod local_store;
mod redis_store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::OnceCell;
use uuid::Uuid;

pub use crate::written::{Tag, Written};
use local_store::LocalStore;
use redis_store::RedisStore;

use crate::lsn::Lsn;
use crate::redis_link::RedisLink;
use crate::replicas::Databases;

/// A response body, shared without copying between the cache and the requests it serves.
pub type Body = Arc<[u8]>;

/// What can be cached: the public detail reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    Book(Uuid),
    Author(Uuid),
    Category(Uuid),
    CategoryTree(Uuid),
    User(Uuid),
}

impl Key {
    fn name(&self) -> String {
        match self {
            Key::Book(id) => format!("book:{id}"),
            Key::Author(id) => format!("author:{id}"),
            Key::Category(id) => format!("category:{id}"),
            Key::CategoryTree(id) => format!("category-tree:{id}"),
            Key::User(id) => format!("user:{id}"),
        }
    }

    /// What the entry shows, as the tags whose writes change it.
    fn tags(&self) -> Vec<Tag> {
        match *self {
            // The author's name and the categories' names are shown too: writes to
            // those record the tags of the books they touch.
            Key::Book(id) => vec![Tag::Book(id)],
            Key::Author(id) => vec![Tag::Author(id)],
            Key::Category(_) | Key::CategoryTree(_) => vec![Tag::Categories],
            Key::User(id) => vec![Tag::User(id), Tag::Stats],
        }
    }
}

/// A new tag version: random, so a version lost with an evicted or expired tag can
/// never come back and match an old stamp. After a write seen by replicas it carries
/// the primary's position: `9f0c…@16/B374D848`.
fn new_version(position: Option<Lsn>) -> String {
    let random = getrandom::u64().unwrap_or_else(|_| rand_fallback());
    match position {
        Some(lsn) => format!("{random:016x}@{lsn}"),
        None => format!("{random:016x}"),
    }
}

/// Uniqueness, not secrecy, is what a version needs.
fn rand_fallback() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ u64::from(std::process::id()).rotate_left(32)
}

/// The highest WAL position in a stamp: a miss must be loaded at or after it.
fn position_in(stamp: &str) -> Option<Lsn> {
    stamp
        .split('|')
        .filter_map(|version| version.split_once('@')?.1.parse().ok())
        .max()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Off,
    Local,
    Redis,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Off => "off",
            Backend::Local => "local",
            Backend::Redis => "redis",
        }
    }
}

/// What a lookup found: the entry's current stamp, and the entry if stored under it.
struct Lookup {
    stamp: String,
    hit: Option<Body>,
}

enum Store {
    Off,
    Local(LocalStore),
    Redis(RedisStore),
}

/// A body and whether it came from the cache.
pub struct Cached {
    pub body: Body,
    pub hit: bool,
}

pub struct Cache {
    store: Store,
    /// Misses in progress, by key and stamp: later callers wait for the first.
    flights: Mutex<HashMap<String, Arc<OnceCell<Body>>>>,
}

impl Cache {
    pub fn off() -> Self {
        Self::with(Store::Off)
    }

    /// In this process, bounded to `max_bytes` of bodies, entries kept for `ttl`.
    pub fn local(ttl: Duration, max_bytes: u64) -> Self {
        Self::with(Store::Local(LocalStore::new(ttl, max_bytes)))
    }

    /// In Redis, shared by every instance that uses it; entries kept for `ttl`.
    pub fn redis(link: Arc<RedisLink>, ttl: Duration) -> Self {
        Self::with(Store::Redis(RedisStore::new(link, ttl)))
    }

    fn with(store: Store) -> Self {
        Self {
            store,
            flights: Mutex::new(HashMap::new()),
        }
    }

    pub fn backend(&self) -> Backend {
        match self.store {
            Store::Off => Backend::Off,
            Store::Local(_) => Backend::Local,
            Store::Redis(_) => Backend::Redis,
        }
    }

    /// The body for `key`: from the cache when it holds a current entry, else from
    /// `load`, which gets the WAL position the read must reflect (the client's `token`
    /// or a newer one) and is stored for the next reader. Errors are never cached.
    pub async fn get_or_load<E>(
        &self,
        key: Key,
        token: Option<Lsn>,
        load: impl AsyncFnOnce(Option<Lsn>) -> Result<Vec<u8>, E>,
    ) -> Result<Cached, E> {
        let backend = self.backend();
        let lookup = match &self.store {
            Store::Off => None,
            Store::Local(store) => Some(store.lookup(key)),
            Store::Redis(store) => store.lookup(key).await,
        };
        let Some(Lookup { stamp, hit }) = lookup else {
            if backend != Backend::Off {
                crate::metrics::cache_request(backend.as_str(), "bypass");
            }
            let body = load(token).await?;
            return Ok(Cached {
                body: body.into(),
                hit: false,
            });
        };
        if let Some(body) = hit {
            crate::metrics::cache_request(backend.as_str(), "hit");
            return Ok(Cached { body, hit: true });
        }
        crate::metrics::cache_request(backend.as_str(), "miss");
        let at = token.max(position_in(&stamp));
        let flight_key = format!("{}|{stamp}|{at:?}", key.name());
        let flight = self
            .flights
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(flight_key.clone())
            .or_default()
            .clone();
        let body = flight
            .get_or_try_init(async || {
                let body: Body = load(at).await?.into();
                match &self.store {
                    Store::Off => {}
                    Store::Local(store) => store.fill(key, stamp, body.clone()),
                    Store::Redis(store) => store.fill(key, &stamp, &body).await,
                }
                Ok(body)
            })
            .await
            .cloned();
        let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
        if flights.get(&flight_key).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
            flights.remove(&flight_key);
        }
        Ok(Cached {
            body: body?,
            hit: false,
        })
    }

    /// After a write has committed: replaces the versions of every tag it touched, so
    /// no instance serves what it changed, and hands back its result.
    pub async fn publish<T>(&self, databases: &Databases, written: Written<T>) -> T {
        let (value, tags) = written.into_parts();
        if matches!(self.store, Store::Off) || tags.is_empty() {
            return value;
        }
        let position = if databases.replicas.is_empty() {
            None
        } else {
            databases.primary_position().await.ok().flatten()
        };
        self.invalidate(&tags, position).await;
        value
    }

    /// Replaces the versions of `tags`; `position` is the primary's WAL position after
    /// the write, when replicas may serve the next load.
    pub async fn invalidate(&self, tags: &[Tag], position: Option<Lsn>) {
        if tags.is_empty() {
            return;
        }
        match &self.store {
            Store::Off => return,
            Store::Local(store) => store.invalidate(tags, position),
            // On failure the link is down, and recovery orphans every entry.
            Store::Redis(store) => store.invalidate(tags, position).await,
        }
        crate::metrics::cache_invalidations(self.backend().as_str(), tags.len());
    }

    pub async fn invalidate_everything(&self) {
        match &self.store {
            Store::Off => {}
            Store::Local(store) => store.clear(),
            Store::Redis(store) => store.clear().await,
        }
    }
}

/// For [`RedisLink::watch`]: what must happen before a shared cache is used again after
/// an outage. Every entry stored before it is orphaned.
pub async fn recover_after_outage(conn: redis::aio::ConnectionManager) -> redis::RedisResult<()> {
    redis_store::new_epoch(conn).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_asks_for_its_newest_position() {
        let a = new_version(None);
        let b = new_version(Some(Lsn(0x1_0000_0010)));
        let c = new_version(Some(Lsn(0x20)));
        assert_eq!(position_in(&a), None);
        assert_eq!(position_in(&format!("{a}|{b}|{c}")), Some(Lsn(0x1_0000_0010)));
        assert_ne!(new_version(None), new_version(None), "versions never repeat");
    }
}
