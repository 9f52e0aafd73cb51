//! `/api/v1/events`: stored events, newest first, with cursor pagination.

use super::data;
use super::pagination::{limit, page};
use super::triggers::parse_ref;
use crate::error::ApiError;
use crate::error::bad_json;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Extension, Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use inlet_core::clock::now_micros;
use inlet_core::clock::rfc3339;
use inlet_store::{EventFilter, EventRow, NewEvent, TokenRow};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", get(list).post(emit))
        .route("/api/v1/events/{id}", get(show))
        .route("/api/v1/events/{id}/replay", axum::routing::post(replay))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    trigger: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

fn event_json(row: &EventRow) -> Value {
    json!({
        "id": row.id,
        "trigger": row.trigger_ref,
        "source": row.source,
        "delivery_id": row.delivery_id,
        "payload": serde_json::from_str::<Value>(&row.payload).unwrap_or(Value::Null),
        "metadata": serde_json::from_str::<Value>(&row.metadata).unwrap_or(Value::Null),
        "processed": row.processed,
        "created_at": rfc3339(row.created_at),
    })
}

async fn list(State(state): State<AppState>, Query(query): Query<ListQuery>) -> Result<impl IntoResponse, ApiError> {
    let limit = limit(query.limit)?;
    let trigger_ref = query.trigger.as_deref().map(parse_ref).transpose()?;
    let rows = state
        .store
        .list_events(&EventFilter {
            trigger_ref: trigger_ref.map(|r| r.to_string()),
            before_id: query.cursor,
            limit,
        })
        .await?;
    let last = rows.last().map(|r| r.id.clone());
    Ok(page(rows.iter().map(event_json).collect(), limit, last))
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let row = state
        .store
        .get_event(&id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no event {id}")))?;
    let mut value = event_json(&row);
    value["rules"] = rule_verdicts(&state, &row).await?;
    Ok(data(value))
}

/// Which rules matched the event, which did not, which failed and why; rules of the
/// trigger without a verdict say why they were not evaluated.
async fn rule_verdicts(state: &AppState, row: &EventRow) -> Result<Value, ApiError> {
    let evaluations = state.store.evaluations_for_event(&row.id).await?;
    let mut out: Vec<Value> = evaluations
        .iter()
        .map(|e| {
            json!({"rule": e.rule_ref, "outcome": e.outcome, "reason": e.reason,
                   "execution_id": e.execution_id, "evaluated_at": rfc3339(e.created_at)})
        })
        .collect();
    for rule in state.store.list_rules(Some(&row.trigger_ref)).await? {
        if evaluations.iter().any(|e| e.rule_ref == rule.rule_ref) {
            continue;
        }
        let reason = if !row.processed {
            "not evaluated yet"
        } else if !rule.enabled {
            "not evaluated: the rule is disabled"
        } else if rule.created_at > row.created_at {
            "not evaluated: the rule was created after the event was evaluated"
        } else {
            "not evaluated: the rule was disabled when the event was evaluated"
        };
        out.push(json!({"rule": rule.rule_ref, "outcome": "not_evaluated", "reason": reason, "execution_id": null}));
    }
    Ok(Value::Array(out))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmitBody {
    trigger: String,
    #[serde(default)]
    payload: Value,
}

/// `POST /api/v1/events`: an event on a trigger from the API (source `api`).
async fn emit(
    State(state): State<AppState>,
    token: Option<Extension<TokenRow>>,
    body: Result<Json<EmitBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) = body.map_err(bad_json)?;
    let trigger_ref = parse_ref(&body.trigger)?;
    if state.store.get_trigger(trigger_ref.as_str()).await?.is_none() {
        return Err(ApiError::NotFound(format!("no trigger {trigger_ref}")));
    }
    let now = now_micros();
    let id = uuid::Uuid::now_v7().to_string();
    let metadata = json!({
        "source": "api",
        "received_at": rfc3339(now),
        "created_by": token.map(|Extension(t)| t.name),
    });
    state
        .store
        .insert_event(&NewEvent {
            id: id.clone(),
            trigger_ref: trigger_ref.to_string(),
            payload: body.payload.to_string(),
            metadata: metadata.to_string(),
            source: "api".into(),
            delivery_id: None,
            created_at: now,
        })
        .await?;
    state.engine.notify();
    Ok((StatusCode::CREATED, data(json!({"event_id": id}))))
}

/// `POST /api/v1/events/{id}/replay`: the trigger's enabled rules again on the stored
/// event; matches make new executions (source `replay`).
async fn replay(State(state): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let verdicts = state.engine.replay_event(&id).await.map_err(|e| match e {
        inlet_store::StoreError::NotFound => ApiError::NotFound(format!("no event {id}")),
        other => other.into(),
    })?;
    let executions: Vec<&String> = verdicts.iter().filter_map(|v| v.execution_id.as_ref()).collect();
    Ok(data(
        json!({"event_id": id, "rules": verdicts, "executions": executions}),
    ))
}
