//! `/api/v1/actions`: list, create, get, update (PUT), delete. A template that does
//! not compile is refused with 400, naming the field, the position and the reason.

use super::data;
use crate::error::{ApiError, bad_json};
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use inlet_core::automation::{ActionSpec, RunnerKind};
use inlet_core::clock::rfc3339;
use inlet_core::expr::ExprError;
use inlet_store::{ActionRow, NewAction, StoreError};
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/actions", get(list).post(create))
        .route("/api/v1/actions/{ref}", get(show).put(update).delete(remove))
}

/// Errors of the rules and actions routes: the API's, or an expression refused with
/// its position (`{"error": {"code": "invalid_expression", "message", "field", "line", "column"}}`).
pub(super) enum SpecError {
    Api(ApiError),
    Invalid(ExprError),
}

impl From<ApiError> for SpecError {
    fn from(e: ApiError) -> Self {
        SpecError::Api(e)
    }
}

impl From<StoreError> for SpecError {
    fn from(e: StoreError) -> Self {
        SpecError::Api(e.into())
    }
}

impl IntoResponse for SpecError {
    fn into_response(self) -> Response {
        match self {
            SpecError::Api(e) => e.into_response(),
            SpecError::Invalid(e) => (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": {
                    "code": "invalid_expression",
                    "message": e.to_string(),
                    "field": e.field,
                    "line": e.line,
                    "column": e.column,
                }})),
            )
                .into_response(),
        }
    }
}

/// Parses a JSON body into a spec, taking the ref from the path when given there.
pub(super) fn parse_spec<T: serde::de::DeserializeOwned>(
    body: Result<Json<Value>, JsonRejection>,
    path_ref: Option<&str>,
) -> Result<T, SpecError> {
    let Json(mut body) = body.map_err(bad_json)?;
    let Some(object) = body.as_object_mut() else {
        return Err(ApiError::BadRequest("the body must be a JSON object".into()).into());
    };
    if let Some(path_ref) = path_ref {
        match object.get("ref") {
            None => {
                object.insert("ref".into(), json!(path_ref));
            }
            Some(r) if r == path_ref => {}
            Some(_) => return Err(ApiError::BadRequest("ref cannot be changed".into()).into()),
        }
    }
    serde_json::from_value(body).map_err(|e| ApiError::BadRequest(e.to_string()).into())
}

pub(crate) fn new_action(spec: &ActionSpec) -> Result<NewAction, ExprError> {
    let compiled = spec.compile()?;
    Ok(NewAction {
        action_ref: spec.action_ref.clone(),
        pack: spec.pack().to_owned(),
        runner: match compiled.kind() {
            RunnerKind::Command => "command".into(),
            RunnerKind::Http => "http".into(),
        },
        concurrency: spec.concurrency.map(i64::from),
        spec: serde_json::to_string(spec).expect("a spec serializes"),
    })
}

fn action_json(row: &ActionRow) -> Value {
    let mut value = match serde_json::from_str::<ActionSpec>(&row.spec) {
        Ok(spec) => serde_json::to_value(spec.redacted()).unwrap_or(Value::Null),
        Err(_) => json!({"ref": row.action_ref}),
    };
    value["pack"] = json!(row.pack);
    value["created_at"] = json!(rfc3339(row.created_at));
    value["updated_at"] = json!(rfc3339(row.updated_at));
    value
}

async fn list(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let rows = state.store.list_actions().await?;
    Ok(data(rows.iter().map(action_json).collect::<Vec<_>>()))
}

async fn create(
    State(state): State<AppState>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<impl IntoResponse, SpecError> {
    let spec: ActionSpec = parse_spec(body, None)?;
    let new = new_action(&spec).map_err(SpecError::Invalid)?;
    let row = state.store.create_action(&new).await.map_err(|e| match e {
        StoreError::Conflict => ApiError::Conflict(format!("action {} already exists", spec.action_ref)),
        other => other.into(),
    })?;
    state.engine.invalidate().await;
    Ok((StatusCode::CREATED, data(action_json(&row))))
}

async fn find(state: &AppState, action_ref: &str) -> Result<ActionRow, ApiError> {
    state
        .store
        .get_action(action_ref)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no action {action_ref}")))
}

async fn show(State(state): State<AppState>, Path(action_ref): Path<String>) -> Result<impl IntoResponse, ApiError> {
    Ok(data(action_json(&find(&state, &action_ref).await?)))
}

async fn update(
    State(state): State<AppState>,
    Path(action_ref): Path<String>,
    body: Result<Json<Value>, JsonRejection>,
) -> Result<impl IntoResponse, SpecError> {
    let existing = find(&state, &action_ref).await?;
    let mut spec: ActionSpec = parse_spec(body, Some(&action_ref))?;
    keep_signing_secret(&mut spec, &existing);
    let row = state
        .store
        .update_action(&new_action(&spec).map_err(SpecError::Invalid)?)
        .await?;
    state.engine.invalidate().await;
    Ok(data(action_json(&row)))
}

/// A PUT of what GET showed carries the masked signing secret: keep the stored one.
fn keep_signing_secret(spec: &mut ActionSpec, existing: &ActionRow) {
    use inlet_core::automation::{REDACTED_SECRET, RunnerSpec};
    let RunnerSpec::Http(h) = &mut spec.runner else { return };
    let Some(sign) = &mut h.sign else { return };
    if sign.secret != REDACTED_SECRET {
        return;
    }
    if let Ok(old) = serde_json::from_str::<ActionSpec>(&existing.spec)
        && let RunnerSpec::Http(old) = old.runner
        && let Some(old_sign) = old.sign
    {
        sign.secret = old_sign.secret;
    }
}

async fn remove(State(state): State<AppState>, Path(action_ref): Path<String>) -> Result<impl IntoResponse, ApiError> {
    find(&state, &action_ref).await?;
    state.store.delete_action(&action_ref).await?;
    state.engine.invalidate().await;
    Ok(StatusCode::NO_CONTENT)
}
