//! The cache in Redis, shared by every API instance.
//!
//! A lookup is one round trip: a Lua script reads the epoch and the entry's tag
//! versions (creating any that are missing), and returns the stamp they make and the
//! entry if it was stored under that stamp. A fill is a plain `SET` with the TTL; an
//! invalidation is one pipelined `SET` per tag. The epoch is one more version in every
//! stamp: replacing it orphans every entry at once, which is how an instance that lost
//! Redis for a while forgets what it could not invalidate.
//!
//! Entries are `stamp\n` followed by the body; keys are `bookworm:cache:entry:…`,
//! `bookworm:cache:tag:…` and `bookworm:cache:epoch`. The script reads keys it is
//! passed, so it also runs on Redis Cluster only if they share a slot, which they do
//! not: Bookworm expects a single Redis (with a replica for failover), not a cluster.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::{RedisResult, Script};

use super::{Body, Key, Lookup, Tag, new_version};
use crate::lsn::Lsn;
use crate::redis_link::{RedisLink, Skipped, run_script};

const EPOCH: &str = "bookworm:cache:epoch";
/// Invalidations are sent in pipelines of this many tags.
const TAGS_PER_PIPELINE: usize = 500;

static LOOKUP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS[1] the epoch, KEYS[2] the entry, KEYS[3..] its tags
-- ARGV[1] a new version for whatever is missing, ARGV[2] the tags' TTL in seconds
local versions = {}
for i = 1, #KEYS do
  if i ~= 2 then
    local version = redis.call('GET', KEYS[i])
    if not version then
      version = ARGV[1]
      if i == 1 then
        redis.call('SET', KEYS[i], version)
      else
        redis.call('SET', KEYS[i], version, 'EX', ARGV[2])
      end
    end
    versions[#versions + 1] = version
  end
end
local stamp = table.concat(versions, '|')
local entry = redis.call('GET', KEYS[2])
if entry and string.sub(entry, 1, #stamp + 1) == stamp .. '\n' then
  return {stamp, string.sub(entry, #stamp + 2)}
end
return {stamp}
",
    )
});

pub(super) struct RedisStore {
    link: Arc<RedisLink>,
    ttl: Duration,
}

fn entry_key(key: Key) -> String {
    format!("bookworm:cache:entry:{}", key.name())
}

fn tag_key(tag: Tag) -> String {
    format!("bookworm:cache:tag:{}", tag.name())
}

impl RedisStore {
    pub(super) fn new(link: Arc<RedisLink>, ttl: Duration) -> Self {
        Self {
            link,
            ttl: ttl.max(Duration::from_secs(1)),
        }
    }

    /// Tags outlive the entries stored under them; see `local_store.rs`.
    fn tag_ttl_secs(&self) -> u64 {
        self.ttl.as_secs().saturating_mul(4)
    }

    /// `None` when Redis is down or fails: the caller reads the database.
    pub(super) async fn lookup(&self, key: Key) -> Option<Lookup> {
        let mut keys = vec![EPOCH.to_owned(), entry_key(key)];
        keys.extend(key.tags().into_iter().map(tag_key));
        let args = [new_version(None), self.tag_ttl_secs().to_string()];
        let reply: Vec<Vec<u8>> = self
            .call("cache lookup", |conn| run_script(&LOOKUP, &keys, &args, conn))
            .await?;
        let mut parts = reply.into_iter();
        let stamp = String::from_utf8(parts.next()?).ok()?;
        let hit = parts.next().map(Body::from);
        Some(Lookup { stamp, hit })
    }

    pub(super) async fn fill(&self, key: Key, stamp: &str, body: &[u8]) {
        let mut value = Vec::with_capacity(stamp.len() + 1 + body.len());
        value.extend_from_slice(stamp.as_bytes());
        value.push(b'\n');
        value.extend_from_slice(body);
        let entry = entry_key(key);
        let ttl = self.ttl.as_secs();
        self.call("cache fill", async |mut conn| {
            redis::cmd("SET")
                .arg(&entry)
                .arg(value)
                .arg("EX")
                .arg(ttl)
                .query_async::<()>(&mut conn)
                .await
        })
        .await;
    }

    pub(super) async fn invalidate(&self, tags: &[Tag], position: Option<Lsn>) {
        let ttl = self.tag_ttl_secs();
        for chunk in tags.chunks(TAGS_PER_PIPELINE) {
            let mut pipe = redis::pipe();
            for tag in chunk {
                pipe.cmd("SET")
                    .arg(tag_key(*tag))
                    .arg(new_version(position))
                    .arg("EX")
                    .arg(ttl)
                    .ignore();
            }
            if self
                .call("cache invalidate", async |mut conn| {
                    pipe.query_async::<()>(&mut conn).await
                })
                .await
                .is_none()
            {
                return;
            }
        }
    }

    pub(super) async fn clear(&self) {
        self.call("cache clear", new_epoch).await;
    }

    async fn call<T, F>(&self, what: &'static str, call: impl FnOnce(ConnectionManager) -> F) -> Option<T>
    where
        F: Future<Output = RedisResult<T>>,
    {
        match self.link.call(what, call).await {
            Ok(value) => Some(value),
            Err(Skipped::Down) => None,
            Err(Skipped::Failed) => {
                crate::metrics::cache_error(super::Backend::Redis.as_str());
                None
            }
        }
    }
}

/// Replaces the epoch: every entry in Redis is orphaned at once.
pub(super) async fn new_epoch(mut conn: ConnectionManager) -> RedisResult<()> {
    redis::cmd("SET")
        .arg(EPOCH)
        .arg(new_version(None))
        .query_async(&mut conn)
        .await
}
