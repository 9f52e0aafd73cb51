//! The management API under `/api/v1`: one router per resource, all behind
//! the bearer-token check.

mod actions;
mod auth;
mod events;
mod executions;
mod pagination;
mod rules;
mod stats;
mod triggers;
mod webhook_log;
mod webhooks;

pub(crate) use actions::new_action;
pub(crate) use rules::new_rule;

use crate::state::AppState;
use axum::Router;

pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .merge(triggers::router())
        .merge(webhooks::router())
        .merge(events::router())
        .merge(webhook_log::router())
        .merge(stats::router())
        .merge(rules::router())
        .merge(actions::router())
        .merge(executions::router())
        .route_layer(axum::middleware::from_fn_with_state(state, auth::require_token))
}

/// Success envelope: `{"data": ...}`.
pub(crate) fn data<T: serde::Serialize>(value: T) -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "data": value }))
}
