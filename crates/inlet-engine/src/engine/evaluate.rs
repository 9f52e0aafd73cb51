//! Rule evaluation: each unprocessed event against the enabled rules of its trigger.

use super::cache::Snapshot;
use super::{EngineHandle, Mode, context::event_context, wait_for_work};
use inlet_core::clock::now_micros;
use inlet_core::expr::Context;
use inlet_store::{EventEvaluation, EventRow, NewEvaluation, NewExecution, StoreError};
use serde::Serialize;
use std::sync::Arc;

const BATCH: i64 = 256;

/// What one rule made of one event.
#[derive(Debug, Clone, Serialize)]
pub struct RuleVerdict {
    pub rule: String,
    /// matched | not_matched | error
    pub outcome: String,
    pub reason: String,
    pub execution_id: Option<String>,
}

pub(super) async fn run(engine: EngineHandle) {
    let mut mode = engine.mode();
    loop {
        // Drain what is there, then wait for a notify or the poll.
        loop {
            match evaluate_batch(&engine).await {
                Ok(n) if n < BATCH as usize => break,
                Ok(_) => {
                    if *mode.borrow() != Mode::Run {
                        return;
                    }
                }
                Err(err) => {
                    tracing::error!(error = %err, "rule evaluation failed; retrying later");
                    break;
                }
            }
        }
        if wait_for_work(&engine, &mut mode, &engine.inner.evaluate).await {
            return;
        }
    }
}

/// Evaluates one batch of unprocessed events; returns how many there were.
async fn evaluate_batch(engine: &EngineHandle) -> Result<usize, StoreError> {
    let store = &engine.inner.store;
    let events = store.unprocessed_events(BATCH).await?;
    if events.is_empty() {
        return Ok(0);
    }
    let snapshot = engine.inner.cache.lock().await.get(store, engine.poll()).await?;
    let now = now_micros();
    let batch: Vec<EventEvaluation> = events
        .iter()
        .map(|event| EventEvaluation {
            event_id: event.id.clone(),
            evaluations: evaluate_event(&snapshot, event, now, "event")
                .into_iter()
                .map(|(verdict, execution)| NewEvaluation {
                    rule_ref: verdict.rule,
                    outcome: verdict.outcome,
                    reason: verdict.reason,
                    execution,
                })
                .collect(),
        })
        .collect();
    let created = store.commit_evaluations(batch).await?;
    for x in &created {
        engine.wake_at(x.next_run_at);
    }
    if !created.is_empty() {
        tracing::debug!(events = events.len(), executions = created.len(), "events evaluated");
    }
    Ok(events.len())
}

/// The verdicts of the trigger's enabled rules on one event, with the execution each
/// match makes. Only this trigger's rules are looked at.
fn evaluate_event(
    snapshot: &Snapshot,
    event: &EventRow,
    now: i64,
    source: &str,
) -> Vec<(RuleVerdict, Option<NewExecution>)> {
    let Some(rules) = snapshot.rules.get(&event.trigger_ref) else {
        return Vec::new();
    };
    let rules = Arc::clone(rules);
    let ctx: Context = event_context(event);
    let mut out = Vec::with_capacity(rules.len());
    for stored in rules.iter() {
        let rule = match stored.compiled() {
            Ok(rule) => rule,
            Err(why) => {
                out.push((verdict(stored.rule_ref(), "error", why.to_owned()), None));
                continue;
            }
        };
        let rule_ref = rule.rule_ref();
        let action = match snapshot.actions.get(rule.action()) {
            None => {
                let why = format!("action {} does not exist", rule.action());
                out.push((verdict(rule_ref, "error", why), None));
                continue;
            }
            Some(Err(why)) => {
                out.push((verdict(rule_ref, "error", why.clone()), None));
                continue;
            }
            Some(Ok(action)) => action,
        };
        match rule.matches(&ctx) {
            Err(e) => {
                out.push((verdict(rule_ref, "error", e.to_string()), None));
                continue;
            }
            Ok(false) => {
                let why = format!("condition `{}` is false for this event", rule.spec().condition);
                out.push((verdict(rule_ref, "not_matched", why), None));
                continue;
            }
            Ok(true) => {}
        }
        let params = match rule.render_parameters(&ctx) {
            Ok(p) => p,
            Err(e) => {
                let why = format!("matched, but the parameters could not be rendered: {e}");
                out.push((verdict(rule_ref, "error", why), None));
                continue;
            }
        };
        // Replays run at once; bursts are only gathered for live events.
        let debounce = if source == "event" {
            match rule.debounce_key(&ctx) {
                Ok(key) => key.zip(rule.debounce()),
                Err(e) => {
                    let why = format!("matched, but the debounce key could not be rendered: {e}");
                    out.push((verdict(rule_ref, "error", why), None));
                    continue;
                }
            }
        } else {
            None
        };
        let id = uuid::Uuid::now_v7().to_string();
        let (reason, next_run_at, debounce_key) = match debounce {
            None => ("condition is true".to_owned(), now, None),
            Some((key, quiet)) => (
                format!("condition is true; debounced ({} s quiet period)", quiet.as_secs()),
                now + quiet.as_micros() as i64,
                Some(key),
            ),
        };
        let execution = NewExecution {
            id: id.clone(),
            action_ref: action.action_ref().to_owned(),
            rule_ref: Some(rule_ref.to_owned()),
            event_id: Some(event.id.clone()),
            source: source.to_owned(),
            max_attempts: action.retry().max_attempts as i64,
            params: params.to_string(),
            debounce_key,
            next_run_at,
        };
        let mut v = verdict(rule_ref, "matched", reason);
        v.execution_id = Some(id);
        out.push((v, Some(execution)));
    }
    out
}

fn verdict(rule: &str, outcome: &str, reason: String) -> RuleVerdict {
    RuleVerdict {
        rule: rule.to_owned(),
        outcome: outcome.to_owned(),
        reason,
        execution_id: None,
    }
}

pub(super) async fn replay(engine: &EngineHandle, event_id: &str) -> Result<Vec<RuleVerdict>, StoreError> {
    let store = &engine.inner.store;
    let event = store.get_event(event_id).await?.ok_or(StoreError::NotFound)?;
    engine.invalidate().await;
    let snapshot = engine.inner.cache.lock().await.get(store, engine.poll()).await?;
    let mut verdicts = Vec::new();
    for (verdict, execution) in evaluate_event(&snapshot, &event, now_micros(), "replay") {
        if let Some(x) = &execution {
            store.insert_execution(x).await?;
        }
        verdicts.push(verdict);
    }
    engine.wake_workers();
    Ok(verdicts)
}
