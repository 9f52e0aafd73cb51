use crate::{EventRow, Store, StoreError, on_pool};

/// An event is stored already processed when its trigger has no enabled rule at
/// that moment: the evaluator would find nothing to do, and skipping it saves
/// reading the event back and rewriting its row. Decided inside the insert, so
/// a rule enabled concurrently either commits first (the event waits for the
/// evaluator) or after (the event predates the rule, as if evaluated at once).
/// Followed by the trigger ref's placeholder and `)`.
macro_rules! no_enabled_rule {
    () => {
        "NOT EXISTS (SELECT 1 FROM rules WHERE enabled = TRUE AND trigger_ref = "
    };
}
pub(crate) use no_enabled_rule;

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub trigger_ref: Option<String>,
    /// Only events older than this id (ids sort by creation time).
    pub before_id: Option<String>,
    pub limit: i64,
}

macro_rules! select_events {
    ($tail:literal) => {
        concat!(
            "SELECT id, trigger_ref, payload, metadata, source, delivery_id, processed, created_at FROM events ",
            $tail
        )
    };
}
pub(crate) use select_events;

impl Store {
    pub async fn get_event(&self, id: &str) -> Result<Option<EventRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(select_events!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Newest first.
    pub async fn list_events(&self, filter: &EventFilter) -> Result<Vec<EventRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(select_events!(
                "WHERE ($1 IS NULL OR trigger_ref = $1) AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"
            ))
            .bind(&filter.trigger_ref)
            .bind(&filter.before_id)
            .bind(filter.limit)
            .fetch_all(pool)
            .await
        })?)
    }
}
