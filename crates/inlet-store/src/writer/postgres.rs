//! The PostgreSQL writer: a task on the runtime; each batch is one
//! transaction with one multi-row statement per table for received requests.

use super::{Done, Job, MAX_BATCH, Receipt, ReceiveRecord, Write, duplicate, settle, settle_alone, take_batch};
use crate::{NewEvent, StoreError, sql};
use sqlx::{PgPool, Postgres, QueryBuilder, Transaction};
use std::collections::HashMap;
use tokio::sync::mpsc;

/// Requests woken together reach the queue a moment apart: this many
/// scheduler turns let them join one commit rather than wait for the next.
const COALESCE_TURNS: usize = 2;

pub(super) async fn run(pool: PgPool, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut shutdown_waiters = Vec::new();
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        for _ in 0..COALESCE_TURNS {
            if jobs.len() >= MAX_BATCH {
                break;
            }
            tokio::task::yield_now().await;
            while jobs.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => jobs.push(job),
                    Err(_) => break,
                }
            }
        }
        let batch = take_batch(&mut jobs, &mut rx, &mut shutdown_waiters);
        if batch.is_empty() {
            continue;
        }
        let all = commit(&pool, &batch).await;
        for write in settle(batch, all) {
            let alone = commit(&pool, std::slice::from_ref(&write))
                .await
                .map(|mut d| d.remove(0));
            settle_alone(write, alone);
        }
    }
    for done in shutdown_waiters {
        let _ = done.send(());
    }
}

/// One transaction for the batch; results in the batch's order.
async fn commit(pool: &PgPool, batch: &[Write]) -> Result<Vec<Done>, StoreError> {
    let mut tx = pool.begin().await?;
    let records: Vec<&ReceiveRecord> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Receive(record, _) => Some(record.as_ref()),
            _ => None,
        })
        .collect();
    let mut receipts = receive(&mut tx, &records).await?.into_iter();
    let mut done = Vec::with_capacity(batch.len());
    for write in batch {
        done.push(match write {
            Write::Receive(..) => Done::Receipt(receipts.next().expect("one receipt per record")),
            Write::EndAttempt(end, _) => Done::Ended(end_attempt(&mut tx, end).await?),
            Write::Claim(claim, _) => Done::Claimed(crate::executions::claim_in_postgres(&mut tx, claim).await?),
            Write::Evaluate(evaluations, _) => {
                Done::Created(crate::executions::evaluate_in_postgres(&mut tx, evaluations).await?)
            }
        });
    }
    tx.commit().await?;
    Ok(done)
}

/// Received requests with one statement per table: the events (duplicates of
/// a stored delivery id are skipped by the unique index and reported), the
/// request-log rows, the keys' `last_used_at`.
async fn receive(tx: &mut Transaction<'_, Postgres>, records: &[&ReceiveRecord]) -> Result<Vec<Receipt>, StoreError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let now = inlet_core::clock::now_micros();
    let events: Vec<&NewEvent> = records.iter().filter_map(|r| r.event.as_ref()).collect();
    // New events' ids, with whether each was stored already processed.
    let mut inserted: HashMap<String, bool> = HashMap::with_capacity(events.len());
    if !events.is_empty() {
        let mut insert = QueryBuilder::<Postgres>::new(
            "INSERT INTO events (id, trigger_ref, payload, metadata, source, delivery_id, created_at, processed) ",
        );
        insert.push_values(events.iter(), |mut row, event| {
            row.push_bind(&event.id)
                .push_bind(&event.trigger_ref)
                .push_bind(&event.payload)
                .push_bind(&event.metadata)
                .push_bind(&event.source)
                .push_bind(&event.delivery_id)
                .push_bind(event.created_at)
                .push(crate::events::no_enabled_rule!())
                .push_bind_unseparated(&event.trigger_ref)
                .push_unseparated(")");
        });
        insert.push(
            " ON CONFLICT (trigger_ref, delivery_id) WHERE delivery_id IS NOT NULL DO NOTHING RETURNING id, processed",
        );
        let rows: Vec<(String, bool)> = insert.build_query_as().fetch_all(&mut **tx).await?;
        inserted.extend(rows);
    }
    let mut receipts = Vec::with_capacity(records.len());
    let mut logs: Vec<std::borrow::Cow<'_, crate::RequestLogRow>> = Vec::with_capacity(records.len());
    for record in records {
        let mut log = std::borrow::Cow::Borrowed(&record.log);
        let receipt = match &record.event {
            None => Receipt {
                event_id: None,
                duplicate: false,
                awaits_rules: false,
            },
            Some(event) if inserted.contains_key(&event.id) => Receipt {
                event_id: Some(event.id.clone()),
                duplicate: false,
                awaits_rules: !inserted[&event.id],
            },
            Some(event) => {
                let (existing,): (String,) = sqlx::query_as(sql::EXISTING_DELIVERY)
                    .bind(&event.trigger_ref)
                    .bind(&event.delivery_id)
                    .fetch_one(&mut **tx)
                    .await?;
                duplicate(log.to_mut(), existing)
            }
        };
        logs.push(log);
        receipts.push(receipt);
    }
    if !logs.is_empty() {
        let mut insert = QueryBuilder::<Postgres>::new(
            "INSERT INTO request_log (id, trigger_ref, key_prefix, received_at, source_ip, method, path, query, \
         headers, body, body_truncated, outcome, status_code, message, processing_us, event_id) ",
        );
        insert.push_values(logs.iter(), |mut row, log| {
            row.push_bind(&log.id)
                .push_bind(&log.trigger_ref)
                .push_bind(&log.key_prefix)
                .push_bind(log.received_at)
                .push_bind(&log.source_ip)
                .push_bind(&log.method)
                .push_bind(&log.path)
                .push_bind(&log.query)
                .push_bind(&log.headers)
                .push_bind(&log.body)
                .push_bind(log.body_truncated)
                .push_bind(&log.outcome)
                .push_bind(log.status_code)
                .push_bind(&log.message)
                .push_bind(log.processing_us)
                .push_bind(&log.event_id);
        });
        insert.build().execute(&mut **tx).await?;
    }
    let mut used_keys: Vec<&str> = records.iter().filter_map(|r| r.key_id.as_deref()).collect();
    used_keys.sort_unstable();
    used_keys.dedup();
    if !used_keys.is_empty() {
        let mut update = QueryBuilder::<Postgres>::new("UPDATE webhook_keys SET last_used_at = ");
        update.push_bind(now).push(" WHERE id IN (");
        let mut ids = update.separated(", ");
        for key_id in used_keys {
            ids.push_bind(key_id);
        }
        ids.push_unseparated(")");
        update.build().execute(&mut **tx).await?;
    }
    Ok(receipts)
}

async fn end_attempt(tx: &mut Transaction<'_, Postgres>, end: &crate::AttemptEnd) -> Result<bool, StoreError> {
    let now = inlet_core::clock::now_micros();
    sqlx::query(sql::END_ATTEMPT)
        .bind(&end.execution_id)
        .bind(end.attempt)
        .bind(&end.attempt_status)
        .bind(now)
        .bind(end.exit_code)
        .bind(end.http_status)
        .bind(&end.summary)
        .bind(&end.stdout)
        .bind(&end.stderr)
        .bind(end.stdout_truncated)
        .bind(end.stderr_truncated)
        .execute(&mut **tx)
        .await?;
    let done = sqlx::query(sql::END_EXECUTION)
        .bind(&end.execution_id)
        .bind(&end.owner)
        .bind(&end.status)
        .bind(end.next_run_at)
        .bind(&end.result)
        .bind(end.output())
        .bind(now)
        .bind(crate::status::is_terminal(&end.status))
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() == 1)
}
