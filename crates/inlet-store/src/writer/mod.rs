//! Group commit: received requests and the engine's hot-path writes (claims,
//! evaluations, ends of attempts) are queued to one writer that commits them
//! in batches, one transaction (one fsync) each, and answers every caller only
//! after its batch is durable.
//!
//! On SQLite the writer is a thread of its own with its own connection, so a
//! batch runs without a thread hand-off per statement; it writes each commit's
//! log frames in one call (`log_append`) and flushes the commit to disk itself
//! (`log_flush`). On PostgreSQL it is a task on the runtime.

mod log_append;
mod log_flush;
mod postgres;
mod sqlite;

use crate::{AttemptEnd, Backend, ClaimedExecution, CreatedExecution, EventEvaluation, NewEvent, StoreError};
use std::path::PathBuf;
use tokio::sync::{mpsc, oneshot};

const MAX_BATCH: usize = 256;
const QUEUE_DEPTH: usize = 8192;

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
    /// A new event that waits for the rule evaluator (its trigger has an
    /// enabled rule); otherwise there is nothing to wake the engine for.
    pub awaits_rules: bool,
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// Claims for these owners (one execution each at most).
pub(crate) struct Claim {
    pub owners: Vec<String>,
    pub now: i64,
    pub lease_until: i64,
}

/// A write waiting for its batch's commit.
enum Write {
    Receive(Box<ReceiveRecord>, Reply<Receipt>),
    EndAttempt(Box<AttemptEnd>, Reply<bool>),
    Claim(Claim, Reply<Vec<ClaimedExecution>>),
    Evaluate(Vec<EventEvaluation>, Reply<Vec<CreatedExecution>>),
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

    async fn submit<T>(&self, write: impl FnOnce(Reply<T>) -> Write) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Job::Write(write(reply)))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// What waits for the writer to finish.
pub(crate) enum WriterTask {
    Thread(std::thread::JoinHandle<()>),
    Task(tokio::task::JoinHandle<()>),
}

impl WriterTask {
    pub(crate) async fn join(self) {
        match self {
            WriterTask::Thread(thread) => {
                let _ = tokio::task::spawn_blocking(move || thread.join()).await;
            }
            WriterTask::Task(task) => {
                let _ = task.await;
            }
        }
    }
}

/// Starts the writer: on SQLite a thread with its own connection to `sqlite_file`.
pub(crate) fn spawn(backend: &Backend, sqlite_file: Option<PathBuf>) -> Result<(WriterHandle, WriterTask), StoreError> {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    let task = match (backend, sqlite_file) {
        (Backend::Sqlite { .. }, Some(file)) => WriterTask::Thread(sqlite::spawn(&file, rx)?),
        (Backend::Postgres(pool), _) => WriterTask::Task(tokio::spawn(postgres::run(pool.clone(), rx))),
        (Backend::Sqlite { .. }, None) => return Err(StoreError::Config("SQLite writer needs a database file".into())),
    };
    Ok((WriterHandle { tx }, task))
}

/// What a request-log row says of a request whose event repeats a stored
/// delivery id.
const DUPLICATE_OUTCOME: &str = "duplicate";
const DUPLICATE_MESSAGE: &str = "delivery already received; no new event was created";

/// A received event whose delivery id was stored before: its log row says so
/// and points at the earlier event.
fn duplicate(log: &mut crate::RequestLogRow, existing: String) -> Receipt {
    log.outcome = DUPLICATE_OUTCOME.into();
    log.message = DUPLICATE_MESSAGE.into();
    log.event_id = Some(existing.clone());
    Receipt {
        event_id: Some(existing),
        duplicate: true,
        awaits_rules: false,
    }
}

/// Whether an accepted request's body is its event's payload, byte for byte
/// (the usual JSON webhook): then, unless the event turns out to repeat a
/// stored delivery, its log row keeps no second copy of the body.
fn body_is_payload(record: &ReceiveRecord) -> bool {
    let log = &record.log;
    record.event.as_ref().is_some_and(|event| {
        !log.body_truncated
            && log.event_id.as_deref() == Some(event.id.as_str())
            && event.payload.as_bytes() == log.body.as_slice()
    })
}

/// The body a request-log row stores, and whether it is left to the row's
/// event instead (see `body_is_payload`).
fn stored_body<'a>(record: &'a ReceiveRecord, receipt: &Receipt) -> (&'a [u8], bool) {
    let in_event = !receipt.duplicate && receipt.event_id.is_some() && body_is_payload(record);
    if in_event {
        (&[], true)
    } else {
        (&record.log.body, false)
    }
}

/// Splits queued jobs into the writes of one batch and the shutdown waiters
/// (a shutdown refuses new work but lets what is queued commit).
fn take_batch(
    jobs: &mut Vec<Job>,
    rx: &mut mpsc::Receiver<Job>,
    shutdown_waiters: &mut Vec<oneshot::Sender<()>>,
) -> Vec<Write> {
    let mut batch = Vec::with_capacity(jobs.len());
    for job in jobs.drain(..) {
        match job {
            Job::Write(write) => batch.push(write),
            Job::Shutdown(done) => {
                rx.close();
                shutdown_waiters.push(done);
            }
        }
    }
    batch
}

/// Answers a write whose commit is durable.
fn reply_now(write: Write, done: Done) {
    reply(write, Ok(done));
}

/// Answers a write with its result, or with why it failed.
fn reply(write: Write, result: Result<Done, StoreError>) {
    fn send<T>(reply: Reply<T>, result: Result<T, StoreError>) {
        let _ = reply.send(result);
    }
    match (write, result) {
        (Write::Receive(_, reply), Ok(Done::Receipt(r))) => send(reply, Ok(r)),
        (Write::EndAttempt(_, reply), Ok(Done::Ended(e))) => send(reply, Ok(e)),
        (Write::Claim(_, reply), Ok(Done::Claimed(c))) => send(reply, Ok(c)),
        (Write::Evaluate(_, reply), Ok(Done::Created(c))) => send(reply, Ok(c)),
        (Write::Receive(_, reply), Err(e)) => send(reply, Err(e)),
        (Write::EndAttempt(_, reply), Err(e)) => send(reply, Err(e)),
        (Write::Claim(_, reply), Err(e)) => send(reply, Err(e)),
        (Write::Evaluate(_, reply), Err(e)) => send(reply, Err(e)),
        (write, Ok(_)) => {
            tracing::error!(write = write.kind(), "writer answered with the wrong kind of result");
        }
    }
}

/// The result of one write.
enum Done {
    Receipt(Receipt),
    Ended(bool),
    Claimed(Vec<ClaimedExecution>),
    Created(Vec<CreatedExecution>),
}

impl Write {
    fn kind(&self) -> &'static str {
        match self {
            Write::Receive(..) => "received request",
            Write::EndAttempt(..) => "end of an attempt",
            Write::Claim(..) => "claim",
            Write::Evaluate(..) => "rule evaluations",
        }
    }
}

/// Answers the writes of a batch committed as one transaction (`all`, results
/// in order) through `answer`. When that failed, the writes are handed back to
/// be committed one by one, so that one bad write cannot fail its neighbours (a
/// batch of one just gets its error).
fn settle(batch: Vec<Write>, all: Result<Vec<Done>, StoreError>, answer: &mut impl FnMut(Write, Done)) -> Vec<Write> {
    let err = match all {
        Ok(done) => {
            for (write, done) in batch.into_iter().zip(done) {
                answer(write, done);
            }
            return Vec::new();
        }
        Err(err) => err,
    };
    if batch.len() == 1 {
        let write = batch.into_iter().next().expect("one write");
        settle_alone(write, Err(err), answer);
        return Vec::new();
    }
    tracing::warn!(error = %err, size = batch.len(), "batch commit failed; committing one by one");
    batch
}

/// Answers a write committed on its own: its result through `answer`, its
/// error at once.
fn settle_alone(write: Write, result: Result<Done, StoreError>, answer: &mut impl FnMut(Write, Done)) {
    match result {
        Ok(done) => answer(write, done),
        Err(err) => {
            tracing::error!(error = %err, write = write.kind(), "could not commit a write");
            reply(write, Err(err));
        }
    }
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
    pub async fn end_attempt(&self, end: AttemptEnd) -> Result<bool, StoreError> {
        self.writer
            .submit(|reply| Write::EndAttempt(Box::new(end), reply))
            .await
    }

    /// Claims up to one due execution per owner, until `lease_until`, in one
    /// transaction: each time the oldest queued or retrying one whose time has
    /// come, or a running one whose lease expired, among actions below their
    /// concurrency limit. Each claim raises the attempt count and records the
    /// attempt as running (an earlier attempt still marked running lost its
    /// worker and becomes `lost`). Each comes with its event, read in the same
    /// transaction.
    pub async fn claim_executions(
        &self,
        owners: &[&str],
        now: i64,
        lease_until: i64,
    ) -> Result<Vec<ClaimedExecution>, StoreError> {
        let claim = Claim {
            owners: owners.iter().map(|o| (*o).to_owned()).collect(),
            now,
            lease_until,
        };
        self.writer.submit(|reply| Write::Claim(claim, reply)).await
    }

    /// Commits the evaluations of a batch of events: each (event, rule) record
    /// is written once (a record already there means the pair was evaluated
    /// before, and its execution is not made again), the executions of new
    /// matches are created, and the events are marked processed.
    pub async fn commit_evaluations(&self, batch: Vec<EventEvaluation>) -> Result<Vec<CreatedExecution>, StoreError> {
        self.writer.submit(|reply| Write::Evaluate(batch, reply)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::accepted_request;

    fn accepted(payload: &str, body: &[u8]) -> (ReceiveRecord, Receipt) {
        let mut record = accepted_request("e1", "l1", None, payload);
        record.log.body = body.to_vec();
        let receipt = Receipt {
            event_id: Some("e1".into()),
            duplicate: false,
            awaits_rules: false,
        };
        (record, receipt)
    }

    #[test]
    fn an_accepted_body_equal_to_its_payload_is_stored_once() {
        let (record, receipt) = accepted(r#"{"a":1}"#, br#"{"a":1}"#);
        assert_eq!(stored_body(&record, &receipt), (&b""[..], true));
    }

    #[test]
    fn other_bodies_are_stored_in_the_log() {
        let (record, receipt) = accepted(r#"{"a":1}"#, br#"{"a": 1}"#);
        assert_eq!(stored_body(&record, &receipt), (&br#"{"a": 1}"#[..], false));

        let (mut truncated, receipt) = accepted(r#"{"a":1}"#, br#"{"a":1}"#);
        truncated.log.body_truncated = true;
        assert!(!stored_body(&truncated, &receipt).1);

        let (record, mut duplicate) = accepted(r#"{"a":1}"#, br#"{"a":1}"#);
        duplicate.duplicate = true;
        duplicate.event_id = Some("e0".into());
        assert!(!stored_body(&record, &duplicate).1);

        let (mut rejected, receipt) = accepted(r#"{"a":1}"#, br#"{"a":1}"#);
        rejected.event = None;
        assert!(!stored_body(&rejected, &receipt).1);
    }
}
