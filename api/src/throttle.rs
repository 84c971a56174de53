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
//! The buckets (governor's GCRA) are held in memory: simple and fast, but per process,
//! so several API instances each allow the full rate. The client address is the TCP
//! peer: `X-Forwarded-For` is trivially forged and is only honoured behind a proxy the
//! operator trusts, which this deployment does not assume. IPv6 peers are keyed by
//! their /64, the block one subscriber usually holds.

use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

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
    account_and_client: DefaultKeyedRateLimiter<(String, IpAddr)>,
    accounts: DefaultKeyedRateLimiter<String>,
    clients: DefaultKeyedRateLimiter<IpAddr>,
    registrations: DefaultKeyedRateLimiter<IpAddr>,
}

impl Throttle {
    pub fn new(limits: ThrottleLimits) -> Self {
        Self {
            account_and_client: RateLimiter::keyed(quota(limits.per_account_and_client, limits.login_window)),
            accounts: RateLimiter::keyed(quota(limits.per_account, limits.login_window)),
            clients: RateLimiter::keyed(quota(limits.per_client, limits.login_window)),
            registrations: RateLimiter::keyed(quota(limits.registrations_per_client, limits.registration_window)),
        }
    }

    /// Records one login attempt for `email` from `client`.
    pub fn login_attempt(&self, email: &str, client: IpAddr) -> Result<(), Throttled> {
        let client = client_key(client);
        let account = email.trim().to_lowercase();
        check(&self.clients, &client, Limit::Client)?;
        check(
            &self.account_and_client,
            &(account.clone(), client),
            Limit::AccountAndClient,
        )?;
        check(&self.accounts, &account, Limit::Account)
    }

    /// Records one registration from `client`.
    pub fn registration(&self, client: IpAddr) -> Result<(), Throttled> {
        check(&self.registrations, &client_key(client), Limit::Registration)
    }

    /// Forgets keys whose buckets are full again, bounding memory.
    pub fn forget_idle(&self) {
        self.account_and_client.retain_recent();
        self.accounts.retain_recent();
        self.clients.retain_recent();
        self.registrations.retain_recent();
    }
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

    #[test]
    fn guessing_from_one_address_does_not_lock_the_owner_out_elsewhere() {
        let t = throttle(3, 100, 100);
        for _ in 0..3 {
            assert!(t.login_attempt("ada@example.com", ATTACKER).is_ok());
        }
        let refused = t.login_attempt("ADA@example.com ", ATTACKER).unwrap_err();
        assert_eq!(refused.limit, Limit::AccountAndClient);
        assert!(refused.wait > Duration::ZERO && refused.wait <= Duration::from_secs(20));
        assert!(t.login_attempt("ada@example.com", HOME).is_ok());
        assert!(t.login_attempt("grace@example.com", ATTACKER).is_ok());
    }

    #[test]
    fn guessing_spread_over_many_addresses_meets_the_account_ceiling() {
        let t = throttle(3, 4, 100);
        for last in 1..=4u8 {
            let ip = IpAddr::from([10, 1, 0, last]);
            assert!(t.login_attempt("ada@example.com", ip).is_ok());
        }
        let refused = t.login_attempt("ada@example.com", HOME).unwrap_err();
        assert_eq!(refused.limit, Limit::Account);
    }

    #[test]
    fn a_client_is_limited_across_accounts() {
        let t = throttle(100, 100, 2);
        assert!(t.login_attempt("a@example.com", HOME).is_ok());
        assert!(t.login_attempt("b@example.com", HOME).is_ok());
        assert_eq!(t.login_attempt("c@example.com", HOME).unwrap_err().limit, Limit::Client);
        assert!(t.login_attempt("c@example.com", ATTACKER).is_ok());
    }

    #[test]
    fn registrations_are_limited_per_address_and_ipv6_per_block() {
        let t = throttle(5, 5, 5);
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(t.registration(a).is_ok());
        assert!(t.registration(b).is_ok());
        assert_eq!(t.registration(a).unwrap_err().limit, Limit::Registration);
        assert!(t.registration("2001:db8:1:3::1".parse().unwrap()).is_ok());
        assert!(t.registration(HOME).is_ok());
    }
}
