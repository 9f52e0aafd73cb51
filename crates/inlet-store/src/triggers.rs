use crate::{NewTrigger, Store, StoreError, TriggerRow, any_row, on_pool, on_writer};
use inlet_core::clock::now_micros;

macro_rules! select_triggers {
    ($tail:literal) => {
        concat!(
            "SELECT ref, pack, label, description, payload_schema, created_at, updated_at FROM triggers ",
            $tail
        )
    };
}

impl Store {
    pub async fn create_trigger(&self, t: &NewTrigger) -> Result<TriggerRow, StoreError> {
        let now = now_micros();
        on_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO triggers (ref, pack, label, description, payload_schema, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(&t.trigger_ref)
            .bind(&t.pack)
            .bind(&t.label)
            .bind(&t.description)
            .bind(&t.payload_schema)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::from_insert)?;
        self.get_trigger(&t.trigger_ref).await?.ok_or(StoreError::NotFound)
    }

    /// Creates or refreshes a trigger from a pack file; returns whether it was new.
    pub async fn upsert_trigger(&self, t: &NewTrigger) -> Result<bool, StoreError> {
        let now = now_micros();
        let existed = self.get_trigger(&t.trigger_ref).await?.is_some();
        on_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO triggers (ref, pack, label, description, payload_schema, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) \
                 ON CONFLICT (ref) DO UPDATE SET label = excluded.label, description = excluded.description, \
                 payload_schema = excluded.payload_schema, updated_at = excluded.updated_at \
                 WHERE triggers.label <> excluded.label OR triggers.description <> excluded.description \
                 OR triggers.payload_schema IS DISTINCT FROM excluded.payload_schema",
            )
            .bind(&t.trigger_ref)
            .bind(&t.pack)
            .bind(&t.label)
            .bind(&t.description)
            .bind(&t.payload_schema)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(!existed)
    }

    pub async fn get_trigger(&self, trigger_ref: &str) -> Result<Option<TriggerRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(select_triggers!("WHERE ref = $1"))
                .bind(trigger_ref)
                .fetch_optional(pool)
                .await
        })?)
    }

    pub async fn list_triggers(&self) -> Result<Vec<TriggerRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(select_triggers!("ORDER BY ref")).fetch_all(pool).await
        })?)
    }

    /// Replaces the editable fields; the ref and pack stay.
    pub async fn update_trigger(&self, t: &NewTrigger) -> Result<TriggerRow, StoreError> {
        let done = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE triggers SET label = $2, description = $3, payload_schema = $4, updated_at = $5 WHERE ref = $1",
            )
            .bind(&t.trigger_ref)
            .bind(&t.label)
            .bind(&t.description)
            .bind(&t.payload_schema)
            .bind(now_micros())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        any_row(done)?;
        self.get_trigger(&t.trigger_ref).await?.ok_or(StoreError::NotFound)
    }

    /// Deletes the trigger with its webhook settings and keys; its events stay as history.
    pub async fn delete_trigger(&self, trigger_ref: &str) -> Result<(), StoreError> {
        let done = on_writer!(self, |pool| {
            sqlx::query("DELETE FROM triggers WHERE ref = $1")
                .bind(trigger_ref)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        any_row(done)
    }
}
