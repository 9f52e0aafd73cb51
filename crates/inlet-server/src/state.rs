use crate::receiver::cache::TargetCache;
use crate::receiver::limits::Limiters;
use inlet_core::net::TrustedProxies;
use inlet_core::seal::MasterKey;
use inlet_engine::EngineHandle;
use inlet_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub master_key: MasterKey,
    /// Base of handed-out webhook URLs, no trailing slash.
    pub public_base_url: Arc<str>,
    pub targets: Arc<TargetCache>,
    pub limits: Arc<Limiters>,
    pub trusted_proxies: Arc<TrustedProxies>,
    pub body_timeout: Duration,
    pub engine: EngineHandle,
}

impl AppState {
    /// Commits a received request (group commit), then wakes the engine when the
    /// new event has rules to evaluate.
    pub async fn record_request(
        &self,
        record: inlet_store::ReceiveRecord,
    ) -> Result<inlet_store::Receipt, inlet_store::StoreError> {
        let receipt = self.store.record_request(record).await?;
        if receipt.awaits_rules {
            self.engine.notify();
        }
        Ok(receipt)
    }

    pub fn webhook_url(&self, key: &str) -> String {
        format!("{}/api/v1/webhooks/{key}", self.public_base_url)
    }
}
