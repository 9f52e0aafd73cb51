//! `/api/v1/executions`: list (filters `action`, `rule`, `event`, `status`), detail
//! with attempts, log (`?follow=true`: SSE while it runs), retry, cancel.

use super::data;
use super::pagination::{limit, page};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use inlet_core::clock::rfc3339;
use inlet_engine::LogLine;
use inlet_store::{AttemptRow, CancelResult, ExecutionFilter, ExecutionRow, status};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/executions", get(list))
        .route("/api/v1/executions/{id}", get(show))
        .route("/api/v1/executions/{id}/log", get(log))
        .route("/api/v1/executions/{id}/retry", post(retry))
        .route("/api/v1/executions/{id}/cancel", post(cancel))
}

fn time(t: Option<i64>) -> Value {
    t.map_or(Value::Null, |t| json!(rfc3339(t)))
}

pub(crate) fn execution_json(row: &ExecutionRow) -> Value {
    let waiting = matches!(row.status.as_str(), status::QUEUED | status::RETRYING);
    json!({
        "id": row.id,
        "action": row.action_ref,
        "rule": row.rule_ref,
        "event_id": row.event_id,
        "source": row.source,
        "status": row.status,
        "attempt": row.attempt,
        "max_attempts": row.max_attempts,
        "params": serde_json::from_str::<Value>(&row.params).unwrap_or(Value::Null),
        "debounce_key": row.debounce_key,
        "next_run_at": if waiting { json!(rfc3339(row.next_run_at)) } else { Value::Null },
        "lease_owner": row.lease_owner,
        "lease_expires_at": time(row.lease_expires_at),
        "cancel_requested": row.cancel_requested,
        "result": row.result.as_deref().and_then(|r| serde_json::from_str::<Value>(r).ok()),
        "output": row.output,
        "created_at": rfc3339(row.created_at),
        "started_at": time(row.started_at),
        "finished_at": time(row.finished_at),
        "updated_at": rfc3339(row.updated_at),
    })
}

fn attempt_json(a: &AttemptRow) -> Value {
    json!({
        "attempt": a.attempt,
        "status": a.status,
        "worker": a.worker,
        "started_at": rfc3339(a.started_at),
        "finished_at": time(a.finished_at),
        "duration_ms": a.finished_at.map(|f| (f - a.started_at) / 1000),
        "exit_code": a.exit_code,
        "http_status": a.http_status,
        "summary": a.summary,
        "stdout": a.stdout,
        "stderr": a.stderr,
        "stdout_truncated": a.stdout_truncated,
        "stderr_truncated": a.stderr_truncated,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    action: Option<String>,
    rule: Option<String>,
    event: Option<String>,
    status: Option<String>,
    limit: Option<i64>,
    cursor: Option<String>,
}

async fn list(State(state): State<AppState>, Query(q): Query<ListQuery>) -> Result<impl IntoResponse, ApiError> {
    let limit = limit(q.limit)?;
    if let Some(s) = &q.status
        && !status::ALL.contains(&s.as_str())
    {
        return Err(ApiError::BadRequest(format!(
            "unknown status {s:?}; one of {}",
            status::ALL.join(", ")
        )));
    }
    let rows = state
        .store
        .list_executions(&ExecutionFilter {
            action_ref: q.action,
            rule_ref: q.rule,
            event_id: q.event,
            status: q.status,
            before_id: q.cursor,
            limit,
        })
        .await?;
    let last = rows.last().map(|r| r.id.clone());
    Ok(page(rows.iter().map(execution_json).collect(), limit, last))
}

async fn find(state: &AppState, id: &str) -> Result<ExecutionRow, ApiError> {
    state
        .store
        .get_execution(id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no execution {id}")))
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let row = find(&state, &id).await?;
    let attempts = state.store.list_attempts(&id).await?;
    let mut value = execution_json(&row);
    value["attempts"] = attempts.iter().map(attempt_json).collect();
    Ok(data(value))
}

fn stored_lines(a: &AttemptRow) -> impl Iterator<Item = LogLine> + '_ {
    let out = a.stdout.lines().map(|l| ("stdout", l));
    let err = a.stderr.lines().map(|l| ("stderr", l));
    out.chain(err).map(|(stream, line)| LogLine {
        attempt: a.attempt,
        stream,
        line: line.to_owned(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LogQuery {
    #[serde(default)]
    follow: bool,
}

/// The output of every attempt, line by line. With `follow=true`: a `text/event-stream`
/// of `line` events (`{"attempt", "stream", "line"}`) as they come, and an `end` event
/// (`{"status"}`) once the execution has ended.
async fn log(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Response, ApiError> {
    let row = find(&state, &id).await?;
    if !q.follow {
        let attempts = state.store.list_attempts(&id).await?;
        let mut lines: Vec<LogLine> = attempts
            .iter()
            .filter(|a| a.status != "running")
            .flat_map(stored_lines)
            .collect();
        if let Some(live) = state.engine.follow(&id) {
            lines.extend(live.backlog);
        }
        return Ok(data(json!({"execution_id": id, "status": row.status, "lines": lines})).into_response());
    }
    let (tx, rx) = mpsc::channel::<Event>(256);
    tokio::spawn(follow(state, id, tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|event| (Ok::<_, Infallible>(event), rx))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()).into_response())
}

fn line_event(line: &LogLine) -> Event {
    Event::default()
        .event("line")
        .data(serde_json::to_string(line).unwrap_or_default())
}

/// Feeds a follower: finished attempts from the store, the running one live, until
/// the execution ends or the follower goes away.
async fn follow(state: AppState, id: String, tx: mpsc::Sender<Event>) {
    let mut sent: HashSet<i64> = HashSet::new();
    loop {
        if let Some(live) = state.engine.follow(&id)
            && !sent.contains(&live.attempt)
        {
            sent.insert(live.attempt);
            for line in &live.backlog {
                if tx.send(line_event(line)).await.is_err() {
                    return;
                }
            }
            let mut rx = live.live;
            loop {
                match rx.recv().await {
                    Ok(line) => {
                        if tx.send(line_event(&line)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let note = Event::default().event("lagged").data(json!({"skipped": n}).to_string());
                        if tx.send(note).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        }
        let Ok(Some(row)) = state.store.get_execution(&id).await else {
            return;
        };
        let Ok(attempts) = state.store.list_attempts(&id).await else {
            return;
        };
        for a in attempts.iter().filter(|a| a.status != "running") {
            if sent.insert(a.attempt) {
                for line in stored_lines(a) {
                    if tx.send(line_event(&line)).await.is_err() {
                        return;
                    }
                }
            }
        }
        if status::is_terminal(&row.status) {
            let end = Event::default()
                .event("end")
                .data(json!({"status": row.status}).to_string());
            let _ = tx.send(end).await;
            return;
        }
        if state.engine.is_stopping() {
            let end = Event::default()
                .event("end")
                .data(json!({"status": row.status, "reason": "the server is stopping"}).to_string());
            let _ = tx.send(end).await;
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = tx.closed() => return,
        }
    }
}

async fn retry(State(state): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    let row = find(&state, &id).await?;
    let attempts = match state.store.get_action(&row.action_ref).await? {
        Some(action) => serde_json::from_str::<inlet_core::automation::ActionSpec>(&action.spec)
            .map(|s| s.retry.max_attempts as i64)
            .unwrap_or(1),
        None => {
            return Err(ApiError::Conflict(format!(
                "action {} no longer exists",
                row.action_ref
            )));
        }
    };
    if !state.store.retry_execution(&id, attempts).await? {
        return Err(ApiError::Conflict(format!(
            "execution {id} is {}; only an ended execution can be retried",
            row.status
        )));
    }
    state.engine.wake_workers();
    Ok(data(execution_json(&find(&state, &id).await?)))
}

async fn cancel(State(state): State<AppState>, Path(id): Path<String>) -> Result<impl IntoResponse, ApiError> {
    match state.engine.cancel(&id).await? {
        CancelResult::AlreadyEnded => {
            let row = find(&state, &id).await?;
            Err(ApiError::Conflict(format!(
                "execution {id} has already ended ({})",
                row.status
            )))
        }
        result => {
            let row = find(&state, &id).await?;
            let mut value = execution_json(&row);
            value["cancel"] = json!(match result {
                CancelResult::Cancelled => "cancelled",
                _ => "requested",
            });
            Ok(data(value))
        }
    }
}
