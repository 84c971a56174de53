//! Opaque bearer tokens: 256 bits from the OS random generator, shown to the client
//! once, stored only as a SHA-256 hex digest. A database leak therefore yields no
//! usable credentials, and since the token itself carries no claims, revocation is a
//! single UPDATE — the reason this design was chosen over stateless JWTs.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

const PREFIX: &str = "bw_";
const RANDOM_BYTES: usize = 32;

/// A freshly generated token: `secret` goes to the client, `hash` to the database.
pub struct NewToken {
    pub secret: String,
    pub hash: String,
}

pub fn generate() -> NewToken {
    let mut bytes = [0u8; RANDOM_BYTES];
    getrandom::fill(&mut bytes).expect("the OS random generator is available");
    let secret = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = digest(&secret);
    NewToken { secret, hash }
}

/// The stored form of a presented token, or `None` when it cannot be one of ours
/// (wrong prefix, length or alphabet) — rejected without touching the database.
pub fn hash_presented(token: &str) -> Option<String> {
    let body = token.strip_prefix(PREFIX)?;
    let decoded = URL_SAFE_NO_PAD.decode(body).ok()?;
    (decoded.len() == RANDOM_BYTES).then(|| digest(token))
}

fn digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_only_their_hash_is_kept() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.hash.len(), 64);
        assert!(!a.hash.contains(&a.secret));
        assert_eq!(hash_presented(&a.secret), Some(a.hash));
    }

    #[test]
    fn malformed_tokens_are_rejected_up_front() {
        for bad in [
            "",
            "bw_",
            "bw_short",
            "xx_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "bw_!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert_eq!(hash_presented(bad), None, "{bad:?}");
        }
    }
}
