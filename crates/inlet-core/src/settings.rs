//! A trigger's webhook settings: what the receiver checks before it accepts.

use crate::expr::Mapping;
use crate::net::Cidr;
use crate::rate_limit::RateLimit;
use crate::seal::{MasterKey, SealError};
use crate::verify::{Scheme, VerificationConfig, is_masked_secret};
use serde::{Deserialize, Serialize};

pub const DEFAULT_MAX_PAYLOAD_BYTES: u64 = 1024 * 1024;
/// The most a trigger may accept in one request.
pub const MAX_PAYLOAD_LIMIT: u64 = 64 * 1024 * 1024;
pub const KNOWN_METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE"];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Signature scheme and secrets; `None` checks nothing.
    pub verification: Option<VerificationConfig>,
    /// Allowed client blocks; empty allows any client.
    pub ip_allowlist: Vec<Cidr>,
    pub rate_limit: Option<RateLimit>,
    pub max_payload_bytes: u64,
    pub dedup: bool,
    /// Upper-case HTTP methods the receiver accepts.
    pub methods: Vec<String>,
    /// What the event keeps of the body (the request log keeps it whole).
    pub mapping: Mapping,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            verification: None,
            ip_allowlist: Vec::new(),
            rate_limit: None,
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            dedup: true,
            methods: vec!["POST".into()],
            mapping: Mapping::PassThrough,
        }
    }
}

/// A setting refused, naming the field and the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct SettingsError {
    pub field: String,
    pub message: String,
}

impl SettingsError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl WebhookSettings {
    pub fn allows_method(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
    }

    /// Checks every field; the verification config is compiled to prove it works.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if let Some(limit) = self.rate_limit {
            if limit.requests == 0 {
                return Err(SettingsError::new("rate_limit.requests", "must be at least 1, got 0"));
            }
            if limit.window_seconds == 0 {
                return Err(SettingsError::new(
                    "rate_limit.window_seconds",
                    "must be at least 1, got 0",
                ));
            }
        }
        if self.max_payload_bytes == 0 || self.max_payload_bytes > MAX_PAYLOAD_LIMIT {
            return Err(SettingsError::new(
                "max_payload_bytes",
                format!(
                    "must be between 1 and {MAX_PAYLOAD_LIMIT}, got {}",
                    self.max_payload_bytes
                ),
            ));
        }
        if self.methods.is_empty() {
            return Err(SettingsError::new("methods", "must list at least one method"));
        }
        for (i, method) in self.methods.iter().enumerate() {
            if !KNOWN_METHODS.contains(&method.as_str()) {
                return Err(SettingsError::new(
                    format!("methods[{i}]"),
                    format!("{method:?} is not one of {}", KNOWN_METHODS.join(", ")),
                ));
            }
        }
        self.mapping
            .compile()
            .map_err(|e| SettingsError::new("mapping", e.to_string()))?;
        if let Some(verification) = &self.verification {
            verification
                .compile()
                .map_err(|e| SettingsError::new(e.field.clone(), e.message.clone()))?;
        }
        Ok(())
    }

    /// The form kept in the store: every secret sealed under the master key.
    pub fn sealed(&self, key: &MasterKey) -> WebhookSettings {
        self.map_secrets(|s| Ok(key.seal_text(s))).expect("sealing cannot fail")
    }

    /// Reverses [`WebhookSettings::sealed`].
    pub fn opened(&self, key: &MasterKey) -> Result<WebhookSettings, SealError> {
        self.map_secrets(|s| key.open_text(s))
    }

    fn map_secrets(&self, f: impl Fn(&str) -> Result<String, SealError>) -> Result<WebhookSettings, SealError> {
        let mut out = self.clone();
        if let Some(v) = &mut out.verification {
            v.secrets = v.secrets.iter().map(|s| f(s)).collect::<Result<_, _>>()?;
        }
        Ok(out)
    }

    /// Secrets sent back masked (as `GET` shows them) mean "keep the stored
    /// one": replaces each with the secret it masks in `current`.
    pub fn unmask_secrets(&mut self, current: &WebhookSettings) -> Result<(), SettingsError> {
        let Some(next) = &mut self.verification else {
            return Ok(());
        };
        let (stored, shown) = match &current.verification {
            Some(v) => (v.secrets.clone(), v.masked().secrets),
            None => (Vec::new(), Vec::new()),
        };
        for (i, secret) in next.secrets.iter_mut().enumerate() {
            if !is_masked_secret(secret) {
                continue;
            }
            let found = shown.iter().position(|m| m == secret).ok_or_else(|| {
                SettingsError::new(
                    format!("verification.secrets[{i}]"),
                    format!("{secret:?} is a masked value that matches no configured secret"),
                )
            })?;
            *secret = stored[found].clone();
        }
        Ok(())
    }

    /// For display: secrets masked.
    pub fn masked(&self) -> WebhookSettings {
        let mut out = self.clone();
        out.verification = out.verification.map(|v| v.masked());
        out
    }
}

/// A new strong secret in the form the scheme's provider uses; `None` for
/// schemes verified with a public key.
pub fn generate_secret(scheme: Scheme) -> Option<String> {
    use base64::Engine;
    use rand::RngExt;
    match scheme {
        Scheme::Discord | Scheme::Sendgrid => None,
        Scheme::StandardWebhooks => {
            let mut bytes = [0u8; 24];
            rand::rng().fill(&mut bytes[..]);
            Some(format!(
                "whsec_{}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            ))
        }
        Scheme::Stripe => Some(format!("whsec_{}", crate::keys::random_alphanumeric(32))),
        _ => Some(crate::keys::random_alphanumeric(40)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_compile_for_their_scheme() {
        for scheme in Scheme::ALL {
            let Some(secret) = generate_secret(scheme) else {
                assert!(scheme.uses_public_key());
                continue;
            };
            let mut config = VerificationConfig::new(scheme, vec![secret]);
            match scheme {
                Scheme::Hmac | Scheme::Token => config.header = Some("x-signature".into()),
                _ => {}
            }
            assert!(config.compile().is_ok(), "{scheme:?}: {:?}", config.compile().err());
        }
    }

    #[test]
    fn masked_secrets_sent_back_keep_the_stored_ones() {
        let current = WebhookSettings {
            verification: Some(VerificationConfig::new(
                Scheme::Github,
                vec!["first-secret-0123456789".into()],
            )),
            ..Default::default()
        };
        let mut next = current.masked();
        next.verification
            .as_mut()
            .unwrap()
            .secrets
            .push("second-secret-0123456789".into());
        next.unmask_secrets(&current).unwrap();
        assert_eq!(
            next.verification.unwrap().secrets,
            ["first-secret-0123456789", "second-secret-0123456789"]
        );
        let mut bogus = current.masked();
        bogus.verification.as_mut().unwrap().secrets =
            vec![current.masked().verification.unwrap().secrets[0].replace("6789", "0000")];
        assert_eq!(
            bogus.unmask_secrets(&current).unwrap_err().field,
            "verification.secrets[0]"
        );
    }

    #[test]
    fn defaults_validate_and_bad_values_name_their_field() {
        assert!(WebhookSettings::default().validate().is_ok());
        let mut s = WebhookSettings {
            rate_limit: Some(RateLimit {
                requests: 5,
                window_seconds: 0,
            }),
            ..Default::default()
        };
        assert_eq!(s.validate().unwrap_err().field, "rate_limit.window_seconds");
        s.rate_limit = None;
        s.methods = vec!["POST".into(), "BREW".into()];
        assert_eq!(s.validate().unwrap_err().field, "methods[1]");
        s.methods = vec!["POST".into()];
        s.verification = Some(VerificationConfig::new(Scheme::Github, vec![]));
        assert!(s.validate().unwrap_err().field.starts_with("verification"));
    }

    #[test]
    fn secrets_are_sealed_at_rest() {
        let (_, key) = MasterKey::generate();
        let s = WebhookSettings {
            verification: Some(VerificationConfig::new(
                Scheme::Github,
                vec!["topsecret-value-123".into()],
            )),
            ..Default::default()
        };
        let sealed = s.sealed(&key);
        assert!(!serde_json::to_string(&sealed).unwrap().contains("topsecret"));
        assert_eq!(sealed.opened(&key).unwrap(), s);
        assert!(!serde_json::to_string(&s.masked()).unwrap().contains("topsecret"));
    }
}
