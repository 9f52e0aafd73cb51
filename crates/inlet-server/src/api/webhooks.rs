//! `/api/v1/triggers/{ref}/webhooks`: turn a trigger's webhook on and off,
//! rotate its key, and show its URL and usage.

use super::data;
use super::triggers::find;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use inlet_core::clock::{now_micros, rfc3339};
use inlet_core::keys::WebhookKey;
use inlet_core::settings::WebhookSettings;
use inlet_store::{KeyRow, NewKey};
use serde::Deserialize;
use serde_json::json;

/// Longest grace period an old key may keep working after rotation.
const MAX_GRACE_SECONDS: u64 = 7 * 24 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/triggers/{ref}/webhooks", get(show))
        .route("/api/v1/triggers/{ref}/webhooks/enable", post(enable))
        .route("/api/v1/triggers/{ref}/webhooks/disable", post(disable))
        .route("/api/v1/triggers/{ref}/webhooks/regenerate", post(regenerate))
}

fn new_key(state: &AppState) -> NewKey {
    let key = WebhookKey::generate();
    NewKey {
        id: uuid::Uuid::now_v7().to_string(),
        key_hash: key.digest().to_vec(),
        key_sealed: state.master_key.seal(key.expose().as_bytes()),
        prefix: key.display_prefix(),
    }
}

fn unseal(state: &AppState, key: &KeyRow) -> Result<String, ApiError> {
    let plain = state
        .master_key
        .open(&key.key_sealed)
        .map_err(|e| ApiError::Internal(format!("webhook key {}: {e}", key.id)))?;
    String::from_utf8(plain).map_err(|_| ApiError::Internal(format!("webhook key {} is not UTF-8", key.id)))
}

async fn enable(State(state): State<AppState>, Path(raw): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let trigger = find(&state, &raw).await?;
    let defaults = serde_json::to_string(&WebhookSettings::default()).expect("settings serialize");
    let key = state
        .store
        .enable_webhook(&trigger.trigger_ref, &defaults, &new_key(&state))
        .await?;
    state.targets.invalidate_all();
    let plain = unseal(&state, &key)?;
    Ok(data(json!({
        "ref": trigger.trigger_ref,
        "webhook_enabled": true,
        "webhook_key": plain,
        "webhook_url": state.webhook_url(&plain),
    })))
}

async fn disable(State(state): State<AppState>, Path(raw): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let trigger = find(&state, &raw).await?;
    state
        .store
        .set_webhook_enabled(&trigger.trigger_ref, false)
        .await
        .map_err(|_| not_enabled(&trigger.trigger_ref))?;
    state.targets.invalidate_all();
    Ok(data(json!({"ref": trigger.trigger_ref, "webhook_enabled": false})))
}

fn not_enabled(trigger_ref: &str) -> ApiError {
    ApiError::NotFound(format!(
        "trigger {trigger_ref} has no webhook yet; POST .../webhooks/enable first"
    ))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RegenerateBody {
    #[serde(default)]
    grace_seconds: u64,
}

async fn regenerate(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    // The body is optional: an empty one means "revoke the old key now".
    let body: RegenerateBody = if body.iter().all(u8::is_ascii_whitespace) {
        RegenerateBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))?
    };
    if body.grace_seconds > MAX_GRACE_SECONDS {
        return Err(ApiError::BadRequest(format!(
            "grace_seconds must be at most {MAX_GRACE_SECONDS}, got {}",
            body.grace_seconds
        )));
    }
    let trigger = find(&state, &raw).await?;
    if state.store.get_webhook(&trigger.trigger_ref).await?.is_none() {
        return Err(not_enabled(&trigger.trigger_ref));
    }
    let grace_until = (body.grace_seconds > 0).then(|| now_micros() + body.grace_seconds as i64 * 1_000_000);
    let key = state
        .store
        .rotate_key(&trigger.trigger_ref, &new_key(&state), grace_until)
        .await?;
    state.targets.invalidate_all();
    let plain = unseal(&state, &key)?;
    let mut answer = json!({
        "webhook_key": plain,
        "webhook_url": state.webhook_url(&plain),
        "previous_key_revoked": grace_until.is_none(),
    });
    if let Some(until) = grace_until {
        answer["previous_key_expires_at"] = json!(rfc3339(until));
    }
    Ok(data(answer))
}

async fn show(State(state): State<AppState>, Path(raw): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let trigger = find(&state, &raw).await?;
    let Some(webhook) = state.store.get_webhook(&trigger.trigger_ref).await? else {
        return Ok(data(json!({
            "ref": trigger.trigger_ref,
            "enabled": false,
            "webhook_key": null,
            "webhook_url": null,
            "created_at": null,
            "last_used_at": null,
            "total_events": 0,
            "settings": WebhookSettings::default(),
        })));
    };
    let keys = state.store.live_keys(&trigger.trigger_ref, now_micros()).await?;
    let current = keys.iter().find(|k| k.expires_at.is_none());
    let plain = current.map(|k| unseal(&state, k)).transpose()?;
    let (total_events, last_used_at) = state.store.webhook_usage(&trigger.trigger_ref).await?;
    let settings: WebhookSettings = serde_json::from_str(&webhook.settings)
        .map_err(|e| ApiError::Internal(format!("settings of {}: {e}", trigger.trigger_ref)))?;
    Ok(data(json!({
        "ref": trigger.trigger_ref,
        "enabled": webhook.enabled,
        "webhook_url": plain.as_deref().map(|k| state.webhook_url(k)),
        "webhook_key": plain,
        "created_at": rfc3339(webhook.created_at),
        "last_used_at": last_used_at.map(rfc3339),
        "total_events": total_events,
        "previous_keys": keys.iter().filter(|k| k.expires_at.is_some()).map(|k| json!({
            "prefix": k.prefix,
            "expires_at": k.expires_at.map(rfc3339),
        })).collect::<Vec<_>>(),
        "settings": settings,
    })))
}
