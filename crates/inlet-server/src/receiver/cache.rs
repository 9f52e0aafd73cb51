//! Key → settings cache, so the receiver's hot path does no query.
//! Local changes clear it at once; entries also expire after a short time so
//! that changes made by other nodes sharing PostgreSQL are seen quickly.

use inlet_core::settings::WebhookSettings;
use inlet_store::{Store, StoreError};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const MAX_ENTRIES: usize = 100_000;

/// A key's trigger and settings, parsed once.
#[derive(Debug)]
pub struct Target {
    pub key_id: String,
    pub trigger_ref: String,
    pub key_prefix: String,
    pub expires_at: Option<i64>,
    pub enabled: bool,
    pub settings: WebhookSettings,
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

    pub async fn get(&self, store: &Store, digest: &[u8; 32]) -> Result<Option<Arc<Target>>, StoreError> {
        if let Some((loaded, target)) = self.entries.read().expect("cache lock").get(digest)
            && loaded.elapsed() < self.ttl
        {
            return Ok(Some(target.clone()));
        }
        let Some(row) = store.receiver_target(digest).await? else {
            return Ok(None);
        };
        let settings: WebhookSettings = serde_json::from_str(&row.settings)
            .map_err(|e| StoreError::Corrupt(format!("webhook settings of {}: {e}", row.trigger_ref)))?;
        let target = Arc::new(Target {
            key_id: row.key_id,
            trigger_ref: row.trigger_ref,
            key_prefix: row.prefix,
            expires_at: row.expires_at,
            enabled: row.enabled,
            settings,
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
