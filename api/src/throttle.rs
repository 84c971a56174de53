//! Login throttling, per account and per client address, so that guessing one
//! account's password is slow and one client cannot spray many accounts.
//!
//! Both limits are token buckets (governor's GCRA) held in memory: simple and fast,
//! but per process. Several API replicas each allow the full rate; a shared store
//! (Redis) would be the next step if that matters. The client address is the TCP
//! peer: `X-Forwarded-For` is trivially forged and is only honoured behind a proxy
//! the operator trusts, which this deployment does not assume.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub per_account: u32,
    pub per_client: u32,
    pub window: Duration,
}

pub struct LoginThrottle {
    accounts: DefaultKeyedRateLimiter<String>,
    clients: DefaultKeyedRateLimiter<IpAddr>,
}

impl LoginThrottle {
    pub fn new(limits: LoginLimits) -> Self {
        Self {
            accounts: RateLimiter::keyed(quota(limits.per_account, limits.window)),
            clients: RateLimiter::keyed(quota(limits.per_client, limits.window)),
        }
    }

    /// Records one attempt; `Err(wait)` when either limit is exhausted.
    pub fn attempt(&self, email: &str, client: Option<IpAddr>) -> Result<(), Duration> {
        let now = DefaultClock::default().now();
        if let Some(ip) = client {
            self.clients
                .check_key(&ip)
                .map_err(|denied| denied.wait_time_from(now))?;
        }
        let account = email.trim().to_lowercase();
        self.accounts
            .check_key(&account)
            .map_err(|denied| denied.wait_time_from(now))
    }

    /// Forgets keys whose buckets are full again, bounding memory.
    pub fn forget_idle(&self) {
        self.accounts.retain_recent();
        self.clients.retain_recent();
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

    fn throttle(per_account: u32, per_client: u32) -> LoginThrottle {
        LoginThrottle::new(LoginLimits {
            per_account,
            per_client,
            window: Duration::from_secs(60),
        })
    }

    #[test]
    fn an_account_is_limited_without_affecting_others() {
        let t = throttle(3, 100);
        let ip = Some(IpAddr::from([10, 0, 0, 1]));
        for _ in 0..3 {
            assert!(t.attempt("ada@example.com", ip).is_ok());
        }
        let wait = t.attempt("ADA@example.com ", ip).unwrap_err();
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(20), "{wait:?}");
        assert!(t.attempt("grace@example.com", ip).is_ok());
    }

    #[test]
    fn a_client_is_limited_across_accounts() {
        let t = throttle(100, 2);
        let ip = Some(IpAddr::from([10, 0, 0, 2]));
        assert!(t.attempt("a@example.com", ip).is_ok());
        assert!(t.attempt("b@example.com", ip).is_ok());
        assert!(t.attempt("c@example.com", ip).is_err());
        assert!(t.attempt("c@example.com", Some(IpAddr::from([10, 0, 0, 3]))).is_ok());
    }
}
