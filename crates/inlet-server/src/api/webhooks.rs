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
use inlet_core::net::Cidr;
use inlet_core::rate_limit::RateLimit;
use inlet_core::settings::{SettingsError, WebhookSettings, generate_secret};
use inlet_core::verify::VerificationConfig;
use inlet_store::WebhookRow;
use inlet_store::{KeyRow, NewKey};
use serde::Deserialize;
use serde_json::json;
use serde_json::{Map, Value};

/// Longest grace period an old key may keep working after rotation.
const MAX_GRACE_SECONDS: u64 = 7 * 24 * 3600;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/triggers/{ref}/webhooks", get(show).patch(update_settings))
        .route("/api/v1/triggers/{ref}/webhooks/secret", post(add_secret))
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
    let settings = open_settings(&state, &webhook)?.masked();
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

/// The stored settings with their secrets opened.
fn open_settings(state: &AppState, webhook: &WebhookRow) -> Result<WebhookSettings, ApiError> {
    let stored: WebhookSettings = serde_json::from_str(&webhook.settings)
        .map_err(|e| ApiError::Internal(format!("settings of {}: {e}", webhook.trigger_ref)))?;
    stored
        .opened(&state.master_key)
        .map_err(|e| ApiError::Internal(format!("settings of {}: {e}", webhook.trigger_ref)))
}

async fn save_settings(state: &AppState, trigger_ref: &str, settings: &WebhookSettings) -> Result<(), ApiError> {
    let sealed = serde_json::to_string(&settings.sealed(&state.master_key)).expect("settings serialize");
    state.store.update_webhook_settings(trigger_ref, &sealed).await?;
    state.targets.invalidate_all();
    Ok(())
}

async fn webhook_of(state: &AppState, raw: &str) -> Result<WebhookRow, ApiError> {
    let trigger = find(state, raw).await?;
    state
        .store
        .get_webhook(&trigger.trigger_ref)
        .await?
        .ok_or_else(|| not_enabled(&trigger.trigger_ref))
}

fn refused(err: SettingsError) -> ApiError {
    ApiError::BadRequest(err.to_string())
}

fn field<T: serde::de::DeserializeOwned>(name: &str, value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::BadRequest(format!("{name}: {e}")))
}

/// `PATCH .../webhooks`: any subset of the settings; all of it is checked
/// before anything is saved, so a bad value changes nothing.
async fn update_settings(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let changes: Map<String, Value> = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("body must be a JSON object of settings: {e}")))?;
    let webhook = webhook_of(&state, &raw).await?;
    let current = open_settings(&state, &webhook)?;
    let mut next = current.clone();
    for (name, value) in changes {
        match name.as_str() {
            "verification" => next.verification = field::<Option<VerificationConfig>>(&name, value)?,
            "ip_allowlist" => {
                let texts: Vec<String> = field(&name, value)?;
                next.ip_allowlist = texts
                    .iter()
                    .enumerate()
                    .map(|(i, text)| {
                        Cidr::parse(text).map_err(|e| ApiError::BadRequest(format!("ip_allowlist[{i}]: {e}")))
                    })
                    .collect::<Result<_, _>>()?;
            }
            "rate_limit" => next.rate_limit = field::<Option<RateLimit>>(&name, value)?,
            "max_payload_bytes" => next.max_payload_bytes = field(&name, value)?,
            "dedup" => next.dedup = field(&name, value)?,
            "mapping" => next.mapping = field(&name, value)?,
            "methods" => {
                let methods: Vec<String> = field(&name, value)?;
                next.methods = methods.iter().map(|m| m.to_ascii_uppercase()).collect();
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "{other:?} is not a webhook setting (verification, ip_allowlist, rate_limit, \
                     max_payload_bytes, dedup, methods, mapping)"
                )));
            }
        }
    }
    next.unmask_secrets(&current).map_err(refused)?;
    next.validate().map_err(refused)?;
    save_settings(&state, &webhook.trigger_ref, &next).await?;
    Ok(data(json!({"ref": webhook.trigger_ref, "settings": next.masked()})))
}

/// `POST .../webhooks/secret`: a new strong secret, added to the configured
/// scheme's secrets and shown once.
async fn add_secret(State(state): State<AppState>, Path(raw): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let webhook = webhook_of(&state, &raw).await?;
    let mut settings = open_settings(&state, &webhook)?;
    let Some(verification) = &mut settings.verification else {
        return Err(ApiError::BadRequest(
            "configure a verification scheme first (PATCH .../webhooks with \"verification\")".into(),
        ));
    };
    let secret = generate_secret(verification.scheme).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "scheme {} verifies with a public key, not a shared secret",
            verification.scheme
        ))
    })?;
    verification.secrets.push(secret.clone());
    settings.validate().map_err(refused)?;
    save_settings(&state, &webhook.trigger_ref, &settings).await?;
    Ok(data(json!({
        "secret": secret,
        "settings": settings.masked(),
    })))
}
