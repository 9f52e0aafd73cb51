//! Purges request-log rows older than the configured retention, hourly.

use inlet_core::clock::now_micros;
use inlet_store::Store;
use std::time::Duration;
use tokio::sync::watch;

const PERIOD: Duration = Duration::from_secs(3600);

pub async fn purge_periodically(store: Store, retention_days: u32, mut stop: watch::Receiver<bool>) {
    let retention_us = i64::from(retention_days) * 86_400 * 1_000_000;
    loop {
        match store.purge_request_log(now_micros() - retention_us).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "purged request-log rows past their retention"),
            Err(err) => tracing::warn!(error = %err, "request-log purge failed; will retry"),
        }
        tokio::select! {
            _ = tokio::time::sleep(PERIOD) => {}
            _ = stop.changed() => return,
        }
    }
}
