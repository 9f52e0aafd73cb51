//! A trigger's webhook settings: what the receiver checks before it accepts.

use serde::{Deserialize, Serialize};

pub const DEFAULT_MAX_PAYLOAD_BYTES: u64 = 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    pub max_payload_bytes: u64,
    pub dedup: bool,
    /// Upper-case HTTP methods the receiver accepts.
    pub methods: Vec<String>,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            max_payload_bytes: DEFAULT_MAX_PAYLOAD_BYTES,
            dedup: true,
            methods: vec!["POST".into()],
        }
    }
}

impl WebhookSettings {
    pub fn allows_method(&self, method: &str) -> bool {
        self.methods.iter().any(|m| m == method)
    }
}
