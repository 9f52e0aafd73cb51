//! The PostgreSQL writer: a task on the runtime; each batch is one
//! transaction with one multi-row statement per table for received requests.

use super::{
    Done, Job, MAX_BATCH, Receipt, ReceiveRecord, Write, duplicate, settle, settle_alone, stored_body, take_batch,
};
use crate::{NewEvent, RequestLogRow, StoreError, sql};
use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgPool, Postgres, Transaction};
use std::collections::HashMap;
use tokio::sync::mpsc;

// One statement text per table whatever the batch's size (columns as arrays),
// so PostgreSQL parses and plans each once per connection.
const INSERT_EVENTS: &str = concat!(
    "INSERT INTO events (id, trigger_ref, payload, metadata, source, delivery_id, created_at, processed) \
     SELECT u.*, ",
    crate::events::no_enabled_rule!(),
    "u.trigger_ref) FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], \
     $7::BIGINT[]) AS u(id, trigger_ref, payload, metadata, source, delivery_id, created_at) \
     ON CONFLICT (trigger_ref, delivery_id) WHERE delivery_id IS NOT NULL DO NOTHING RETURNING id, processed"
);

// The keys' `last_used_at` rides along, saving the batch a round trip.
const INSERT_LOGS: &str = "WITH used AS (UPDATE webhook_keys SET last_used_at = $18 WHERE id = ANY($19)) \
     INSERT INTO request_log (id, trigger_ref, key_prefix, received_at, source_ip, method, \
     path, query, headers, body, body_truncated, outcome, status_code, message, processing_us, event_id, \
     body_in_event) \
     SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::TEXT[], \
     $8::TEXT[], $9::TEXT[], $10::BYTEA[], $11::BOOLEAN[], $12::TEXT[], $13::BIGINT[], $14::TEXT[], $15::BIGINT[], \
     $16::TEXT[], $17::BOOLEAN[])";

/// Requests woken together reach the queue a moment apart: this many
/// scheduler turns let them join one commit rather than wait for the next.
const COALESCE_TURNS: usize = 2;

pub(super) async fn run(pool: PgPool, mut rx: mpsc::Receiver<Job>) {
    let mut held = None;
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
        let all = commit(&pool, &mut held, &batch).await;
        for write in settle(batch, all) {
            let alone = commit(&pool, &mut held, std::slice::from_ref(&write))
                .await
                .map(|mut d| d.remove(0));
            settle_alone(write, alone);
        }
    }
    for done in shutdown_waiters {
        let _ = done.send(());
    }
}

/// One transaction for the batch, on the connection the writer holds; results
/// in the batch's order.
///
/// The writer keeps its connection between batches because the pool pings a
/// connection when it is taken and again when it is given back: two more round
/// trips for every batch. So a connection the server closed since the last
/// batch is found only by the batch failing: it goes back to the pool (which
/// closes it) and the batch is tried once more on a connection the pool has
/// just tested.
async fn commit(
    pool: &PgPool,
    held: &mut Option<PoolConnection<Postgres>>,
    batch: &[Write],
) -> Result<Vec<Done>, StoreError> {
    let reused = held.is_some();
    match commit_held(pool, held, batch).await {
        Err(err) if reused => {
            tracing::debug!(error = %err, "batch failed on the writer's connection; trying a fresh one");
            commit_held(pool, held, batch).await
        }
        result => result,
    }
}

async fn commit_held(
    pool: &PgPool,
    held: &mut Option<PoolConnection<Postgres>>,
    batch: &[Write],
) -> Result<Vec<Done>, StoreError> {
    let conn = match held {
        Some(conn) => conn,
        None => held.insert(pool.acquire().await?),
    };
    let result = commit_on(conn, batch).await;
    if result.is_err() {
        *held = None;
    }
    result
}

async fn commit_on(conn: &mut PoolConnection<Postgres>, batch: &[Write]) -> Result<Vec<Done>, StoreError> {
    let mut tx = conn.begin().await?;
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
/// a stored delivery id are skipped by the unique index and reported), then
/// the request-log rows with the keys' `last_used_at`.
async fn receive(tx: &mut Transaction<'_, Postgres>, records: &[&ReceiveRecord]) -> Result<Vec<Receipt>, StoreError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let now = inlet_core::clock::now_micros();
    let events: Vec<&NewEvent> = records.iter().filter_map(|r| r.event.as_ref()).collect();
    // New events' ids, with whether each was stored already processed.
    let mut inserted: HashMap<String, bool> = HashMap::with_capacity(events.len());
    if !events.is_empty() {
        let column = |f: fn(&NewEvent) -> &str| events.iter().map(|e| f(e)).collect::<Vec<&str>>();
        let rows: Vec<(String, bool)> = sqlx::query_as(INSERT_EVENTS)
            .bind(column(|e| &e.id))
            .bind(column(|e| &e.trigger_ref))
            .bind(column(|e| &e.payload))
            .bind(column(|e| &e.metadata))
            .bind(column(|e| &e.source))
            .bind(events.iter().map(|e| e.delivery_id.as_deref()).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.created_at).collect::<Vec<_>>())
            .fetch_all(&mut **tx)
            .await?;
        inserted.extend(rows);
    }
    let mut receipts = Vec::with_capacity(records.len());
    let mut logs: Vec<std::borrow::Cow<'_, crate::RequestLogRow>> = Vec::with_capacity(records.len());
    let mut bodies: Vec<(&[u8], bool)> = Vec::with_capacity(records.len());
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
        bodies.push(stored_body(record, &receipt));
        logs.push(log);
        receipts.push(receipt);
    }
    let mut used_keys: Vec<&str> = records.iter().filter_map(|r| r.key_id.as_deref()).collect();
    used_keys.sort_unstable();
    used_keys.dedup();
    let text = |f: fn(&RequestLogRow) -> &str| logs.iter().map(|l| f(l)).collect::<Vec<&str>>();
    let maybe = |f: fn(&RequestLogRow) -> Option<&str>| logs.iter().map(|l| f(l)).collect::<Vec<_>>();
    let number = |f: fn(&RequestLogRow) -> i64| logs.iter().map(|l| f(l)).collect::<Vec<i64>>();
    sqlx::query(INSERT_LOGS)
        .bind(text(|l| &l.id))
        .bind(maybe(|l| l.trigger_ref.as_deref()))
        .bind(maybe(|l| l.key_prefix.as_deref()))
        .bind(number(|l| l.received_at))
        .bind(text(|l| &l.source_ip))
        .bind(text(|l| &l.method))
        .bind(text(|l| &l.path))
        .bind(text(|l| &l.query))
        .bind(text(|l| &l.headers))
        .bind(bodies.iter().map(|(body, _)| *body).collect::<Vec<&[u8]>>())
        .bind(logs.iter().map(|l| l.body_truncated).collect::<Vec<bool>>())
        .bind(text(|l| &l.outcome))
        .bind(number(|l| l.status_code))
        .bind(text(|l| &l.message))
        .bind(number(|l| l.processing_us))
        .bind(maybe(|l| l.event_id.as_deref()))
        .bind(bodies.iter().map(|(_, in_event)| *in_event).collect::<Vec<bool>>())
        .bind(now)
        .bind(used_keys)
        .execute(&mut **tx)
        .await?;
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
