//! `/api/v1/webhook-log`: every request that reached a known key.

use super::data;
use super::pagination::{limit, page};
use super::triggers::parse_ref;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use inlet_core::clock::rfc3339;
use inlet_core::outcome::Outcome;
use inlet_store::{LogFilter, RequestLogRow};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/webhook-log", get(list))
        .route("/api/v1/webhook-log/{id}", get(show))
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
