use crate::{RequestLogRow, Store, StoreError, on_pool, on_writer};

#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub trigger_ref: Option<String>,
    pub outcome: Option<String>,
    pub before_id: Option<String>,
    pub limit: i64,
}

macro_rules! select_log {
    ($tail:literal) => {
        concat!(
            "SELECT id, trigger_ref, key_prefix, received_at, source_ip, method, path, query, headers, body, \
             body_truncated, outcome, status_code, message, processing_us, event_id FROM request_log ",
            $tail
        )
    };
}

impl Store {
    pub async fn get_request_log(&self, id: &str) -> Result<Option<RequestLogRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(select_log!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Newest first.
    pub async fn list_request_log(&self, filter: &LogFilter) -> Result<Vec<RequestLogRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(select_log!(
                "WHERE ($1 IS NULL OR trigger_ref = $1) AND ($2 IS NULL OR outcome = $2) \
                 AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
            ))
            .bind(&filter.trigger_ref)
            .bind(&filter.outcome)
            .bind(&filter.before_id)
            .bind(filter.limit)
            .fetch_all(pool)
            .await
        })?)
    }

    /// Removes request-log rows received before `cutoff`; returns how many.
    pub async fn purge_request_log(&self, cutoff: i64) -> Result<u64, StoreError> {
        let done = on_writer!(self, |pool| {
            sqlx::query("DELETE FROM request_log WHERE received_at < $1")
                .bind(cutoff)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(done)
    }
}
