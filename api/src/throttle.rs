//! Throttling of the two endpoints that anyone may call with a guess: login and
//! registration.
//!
//! Login has three limits, after OWASP's authentication guidance: a strict one per
//! (account, client address), so guessing one password from one place is slow; a
//! higher one per account across all addresses, against guessing spread over many
//! machines; and one per client address across accounts, against spraying. Keying the
//! strict limit on the account alone was rejected: anyone could then lock a victim
//! out everywhere with five wrong passwords. Registration is limited per client address,
//! which bounds how fast its "email taken" answer can be used to enumerate accounts.
//!
//! Each limit is a GCRA bucket (a burst of the limit, refilled evenly over the window).
//! With `REDIS_URL` the buckets live in Redis, checked and updated by one Lua script
//! on Redis's clock, so any number of instances together allow exactly the limit.
//! Without it, or while Redis is unreachable, they live in this process (governor):
//! the same limits per instance, which is the safer failure than no limit. Attempts
//! are recorded locally even while Redis decides, so an outage does not start every
//! local bucket full. Accounts are keyed in Redis by a hash of the address, so the
//! shared store holds no email addresses.
//!
//! The client address is the TCP peer: `X-Forwarded-For` is trivially forged and is
//! only honoured behind a proxy the operator trusts, which this deployment does not
//! assume. IPv6 peers are keyed by their /64, the block one subscriber usually holds.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use redis::Script;
use service::redis_link::{RedisLink, Skipped, run_script};
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy)]
pub struct ThrottleLimits {
    /// Login attempts for one account from one client address, per `login_window`.
    pub per_account_and_client: u32,
    /// Login attempts for one account from all addresses together.
    pub per_account: u32,
    /// Login attempts from one client address, whatever the account.
    pub per_client: u32,
    pub login_window: Duration,
    /// Registrations from one client address per `registration_window`.
    pub registrations_per_client: u32,
    pub registration_window: Duration,
}

/// Which limit turned a request away, for logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    AccountAndClient,
    Account,
    Client,
    Registration,
}

impl Limit {
    pub fn as_str(self) -> &'static str {
        match self {
            Limit::AccountAndClient => "account_and_client",
            Limit::Account => "account",
            Limit::Client => "client",
            Limit::Registration => "registration",
        }
    }
}

/// A refusal: which limit, and how long until another attempt is allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttled {
    pub limit: Limit,
    pub wait: Duration,
}

pub struct Throttle {
    limits: ThrottleLimits,
    local: LocalBuckets,
    shared: Option<Arc<RedisLink>>,
}

struct LocalBuckets {
    account_and_client: DefaultKeyedRateLimiter<(String, IpAddr)>,
    accounts: DefaultKeyedRateLimiter<String>,
    clients: DefaultKeyedRateLimiter<IpAddr>,
    registrations: DefaultKeyedRateLimiter<IpAddr>,
}

/// One bucket to check: which limit, its key, and its size per window.
struct Bucket {
    limit: Limit,
    key: String,
    count: u32,
    window: Duration,
}

impl Throttle {
    /// Buckets in this process only.
    pub fn new(limits: ThrottleLimits) -> Self {
        Self {
            limits,
            local: LocalBuckets {
                account_and_client: RateLimiter::keyed(quota(limits.per_account_and_client, limits.login_window)),
                accounts: RateLimiter::keyed(quota(limits.per_account, limits.login_window)),
                clients: RateLimiter::keyed(quota(limits.per_client, limits.login_window)),
                registrations: RateLimiter::keyed(quota(limits.registrations_per_client, limits.registration_window)),
            },
            shared: None,
        }
    }

    /// Buckets in Redis, shared by every instance, with this process's as the fallback.
    pub fn shared(limits: ThrottleLimits, link: Arc<RedisLink>) -> Self {
        Self {
            shared: Some(link),
            ..Self::new(limits)
        }
    }

    /// Records one login attempt for `email` from `client`.
    pub async fn login_attempt(&self, email: &str, client: IpAddr) -> Result<(), Throttled> {
        let client = client_key(client);
        // The account as the database knows it: every spelling of one address (case,
        // full-width letters, soft hyphens, …) shares its buckets. Text that is not an
        // address names no account, and is keyed as sent.
        let account = service::accounts::Email::parse(email)
            .map_or_else(|_| email.trim().to_lowercase(), |email| email.as_str().to_owned());
        let limits = &self.limits;
        let buckets = || {
            let account = account_hash(&account);
            [
                Bucket {
                    limit: Limit::Client,
                    key: format!("login:client:{client}"),
                    count: limits.per_client,
                    window: limits.login_window,
                },
                Bucket {
                    limit: Limit::AccountAndClient,
                    key: format!("login:account-client:{account}:{client}"),
                    count: limits.per_account_and_client,
                    window: limits.login_window,
                },
                Bucket {
                    limit: Limit::Account,
                    key: format!("login:account:{account}"),
                    count: limits.per_account,
                    window: limits.login_window,
                },
            ]
        };
        let local = || {
            check(&self.local.clients, &client, Limit::Client)?;
            check(
                &self.local.account_and_client,
                &(account.clone(), client),
                Limit::AccountAndClient,
            )?;
            check(&self.local.accounts, &account, Limit::Account)
        };
        self.decide(buckets, local).await
    }

    /// Records one registration from `client`.
    pub async fn registration(&self, client: IpAddr) -> Result<(), Throttled> {
        let client = client_key(client);
        let buckets = || {
            [Bucket {
                limit: Limit::Registration,
                key: format!("registration:client:{client}"),
                count: self.limits.registrations_per_client,
                window: self.limits.registration_window,
            }]
        };
        self.decide(buckets, || {
            check(&self.local.registrations, &client, Limit::Registration)
        })
        .await
    }

    /// Redis decides when it can; this process's buckets record the attempt either
    /// way, and decide when Redis cannot.
    async fn decide<const N: usize>(
        &self,
        buckets: impl FnOnce() -> [Bucket; N],
        local: impl FnOnce() -> Result<(), Throttled>,
    ) -> Result<(), Throttled> {
        let Some(link) = &self.shared else {
            return local();
        };
        match shared_check(link, &buckets()).await {
            Ok(decision) => {
                let _recorded = local();
                decision
            }
            Err(_) => {
                metrics::counter!("bookworm_throttle_local_fallbacks_total").increment(1);
                local()
            }
        }
    }

    /// Forgets keys whose buckets are full again, bounding memory.
    pub fn forget_idle(&self) {
        self.local.account_and_client.retain_recent();
        self.local.accounts.retain_recent();
        self.local.clients.retain_recent();
        self.local.registrations.retain_recent();
    }
}

/// GCRA over several buckets in order, on Redis's clock: each allowed bucket advances
/// its theoretical arrival time by one interval; the first refusal stops the check
/// and says how long to wait. Buckets expire when they are full again.
static GCRA: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
-- KEYS: buckets; ARGV: per bucket, its interval and its burst, in milliseconds and attempts
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local burst = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local next_tat = tat + interval
  local allowed_at = next_tat - burst * interval
  if now < allowed_at then
    return {i, allowed_at - now}
  end
  redis.call('SET', key, next_tat, 'PX', next_tat - now)
end
return {0, 0}
",
    )
});

async fn shared_check(link: &RedisLink, buckets: &[Bucket]) -> Result<Result<(), Throttled>, Skipped> {
    let keys: Vec<String> = buckets.iter().map(|b| format!("bookworm:throttle:{}", b.key)).collect();
    let args: Vec<String> = buckets
        .iter()
        .flat_map(|b| {
            let count = b.count.max(1);
            let interval = (b.window.as_millis() as u64 / u64::from(count)).max(1);
            [interval.to_string(), count.to_string()]
        })
        .collect();
    let (refused, wait_ms): (usize, u64) = link
        .call("throttle", |conn| run_script(&GCRA, &keys, &args, conn))
        .await?;
    Ok(match refused.checked_sub(1).and_then(|i| buckets.get(i)) {
        None => Ok(()),
        Some(bucket) => Err(Throttled {
            limit: bucket.limit,
            wait: Duration::from_millis(wait_ms),
        }),
    })
}

/// The key of an account in Redis: a hash, so the shared store holds no addresses.
fn account_hash(account: &str) -> String {
    let digest = Sha256::digest(account.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn check<K: Hash + Eq + Clone>(limiter: &DefaultKeyedRateLimiter<K>, key: &K, limit: Limit) -> Result<(), Throttled> {
    limiter.check_key(key).map_err(|denied| Throttled {
        limit,
        wait: denied.wait_time_from(DefaultClock::default().now()),
    })
}

fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
            let mask = !0u128 << 64;
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
        IpAddr::V6(v6) => IpAddr::V4(v6.to_ipv4_mapped().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED)),
        v4 => v4,
    }
}

/// `count` attempts per `window`, all of which may be spent at once.
fn quota(count: u32, window: Duration) -> Quota {
    let count = NonZeroU32::new(count.max(1)).unwrap_or(NonZeroU32::MIN);
    let period = (window / count.get()).max(Duration::from_millis(1));
    Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(count))
        .allow_burst(count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle(per_account_and_client: u32, per_account: u32, per_client: u32) -> Throttle {
        Throttle::new(ThrottleLimits {
            per_account_and_client,
            per_account,
            per_client,
            login_window: Duration::from_secs(60),
            registrations_per_client: 2,
            registration_window: Duration::from_secs(3600),
        })
    }

    const HOME: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const ATTACKER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 66));

    #[tokio::test]
    async fn guessing_from_one_address_does_not_lock_the_owner_out_elsewhere() {
        let t = throttle(3, 100, 100);
        for _ in 0..3 {
            assert!(t.login_attempt("ada@example.com", ATTACKER).await.is_ok());
        }
        let refused = t.login_attempt("ADA@example.com ", ATTACKER).await.unwrap_err();
        assert_eq!(refused.limit, Limit::AccountAndClient);
        assert!(refused.wait > Duration::ZERO && refused.wait <= Duration::from_secs(20));
        assert!(t.login_attempt("ada@example.com", HOME).await.is_ok());
        assert!(t.login_attempt("grace@example.com", ATTACKER).await.is_ok());
    }

    #[tokio::test]
    async fn guessing_spread_over_many_addresses_meets_the_account_ceiling() {
        let t = throttle(3, 4, 100);
        for last in 1..=4u8 {
            let ip = IpAddr::from([10, 1, 0, last]);
            assert!(t.login_attempt("ada@example.com", ip).await.is_ok());
        }
        let refused = t.login_attempt("ada@example.com", HOME).await.unwrap_err();
        assert_eq!(refused.limit, Limit::Account);
    }

    #[tokio::test]
    async fn a_client_is_limited_across_accounts() {
        let t = throttle(100, 100, 2);
        assert!(t.login_attempt("a@example.com", HOME).await.is_ok());
        assert!(t.login_attempt("b@example.com", HOME).await.is_ok());
        assert_eq!(
            t.login_attempt("c@example.com", HOME).await.unwrap_err().limit,
            Limit::Client
        );
        assert!(t.login_attempt("c@example.com", ATTACKER).await.is_ok());
    }

    #[tokio::test]
    async fn registrations_are_limited_per_address_and_ipv6_per_block() {
        let t = throttle(5, 5, 5);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(t.registration(a).await.is_ok());
        assert!(t.registration(b).await.is_ok());
        assert_eq!(t.registration(a).await.unwrap_err().limit, Limit::Registration);
        assert!(t.registration("2001:db8:1:3::1".parse().unwrap()).await.is_ok());
        assert!(t.registration(HOME).await.is_ok());
    }
}
