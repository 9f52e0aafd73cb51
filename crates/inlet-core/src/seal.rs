//! Sealing secrets at rest with XChaCha20-Poly1305 under the master key.
//! A random 24-byte nonce is stored in front of each ciphertext.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngExt;

const NONCE_LEN: usize = 24;
pub const MASTER_KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SealError {
    #[error("master key must be 32 bytes, given as 64 hex characters or base64")]
    BadMasterKey,
    #[error("sealed value could not be opened: wrong master key or corrupted data")]
    Open,
}

#[derive(Clone)]
pub struct MasterKey {
    cipher: XChaCha20Poly1305,
}

impl MasterKey {
    pub fn generate() -> ([u8; MASTER_KEY_LEN], Self) {
        let mut bytes = [0u8; MASTER_KEY_LEN];
        rand::rng().fill(&mut bytes[..]);
        (bytes, Self::from_bytes(&bytes).expect("32 bytes"))
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, SealError> {
        if bytes.len() != MASTER_KEY_LEN {
            return Err(SealError::BadMasterKey);
        }
        let cipher = XChaCha20Poly1305::new_from_slice(bytes).map_err(|_| SealError::BadMasterKey)?;
        Ok(Self { cipher })
    }

    /// Accepts the key as 64 hex characters or as base64 of 32 bytes.
    pub fn parse(text: &str) -> Result<Self, SealError> {
        let text = text.trim();
        let bytes = if text.len() == 2 * MASTER_KEY_LEN {
            hex::decode(text).map_err(|_| SealError::BadMasterKey)?
        } else {
            B64.decode(text).map_err(|_| SealError::BadMasterKey)?
        };
        Self::from_bytes(&bytes)
    }

    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill(&mut nonce[..]);
        let ciphertext = self
            .cipher
            .encrypt(&XNonce::from(nonce), plaintext)
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    pub fn open(&self, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        if sealed.len() < NONCE_LEN {
            return Err(SealError::Open);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(&XNonce::try_from(nonce).map_err(|_| SealError::Open)?, ciphertext)
            .map_err(|_| SealError::Open)
    }

    /// Text form of a sealed secret, for storage inside JSON settings.
    pub fn seal_text(&self, plaintext: &str) -> String {
        B64.encode(self.seal(plaintext.as_bytes()))
    }

    pub fn open_text(&self, sealed: &str) -> Result<String, SealError> {
        let bytes = B64.decode(sealed).map_err(|_| SealError::Open)?;
        String::from_utf8(self.open(&bytes)?).map_err(|_| SealError::Open)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_hides_plaintext() {
        let (_, key) = MasterKey::generate();
        let sealed = key.seal(b"wh_secret");
        assert!(!sealed.windows(9).any(|w| w == b"wh_secret"));
        assert_eq!(key.open(&sealed).unwrap(), b"wh_secret");
        assert_ne!(key.seal(b"wh_secret"), sealed, "nonces differ");
        assert_eq!(key.open_text(&key.seal_text("abc")).unwrap(), "abc");
    }

    #[test]
    fn wrong_key_or_tampering_fails() {
        let (_, a) = MasterKey::generate();
        let (_, b) = MasterKey::generate();
        let mut sealed = a.seal(b"x");
        assert_eq!(b.open(&sealed), Err(SealError::Open));
        sealed[30] ^= 1;
        assert_eq!(a.open(&sealed), Err(SealError::Open));
        assert_eq!(a.open(b"short"), Err(SealError::Open));
    }

    #[test]
    fn parses_hex_and_base64() {
        let (bytes, _) = MasterKey::generate();
        assert!(MasterKey::parse(&hex::encode(bytes)).is_ok());
        assert!(MasterKey::parse(&B64.encode(bytes)).is_ok());
        assert!(MasterKey::parse("nope").is_err());
    }
}
