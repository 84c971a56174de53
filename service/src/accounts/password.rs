//! Password hashing with Argon2id at the OWASP minimum (19 MiB, 2 iterations,
//! parallelism 1), stored as a PHC string that records its own parameters — which is
//! what lets [`needs_rehash`] upgrade old hashes at the next successful login.
//!
//! Every hash costs 19 MiB and tens of milliseconds of CPU, and anyone can ask for one
//! (a login with an unknown email still pays for a dummy verification). So the API
//! hashes through [`Hashing`], a fixed budget: at most `concurrency` hashes at once on
//! the blocking pool, each in a 19 MiB work area allocated once and reused, and a
//! request that cannot get a slot within `wait` is refused ([`ServiceError::Busy`],
//! a 503) instead of queueing without bound. Without it a burst of failed logins
//! allocated 19 MiB per request, and glibc kept all of it: 150 logins took 2.8 GiB.
//! Weakening Argon2id instead was rejected: the parameters are what make a stolen
//! hash expensive to crack, and the budget bounds memory without touching them.
//!
//! The free functions [`hash`] and [`verify`] allocate per call; they are for tools
//! that hash once (creating an admin, seeding), not for request paths.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::{Output, PasswordHash, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::ServiceError;

pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// The salt of the dummy verification: any fixed value will do, its output is thrown away.
const DUMMY_SALT: &[u8] = b"bookworm-dummy-verification";

fn params() -> Params {
    Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid Argon2 parameters")
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

/// How much hashing may run at once, and how long a request waits for a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingLimits {
    pub concurrency: usize,
    pub wait: Duration,
}

impl HashingLimits {
    /// One hash per core, and a wait of two seconds: with each hash taking tens of
    /// milliseconds, a full queue behind every slot still clears within it.
    pub fn per_core() -> Self {
        HashingLimits {
            concurrency: std::thread::available_parallelism().map_or(2, |n| n.get()),
            wait: Duration::from_secs(2),
        }
    }
}

/// The hashing budget described in the module docs; one per process.
pub struct Hashing {
    limits: HashingLimits,
    slots: Arc<Semaphore>,
    /// Work areas not in use; at most `concurrency` are ever made.
    areas: Mutex<Vec<Vec<Block>>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

/// A slot and its work area, held by one hash on the blocking pool. Dropping it (when
/// the hash is done, even if the request gave up waiting) gives both back.
struct Turn<'a> {
    hashing: &'a Hashing,
    area: Vec<Block>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let area = std::mem::take(&mut self.area);
        self.hashing.areas.lock().unwrap_or_else(|e| e.into_inner()).push(area);
        let now = self.hashing.in_flight.fetch_sub(1, Ordering::SeqCst) - 1;
        metrics::gauge!("bookworm_password_hashes_in_flight").set(now as f64);
    }
}

impl Hashing {
    pub fn new(limits: HashingLimits) -> Arc<Self> {
        assert!(limits.concurrency >= 1, "at least one hash must be able to run");
        Arc::new(Hashing {
            limits,
            slots: Arc::new(Semaphore::new(limits.concurrency)),
            areas: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        })
    }

    pub fn limits(&self) -> HashingLimits {
        self.limits
    }

    /// Hashes running now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// The most hashes that ever ran at once in this process.
    pub fn peak_in_flight(&self) -> usize {
        self.peak.load(Ordering::SeqCst)
    }

    /// A fresh hash of `password`, as [`hash`] makes it.
    pub async fn hash(self: &Arc<Self>, password: String) -> Result<String, ServiceError> {
        self.run(move |area| {
            let salt = fresh_salt();
            let output = hash_into(&hasher(), password.as_bytes(), salt.as_str(), area)?;
            Ok(phc_string(&salt, output))
        })
        .await
    }

    /// Whether `password` matches the stored PHC string (see [`verify`]).
    pub async fn verify(self: &Arc<Self>, password: String, stored: String) -> Result<bool, ServiceError> {
        self.run(move |area| Ok(verify_in(password.as_bytes(), &stored, area)))
            .await
    }

    /// The work of one verification, for an account that does not exist.
    pub async fn spend_one_verification(self: &Arc<Self>, password: String) -> Result<(), ServiceError> {
        self.run(move |area| {
            spend_one_verification_in(password.as_bytes(), area);
            Ok(())
        })
        .await
    }

    /// Waits up to `wait` for a slot, then runs `work` on the blocking pool in that
    /// slot's work area.
    async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&mut [Block]) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let waited = std::time::Instant::now();
        let slot = match tokio::time::timeout(self.limits.wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            _ => {
                metrics::counter!("bookworm_password_hash_rejections_total").increment(1);
                return Err(ServiceError::Busy("too many sign-ins at once, try again in a moment"));
            }
        };
        metrics::histogram!("bookworm_password_hash_wait_seconds").record(waited.elapsed().as_secs_f64());
        // The blocking task owns the slot: a request that gives up (its client went
        // away) leaves the hash to finish before the slot and its memory are reused.
        let this = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut turn = this.take_turn(slot);
            work(&mut turn.area)
        })
        .await
        .map_err(|e| ServiceError::Internal(format!("password hashing task failed: {e}")))?
    }

    fn take_turn(&self, slot: OwnedSemaphorePermit) -> Turn<'_> {
        let area = self.areas.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let area = area.unwrap_or_else(work_area);
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        metrics::gauge!("bookworm_password_hashes_in_flight").set(now as f64);
        Turn {
            hashing: self,
            area,
            _slot: slot,
        }
    }
}

fn fresh_salt() -> SaltString {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the OS random generator is available");
    SaltString::encode_b64(&salt).expect("16 bytes make a valid salt")
}

/// Argon2 of `password` with the B64 `salt`, computed in `area` (grown if a stored
/// hash asks for more memory than today's parameters).
fn hash_into(argon: &Argon2<'_>, password: &[u8], salt_b64: &str, area: &mut [Block]) -> Result<Output, ServiceError> {
    let internal = |e: &dyn std::fmt::Display| ServiceError::Internal(format!("password hashing failed: {e}"));
    let mut salt = [0u8; 64];
    let salt = argon2::password_hash::Salt::from_b64(salt_b64)
        .and_then(|s| s.decode_b64(&mut salt).map(|s| s.to_vec()))
        .map_err(|e| internal(&e))?;
    let len = argon.params().output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN);
    let needed = argon.params().block_count();
    let mut larger;
    let area = if area.len() >= needed {
        &mut area[..needed]
    } else {
        larger = vec![Block::new(); needed];
        &mut larger[..]
    };
    Output::init_with(len, |out| {
        argon
            .hash_password_into_with_memory(password, &salt, out, &mut *area)
            .map_err(Into::into)
    })
    .map_err(|e| internal(&e))
}

fn phc_string(salt: &SaltString, output: Output) -> String {
    let params = params();
    PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: (&params)
            .try_into()
            .expect("valid parameters make a PHC parameter string"),
        salt: Some(salt.as_salt()),
        hash: Some(output),
    }
    .to_string()
}

/// [`verify`] in a given work area. A stored value that does not parse (a locked
/// account) still costs one hash with today's parameters.
fn verify_in(password: &[u8], stored: &str, area: &mut [Block]) -> bool {
    let checked = PasswordHash::new(stored).ok().and_then(|parsed| {
        let algorithm = Algorithm::try_from(parsed.algorithm).ok()?;
        let version = parsed.version.map_or(Ok(Version::default()), Version::try_from).ok()?;
        let params = Params::try_from(&parsed).ok()?;
        let expected = parsed.hash?;
        let argon = Argon2::new(algorithm, version, params);
        let actual = hash_into(&argon, password, parsed.salt?.as_str(), area).ok()?;
        // `Output`'s equality is constant-time.
        Some(actual == expected)
    });
    checked.unwrap_or_else(|| {
        spend_one_verification_in(password, area);
        false
    })
}

/// One hash with today's parameters whose result nobody looks at: what a login for
/// an account that does not exist pays, so that it takes as long as a wrong password.
fn spend_one_verification_in(password: &[u8], area: &mut [Block]) {
    let mut out = [0u8; 32];
    let _ = hasher().hash_password_into_with_memory(password, DUMMY_SALT, &mut out, area);
}

/// A work area for today's parameters (19 MiB).
fn work_area() -> Vec<Block> {
    vec![Block::new(); params().block_count()]
}

/// Hashes with a fresh 16-byte salt from the OS random generator, in memory of its own.
pub fn hash(password: &str) -> String {
    hasher()
        .hash_password(password.as_bytes(), &fresh_salt())
        .expect("hashing with valid parameters cannot fail")
        .to_string()
}

/// Checks `password` against a stored PHC string, in memory of its own. A stored
/// value that is not a valid hash (a locked account, say) never matches, but still
/// costs one full verification, like a wrong password does.
pub fn verify(password: &str, stored: &str) -> bool {
    verify_in(password.as_bytes(), stored, &mut work_area())
}

/// True when the stored hash is weaker than what [`hash`] produces today.
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return true;
    };
    if parsed.algorithm != Algorithm::Argon2id.ident() {
        return true;
    }
    match Params::try_from(&parsed) {
        Ok(p) => p.m_cost() < MEMORY_KIB || p.t_cost() < ITERATIONS || p.p_cost() < PARALLELISM,
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_record_the_owasp_parameters_and_verify() {
        let stored = hash("correct horse battery staple");
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(verify("correct horse battery staple", &stored));
        assert!(!verify("correct horse battery stapler", &stored));
        assert!(!needs_rehash(&stored));
    }

    #[test]
    fn weaker_hashes_need_a_rehash() {
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8, 1, 1, None).unwrap())
            .hash_password(b"pw", &SaltString::encode_b64(b"0123456789abcdef").unwrap())
            .unwrap()
            .to_string();
        assert!(verify("pw", &weak), "old hashes keep working");
        assert!(needs_rehash(&weak));
    }

    #[test]
    fn a_locked_account_never_matches() {
        assert!(!verify("anything at all", "!seeded-account-no-password"));
    }

    fn budget(concurrency: usize, wait: Duration) -> Arc<Hashing> {
        Hashing::new(HashingLimits { concurrency, wait })
    }

    #[tokio::test]
    async fn the_budget_hashes_and_verifies_like_the_free_functions() {
        let hashing = budget(1, Duration::from_secs(30));
        let stored = hashing.hash("correct horse battery staple".into()).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(
            verify("correct horse battery staple", &stored),
            "the free verify agrees"
        );
        let pw = |s: &str| s.to_owned();
        assert!(
            hashing
                .verify(pw("correct horse battery staple"), stored.clone())
                .await
                .unwrap()
        );
        assert!(
            !hashing
                .verify(pw("correct horse battery stapler"), stored)
                .await
                .unwrap()
        );
        let elsewhere = hash("made by the free function");
        assert!(
            hashing
                .verify(pw("made by the free function"), elsewhere)
                .await
                .unwrap()
        );
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8, 1, 1, None).unwrap())
            .hash_password(b"pw", &SaltString::encode_b64(b"0123456789abcdef").unwrap())
            .unwrap()
            .to_string();
        assert!(
            hashing.verify(pw("pw"), weak.clone()).await.unwrap(),
            "smaller work areas"
        );
        assert!(!hashing.verify(pw("px"), weak).await.unwrap());
        let stronger = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(MEMORY_KIB * 2, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw", &SaltString::encode_b64(b"0123456789abcdef").unwrap())
        .unwrap()
        .to_string();
        assert!(hashing.verify(pw("pw"), stronger).await.unwrap(), "larger work areas");
        assert!(!hashing.verify(pw("pw"), "!locked".into()).await.unwrap());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn no_more_hashes_run_at_once_than_the_budget_allows() {
        let hashing = budget(2, Duration::from_secs(60));
        let tasks: Vec<_> = (0..12)
            .map(|i| {
                let hashing = hashing.clone();
                tokio::spawn(async move { hashing.spend_one_verification(format!("password {i}")).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(hashing.peak_in_flight(), 2, "the bound was reached and never passed");
        assert_eq!(hashing.in_flight(), 0);
        let areas = hashing.areas.lock().unwrap().len();
        assert_eq!(areas, 2, "one work area per slot, reused");
    }

    #[tokio::test]
    async fn a_request_that_cannot_get_a_slot_in_time_is_refused() {
        let hashing = budget(1, Duration::from_millis(1));
        let (first, second) = tokio::join!(
            hashing.spend_one_verification("first".into()),
            hashing.spend_one_verification("second".into())
        );
        assert!(first.is_ok());
        assert!(matches!(second, Err(ServiceError::Busy(_))), "{second:?}");
    }
}
