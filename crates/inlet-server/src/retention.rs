//! Purges request-log rows older than the configured retention, hourly.

use inlet_core::clock::now_micros;
use inlet_store::Store;
use std::time::Duration;
use tokio::sync::watch;

const PERIOD: Duration = Duration::from_secs(3600);

/// Rows deleted per statement. On SQLite a statement holds the database's
/// write lock for as long as it runs, and received requests wait for it: a
/// day's log deleted at once would stall them for seconds.
const CHUNK: i64 = 1_000;

/// Between two statements: longer than the early steps of SQLite's busy wait
/// (1 to 25 ms), so a writer that found the lock taken gets it before the next.
const PAUSE: Duration = Duration::from_millis(30);

pub async fn purge_periodically(store: Store, retention_days: u32, mut stop: watch::Receiver<bool>) {
    let retention_us = i64::from(retention_days) * 86_400 * 1_000_000;
    loop {
        let Some(purged) = purge_before(&store, now_micros() - retention_us, PAUSE, &mut stop).await else {
            return;
        };
        if purged > 0 {
            tracing::info!(purged, "purged request-log rows past their retention");
        }
        tokio::select! {
            _ = tokio::time::sleep(PERIOD) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Deletes the rows logged before `cutoff`, a chunk at a time; how many, or
/// `None` when told to stop. A failed statement ends this round (the next
/// period tries again).
async fn purge_before(store: &Store, cutoff: i64, pause: Duration, stop: &mut watch::Receiver<bool>) -> Option<u64> {
    let mut purged = 0;
    loop {
        match store.purge_request_log(cutoff, CHUNK).await {
            Ok(deleted) => {
                purged += deleted;
                if deleted < CHUNK as u64 {
                    return Some(purged);
                }
            }
            Err(err) => {
                tracing::warn!(error = %err, purged, "request-log purge failed; will retry");
                return Some(purged);
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use inlet_core::time_id;
    use inlet_store::ReceiveRecord;
    use inlet_store::test_support::{each_backend, log_row};

    #[tokio::test]
    async fn purges_more_rows_than_one_statement_deletes_and_keeps_the_rest() {
        each_backend(|store| async move {
            let cutoff = 1_764_150_000_000_000;
            let old = CHUNK + 5;
            // `old` rows logged a millisecond apart before the cutoff, three after it;
            // sent together, so that they share commits.
            let writes = (0..old + 3).map(|i| {
                let at = if i < old {
                    cutoff - 1_000 * (i + 1)
                } else {
                    cutoff + 1_000 * i
                };
                let mut log = log_row(&time_id::made_at(at), "a.b");
                log.received_at = at;
                store.record_request(ReceiveRecord {
                    event: None,
                    log,
                    key_id: None,
                })
            });
            for written in futures_util::future::join_all(writes).await {
                written.unwrap();
            }
            let (_keep, mut stop) = watch::channel(false);
            let purged = purge_before(&store, cutoff, Duration::ZERO, &mut stop).await;
            assert_eq!(purged, Some(old as u64));
            assert_eq!(store.purge_request_log(i64::MAX, CHUNK).await.unwrap(), 3);
        })
        .await;
    }
}
