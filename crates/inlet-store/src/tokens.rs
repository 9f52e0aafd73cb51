//! Management API tokens, stored as SHA-256 digests only.

use crate::{Store, StoreError, TokenRow, any_row, on_pool, on_writer};
use inlet_core::clock::now_micros;

impl Store {
    pub async fn create_token(&self, id: &str, name: &str, token_hash: &[u8], prefix: &str) -> Result<(), StoreError> {
        on_writer!(self, |pool| {
            sqlx::query("INSERT INTO api_tokens (id, name, token_hash, prefix, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(id)
                .bind(name)
                .bind(token_hash)
                .bind(prefix)
                .bind(now_micros())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(StoreError::from_insert)?;
        Ok(())
    }

    pub async fn list_tokens(&self) -> Result<Vec<TokenRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY created_at",
            )
            .fetch_all(pool)
            .await
        })?)
    }

    pub async fn count_active_tokens(&self) -> Result<i64, StoreError> {
        let (count,): (i64,) = on_pool!(self, |pool| {
            sqlx::query_as("SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL")
                .fetch_one(pool)
                .await
        })?;
        Ok(count)
    }

    /// Revokes by id or by name; revoking twice is not an error.
    pub async fn revoke_token(&self, id_or_name: &str) -> Result<(), StoreError> {
        let done = on_writer!(self, |pool| {
            sqlx::query("UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 OR name = $1")
                .bind(id_or_name)
                .bind(now_micros())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        any_row(done)
    }

    /// The live token with this digest, if any.
    pub async fn find_token(&self, token_hash: &[u8]) -> Result<Option<TokenRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, name, prefix, created_at, last_used_at, revoked_at FROM api_tokens \
                 WHERE token_hash = $1 AND revoked_at IS NULL",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await
        })?)
    }
}
