//! Rules and actions: their specs (JSON, as the API and packs give them) with the
//! columns the engine looks them up by.

use crate::{Store, StoreError, on_pool, on_writer};
use inlet_core::clock::now_micros;
use serde::Serialize;

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct ActionRow {
    #[sqlx(rename = "ref")]
    #[serde(rename = "ref")]
    pub action_ref: String,
    pub pack: String,
    /// `command` or `http`.
    pub runner: String,
    pub concurrency: Option<i64>,
    /// The spec as JSON. May hold a signing secret: show `ActionSpec::redacted` only.
    #[serde(skip)]
    pub spec: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewAction {
    pub action_ref: String,
    pub pack: String,
    pub runner: String,
    pub concurrency: Option<i64>,
    pub spec: String,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct RuleRow {
    #[sqlx(rename = "ref")]
    #[serde(rename = "ref")]
    pub rule_ref: String,
    pub pack: String,
    pub trigger_ref: String,
    pub action_ref: String,
    pub enabled: bool,
    #[serde(skip)]
    pub spec: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewRule {
    pub rule_ref: String,
    pub pack: String,
    pub trigger_ref: String,
    pub action_ref: String,
    pub enabled: bool,
    pub spec: String,
}

/// Changes whenever a rule or action is created, updated or deleted: the engine
/// compares it to know when its compiled cache is stale (also across nodes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AutomationVersion {
    pub rules: (i64, i64),
    pub actions: (i64, i64),
}

macro_rules! select_actions {
    ($tail:literal) => {
        concat!(
            "SELECT ref, pack, runner, concurrency, spec, created_at, updated_at FROM actions ",
            $tail
        )
    };
}

macro_rules! select_rules {
    ($tail:literal) => {
        concat!(
            "SELECT ref, pack, trigger_ref, action_ref, enabled, spec, created_at, updated_at FROM rules ",
            $tail
        )
    };
}

impl Store {
    pub async fn create_action(&self, a: &NewAction) -> Result<ActionRow, StoreError> {
        let now = now_micros();
        on_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO actions (ref, pack, runner, concurrency, spec, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind(&a.action_ref)
            .bind(&a.pack)
            .bind(&a.runner)
            .bind(a.concurrency)
            .bind(&a.spec)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::from_insert)?;
        self.get_action(&a.action_ref).await?.ok_or(StoreError::NotFound)
    }

    /// Creates or replaces an action (packs); returns whether it was new. An
    /// unchanged spec leaves the row (and its `updated_at`) alone.
    pub async fn upsert_action(&self, a: &NewAction) -> Result<bool, StoreError> {
        let existed = self.get_action(&a.action_ref).await?.is_some();
        on_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO actions (ref, pack, runner, concurrency, spec, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) \
                 ON CONFLICT (ref) DO UPDATE SET runner = excluded.runner, concurrency = excluded.concurrency, \
                 spec = excluded.spec, updated_at = excluded.updated_at WHERE actions.spec <> excluded.spec",
            )
            .bind(&a.action_ref)
            .bind(&a.pack)
            .bind(&a.runner)
            .bind(a.concurrency)
            .bind(&a.spec)
            .bind(now_micros())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(!existed)
    }

    pub async fn update_action(&self, a: &NewAction) -> Result<ActionRow, StoreError> {
        let done = on_writer!(self, |pool| {
            sqlx::query("UPDATE actions SET runner = $2, concurrency = $3, spec = $4, updated_at = $5 WHERE ref = $1")
                .bind(&a.action_ref)
                .bind(&a.runner)
                .bind(a.concurrency)
                .bind(&a.spec)
                .bind(now_micros())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_action(&a.action_ref).await?.ok_or(StoreError::NotFound)
    }

    pub async fn get_action(&self, action_ref: &str) -> Result<Option<ActionRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(select_actions!("WHERE ref = $1"))
                .bind(action_ref)
                .fetch_optional(pool)
                .await
        })?)
    }

    pub async fn list_actions(&self) -> Result<Vec<ActionRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(select_actions!("ORDER BY ref")).fetch_all(pool).await
        })?)
    }

    pub async fn delete_action(&self, action_ref: &str) -> Result<(), StoreError> {
        let done = on_writer!(self, |pool| {
            sqlx::query("DELETE FROM actions WHERE ref = $1")
                .bind(action_ref)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    pub async fn create_rule(&self, r: &NewRule) -> Result<RuleRow, StoreError> {
        let now = now_micros();
        on_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO rules (ref, pack, trigger_ref, action_ref, enabled, spec, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
            )
            .bind(&r.rule_ref)
            .bind(&r.pack)
            .bind(&r.trigger_ref)
            .bind(&r.action_ref)
            .bind(r.enabled)
            .bind(&r.spec)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::from_insert)?;
        self.get_rule(&r.rule_ref).await?.ok_or(StoreError::NotFound)
    }

    /// Creates or replaces a rule (packs); returns whether it was new.
    pub async fn upsert_rule(&self, r: &NewRule) -> Result<bool, StoreError> {
        let existed = self.get_rule(&r.rule_ref).await?.is_some();
        on_writer!(self, |pool| {
            sqlx::query(
                "INSERT INTO rules (ref, pack, trigger_ref, action_ref, enabled, spec, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (ref) DO UPDATE SET trigger_ref = excluded.trigger_ref, \
                 action_ref = excluded.action_ref, enabled = excluded.enabled, spec = excluded.spec, \
                 updated_at = excluded.updated_at WHERE rules.spec <> excluded.spec",
            )
            .bind(&r.rule_ref)
            .bind(&r.pack)
            .bind(&r.trigger_ref)
            .bind(&r.action_ref)
            .bind(r.enabled)
            .bind(&r.spec)
            .bind(now_micros())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        Ok(!existed)
    }

    pub async fn update_rule(&self, r: &NewRule) -> Result<RuleRow, StoreError> {
        let done = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE rules SET trigger_ref = $2, action_ref = $3, enabled = $4, spec = $5, updated_at = $6 \
                 WHERE ref = $1",
            )
            .bind(&r.rule_ref)
            .bind(&r.trigger_ref)
            .bind(&r.action_ref)
            .bind(r.enabled)
            .bind(&r.spec)
            .bind(now_micros())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_rule(&r.rule_ref).await?.ok_or(StoreError::NotFound)
    }

    pub async fn get_rule(&self, rule_ref: &str) -> Result<Option<RuleRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(select_rules!("WHERE ref = $1"))
                .bind(rule_ref)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// All rules, or those of one trigger.
    pub async fn list_rules(&self, trigger_ref: Option<&str>) -> Result<Vec<RuleRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(select_rules!("WHERE ($1 IS NULL OR trigger_ref = $1) ORDER BY ref"))
                .bind(trigger_ref)
                .fetch_all(pool)
                .await
        })?)
    }

    pub async fn delete_rule(&self, rule_ref: &str) -> Result<(), StoreError> {
        let done = on_writer!(self, |pool| {
            sqlx::query("DELETE FROM rules WHERE ref = $1")
                .bind(rule_ref)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// See [`AutomationVersion`]: two cheap aggregate queries.
    pub async fn automation_version(&self) -> Result<AutomationVersion, StoreError> {
        let (rules, actions): ((i64, i64), (i64, i64)) = on_pool!(self, |pool| {
            let rules = sqlx::query_as("SELECT COALESCE(MAX(updated_at), 0), COUNT(*) FROM rules")
                .fetch_one(pool)
                .await?;
            let actions = sqlx::query_as("SELECT COALESCE(MAX(updated_at), 0), COUNT(*) FROM actions")
                .fetch_one(pool)
                .await?;
            Ok::<_, sqlx::Error>((rules, actions))
        })?;
        Ok(AutomationVersion { rules, actions })
    }
}
