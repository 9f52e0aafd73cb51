//! Group commit: receiver writes from concurrent requests, and the engine's
//! ends of attempts, are queued to one task that commits them in batches, one
//! transaction (one fsync) each, and answers every caller only after its batch
//! is durable.

use crate::{AttemptEnd, Backend, NewEvent, StoreError};
use sqlx::QueryBuilder;
use std::collections::HashSet;
use tokio::sync::{mpsc, oneshot};

const MAX_BATCH: usize = 256;
const QUEUE_DEPTH: usize = 8192;
const COALESCE_TURNS: usize = 2;

/// One request as the receiver hands it over: the event to create (when it was
/// accepted), its request-log row, and the key whose `last_used_at` to bump.
#[derive(Debug, Clone)]
pub struct ReceiveRecord {
    pub event: Option<NewEvent>,
    pub log: crate::RequestLogRow,
    pub key_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Receipt {
    pub event_id: Option<String>,
    /// The event's delivery id was already stored: no new event was made and
    /// `event_id` names the earlier one.
    pub duplicate: bool,
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A write waiting for its batch's commit.
enum Write {
    Receive(Box<ReceiveRecord>, Reply<Receipt>),
    EndAttempt(Box<AttemptEnd>, Reply<bool>),
}

enum Job {
    Write(Write),
    Shutdown(oneshot::Sender<()>),
}

#[derive(Clone)]
pub(crate) struct WriterHandle {
    tx: mpsc::Sender<Job>,
}

impl WriterHandle {
    pub(crate) async fn shutdown(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Job::Shutdown(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

pub(crate) fn spawn(backend: Backend) -> (WriterHandle, tokio::task::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    let task = tokio::spawn(run(backend, rx));
    (WriterHandle { tx }, task)
}

impl crate::Store {
    /// Durably records one received request; returns after the commit.
    pub async fn record_request(&self, record: ReceiveRecord) -> Result<Receipt, StoreError> {
        self.writer
            .submit(|reply| Write::Receive(Box::new(record), reply))
            .await
    }

    /// Records the end of an attempt and the execution's next state, in the
    /// next group commit. Returns false when `owner` no longer held the lease
    /// (the execution is left alone).
    pub async fn end_attempt(&self, end: &AttemptEnd) -> Result<bool, StoreError> {
        self.writer
            .submit(|reply| Write::EndAttempt(Box::new(end.clone()), reply))
            .await
    }
}

impl WriterHandle {
    async fn submit<T>(&self, write: impl FnOnce(Reply<T>) -> Write) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job::Write(write(reply)))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn run(backend: Backend, mut rx: mpsc::Receiver<Job>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut shutdown_waiters = Vec::new();
    while rx.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        // Requests woken together reach the queue a moment apart: give them a
        // few scheduler turns to join this commit rather than wait for the next.
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
        let mut batch: Vec<Write> = Vec::with_capacity(jobs.len());
        for job in jobs.drain(..) {
            match job {
                Job::Write(write) => batch.push(write),
                Job::Shutdown(done) => {
                    // Refuse new work, but commit what is already queued.
                    rx.close();
                    shutdown_waiters.push(done);
                }
            }
        }
        if !batch.is_empty() {
            commit_batch(&backend, batch).await;
        }
    }
    for done in shutdown_waiters {
        let _ = done.send(());
    }
}

/// Commits a batch; if the batch fails as a whole, each write is retried
/// alone so one bad write cannot fail its neighbours.
async fn commit_batch(backend: &Backend, batch: Vec<Write>) {
    let receives: Vec<&ReceiveRecord> = batch
        .iter()
        .filter_map(|w| match w {
            Write::Receive(record, _) => Some(record.as_ref()),
            Write::EndAttempt(..) => None,
        })
        .collect();
    let ends: Vec<&AttemptEnd> = batch
        .iter()
        .filter_map(|w| match w {
            Write::EndAttempt(end, _) => Some(end.as_ref()),
            Write::Receive(..) => None,
        })
        .collect();
    let err = match write_batch(backend, &receives, &ends).await {
        Ok((receipts, ended)) => {
            let (mut receipts, mut ended) = (receipts.into_iter(), ended.into_iter());
            for write in batch {
                match write {
                    Write::Receive(_, reply) => drop(reply.send(Ok(receipts.next().expect("one per record")))),
                    Write::EndAttempt(_, reply) => drop(reply.send(Ok(ended.next().expect("one per end")))),
                }
            }
            return;
        }
        Err(err) => err,
    };
    if batch.len() > 1 {
        tracing::warn!(error = %err, size = batch.len(), "batch commit failed; committing one by one");
    }
    for write in batch {
        match write {
            Write::Receive(record, reply) => {
                let result = write_batch(backend, &[record.as_ref()], &[])
                    .await
                    .map(|(mut r, _)| r.remove(0));
                if let Err(err) = &result {
                    tracing::error!(error = %err, "could not commit a received request");
                }
                let _ = reply.send(result);
            }
            Write::EndAttempt(end, reply) => {
                let result = write_batch(backend, &[], &[end.as_ref()])
                    .await
                    .map(|(_, mut e)| e.remove(0));
                if let Err(err) = &result {
                    tracing::error!(error = %err, execution = %end.execution_id, "could not record the end of an attempt");
                }
                let _ = reply.send(result);
            }
        }
    }
}

/// One batch in one transaction, with one statement per table: the events
/// (duplicates of a stored delivery id are skipped by the unique index and
/// reported), then the request-log rows, then the keys' `last_used_at`; then
/// the ends of attempts.
/// Few statements per batch keep round trips to SQLite's worker thread (or to
/// PostgreSQL) independent of the batch size.
macro_rules! write_in {
    ($pool:expr, $db:ty, $records:expr, $ends:expr) => {{
        let records: &[&ReceiveRecord] = $records;
        let mut tx = $pool.begin().await?;
        let now = inlet_core::clock::now_micros();
        let events: Vec<&NewEvent> = records.iter().filter_map(|r| r.event.as_ref()).collect();
        let mut inserted: HashSet<String> = HashSet::with_capacity(events.len());
        if !events.is_empty() {
            let mut insert = QueryBuilder::<$db>::new(
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
            insert
                .push(" ON CONFLICT (trigger_ref, delivery_id) WHERE delivery_id IS NOT NULL DO NOTHING RETURNING id");
            let ids: Vec<(String,)> = insert.build_query_as().fetch_all(&mut *tx).await?;
            inserted.extend(ids.into_iter().map(|(id,)| id));
        }
        let mut receipts = Vec::with_capacity(records.len());
        let mut logs: Vec<std::borrow::Cow<'_, crate::RequestLogRow>> = Vec::with_capacity(records.len());
        for record in records {
            let mut log = std::borrow::Cow::Borrowed(&record.log);
            let receipt = match &record.event {
                None => Receipt {
                    event_id: None,
                    duplicate: false,
                },
                Some(event) if inserted.contains(&event.id) => Receipt {
                    event_id: Some(event.id.clone()),
                    duplicate: false,
                },
                Some(event) => {
                    let (existing,): (String,) =
                        sqlx::query_as("SELECT id FROM events WHERE trigger_ref = $1 AND delivery_id = $2")
                            .bind(&event.trigger_ref)
                            .bind(&event.delivery_id)
                            .fetch_one(&mut *tx)
                            .await?;
                    let log = log.to_mut();
                    log.outcome = "duplicate".into();
                    log.message = "delivery already received; no new event was created".into();
                    log.event_id = Some(existing.clone());
                    Receipt {
                        event_id: Some(existing),
                        duplicate: true,
                    }
                }
            };
            logs.push(log);
            receipts.push(receipt);
        }
        if !logs.is_empty() {
            let mut insert = QueryBuilder::<$db>::new(
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
            insert.build().execute(&mut *tx).await?;
        }
        let mut used_keys: Vec<&str> = records.iter().filter_map(|r| r.key_id.as_deref()).collect();
        used_keys.sort_unstable();
        used_keys.dedup();
        if !used_keys.is_empty() {
            let mut update = QueryBuilder::<$db>::new("UPDATE webhook_keys SET last_used_at = ");
            update.push_bind(now).push(" WHERE id IN (");
            let mut ids = update.separated(", ");
            for key_id in used_keys {
                ids.push_bind(key_id);
            }
            ids.push_unseparated(")");
            update.build().execute(&mut *tx).await?;
        }
        let mut ended = Vec::with_capacity($ends.len());
        for end in $ends {
            ended.push(crate::executions::end_attempt_in!(tx, end));
        }
        tx.commit().await?;
        Ok((receipts, ended))
    }};
}

async fn write_batch(
    backend: &Backend,
    records: &[&ReceiveRecord],
    ends: &[&AttemptEnd],
) -> Result<(Vec<Receipt>, Vec<bool>), StoreError> {
    match backend {
        Backend::Sqlite { write, .. } => write_in!(write, sqlx::Sqlite, records, ends),
        Backend::Postgres(pool) => write_in!(pool, sqlx::Postgres, records, ends),
    }
}
