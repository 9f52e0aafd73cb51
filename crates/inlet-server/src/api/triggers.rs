//! `/api/v1/triggers`: list, create, get, update, delete.

use super::data;
use crate::error::{ApiError, bad_json};
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use inlet_core::TriggerRef;
use inlet_core::clock::rfc3339;
use inlet_core::expr::PayloadSchema;
use inlet_store::{NewTrigger, TriggerRow};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/triggers", get(list).post(create))
        .route("/api/v1/triggers/{ref}", get(show).put(update).delete(remove))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TriggerBody {
    #[serde(rename = "ref")]
    trigger_ref: Option<String>,
    label: Option<String>,
    #[serde(default)]
    description: String,
    payload_schema: Option<Value>,
}

pub(crate) fn trigger_json(row: &TriggerRow) -> Value {
    json!({
        "ref": row.trigger_ref,
        "pack": row.pack,
        "label": row.label,
        "description": row.description,
        "payload_schema": row.payload_schema.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok()),
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    })
}

pub(crate) fn parse_ref(raw: &str) -> Result<TriggerRef, ApiError> {
    TriggerRef::parse(raw).map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn new_trigger(trigger_ref: &TriggerRef, body: TriggerBody) -> Result<NewTrigger, ApiError> {
    let payload_schema = match body.payload_schema {
        None | Some(Value::Null) => None,
        Some(schema @ (Value::Object(_) | Value::Bool(_))) => {
            PayloadSchema::compile(&schema).map_err(|e| ApiError::BadRequest(format!("payload_schema: {e}")))?;
            Some(schema.to_string())
        }
        Some(_) => {
            return Err(ApiError::BadRequest(
                "payload_schema must be a JSON Schema object".into(),
            ));
        }
    };
    Ok(NewTrigger {
        trigger_ref: trigger_ref.to_string(),
        pack: trigger_ref.pack().to_owned(),
        label: body.label.unwrap_or_else(|| trigger_ref.name().to_owned()),
        description: body.description,
        payload_schema,
    })
}

async fn list(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let rows = state.store.list_triggers().await?;
    Ok(data(rows.iter().map(trigger_json).collect::<Vec<_>>()))
}

async fn create(
    State(state): State<AppState>,
    body: Result<Json<TriggerBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) = body.map_err(bad_json)?;
    let raw_ref = body
        .trigger_ref
        .clone()
        .ok_or_else(|| ApiError::BadRequest("ref is required".into()))?;
    let trigger_ref = parse_ref(&raw_ref)?;
    let row = state
        .store
        .create_trigger(&new_trigger(&trigger_ref, body)?)
        .await
        .map_err(|e| match e {
            inlet_store::StoreError::Conflict => ApiError::Conflict(format!("trigger {trigger_ref} already exists")),
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, data(trigger_json(&row))))
}

async fn show(State(state): State<AppState>, Path(raw): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let row = find(&state, &raw).await?;
    Ok(data(trigger_json(&row)))
}

pub(crate) async fn find(state: &AppState, raw: &str) -> Result<TriggerRow, ApiError> {
    let trigger_ref = parse_ref(raw)?;
    state
        .store
        .get_trigger(trigger_ref.as_str())
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no trigger {trigger_ref}")))
}

async fn update(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    body: Result<Json<TriggerBody>, JsonRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Json(body) = body.map_err(bad_json)?;
    let trigger_ref = parse_ref(&raw)?;
    if body.trigger_ref.as_deref().is_some_and(|r| r != trigger_ref.as_str()) {
        return Err(ApiError::BadRequest("ref cannot be changed".into()));
    }
    find(&state, &raw).await?;
    let row = state.store.update_trigger(&new_trigger(&trigger_ref, body)?).await?;
    state.targets.invalidate_all();
    Ok(data(trigger_json(&row)))
}

async fn remove(State(state): State<AppState>, Path(raw): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let row = find(&state, &raw).await?;
    state.store.delete_trigger(&row.trigger_ref).await?;
    state.targets.invalidate_all();
    Ok(StatusCode::NO_CONTENT)
}
