//! `/api/v1/webhook-log`: every request that reached a known key.

use super::data;
use super::pagination::{limit, page};
use super::triggers::parse_ref;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Extension, Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use inlet_core::clock::rfc3339;
use inlet_core::outcome::Outcome;
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
    let payload = match inlet_core::payload::parse_body(content_type, &original.body) {
        Ok(payload) => payload,
        Err(err) => {
            log.outcome = Outcome::InvalidPayload.as_str().into();
            log.status_code = 400;
            log.message = format!("replay of {id} by {replayed_by}: {err}");
            let record = ReceiveRecord {
                event: None,
                log,
                key_id: None,
            };
            state.store.record_request(record).await?;
            return Err(ApiError::BadRequest(format!("the logged body does not parse: {err}")));
        }
    };
    let event_id = uuid::Uuid::now_v7().to_string();
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
    state.store.record_request(record).await?;
    state.engine.notify();
    Ok(data(
        json!({"event_id": event_id, "log_id": log.id, "replayed_by": replayed_by}),
    ))
}
