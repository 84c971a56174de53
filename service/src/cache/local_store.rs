//! The cache inside one process: moka, bounded by the bytes of the bodies it holds.
//! Right for one instance; with several, each would keep serving what another
//! instance's write changed until its TTL, which is why `REDIS_URL` moves the cache
//! to Redis rather than putting Redis behind this one.

use std::time::Duration;

use moka::sync::Cache as Moka;

use super::{Body, Key, Lookup, Tag, new_version};
use crate::lsn::Lsn;

pub(super) struct LocalStore {
    entries: Moka<Key, (String, Body)>,
    tags: Moka<Tag, String>,
}

/// Tags outlive entries, so a stamp survives as long as anything stored under it;
/// a tag that goes anyway comes back with a new version, which only costs misses.
const TAGS_KEPT: u64 = 200_000;

impl LocalStore {
    pub(super) fn new(ttl: Duration, max_bytes: u64) -> Self {
        let entries = Moka::builder()
            .max_capacity(max_bytes)
            .weigher(|_key: &Key, (stamp, body): &(String, Body)| {
                u32::try_from(body.len() + stamp.len() + 64).unwrap_or(u32::MAX)
            })
            .time_to_live(ttl)
            .build();
        let tags = Moka::builder()
            .max_capacity(TAGS_KEPT)
            .time_to_idle(ttl.saturating_mul(4))
            .build();
        Self { entries, tags }
    }

    pub(super) fn lookup(&self, key: Key) -> Lookup {
        let stamp = key
            .tags()
            .into_iter()
            .map(|tag| self.tags.get_with(tag, || new_version(None)))
            .collect::<Vec<_>>()
            .join("|");
        let hit = self
            .entries
            .get(&key)
            .filter(|(stored, _)| *stored == stamp)
            .map(|(_, body)| body);
        Lookup { stamp, hit }
    }

    pub(super) fn fill(&self, key: Key, stamp: String, body: Body) {
        self.entries.insert(key, (stamp, body));
    }

    pub(super) fn invalidate(&self, tags: &[Tag], position: Option<Lsn>) {
        for tag in tags {
            self.tags.insert(*tag, new_version(position));
        }
    }

    pub(super) fn clear(&self) {
        self.entries.invalidate_all();
        self.tags.invalidate_all();
    }
}
