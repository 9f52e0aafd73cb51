//! Webhook settings and keys of a trigger.

use crate::{
    KeyRow, NewKey, ReceiverTarget, Store, StoreError, WebhookRow, any_row, in_transaction, on_pool, on_writer,
};
use inlet_core::clock::now_micros;

/// Inserts a new key inside the transaction `$tx`.
macro_rules! insert_key {
    ($tx:ident, $trigger_ref:expr, $key:expr, $now:expr) => {
        sqlx::query(
            "INSERT INTO webhook_keys (id, trigger_ref, key_hash, key_sealed, prefix, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&$key.id)
        .bind($trigger_ref)
        .bind(&$key.key_hash)
        .bind(&$key.key_sealed)
        .bind(&$key.prefix)
        .bind($now)
        .execute(&mut *$tx)
        .await?
    };
}

macro_rules! select_keys {
    ($tail:literal) => {
        concat!(
            "SELECT id, trigger_ref, key_sealed, prefix, created_at, expires_at, revoked_at, last_used_at \
             FROM webhook_keys ",
            $tail
        )
    };
}

impl Store {
    pub async fn get_webhook(&self, trigger_ref: &str) -> Result<Option<WebhookRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT trigger_ref, enabled, settings, created_at, updated_at FROM webhook_settings WHERE trigger_ref = $1",
            )
            .bind(trigger_ref)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Turns the webhook on, creating its settings (from `default_settings`)
    /// and a key (`new_key`) only where none exist, so that re-enabling keeps
    /// both. Returns the current key.
    pub async fn enable_webhook(
        &self,
        trigger_ref: &str,
        default_settings: &str,
        new_key: &NewKey,
    ) -> Result<KeyRow, StoreError> {
        let now = now_micros();
        Ok(in_transaction!(self, |tx| {
            sqlx::query(
                "INSERT INTO webhook_settings (trigger_ref, enabled, settings, created_at, updated_at) \
                 VALUES ($1, TRUE, $2, $3, $3) \
                 ON CONFLICT (trigger_ref) DO UPDATE SET enabled = TRUE, updated_at = excluded.updated_at",
            )
            .bind(trigger_ref)
            .bind(default_settings)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let current: Option<KeyRow> = sqlx::query_as(select_keys!(
                "WHERE trigger_ref = $1 AND revoked_at IS NULL AND expires_at IS NULL ORDER BY created_at DESC LIMIT 1"
            ))
            .bind(trigger_ref)
            .fetch_optional(&mut *tx)
            .await?;
            match current {
                Some(key) => key,
                None => {
                    insert_key!(tx, trigger_ref, new_key, now);
                    sqlx::query_as(select_keys!("WHERE id = $1"))
                        .bind(&new_key.id)
                        .fetch_one(&mut *tx)
                        .await?
                }
            }
        }))
    }

    pub async fn set_webhook_enabled(&self, trigger_ref: &str, enabled: bool) -> Result<(), StoreError> {
        let done = on_writer!(self, |pool| {
            sqlx::query("UPDATE webhook_settings SET enabled = $2, updated_at = $3 WHERE trigger_ref = $1")
                .bind(trigger_ref)
                .bind(enabled)
                .bind(now_micros())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        any_row(done)
    }

    pub async fn update_webhook_settings(&self, trigger_ref: &str, settings: &str) -> Result<(), StoreError> {
        let done = on_writer!(self, |pool| {
            sqlx::query("UPDATE webhook_settings SET settings = $2, updated_at = $3 WHERE trigger_ref = $1")
                .bind(trigger_ref)
                .bind(settings)
                .bind(now_micros())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        any_row(done)
    }

    /// Adds `new_key` as the current key. Older keys are revoked now, or,
    /// with a grace period, expire at `grace_until` (never later than they
    /// already would).
    pub async fn rotate_key(
        &self,
        trigger_ref: &str,
        new_key: &NewKey,
        grace_until: Option<i64>,
    ) -> Result<KeyRow, StoreError> {
        let now = now_micros();
        Ok(in_transaction!(self, |tx| {
            match grace_until {
                Some(until) => {
                    sqlx::query(
                        "UPDATE webhook_keys SET expires_at = $2 WHERE trigger_ref = $1 AND revoked_at IS NULL \
                         AND (expires_at IS NULL OR expires_at > $2)",
                    )
                    .bind(trigger_ref)
                    .bind(until)
                    .execute(&mut *tx)
                    .await?
                }
                None => {
                    sqlx::query("UPDATE webhook_keys SET revoked_at = $2 WHERE trigger_ref = $1 AND revoked_at IS NULL")
                        .bind(trigger_ref)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?
                }
            };
            insert_key!(tx, trigger_ref, new_key, now);
            sqlx::query_as(select_keys!("WHERE id = $1"))
                .bind(&new_key.id)
                .fetch_one(&mut *tx)
                .await?
        }))
    }

    /// Keys that still open the webhook at `now`, newest first.
    pub async fn live_keys(&self, trigger_ref: &str, now: i64) -> Result<Vec<KeyRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(select_keys!(
                "WHERE trigger_ref = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) \
                 ORDER BY created_at DESC"
            ))
            .bind(trigger_ref)
            .bind(now)
            .fetch_all(pool)
            .await
        })?)
    }

    /// The receiver's lookup: an unrevoked key with its trigger's settings.
    pub async fn receiver_target(&self, key_hash: &[u8]) -> Result<Option<ReceiverTarget>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT k.id AS key_id, k.trigger_ref, k.prefix, k.expires_at, s.enabled, s.settings, t.payload_schema \
                 FROM webhook_keys k \
                 JOIN webhook_settings s ON s.trigger_ref = k.trigger_ref \
                 JOIN triggers t ON t.ref = k.trigger_ref \
                 WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
            )
            .bind(key_hash)
            .fetch_optional(pool)
            .await
        })?)
    }

    /// Events received on a trigger, and when any of its keys was last used.
    pub async fn webhook_usage(&self, trigger_ref: &str) -> Result<(i64, Option<i64>), StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT (SELECT COUNT(*) FROM events WHERE trigger_ref = $1), \
                        (SELECT MAX(last_used_at) FROM webhook_keys WHERE trigger_ref = $1)",
            )
            .bind(trigger_ref)
            .fetch_one(pool)
            .await
        })?)
    }
}
