//! Application-level encryption of sensitive columns (today: `profiles.phone`).
//!
//! Chosen over pgcrypto's `pgp_sym_encrypt` because there the key travels to the
//! database with every query and can surface in its logs and `pg_stat_activity`,
//! and because it must work on SQLite too. Here the plaintext and the key never
//! leave the process.
//!
//! XChaCha20-Poly1305 (AEAD) with a fresh random 192-bit nonce per write: nonces
//! that large are safe to draw at random however many values are written. The
//! owning row's id is the associated data, so a ciphertext copied onto another row
//! fails to decrypt instead of revealing someone else's number. The stored value is
//! `v1.<key id>.<base64url(nonce || ciphertext)>`; the key id lets keys rotate: the
//! first configured key encrypts, every configured key decrypts.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

const VERSION: &str = "v1";

/// The key used outside production when `ENCRYPTION_KEYS` is unset. It is published
/// in this source code, so it protects nothing: production refuses it under any id.
pub const DEVELOPMENT_KEYS: &str = "dev:Ym9va3dvcm0tZGV2ZWxvcG1lbnQta2V5LTMyYnl0ZXM=";
const DEVELOPMENT_KEY: &[u8; 32] = b"bookworm-development-key-32bytes";
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("expected `id:base64key` pairs separated by commas")]
    Format,
    #[error("key {0:?}: the id must be 1-32 letters, digits, '-' or '_'")]
    Id(String),
    #[error("key {0:?}: must be 32 bytes, base64-encoded")]
    Length(String),
    #[error("key id {0:?} appears twice")]
    Duplicate(String),
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecryptError {
    #[error("not a value written by this cipher")]
    Malformed,
    #[error("encrypted with unknown key {0:?}")]
    UnknownKey(String),
    #[error("authentication failed: wrong key, wrong row, or tampered value")]
    Authentication,
}

#[derive(Clone)]
pub struct FieldCipher {
    /// `keys[0]` encrypts; all decrypt.
    keys: Vec<(String, XChaCha20Poly1305)>,
    /// One of the keys is [`DEVELOPMENT_KEYS`]' key.
    includes_development_key: bool,
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|(id, _)| id.as_str()).collect();
        f.debug_struct("FieldCipher").field("key_ids", &ids).finish()
    }
}

impl FieldCipher {
    /// The configured key ids, the encrypting one first.
    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(id, _)| id.as_str()).collect()
    }

    /// Parses `id:base64key[,id:base64key...]`; the first key is the active one.
    pub fn from_config(spec: &str) -> Result<Self, KeyError> {
        let mut keys: Vec<(String, XChaCha20Poly1305)> = Vec::new();
        let mut includes_development_key = false;
        for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (id, encoded) = entry.split_once(':').ok_or(KeyError::Format)?;
            let valid_id = !id.is_empty()
                && id.len() <= 32
                && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid_id {
                return Err(KeyError::Id(id.to_owned()));
            }
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .or_else(|_| URL_SAFE_NO_PAD.decode(encoded.trim()))
                .map_err(|_| KeyError::Length(id.to_owned()))?;
            let key: [u8; 32] = bytes.try_into().map_err(|_| KeyError::Length(id.to_owned()))?;
            if keys.iter().any(|(existing, _)| existing == id) {
                return Err(KeyError::Duplicate(id.to_owned()));
            }
            includes_development_key |= &key == DEVELOPMENT_KEY;
            keys.push((id.to_owned(), XChaCha20Poly1305::new(&Key::from(key))));
        }
        if keys.is_empty() {
            return Err(KeyError::Format);
        }
        Ok(Self {
            keys,
            includes_development_key,
        })
    }

    /// True when any configured key is the published development key.
    pub fn includes_development_key(&self) -> bool {
        self.includes_development_key
    }

    pub fn active_key_id(&self) -> &str {
        &self.keys[0].0
    }

    pub fn encrypt(&self, plaintext: &str, row_id: &[u8]) -> String {
        let (key_id, cipher) = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random generator is available");
        let ciphertext = cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: row_id,
                },
            )
            .expect("encryption of a short value cannot fail");
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        format!("{VERSION}.{key_id}.{}", URL_SAFE_NO_PAD.encode(sealed))
    }

    pub fn decrypt(&self, stored: &str, row_id: &[u8]) -> Result<String, DecryptError> {
        let mut parts = stored.splitn(3, '.');
        let (Some(VERSION), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(DecryptError::Malformed);
        };
        let cipher = self
            .keys
            .iter()
            .find(|(id, _)| id == key_id)
            .map(|(_, c)| c)
            .ok_or_else(|| DecryptError::UnknownKey(key_id.to_owned()))?;
        let sealed = URL_SAFE_NO_PAD.decode(body).map_err(|_| DecryptError::Malformed)?;
        if sealed.len() <= NONCE_LEN {
            return Err(DecryptError::Malformed);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| DecryptError::Malformed)?;
        let plaintext = cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: row_id,
                },
            )
            .map_err(|_| DecryptError::Authentication)?;
        String::from_utf8(plaintext).map_err(|_| DecryptError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "k1:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    const K2: &str = "k2:HxwdHh8eHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQ=";

    #[test]
    fn round_trips_with_a_fresh_nonce_each_time() {
        let cipher = FieldCipher::from_config(K1).unwrap();
        let a = cipher.encrypt("+442079460958", b"row-1");
        let b = cipher.encrypt("+442079460958", b"row-1");
        assert_ne!(a, b, "same plaintext, different ciphertext");
        assert!(a.starts_with("v1.k1."));
        assert!(!a.contains("2079460958"));
        assert_eq!(cipher.decrypt(&a, b"row-1").unwrap(), "+442079460958");
    }

    #[test]
    fn a_ciphertext_moved_to_another_row_does_not_decrypt() {
        let cipher = FieldCipher::from_config(K1).unwrap();
        let sealed = cipher.encrypt("+442079460958", b"row-1");
        assert_eq!(cipher.decrypt(&sealed, b"row-2"), Err(DecryptError::Authentication));
    }

    #[test]
    fn tampering_is_detected() {
        let cipher = FieldCipher::from_config(K1).unwrap();
        let mut sealed = cipher.encrypt("+442079460958", b"row").into_bytes();
        let last = sealed.len() - 1;
        sealed[last] = if sealed[last] == b'A' { b'B' } else { b'A' };
        assert!(cipher.decrypt(std::str::from_utf8(&sealed).unwrap(), b"row").is_err());
    }

    #[test]
    fn keys_rotate_new_writes_use_the_first_old_values_still_read() {
        let old = FieldCipher::from_config(K1).unwrap();
        let written_before = old.encrypt("+15551234567", b"row");
        let rotated = FieldCipher::from_config(&format!("{K2},{K1}")).unwrap();
        assert_eq!(rotated.decrypt(&written_before, b"row").unwrap(), "+15551234567");
        assert!(rotated.encrypt("+15551234567", b"row").starts_with("v1.k2."));
        let without_old = FieldCipher::from_config(K2).unwrap();
        assert_eq!(
            without_old.decrypt(&written_before, b"row"),
            Err(DecryptError::UnknownKey("k1".into()))
        );
    }

    #[test]
    fn bad_key_configuration_is_explained() {
        assert_eq!(FieldCipher::from_config("").unwrap_err(), KeyError::Format);
        assert_eq!(FieldCipher::from_config("nokey").unwrap_err(), KeyError::Format);
        assert_eq!(
            FieldCipher::from_config("k1:c2hvcnQ=").unwrap_err(),
            KeyError::Length("k1".into())
        );
        assert_eq!(
            FieldCipher::from_config(&format!("{K1},{K1}")).unwrap_err(),
            KeyError::Duplicate("k1".into())
        );
        assert!(
            !format!("{:?}", FieldCipher::from_config(K1).unwrap()).contains("AAEC"),
            "keys never print"
        );
    }
}
