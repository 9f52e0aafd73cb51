//! `GET /api/v1/triggers/{ref}/webhooks/stats`: what reached a trigger's
//! webhook recently — totals by outcome and requests per hour by outcome.

use super::data;
use super::triggers::find;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::routing::get;
use inlet_core::clock::{now_micros, rfc3339};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

const HOUR_MICROS: i64 = 3_600_000_000;
/// Seven days of hourly buckets by default; at most thirty days.
const DEFAULT_HOURS: i64 = 7 * 24;
const MAX_HOURS: i64 = 30 * 24;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/triggers/{ref}/webhooks/stats", get(stats))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatsQuery {
    hours: Option<i64>,
}

async fn stats(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    Query(query): Query<StatsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let hours = query.hours.unwrap_or(DEFAULT_HOURS);
    if !(1..=MAX_HOURS).contains(&hours) {
        return Err(ApiError::BadRequest(format!(
            "hours must be between 1 and {MAX_HOURS}, got {hours}"
        )));
    }
    let trigger = find(&state, &raw).await?;
    let now = now_micros();
    // Whole hours: the last bucket is the current, partial hour.
    let last_bucket = now / HOUR_MICROS;
    let first_bucket = last_bucket - hours + 1;
    let buckets = state
        .store
        .request_log_buckets(&trigger.trigger_ref, first_bucket * HOUR_MICROS, HOUR_MICROS)
        .await?;
    let last_request_at = state.store.last_request_at(&trigger.trigger_ref).await?;
    let webhook = state.store.get_webhook(&trigger.trigger_ref).await?;

    let mut by_outcome: BTreeMap<String, i64> = BTreeMap::new();
    let mut per_hour: BTreeMap<i64, Map<String, Value>> = BTreeMap::new();
    for b in &buckets {
        *by_outcome.entry(b.outcome.clone()).or_default() += b.count;
        per_hour
            .entry(b.bucket)
            .or_default()
            .insert(b.outcome.clone(), json!(b.count));
    }
    let received: i64 = by_outcome.values().sum();
    let accepted = by_outcome.get("accepted").copied().unwrap_or(0);
    let duplicate = by_outcome.get("duplicate").copied().unwrap_or(0);
    let rejected_by_reason: BTreeMap<&String, &i64> = by_outcome
        .iter()
        .filter(|(outcome, _)| !matches!(outcome.as_str(), "accepted" | "duplicate"))
        .collect();
    let hourly: Vec<Value> = (first_bucket..=last_bucket)
        .map(|bucket| {
            let counts = per_hour.remove(&bucket).unwrap_or_default();
            let total: i64 = counts.values().filter_map(Value::as_i64).sum();
            json!({"start": rfc3339(bucket * HOUR_MICROS), "total": total, "counts": counts})
        })
        .collect();
    Ok(data(json!({
        "ref": trigger.trigger_ref,
        "since": rfc3339(first_bucket * HOUR_MICROS),
        "until": rfc3339(now),
        "bucket_seconds": HOUR_MICROS / 1_000_000,
        "received": received,
        "accepted": accepted,
        "duplicate": duplicate,
        "rejected": received - accepted - duplicate,
        "by_outcome": by_outcome,
        "rejected_by_reason": rejected_by_reason,
        "last_request_at": last_request_at.map(rfc3339),
        "webhook_created_at": webhook.map(|w| rfc3339(w.created_at)),
        "hourly": hourly,
    })))
}
