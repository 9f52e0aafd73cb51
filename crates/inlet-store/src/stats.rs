//! Request-log statistics for one trigger: counts per time bucket and
//! outcome, and when its last request arrived.

use crate::{Store, StoreError, on_pool};
use inlet_core::time_id;

/// Requests of one outcome received in one time bucket.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutcomeBucket {
    /// `received_at / bucket_micros`: the bucket's start is `bucket * bucket_micros`.
    pub bucket: i64,
    pub outcome: String,
    pub count: i64,
}

impl Store {
    /// Counts of the trigger's request-log rows received at or after `since`,
    /// grouped by `bucket_micros`-wide time buckets and outcome.
    pub async fn request_log_buckets(
        &self,
        trigger_ref: &str,
        since: i64,
        bucket_micros: i64,
    ) -> Result<Vec<OutcomeBucket>, StoreError> {
        if bucket_micros <= 0 {
            return Err(StoreError::Config("bucket width must be positive".into()));
        }
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT received_at / $3 AS bucket, outcome, COUNT(*) AS count FROM request_log \
                 WHERE trigger_ref = $1 AND id >= $4 AND received_at >= $2 GROUP BY 1, 2 ORDER BY 1, 2",
            )
            .bind(trigger_ref)
            .bind(since)
            .bind(bucket_micros)
            // A row is logged after it was received: no row received since
            // `since` has an id below the floor, and the trigger's index
            // skips the rows before it.
            .bind(time_id::floor(since))
            .fetch_all(pool)
            .await
        })?)
    }

    /// When the trigger's most recently logged request arrived, if any is kept.
    pub async fn last_request_at(&self, trigger_ref: &str) -> Result<Option<i64>, StoreError> {
        // The highest id is the last row logged: one step down the trigger's
        // index, where the largest `received_at` would read all its rows.
        let at: Option<(i64,)> = on_pool!(self, |pool| {
            sqlx::query_as("SELECT received_at FROM request_log WHERE trigger_ref = $1 ORDER BY id DESC LIMIT 1")
                .bind(trigger_ref)
                .fetch_optional(pool)
                .await
        })?;
        Ok(at.map(|(at,)| at))
    }
}

#[cfg(test)]
mod tests {
    use crate::test_support::{each_backend, log_row};
    use crate::{ReceiveRecord, RequestLogRow};
    use inlet_core::time_id;

    const HOUR: i64 = 3_600_000_000;

    #[tokio::test]
    async fn buckets_count_by_hour_and_outcome() {
        each_backend(|store| async move {
            let rows = [
                ("a.b", 10 * HOUR + 5, "accepted"),
                ("a.b", 10 * HOUR + 7, "accepted"),
                ("a.b", 10 * HOUR + 9, "bad_signature"),
                ("a.b", 12 * HOUR, "accepted"),
                ("a.b", 2 * HOUR, "accepted"),  // before `since`
                ("c.d", 10 * HOUR, "accepted"), // another trigger
            ];
            for (trigger_ref, at, outcome) in rows {
                store
                    .record_request(ReceiveRecord {
                        event: None,
                        log: RequestLogRow {
                            received_at: at,
                            outcome: outcome.into(),
                            ..log_row(&time_id::made_at(at), trigger_ref)
                        },
                        key_id: None,
                    })
                    .await
                    .unwrap();
            }
            let buckets = store.request_log_buckets("a.b", 5 * HOUR, HOUR).await.unwrap();
            let got: Vec<(i64, &str, i64)> = buckets
                .iter()
                .map(|b| (b.bucket, b.outcome.as_str(), b.count))
                .collect();
            assert_eq!(
                got,
                vec![(10, "accepted", 2), (10, "bad_signature", 1), (12, "accepted", 1)]
            );
            assert_eq!(store.last_request_at("a.b").await.unwrap(), Some(12 * HOUR));
            assert_eq!(store.last_request_at("x.y").await.unwrap(), None);
            assert!(store.request_log_buckets("a.b", 0, 0).await.is_err());
        })
        .await;
    }
}
