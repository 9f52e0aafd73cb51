use crate::{RequestLogRow, Store, StoreError, on_pool, on_writer};
use inlet_core::time_id;

#[derive(Debug, Clone, Default)]
pub struct LogFilter {
    pub trigger_ref: Option<String>,
    pub outcome: Option<String>,
    pub before_id: Option<String>,
    pub limit: i64,
}

/// Log rows with the body of those that left it to their event (see
/// `stored_body`); `$tail` names the log's columns as `r.`.
macro_rules! select_log {
    ($tail:literal) => {
        concat!(
            "SELECT r.id, r.trigger_ref, r.key_prefix, r.received_at, r.source_ip, r.method, r.path, r.query, \
             r.headers, r.body, r.body_truncated, r.outcome, r.status_code, r.message, r.processing_us, r.event_id, \
             e.payload AS event_payload FROM request_log r LEFT JOIN events e ON r.body_in_event AND e.id = r.event_id ",
            $tail
        )
    };
}
pub(crate) use select_log;

/// A log row as read: the body may be its event's payload.
#[derive(sqlx::FromRow)]
pub(crate) struct StoredLogRow {
    #[sqlx(flatten)]
    log: RequestLogRow,
    event_payload: Option<String>,
}

impl From<StoredLogRow> for RequestLogRow {
    fn from(stored: StoredLogRow) -> Self {
        let mut log = stored.log;
        if let Some(payload) = stored.event_payload {
            log.body = payload.into_bytes();
        }
        log
    }
}

impl Store {
    pub async fn get_request_log(&self, id: &str) -> Result<Option<RequestLogRow>, StoreError> {
        let row: Option<StoredLogRow> = on_pool!(self, |pool| {
            sqlx::query_as(select_log!("WHERE r.id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(row.map(RequestLogRow::from))
    }

    /// Newest first.
    pub async fn list_request_log(&self, filter: &LogFilter) -> Result<Vec<RequestLogRow>, StoreError> {
        let rows: Vec<StoredLogRow> = on_pool!(self, |pool| {
            sqlx::query_as(select_log!(
                "WHERE ($1 IS NULL OR r.trigger_ref = $1) AND ($2 IS NULL OR r.outcome = $2) \
                 AND ($3 IS NULL OR r.id < $3) ORDER BY r.id DESC LIMIT $4"
            ))
            .bind(&filter.trigger_ref)
            .bind(&filter.outcome)
            .bind(&filter.before_id)
            .bind(filter.limit)
            .fetch_all(pool)
            .await
        })?;
        Ok(rows.into_iter().map(RequestLogRow::from).collect())
    }

    /// Removes up to `limit` of the oldest request-log rows logged before
    /// `cutoff`; returns how many. A row is logged when its request has been
    /// read, so its id's time is at or a little after its `received_at`: the
    /// id range finds the rows through the key's index.
    pub async fn purge_request_log(&self, cutoff: i64, limit: i64) -> Result<u64, StoreError> {
        let done = on_writer!(self, |pool| {
            sqlx::query(
                "DELETE FROM request_log WHERE id IN \
                 (SELECT id FROM request_log WHERE id < $1 ORDER BY id LIMIT $2)",
            )
            .bind(time_id::floor(cutoff))
            .bind(limit)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(done)
    }
}
