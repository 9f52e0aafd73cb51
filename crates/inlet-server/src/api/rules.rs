//! `/api/v1/rules`: list (`?trigger=`), create, get, update (PUT), delete. A condition
//! or template that does not compile is refused with 400 and its position.

use super::actions::{SpecError, parse_spec};
use super::data;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use inlet_core::automation::RuleSpec;
use inlet_core::clock::rfc3339;
use inlet_core::expr::ExprError;
use inlet_store::{NewRule, RuleRow, StoreError};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rules", get(list).post(create))
        .route("/api/v1/rules/{ref}", get(show).put(update).delete(remove))
}

pub(crate) fn new_rule(spec: &RuleSpec) -> Result<NewRule, ExprError> {
    spec.compile()?;
    Ok(NewRule {
        rule_ref: spec.rule_ref.clone(),
        pack: spec.pack().to_owned(),
        trigger_ref: spec.trigger.clone(),
        action_ref: spec.action.clone(),
        enabled: spec.enabled,
        spec: serde_json::to_string(spec).expect("a spec serializes"),
    })
}

fn rule_json(row: &RuleRow) -> Value {
    let mut value = serde_json::from_str::<Value>(&row.spec).unwrap_or_else(|_| json!({"ref": row.rule_ref}));
    value["pack"] = json!(row.pack);
    value["created_at"] = json!(rfc3339(row.created_at));
    value["updated_at"] = json!(rfc3339(row.updated_at));
    value
}

/// The trigger and the action a rule names must exist when it is saved.
async fn check_refs(state: &AppState, spec: &RuleSpec) -> Result<(), ApiError> {
    if state.store.get_trigger(&spec.trigger).await?.is_none() {
        return Err(ApiError::BadRequest(format!("trigger: no trigger {}", spec.trigger)));
    }
    if state.store.get_action(&spec.action).await?.is_none() {
        return Err(ApiError::BadRequest(format!("action: no action {}", spec.action)));
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    trigger: Option<String>,
}

async fn list(State(state): State<AppState>, Query(query): Query<ListQuery>) -> Result<impl IntoResponse, ApiError> {
    let rows = state.store.list_rules(query.trigger.as_deref()).await?;
    Ok(data(rows.iter().map(rule_json).collect::<Vec<_>>()))
}

async fn create(
    State(state): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<impl IntoResponse, SpecError> {
    let spec: RuleSpec = parse_spec(body, None)?;
    let new = new_rule(&spec).map_err(SpecError::Invalid)?;
    check_refs(&state, &spec).await?;
    let row = state.store.create_rule(&new).await.map_err(|e| match e {
        StoreError::Conflict => ApiError::Conflict(format!("rule {} already exists", spec.rule_ref)),
        other => other.into(),
    })?;
    state.engine.invalidate().await;
    Ok((StatusCode::CREATED, data(rule_json(&row))))
}

async fn find(state: &AppState, rule_ref: &str) -> Result<RuleRow, ApiError> {
    state
        .store
        .get_rule(rule_ref)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no rule {rule_ref}")))
}

async fn show(State(state): State<AppState>, Path(rule_ref): Path<String>) -> Result<impl IntoResponse, ApiError> {
    Ok(data(rule_json(&find(&state, &rule_ref).await?)))
}

async fn update(
    State(state): State<AppState>,
    Path(rule_ref): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<impl IntoResponse, SpecError> {
    find(&state, &rule_ref).await?;
    let spec: RuleSpec = parse_spec(body, Some(&rule_ref))?;
    let new = new_rule(&spec).map_err(SpecError::Invalid)?;
    check_refs(&state, &spec).await?;
    let row = state.store.update_rule(&new).await?;
    state.engine.invalidate().await;
    Ok(data(rule_json(&row)))
}

async fn remove(State(state): State<AppState>, Path(rule_ref): Path<String>) -> Result<impl IntoResponse, ApiError> {
    find(&state, &rule_ref).await?;
    state.store.delete_rule(&rule_ref).await?;
    state.engine.invalidate().await;
    Ok(StatusCode::NO_CONTENT)
}
