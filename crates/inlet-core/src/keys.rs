//! Secret identifiers handed to people: webhook keys and API tokens.
//! Both are random strings from the OS's CSPRNG, stored only as SHA-256
//! digests for lookup, so a leaked database does not leak working URLs.

use rand::RngExt;
use sha2::{Digest, Sha256};
use std::fmt;

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const WEBHOOK_KEY_PREFIX: &str = "wh_";
const WEBHOOK_KEY_RANDOM_LEN: usize = 32;
const API_TOKEN_PREFIX: &str = "inlet_";
const API_TOKEN_RANDOM_LEN: usize = 40;
/// How much of a key may appear in logs and metadata: the fixed prefix plus a
/// few characters, enough to tell keys apart, far too little to guess one.
const DISPLAY_PREFIX_LEN: usize = 8;

pub fn random_alphanumeric(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())] as char)
        .collect()
}

fn is_alphanumeric_of_len(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// SHA-256 of a secret identifier: the only form the store keeps for lookup.
pub fn digest(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// `wh_` followed by 32 characters of `[A-Za-z0-9]`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookKey(String);

impl WebhookKey {
    pub fn generate() -> Self {
        Self(format!(
            "{WEBHOOK_KEY_PREFIX}{}",
            random_alphanumeric(WEBHOOK_KEY_RANDOM_LEN)
        ))
    }

    /// `None` for anything that is not shaped like a key, so malformed paths
    /// are answered without touching the store.
    pub fn parse(raw: &str) -> Option<Self> {
        let rest = raw.strip_prefix(WEBHOOK_KEY_PREFIX)?;
        is_alphanumeric_of_len(rest, WEBHOOK_KEY_RANDOM_LEN).then(|| Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> [u8; 32] {
        digest(&self.0)
    }

    pub fn display_prefix(&self) -> String {
        self.0[..DISPLAY_PREFIX_LEN].to_owned()
    }
}

impl fmt::Debug for WebhookKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookKey({}…)", self.display_prefix())
    }
}

/// A bearer token for the management API: `inlet_` + 40 alphanumerics.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn generate() -> Self {
        Self(format!(
            "{API_TOKEN_PREFIX}{}",
            random_alphanumeric(API_TOKEN_RANDOM_LEN)
        ))
    }

    /// Tokens seeded by an operator (`INLET_ADMIN_TOKEN`) need not follow our
    /// format, but must be long enough not to be guessed.
    pub fn from_operator(raw: &str) -> Result<Self, String> {
        if raw.len() < 20 || raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must be at least 20 characters, without spaces".into());
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> [u8; 32] {
        digest(&self.0)
    }

    pub fn display_prefix(&self) -> String {
        self.0.chars().take(DISPLAY_PREFIX_LEN + 2).collect()
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiToken({}…)", self.display_prefix())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = WebhookKey::generate();
        assert_eq!(key.expose().len(), 35);
        assert!(WebhookKey::parse(key.expose()).is_some());
        assert_ne!(key, WebhookKey::generate());
        assert_eq!(key.display_prefix().len(), 8);
        assert!(!format!("{key:?}").contains(key.expose()));
    }

    #[test]
    fn parse_refuses_anything_else() {
        for bad in [
            "",
            "wh_",
            "wh_short",
            "xx_abcdefghijklmnopqrstuvwxyz012345",
            "wh_abcdefghijklmnopqrstuvwxyz01234!",
            "wh_abcdefghijklmnopqrstuvwxyz0123456",
        ] {
            assert!(WebhookKey::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn tokens_are_hashed_for_lookup() {
        let token = ApiToken::generate();
        assert!(token.expose().starts_with("inlet_"));
        assert_eq!(token.digest(), digest(token.expose()));
        assert!(ApiToken::from_operator("short").is_err());
        assert!(ApiToken::from_operator("a-long-enough-operator-token").is_ok());
    }
}
