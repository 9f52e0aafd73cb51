//! `/api/v1/events`: stored events, newest first, with cursor pagination.

use super::data;
use super::pagination::{limit, page};
use super::triggers::parse_ref;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use inlet_core::clock::rfc3339;
use inlet_store::{EventFilter, EventRow};
use serde::Deserialize;
use serde_json::{Value, json};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/events", get(list))
        .route("/api/v1/events/{id}", get(show))
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
    Ok(data(event_json(&row)))
}
