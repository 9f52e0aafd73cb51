//! `/api/v1/webhook-log`: every request that reached a known key.

use super::data;
use super::pagination::{limit, page};
use super::triggers::parse_ref;
use crate::error::ApiError;
use crate::receiver::shape::Shaping;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use inlet_core::clock::rfc3339;
use inlet_core::expr::Context;
use inlet_core::outcome::Outcome;
use inlet_core::settings::WebhookSettings;
use inlet_store::{LogFilter, NewEvent, ReceiveRecord, RequestLogRow, TokenRow};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/webhook-log", get(list))
        .route("/api/v1/webhook-log/{id}", get(show))
        .route("/api/v1/webhook-log/{id}/replay", axum::routing::post(replay))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    trigger: Option<String>,
    outcome: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

fn summary_json(row: &RequestLogRow) -> Value {
    json!({
        "id": row.id,
        "trigger": row.trigger_ref,
        "key_prefix": row.key_prefix,
        "received_at": rfc3339(row.received_at),
        "source_ip": row.source_ip,
        "method": row.method,
        "path": row.path,
        "outcome": row.outcome,
        "status_code": row.status_code,
        "message": row.message,
        "processing_us": row.processing_us,
        "event_id": row.event_id,
        "body_bytes": row.body.len(),
    })
}

fn detail_json(row: &RequestLogRow) -> Value {
    let mut value = summary_json(row);
    value["query"] = serde_json::from_str(&row.query).unwrap_or(Value::Null);
    value["headers"] = serde_json::from_str(&row.headers).unwrap_or(Value::Null);
    value["body_truncated"] = json!(row.body_truncated);
    match std::str::from_utf8(&row.body) {
        Ok(text) => value["body"] = json!(text),
        Err(_) => value["body_base64"] = json!(base64::engine::general_purpose::STANDARD.encode(&row.body)),
    }
    value
}

async fn list(State(state): State<AppState>, Query(query): Query<ListQuery>) -> Result<impl IntoResponse, ApiError> {
    let limit = limit(query.limit)?;
    let trigger_ref = query.trigger.as_deref().map(parse_ref).transpose()?;
    if let Some(outcome) = &query.outcome
        && Outcome::parse(outcome).is_none()
    {
        return Err(ApiError::BadRequest(format!("unknown outcome {outcome:?}")));
    }
    let rows = state
        .store
        .list_request_log(&LogFilter {
            trigger_ref: trigger_ref.map(|r| r.to_string()),
            outcome: query.outcome,
            before_id: query.cursor,
            limit,
        })
        .await?;
    let last = rows.last().map(|r| r.id.clone());
    Ok(page(rows.iter().map(summary_json).collect(), limit, last))
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let row = state
        .store
        .get_request_log(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no request-log entry {id}")))?;
    Ok(data(detail_json(&row)))
}

/// `POST /api/v1/webhook-log/{id}/replay`: the logged request's original body and
/// headers parsed again into a new event (source `replay`; signature freshness is not
/// checked again). A new request-log row records the replay and who asked for it.
async fn replay(
    State(state): State<AppState>,
    token: Option<Extension<TokenRow>>,
    Path(id): Path<String>,
) -> Result<impl IntoResponse, ApiError> {
    let original = state
        .store
        .get_request_log(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no request-log entry {id}")))?;
    let Some(trigger_ref) = original.trigger_ref.clone() else {
        return Err(ApiError::BadRequest(
            "this request reached no trigger; nothing to replay".into(),
        ));
    };
    // Only requests that got past verification are replayed: the replay does not
    // check the signature again (nor its freshness).
    const REPLAYABLE: [Outcome; 6] = [
        Outcome::Accepted,
        Outcome::Duplicate,
        Outcome::StaleTimestamp,
        Outcome::InvalidPayload,
        Outcome::SchemaMismatch,
        Outcome::Error,
    ];
    if !REPLAYABLE.iter().any(|o| o.as_str() == original.outcome) {
        return Err(ApiError::Conflict(format!(
            "a request refused as {} never passed verification; it cannot be replayed",
            original.outcome
        )));
    }
    if original.body_truncated {
        return Err(ApiError::BadRequest(
            "the logged body was truncated; it cannot be replayed".into(),
        ));
    }
    let replayed_by = token.map(|Extension(t)| t.name).unwrap_or_default();
    let headers: Value = serde_json::from_str(&original.headers).unwrap_or(Value::Null);
    let content_type = headers.get("content-type").and_then(Value::as_str);
    let now = inlet_core::clock::now_micros();
    let mut log = original.clone();
    log.id = uuid::Uuid::now_v7().to_string();
    log.received_at = now;
    log.processing_us = 0;
    log.event_id = None;
    let shaping = replay_shaping(&state, &trigger_ref).await?;
    let parsed = inlet_core::payload::parse_body(content_type, &original.body)
        .map_err(|err| {
            (
                Outcome::InvalidPayload,
                format!("the logged body does not parse: {err}"),
            )
        })
        .and_then(|payload| {
            shaping
                .apply(payload, |payload| {
                    replay_context(payload, &headers, &original, &trigger_ref)
                })
                .map_err(|message| (Outcome::SchemaMismatch, message))
        });
    let payload = match parsed {
        Ok(payload) => payload,
        Err((outcome, message)) => {
            log.outcome = outcome.as_str().into();
            log.status_code = outcome.status().into();
            log.message = format!("replay of {id} by {replayed_by}: {message}");
            let record = ReceiveRecord {
                event: None,
                log,
                key_id: None,
            };
            state.store.record_request(record).await?;
            return Err(ApiError::BadRequest(message));
        }
    };
    // The event takes its log row's id (see the receiver).
    let event_id = log.id.clone();
    let metadata = json!({
        "source": "replay",
        "replay_of": id,
        "replayed_by": replayed_by,
        "key_prefix": original.key_prefix,
        "received_at": rfc3339(now),
        "source_ip": original.source_ip,
        "user_agent": headers.get("user-agent"),
        "headers": headers,
        "query": serde_json::from_str::<Value>(&original.query).unwrap_or(Value::Null),
    });
    log.outcome = Outcome::Accepted.as_str().into();
    log.status_code = 200;
    log.message = format!("replay of {id} by {replayed_by}");
    log.event_id = Some(event_id.clone());
    let record = ReceiveRecord {
        event: Some(NewEvent {
            id: event_id.clone(),
            trigger_ref,
            payload: payload.to_string(),
            metadata: metadata.to_string(),
            source: "replay".into(),
            delivery_id: None,
            created_at: now,
        }),
        log: log.clone(),
        key_id: None,
    };
    state.record_request(record).await?;
    Ok(data(
        json!({"event_id": event_id, "log_id": log.id, "replayed_by": replayed_by}),
    ))
}

/// The trigger's schema and mapping as they are now: a replay is held to them.
async fn replay_shaping(state: &AppState, trigger_ref: &str) -> Result<Shaping, ApiError> {
    let trigger = state
        .store
        .get_trigger(trigger_ref)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("trigger {trigger_ref} no longer exists")))?;
    let settings: WebhookSettings = match state.store.get_webhook(trigger_ref).await? {
        Some(webhook) => serde_json::from_str(&webhook.settings)
            .map_err(|e| ApiError::Internal(format!("settings of {trigger_ref}: {e}")))?,
        None => WebhookSettings::default(),
    };
    Shaping::compile(trigger.payload_schema.as_deref(), &settings).map_err(ApiError::Internal)
}

fn replay_context(payload: &Value, headers: &Value, original: &RequestLogRow, trigger_ref: &str) -> Context {
    let pairs = |value: &Value| -> Vec<(String, String)> {
        value
            .as_object()
            .map(|object| {
                object
                    .iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let query: Value = serde_json::from_str(&original.query).unwrap_or(Value::Null);
    Context::new(payload)
        .with_headers(pairs(headers))
        .with_query(pairs(&query))
        .with_meta(&json!({
            "trigger": trigger_ref,
            "source_ip": original.source_ip,
            "received_at": rfc3339(original.received_at),
        }))
}
