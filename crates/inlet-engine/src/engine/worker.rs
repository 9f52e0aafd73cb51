//! Workers: claim due executions with a lease, run them, record the attempts.

use super::live::LogLine;
use super::{EngineHandle, Mode, context::event_context, wait_for_work};
use crate::runner::{self, CommandOutcome, HttpOutcome, RunOptions, Stream};
use inlet_core::automation::{Invocation, OriginalRequest};
use inlet_core::clock::now_micros;
use inlet_core::expr::Context;
use inlet_store::{AttemptEnd, ClaimedExecution, EventRow, ExecutionRow, StoreError, status};
use serde_json::{Value, json};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinSet;

pub(super) async fn dispatch(engine: EngineHandle) {
    let mut mode = engine.mode();
    let slots = Arc::new(Semaphore::new(engine.inner.cfg.workers));
    let mut running = JoinSet::new();
    let mut n: u64 = 0;
    loop {
        while running.try_join_next().is_some() {}
        let first = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("never closed"),
            _ = mode.wait_for(|m| *m != Mode::Run) => break,
        };
        if *mode.borrow() != Mode::Run {
            break;
        }
        // Claim for every free slot at once: one commit however many are due.
        let mut permits = vec![first];
        while let Ok(permit) = slots.clone().try_acquire_owned() {
            permits.push(permit);
        }
        let owners: Vec<String> = permits
            .iter()
            .map(|_| {
                n += 1;
                format!("{}/{n}", engine.inner.node)
            })
            .collect();
        let owner_refs: Vec<&str> = owners.iter().map(String::as_str).collect();
        let lease = engine.inner.cfg.lease();
        let now = now_micros();
        let claimed = engine
            .inner
            .store
            .claim_executions(&owner_refs, now, now + lease.as_micros() as i64)
            .await;
        let all_busy = match claimed {
            Ok(rows) => {
                let all = rows.len() == permits.len();
                for ((claimed, owner), permit) in rows.into_iter().zip(owners).zip(permits.drain(..)) {
                    let engine = engine.clone();
                    running.spawn(async move {
                        let id = claimed.row.id.clone();
                        if let Err(err) = run(&engine, claimed, &owner, permit).await {
                            tracing::error!(execution = %id, error = %err, "could not record an execution; its lease will expire");
                        }
                        // The action may be below its concurrency limit again.
                        engine.wake_workers();
                    });
                }
                all
            }
            Err(err) => {
                tracing::error!(error = %err, "claiming executions failed");
                false
            }
        };
        drop(permits);
        if all_busy {
            continue;
        }
        // Nothing more is due: wait for new work, a freed slot or the poll.
        if wait_for_work(&engine, &mut mode, &engine.inner.work).await {
            break;
        }
    }
    if *mode.borrow() == Mode::Abort {
        running.shutdown().await;
        return;
    }
    let grace = engine.inner.cfg.shutdown_grace();
    let drained = tokio::time::timeout(grace, async {
        loop {
            tokio::select! {
                next = running.join_next() => if next.is_none() { break },
                _ = mode.wait_for(|m| *m == Mode::Abort) => break,
            }
        }
    })
    .await;
    if drained.is_err() || !running.is_empty() {
        tracing::warn!(
            running = running.len(),
            "executions still running at shutdown were stopped; their leases will expire and they will run again"
        );
        running.shutdown().await;
    }
}

/// Uniform in [0, 1), from the standard library's per-instance random keys.
fn jitter() -> f64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_micros());
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Ran {
    ok: bool,
    cancelled: bool,
    summary: String,
    exit_code: Option<i64>,
    http_status: Option<i64>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stdout_truncated: bool,
    stderr_truncated: bool,
    result: Value,
}

impl Ran {
    fn refused(summary: String) -> Self {
        Ran {
            ok: false,
            cancelled: false,
            result: json!({"summary": summary}),
            summary,
            exit_code: None,
            http_status: None,
            stdout: Vec::new(),
            stderr: Vec::new(),
            stdout_truncated: false,
            stderr_truncated: false,
        }
    }

    fn from_command(o: CommandOutcome) -> Self {
        let summary = o.summary();
        Ran {
            ok: o.success(),
            cancelled: o.cancelled,
            result: json!({
                "summary": summary, "exit_code": o.exit_code, "signal": o.signal, "timed_out": o.timed_out,
                "duration_ms": o.duration.as_millis() as u64,
            }),
            summary,
            exit_code: o.exit_code.map(i64::from),
            http_status: None,
            stdout: o.stdout,
            stderr: o.stderr,
            stdout_truncated: o.stdout_truncated,
            stderr_truncated: o.stderr_truncated,
        }
    }

    fn from_http(o: HttpOutcome) -> Self {
        let summary = o.summary();
        Ran {
            ok: o.success,
            cancelled: false,
            result: json!({
                "summary": summary, "http_status": o.status, "duration_ms": o.duration.as_millis() as u64,
            }),
            summary,
            exit_code: None,
            http_status: o.status.map(i64::from),
            stdout: o.body,
            stderr: Vec::new(),
            stdout_truncated: o.body_truncated,
            stderr_truncated: false,
        }
    }
}

/// Runs one claimed execution: one attempt, recorded. The worker slot is given
/// back as soon as the action has run, while the attempt is being recorded.
async fn run(
    engine: &EngineHandle,
    claimed: ClaimedExecution,
    owner: &str,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> Result<(), StoreError> {
    let ClaimedExecution { row, event } = claimed;
    let store = &engine.inner.store;
    let attempt = row.attempt;
    let (ran, retryable): (Result<Ran, Lost>, bool) = if row.cancel_requested {
        let mut ran = Ran::refused("cancelled before the attempt started".into());
        ran.cancelled = true;
        (Ok(ran), false)
    } else if attempt > row.max_attempts {
        let why = "not run: the last attempt was lost with its worker (crash or shutdown)";
        (Ok(Ran::refused(why.into())), false)
    } else {
        match prepare(engine, &row, event).await? {
            Err(why) => (Ok(Ran::refused(why)), false),
            Ok(invocation) => (execute(engine, &row, owner, invocation).await, true),
        }
    };
    drop(slot);
    engine.wake_workers();
    let Ok(ran) = ran else {
        tracing::warn!(execution = %row.id, "lease lost while running; another worker has taken the execution over");
        return Ok(());
    };
    let snapshot = engine.inner.cache.lock().await.get(store, engine.poll()).await.ok();
    let policy = snapshot
        .as_ref()
        .and_then(|s| s.actions.get(&row.action_ref))
        .and_then(|a| a.as_ref().ok())
        .map(|a| *a.retry());
    let (next_status, next_run_at) = if ran.ok {
        (status::SUCCEEDED, None)
    } else if ran.cancelled {
        (status::CANCELLED, None)
    } else if !retryable {
        (status::FAILED, None)
    } else if attempt < row.max_attempts {
        let policy = policy.unwrap_or_default();
        // Attempts of this round (a manual retry starts a new round).
        let round_start = row.max_attempts - policy.max_attempts as i64;
        let nth = (attempt - round_start).max(1) as u32;
        let wait = policy.backoff(nth, jitter());
        (status::RETRYING, Some(now_micros() + wait.as_micros() as i64))
    } else {
        (status::DEAD, None)
    };
    let attempt_status = if ran.ok {
        "succeeded"
    } else if ran.cancelled {
        "cancelled"
    } else {
        "failed"
    };
    let mut result = ran.result;
    result["attempt"] = json!(attempt);
    let end = AttemptEnd {
        execution_id: row.id.clone(),
        owner: owner.to_owned(),
        attempt,
        attempt_status: attempt_status.into(),
        exit_code: ran.exit_code,
        http_status: ran.http_status,
        summary: ran.summary.clone(),
        stdout: lossy(&ran.stdout),
        stderr: lossy(&ran.stderr),
        stdout_truncated: ran.stdout_truncated,
        stderr_truncated: ran.stderr_truncated,
        status: next_status.into(),
        next_run_at,
        result: result.to_string(),
    };
    if store.end_attempt(end).await? {
        tracing::info!(execution = %row.id, action = %row.action_ref, attempt, status = next_status, "{}", ran.summary);
        if let Some(at) = next_run_at {
            engine.wake_at(at);
        }
    } else {
        tracing::warn!(execution = %row.id, "lease lost before the attempt was recorded; its result is dropped");
    }
    Ok(())
}

/// The lease was lost during the run (another worker owns the execution now).
struct Lost;

/// The action, rendered against the event and the rule's parameters; Err when it
/// cannot run (not retried).
async fn prepare(
    engine: &EngineHandle,
    row: &ExecutionRow,
    event: Option<EventRow>,
) -> Result<Result<Invocation, String>, StoreError> {
    let store = &engine.inner.store;
    let snapshot = engine.inner.cache.lock().await.get(store, engine.poll()).await?;
    let action = match snapshot.actions.get(&row.action_ref) {
        None => return Ok(Err(format!("action {} does not exist", row.action_ref))),
        Some(Err(why)) => return Ok(Err(why.clone())),
        Some(Ok(action)) => action.clone(),
    };
    let params: Value = serde_json::from_str(&row.params).unwrap_or(Value::Null);
    let mut original = None;
    let ctx = match (&row.event_id, event) {
        (Some(event_id), None) => return Ok(Err(format!("event {event_id} no longer exists"))),
        (Some(event_id), Some(event)) if action.reads_event() => {
            // Webhook events (and replays of logged requests) have their request
            // in the log, for `forward: true`.
            if event.source != "api" && action.forwards_original() {
                original = store.original_request(event_id).await?;
            }
            event_context(&event)
        }
        _ => Context::default(),
    }
    .with_params(&params);
    let headers: Vec<(String, String)> = original
        .as_ref()
        .and_then(|(_, h)| serde_json::from_str::<serde_json::Map<String, Value>>(h).ok())
        .map(|m| {
            m.into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default();
    let request = original.as_ref().map(|(body, _)| OriginalRequest {
        body,
        headers: &headers,
    });
    Ok(match action.render(&ctx, request.as_ref()) {
        Ok(mut invocation) => {
            if let Invocation::Http(h) = &mut invocation {
                h.message_id = Some(format!("msg_{}", row.id.replace('-', "")));
            }
            Ok(invocation)
        }
        Err(e) => Err(format!("the action could not be rendered: {e}")),
    })
}

/// Runs the invocation while renewing the lease; output lines go to followers.
async fn execute(engine: &EngineHandle, row: &ExecutionRow, owner: &str, invocation: Invocation) -> Result<Ran, Lost> {
    let inner = &engine.inner;
    let id = row.id.clone();
    let (cancel_tx, mut cancel_rx) = watch::channel(false);
    inner
        .cancels
        .lock()
        .expect("cancels lock")
        .insert(id.clone(), cancel_tx.clone());
    inner.live.open(&id, row.attempt);
    // Renew the lease every third of it; a lost lease or a cancel request stops the run.
    let (lost_tx, lost_rx) = watch::channel(false);
    let heartbeat = {
        let store = inner.store.clone();
        let lease = inner.cfg.lease();
        let id = id.clone();
        let owner = owner.to_owned();
        let cancel_tx = cancel_tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(lease / 3).await;
                let until = now_micros() + lease.as_micros() as i64;
                match store.renew_lease(&id, &owner, until).await {
                    Ok(Some(false)) => {}
                    Ok(Some(true)) => {
                        let _ = cancel_tx.send(true);
                    }
                    Ok(None) => {
                        let _ = lost_tx.send(true);
                        let _ = cancel_tx.send(true);
                        return;
                    }
                    Err(err) => tracing::warn!(execution = %id, error = %err, "lease renewal failed"),
                }
            }
        })
    };
    let cancelled = async move {
        let _ = cancel_rx.wait_for(|c| *c).await;
    };
    let ran = match invocation {
        Invocation::Command(inv) => {
            let (line_tx, mut line_rx) = mpsc::unbounded_channel();
            let forward = {
                let engine = engine.clone();
                let id = id.clone();
                let attempt = row.attempt;
                tokio::spawn(async move {
                    while let Some(line) = line_rx.recv().await {
                        let line: runner::OutputLine = line;
                        let stream = match line.stream {
                            Stream::Stdout => "stdout",
                            Stream::Stderr => "stderr",
                        };
                        engine.inner.live.push(
                            &id,
                            LogLine {
                                attempt,
                                stream,
                                line: line.line,
                            },
                        );
                    }
                })
            };
            let opts = RunOptions {
                output_cap: inner.cfg.output_cap_bytes,
                on_line: Some(line_tx),
                kill_grace: inner.cfg.kill_grace(),
                ..RunOptions::default()
            };
            let outcome = runner::run_command_with(&inv, opts, cancelled).await;
            let _ = forward.await;
            Ran::from_command(outcome)
        }
        Invocation::Http(inv) => {
            tokio::select! {
                outcome = runner::run_http(&inner.http, &inv, inner.cfg.output_cap_bytes) => {
                    let ran = Ran::from_http(outcome);
                    for line in String::from_utf8_lossy(&ran.stdout).lines() {
                        inner.live.push(&id, LogLine { attempt: row.attempt, stream: "stdout", line: line.to_owned() });
                    }
                    ran
                }
                _ = cancelled => {
                    let mut ran = Ran::refused("cancelled while the request was in flight".into());
                    ran.cancelled = true;
                    ran
                }
            }
        }
    };
    heartbeat.abort();
    inner.cancels.lock().expect("cancels lock").remove(&id);
    inner.live.close(&id);
    if *lost_rx.borrow() {
        return Err(Lost);
    }
    Ok(ran)
}
