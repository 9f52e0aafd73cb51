//! The PostgreSQL writer: a task on the runtime. A batch of received requests
//! is one statement, which is its own transaction; a batch with engine writes
//! in it is one transaction.

use super::{
    DUPLICATE_MESSAGE, DUPLICATE_OUTCOME, Done, Job, MAX_BATCH, Receipt, ReceiveRecord, Write, body_is_payload,
    reply_now, settle, settle_alone, take_batch,
};
use crate::{StoreError, sql};
use sqlx::pool::PoolConnection;
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};
use std::collections::HashSet;
use tokio::sync::mpsc;

// Received requests in one statement, so that a batch of them costs a single
// round trip and its commit. The statement's text is the same whatever the
// batch's size (columns as arrays): PostgreSQL parses and plans it once per
// connection.
//
// A delivery id already stored makes `ON CONFLICT` return the stored event
// (a no-op update: `DO NOTHING` returns nothing, and a second look from this
// statement's snapshot would miss an event committed meanwhile by another
// node). Only the first of a batch's requests with one delivery id is offered
// as an event (`first`); the others are matched to its outcome by delivery id.
// A log row whose body is its event's payload keeps no copy of it (`in_event`)
// unless its event turns out to be a duplicate; such a row's body is sent as
// NULL, since the payload beside it is the same bytes.
const RECEIVE: &str = concat!(
    "WITH used AS (UPDATE webhook_keys SET last_used_at = $26 WHERE id = ANY($27)), \
     r AS (SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], \
       $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::BYTEA[], $11::BOOLEAN[], $12::TEXT[], $13::BIGINT[], $14::TEXT[], \
       $15::BIGINT[], $16::TEXT[], $17::BOOLEAN[], $18::TEXT[], $19::TEXT[], $20::TEXT[], $21::TEXT[], \
       $22::TEXT[], $23::TEXT[], $24::BIGINT[], $25::BOOLEAN[]) WITH ORDINALITY \
       AS r(log_id, trigger_ref, key_prefix, received_at, source_ip, method, path, query, headers, body, \
       body_truncated, outcome, status_code, message, processing_us, log_event_id, in_event, \
       event_id, event_trigger_ref, payload, metadata, source, delivery_id, created_at, first, ord)), \
     ev AS (INSERT INTO events (id, trigger_ref, payload, metadata, source, delivery_id, created_at, processed) \
       SELECT event_id, event_trigger_ref, payload, metadata, source, delivery_id, created_at, ",
    crate::events::no_enabled_rule!(),
    "r.event_trigger_ref) FROM r WHERE first \
       ON CONFLICT (trigger_ref, delivery_id) WHERE delivery_id IS NOT NULL DO UPDATE SET source = events.source \
       RETURNING id, trigger_ref, delivery_id, processed), \
     res AS (SELECT r.*, COALESCE(by_id.id, by_delivery.id) AS stored_id, \
         COALESCE(by_id.processed, by_delivery.processed) AS processed, \
         r.event_id IS NOT NULL AND r.event_id IS DISTINCT FROM COALESCE(by_id.id, by_delivery.id) AS dup \
       FROM r LEFT JOIN ev by_id ON by_id.id = r.event_id \
       LEFT JOIN ev by_delivery ON by_id.id IS NULL AND by_delivery.trigger_ref = r.event_trigger_ref \
         AND by_delivery.delivery_id = r.delivery_id), \
     logs AS (INSERT INTO request_log (id, trigger_ref, key_prefix, received_at, source_ip, method, path, query, \
         headers, body, body_truncated, outcome, status_code, message, processing_us, event_id, body_in_event) \
       SELECT log_id, trigger_ref, key_prefix, received_at, source_ip, method, path, query, headers, \
         CASE WHEN in_event AND NOT dup THEN ''::BYTEA ELSE COALESCE(body, convert_to(payload, 'UTF8')) END, \
         body_truncated, CASE WHEN dup THEN $28 ELSE outcome END, status_code, \
         CASE WHEN dup THEN $29 ELSE message END, processing_us, \
         CASE WHEN dup THEN stored_id ELSE log_event_id END, in_event AND NOT dup FROM res) \
     SELECT stored_id, processed FROM res ORDER BY ord"
);

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
        for write in settle(batch, all, &mut reply_now) {
            let alone = commit(&pool, &mut held, std::slice::from_ref(&write))
                .await
                .map(|mut d| d.remove(0));
            settle_alone(write, alone, &mut reply_now);
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

async fn commit_on(conn: &mut PgConnection, batch: &[Write]) -> Result<Vec<Done>, StoreError> {
    let records: Vec<&ReceiveRecord> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Receive(record, _) => Some(record.as_ref()),
            _ => None,
        })
        .collect();
    if records.len() == batch.len() {
        let receipts = receive(conn, &records).await?;
        return Ok(receipts.into_iter().map(Done::Receipt).collect());
    }
    let mut tx = conn.begin().await?;
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

/// Received requests, in one statement (`RECEIVE`): their events, their
/// request-log rows and the keys' `last_used_at`.
async fn receive(conn: &mut PgConnection, records: &[&ReceiveRecord]) -> Result<Vec<Receipt>, StoreError> {
    if records.is_empty() {
        return Ok(Vec::new());
    }
    let mut offered = HashSet::new();
    let first: Vec<bool> = records
        .iter()
        .map(|r| match &r.event {
            Some(event) => match &event.delivery_id {
                Some(delivery) => offered.insert((event.trigger_ref.as_str(), delivery.as_str())),
                None => true,
            },
            None => false,
        })
        .collect();
    let in_event: Vec<bool> = records.iter().map(|r| body_is_payload(r)).collect();
    let mut used_keys: Vec<&str> = records.iter().filter_map(|r| r.key_id.as_deref()).collect();
    used_keys.sort_unstable();
    used_keys.dedup();
    let log = |f: fn(&crate::RequestLogRow) -> &str| records.iter().map(|r| f(&r.log)).collect::<Vec<&str>>();
    let maybe_log =
        |f: fn(&crate::RequestLogRow) -> Option<&str>| records.iter().map(|r| f(&r.log)).collect::<Vec<_>>();
    let log_number = |f: fn(&crate::RequestLogRow) -> i64| records.iter().map(|r| f(&r.log)).collect::<Vec<i64>>();
    let event = |f: fn(&crate::NewEvent) -> &str| {
        records
            .iter()
            .map(|r| r.event.as_ref().map(f))
            .collect::<Vec<Option<&str>>>()
    };
    let rows: Vec<(Option<String>, Option<bool>)> = sqlx::query_as(RECEIVE)
        .bind(log(|l| &l.id))
        .bind(maybe_log(|l| l.trigger_ref.as_deref()))
        .bind(maybe_log(|l| l.key_prefix.as_deref()))
        .bind(log_number(|l| l.received_at))
        .bind(log(|l| &l.source_ip))
        .bind(log(|l| &l.method))
        .bind(log(|l| &l.path))
        .bind(log(|l| &l.query))
        .bind(log(|l| &l.headers))
        .bind(
            records
                .iter()
                .zip(&in_event)
                .map(|(r, in_event)| (!in_event).then_some(r.log.body.as_slice()))
                .collect::<Vec<Option<&[u8]>>>(),
        )
        .bind(records.iter().map(|r| r.log.body_truncated).collect::<Vec<bool>>())
        .bind(log(|l| &l.outcome))
        .bind(log_number(|l| l.status_code))
        .bind(log(|l| &l.message))
        .bind(log_number(|l| l.processing_us))
        .bind(maybe_log(|l| l.event_id.as_deref()))
        .bind(&in_event)
        .bind(event(|e| &e.id))
        .bind(event(|e| &e.trigger_ref))
        .bind(event(|e| &e.payload))
        .bind(event(|e| &e.metadata))
        .bind(event(|e| &e.source))
        .bind(
            records
                .iter()
                .map(|r| r.event.as_ref().and_then(|e| e.delivery_id.as_deref()))
                .collect::<Vec<_>>(),
        )
        .bind(
            records
                .iter()
                .map(|r| r.event.as_ref().map(|e| e.created_at))
                .collect::<Vec<_>>(),
        )
        .bind(&first)
        .bind(inlet_core::clock::now_micros())
        .bind(used_keys)
        .bind(DUPLICATE_OUTCOME)
        .bind(DUPLICATE_MESSAGE)
        .fetch_all(&mut *conn)
        .await?;
    if rows.len() != records.len() {
        return Err(StoreError::Corrupt(format!(
            "{} receipts for {} received requests",
            rows.len(),
            records.len()
        )));
    }
    records
        .iter()
        .zip(rows)
        .map(|(record, (stored, processed))| match (&record.event, stored) {
            (None, _) => Ok(Receipt {
                event_id: None,
                duplicate: false,
                awaits_rules: false,
            }),
            (Some(event), Some(stored)) => {
                let duplicate = stored != event.id;
                Ok(Receipt {
                    duplicate,
                    awaits_rules: !duplicate && processed == Some(false),
                    event_id: Some(stored),
                })
            }
            (Some(_), None) => Err(StoreError::Corrupt(
                "a received event was neither stored nor matched".into(),
            )),
        })
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{accepted_request, fresh_postgres_database};

    fn received(id: &str, delivery: Option<&str>) -> ReceiveRecord {
        accepted_request(id, &format!("log-{id}"), delivery, &format!(r#"{{"n":"{id}"}}"#))
    }

    #[tokio::test]
    async fn one_statement_sorts_out_deliveries_repeated_within_a_batch_and_across_batches() {
        let Some(url) = fresh_postgres_database().await else {
            return;
        };
        let store = crate::Store::open(&url).await.unwrap();
        let mut conn = PgConnection::connect(&url).await.unwrap();
        let batch = [
            received("e1", Some("d1")),
            received("e2", Some("d1")),
            received("e3", None),
        ];
        let receipts = receive(&mut conn, &batch.iter().collect::<Vec<_>>()).await.unwrap();
        let seen: Vec<(Option<&str>, bool)> = receipts.iter().map(|r| (r.event_id.as_deref(), r.duplicate)).collect();
        // e2 repeats e1's delivery within the batch: it names e1.
        assert_eq!(seen, [(Some("e1"), false), (Some("e1"), true), (Some("e3"), false)]);
        let later = receive(&mut conn, &[&received("e4", Some("d1"))]).await.unwrap();
        assert_eq!((later[0].event_id.as_deref(), later[0].duplicate), (Some("e1"), true));

        for (log, outcome, event, body) in [
            ("log-e1", "accepted", "e1", r#"{"n":"e1"}"#),
            ("log-e2", "duplicate", "e1", r#"{"n":"e2"}"#),
            ("log-e3", "accepted", "e3", r#"{"n":"e3"}"#),
            ("log-e4", "duplicate", "e1", r#"{"n":"e4"}"#),
        ] {
            let row = store.get_request_log(log).await.unwrap().unwrap();
            assert_eq!(
                (row.outcome.as_str(), row.event_id.as_deref(), row.body.as_slice()),
                (outcome, Some(event), body.as_bytes()),
                "{log}"
            );
        }
        let (stored, _) = store.webhook_usage("a.b").await.unwrap();
        assert_eq!(stored, 2, "e1 and e3");
        store.close().await;
    }
}
