//! Key → settings cache, so the receiver's hot path does no query and no
//! per-request parsing: settings are parsed, secrets opened and the verifier
//! compiled once per load. Local changes clear it at once; entries also
//! expire after a short time so that changes made by other nodes sharing
//! PostgreSQL are seen quickly.

use super::shape::Shaping;
use inlet_core::seal::MasterKey;
use inlet_core::settings::WebhookSettings;
use inlet_core::verify::{Scheme, Verifier};
use inlet_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const MAX_ENTRIES: usize = 100_000;

/// A key's trigger and settings, ready for the hot path.
pub struct Target {
    pub key_id: String,
    pub trigger_ref: String,
    pub key_prefix: String,
    pub expires_at: Option<i64>,
    pub enabled: bool,
    pub settings: WebhookSettings,
    pub verifier: Option<Verifier>,
    pub shaping: Shaping,
    /// Headers and query parameters that carry this trigger's shared secret,
    /// never stored.
    pub secret_headers: Vec<String>,
    pub secret_query_param: Option<String>,
}

/// Key digest → (when loaded, target).
type Entries = HashMap<[u8; 32], (Instant, Arc<Target>)>;

pub struct TargetCache {
    entries: RwLock<Entries>,
    ttl: Duration,
}

impl TargetCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            ttl,
        }
    }

    pub async fn get(
        &self,
        store: &Store,
        master_key: &MasterKey,
        digest: &[u8; 32],
    ) -> Result<Option<Arc<Target>>, StoreError> {
        if let Some((loaded, target)) = self.entries.read().expect("cache lock").get(digest)
            && loaded.elapsed() < self.ttl
        {
            return Ok(Some(target.clone()));
        }
        let Some(row) = store.receiver_target(digest).await? else {
            return Ok(None);
        };
        let corrupt = |what: String| StoreError::Corrupt(format!("webhook settings of {}: {what}", row.trigger_ref));
        let stored: WebhookSettings = serde_json::from_str(&row.settings).map_err(|e| corrupt(e.to_string()))?;
        let settings = stored.opened(master_key).map_err(|e| corrupt(e.to_string()))?;
        let verifier = settings
            .verification
            .as_ref()
            .map(|v| v.compile())
            .transpose()
            .map_err(|e| corrupt(e.to_string()))?;
        let shaping = Shaping::compile(row.payload_schema.as_deref(), &settings).map_err(corrupt)?;
        let (secret_headers, secret_query_param) = secret_carriers(&settings);
        let target = Arc::new(Target {
            key_id: row.key_id,
            trigger_ref: row.trigger_ref,
            key_prefix: row.prefix,
            expires_at: row.expires_at,
            enabled: row.enabled,
            settings,
            verifier,
            shaping,
            secret_headers,
            secret_query_param,
        });
        let mut entries = self.entries.write().expect("cache lock");
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(*digest, (Instant::now(), target.clone()));
        Ok(Some(target))
    }

    pub fn invalidate_all(&self) {
        self.entries.write().expect("cache lock").clear();
    }
}

/// Where the token schemes carry the secret verbatim.
fn secret_carriers(settings: &WebhookSettings) -> (Vec<String>, Option<String>) {
    let Some(v) = &settings.verification else {
        return (Vec::new(), None);
    };
    match v.scheme {
        Scheme::Token => (
            v.header.iter().map(|h| h.to_ascii_lowercase()).collect(),
            v.query_param.clone(),
        ),
        Scheme::Okta => (
            vec![v.header.as_deref().unwrap_or("authorization").to_ascii_lowercase()],
            None,
        ),
        _ => (Vec::new(), None),
    }
}
