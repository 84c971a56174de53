//! Password hashing with Argon2id at the OWASP minimum (19 MiB, 2 iterations,
//! parallelism 1), stored as a PHC string that records its own parameters — which is
//! what lets [`needs_rehash`] upgrade old hashes at the next successful login.
//!
//! Hashing costs tens of milliseconds of CPU, so callers run it on the blocking
//! pool, never on an async worker.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MEMORY_KIB: u32 = 19 * 1024;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes with a fresh 16-byte salt from the OS random generator.
pub fn hash(password: &str) -> String {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the OS random generator is available");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes make a valid salt");
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("hashing with valid parameters cannot fail")
        .to_string()
}

/// Checks `password` against a stored PHC string. A stored value that is not a
/// valid hash (a locked account, say) never matches, but still costs one full
/// verification, like a wrong password does.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => {
            spend_one_verification(password);
            false
        }
    }
}

/// Does the work of one verification against a hash nobody's password matches, so
/// that "no such account" takes as long as "wrong password".
pub fn spend_one_verification(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash("an unguessable dummy password that matches nothing"));
    if let Ok(parsed) = PasswordHash::new(dummy) {
        let _ = Argon2::default().verify_password(password.as_bytes(), &parsed);
    }
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
}
