//! The SQLite writer: a thread with its own connection. While it commits one
//! batch and flushes it to disk (`log_flush`), the next queues up; it then
//! takes everything queued as the next batch. Statements are prepared once and
//! run in place, with no hand-off to another thread per statement.

use super::{
    Claim, Done, Job, MAX_BATCH, Receipt, ReceiveRecord, Write, duplicate, log_append, log_flush::LogFlush, settle,
    settle_alone, stored_body, take_batch,
};
use crate::executions::{INSERT_EXECUTION, sqlite_claim_sql};
use crate::{AttemptEnd, ClaimedExecution, CreatedExecution, EventEvaluation, EventRow, ExecutionRow, StoreError, sql};
use inlet_core::clock::now_micros;
use rusqlite::{CachedStatement, Connection, OpenFlags, ToSql, Transaction, TransactionBehavior, ffi};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::ffi::c_int;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use tokio::sync::mpsc;

pub(super) fn spawn(file: &Path, rx: mpsc::Receiver<Job>) -> Result<std::thread::JoinHandle<()>, StoreError> {
    // Opened here, so that a database that cannot be opened fails `Store::open`.
    log_append::register()
        .map_err(|code| StoreError::Config(format!("cannot register the SQLite log VFS (code {code})")))?;
    let conn = Connection::open_with_flags_and_vfs(file, OpenFlags::default(), log_append::NAME)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // The writer flushes its commits to disk itself (`log_flush`).
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.set_prepared_statement_cache_capacity(32);
    // Checkpoints run on a thread of their own, so that a commit waits for no
    // more than the last few frames of one (`LogReuse`).
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // A log that grew during a burst is cut back when it starts over.
    conn.pragma_update(None, "journal_size_limit", LOG_SIZE_LIMIT)?;
    let checkpoints = Connection::open(file)?;
    checkpoints.busy_timeout(Duration::from_secs(10))?;
    let (writer_alive, writer_gone) = std::sync::mpsc::channel::<()>();
    let caught_up = Arc::new(AtomicBool::new(false));
    let log = LogReuse {
        caught_up: caught_up.clone(),
    };
    let flush = LogFlush::of_database(file);
    std::thread::Builder::new()
        .name("inlet-sqlite-checkpoint".into())
        .spawn(move || checkpoint_until(checkpoints, writer_gone, &caught_up))
        .map_err(|e| StoreError::Config(format!("cannot start the SQLite checkpoint thread: {e}")))?;
    std::thread::Builder::new()
        .name("inlet-sqlite-writer".into())
        .spawn(move || {
            run(conn, rx, log, flush);
            drop(writer_alive);
        })
        .map_err(|e| StoreError::Config(format!("cannot start the SQLite writer thread: {e}")))
}

/// Bytes of write-ahead log kept when it starts over (about 20 MB are in use
/// at 15,000 requests/s).
const LOG_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

/// How often the write-ahead log is copied into the database and the database
/// flushed. The flush sends everything copied since the last one to the disk
/// at once, and the writer's log flushes queue behind it: the benchmark's p99
/// was 14 ms with a checkpoint every 400 ms, 6.2 ms every 100 ms and 5 ms every
/// 25 ms, at 0.98–1.01× the throughput at 32 connections (0.93–0.98× at 4,
/// where each flush waits on its own). Each checkpoint still copies a hot page
/// once for the dozens of commits that changed it meanwhile.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(25);

/// After how many of this thread's checkpoints (100 ms) the writer starts the
/// log over (`LogReuse`). Not after each: the writer's own checkpoint ends with
/// a flush of the database with every request waiting, and forty of them a
/// second cost 6–10% of the benchmark's throughput against ten.
const RESTART_LOG_EVERY: u32 = 4;

/// Checkpoints the log (PASSIVE: never blocks the writer or readers) until the
/// writer stops.
fn checkpoint_until(conn: Connection, writer_gone: std::sync::mpsc::Receiver<()>, caught_up: &AtomicBool) {
    let mut checkpointed = None;
    let mut copied_rounds = 0u32;
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = writer_gone.recv_timeout(CHECKPOINT_EVERY) {
        match checkpoint_round(&conn, &mut checkpointed) {
            Ok(Round::Copied) => {
                copied_rounds = (copied_rounds + 1) % RESTART_LOG_EVERY;
                if copied_rounds == 0 {
                    caught_up.store(true, Ordering::Release);
                }
            }
            Ok(Round::NothingCommitted) => {}
            Err(err) => tracing::warn!(error = %err, "WAL checkpoint failed; retrying"),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Round {
    Copied,
    NothingCommitted,
}

/// One checkpoint and database flush, skipped when nothing was committed since
/// the last one (`checkpointed` holds the database's version then), so that an
/// idle server does not flush an unchanged database, a disk cache flush each
/// time, forty times a second.
fn checkpoint_round(conn: &Connection, checkpointed: &mut Option<i64>) -> rusqlite::Result<Round> {
    // Read before the checkpoint: a commit landing during it changes the
    // version, and the next round copies it.
    let version = data_version(conn)?;
    if *checkpointed == Some(version) {
        return Ok(Round::NothingCommitted);
    }
    *checkpointed = None;
    checkpoint(conn)?;
    sync_database(conn)?;
    *checkpointed = Some(version);
    Ok(Round::Copied)
}

/// Changes whenever another connection commits (`PRAGMA data_version`).
fn data_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA data_version", [], |row| row.get(0))
}

/// Flushes the database file to disk. SQLite does so itself only after a
/// checkpoint that copied the whole log, which beside a busy writer is the
/// writer's own (`LogReuse`): it would flush every page this thread copied
/// since the last one, several milliseconds with every request waiting.
/// Done here, the database flush after the writer's checkpoint has only its
/// last few pages to write.
fn sync_database(conn: &Connection) -> rusqlite::Result<()> {
    let failed = |code| rusqlite::Error::SqliteFailure(ffi::Error::new(code), Some("cannot sync the database".into()));
    let file = file_object(conn, ffi::SQLITE_FCNTL_FILE_POINTER).map_err(failed)?;
    // SAFETY: the main database's file object, on the connection's thread.
    let Some(sync) = (unsafe { (*file).pMethods.as_ref() }).and_then(|m| m.xSync) else {
        return Err(failed(ffi::SQLITE_MISUSE));
    };
    match unsafe { sync(file, ffi::SQLITE_SYNC_NORMAL) } {
        ffi::SQLITE_OK => Ok(()),
        code => Err(failed(code)),
    }
}

/// One of the connection's file objects: the main database's
/// (`SQLITE_FCNTL_FILE_POINTER`) or its log's (`SQLITE_FCNTL_JOURNAL_POINTER`).
/// Owned by the connection and open as long as it is; SQLite allows its
/// methods to be called from the connection's thread.
pub(super) fn file_object(conn: &Connection, pointer: c_int) -> Result<*mut ffi::sqlite3_file, c_int> {
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: the connection's handle is valid while `conn` is borrowed; both
    // file controls write one pointer into `file`.
    let code = unsafe { ffi::sqlite3_file_control(conn.handle(), c"main".as_ptr(), pointer, (&raw mut file).cast()) };
    match code {
        ffi::SQLITE_OK if !file.is_null() => Ok(file),
        ffi::SQLITE_OK => Err(ffi::SQLITE_MISUSE),
        code => Err(code),
    }
}

fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
}

/// Lets the writer start the log over from its beginning. SQLite does that only
/// when a write begins with every frame of the log copied into the database,
/// which a checkpoint running beside a busy writer never leaves behind (frames
/// are added while it copies): the log would grow for as long as the load
/// lasts (1.8 GB in 15 s of the benchmark), every commit writing to parts of
/// the file never written before. So after every few checkpoints of the thread
/// (`RESTART_LOG_EVERY`), the writer copies the few frames committed meanwhile
/// itself, between batches.
struct LogReuse {
    caught_up: Arc<AtomicBool>,
}

impl LogReuse {
    fn after_commit(&self, conn: &Connection) {
        if self.caught_up.swap(false, Ordering::Acquire)
            && let Err(err) = checkpoint(conn)
        {
            tracing::warn!(error = %err, "WAL checkpoint failed; retrying");
        }
    }
}

fn run(mut conn: Connection, mut rx: mpsc::Receiver<Job>, log: LogReuse, mut flush: LogFlush) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    let mut shutdown_waiters = Vec::new();
    while let Some(job) = rx.blocking_recv() {
        jobs.push(job);
        drain(&mut rx, &mut jobs);
        let batch = take_batch(&mut jobs, &mut rx, &mut shutdown_waiters);
        if batch.is_empty() {
            continue;
        }
        let mut committed = Vec::with_capacity(batch.len());
        let mut keep = |write, done| committed.push((write, done));
        let all = commit(&mut conn, &batch);
        for write in settle(batch, all, &mut keep) {
            let alone = commit(&mut conn, std::slice::from_ref(&write)).map(|mut done| done.remove(0));
            settle_alone(write, alone, &mut keep);
        }
        flush.answer(committed);
        log.after_commit(&conn);
    }
    for done in shutdown_waiters {
        let _ = done.send(());
    }
}

fn drain(rx: &mut mpsc::Receiver<Job>, jobs: &mut Vec<Job>) {
    while jobs.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => jobs.push(job),
            Err(_) => break,
        }
    }
}

/// One transaction for the batch; results in the batch's order.
fn commit(conn: &mut Connection, batch: &[Write]) -> Result<Vec<Done>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_micros();
    let mut used_keys = BTreeSet::new();
    let mut done = Vec::with_capacity(batch.len());
    for write in batch {
        done.push(match write {
            Write::Receive(record, _) => {
                used_keys.extend(record.key_id.as_deref());
                Done::Receipt(receive(&tx, record)?)
            }
            Write::EndAttempt(end, _) => Done::Ended(end_attempt(&tx, end, now)?),
            Write::Claim(claim, _) => Done::Claimed(claim_executions(&tx, claim)?),
            Write::Evaluate(evaluations, _) => Done::Created(evaluate(&tx, evaluations, now)?),
        });
    }
    for key_id in used_keys {
        execute(
            &tx,
            "UPDATE webhook_keys SET last_used_at = $1 WHERE id = $2",
            &[&now, &key_id],
        )?;
    }
    tx.commit()?;
    Ok(done)
}

static INSERT_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO events (id, trigger_ref, payload, metadata, source, delivery_id, created_at, processed) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, {}$2)) \
         ON CONFLICT (trigger_ref, delivery_id) WHERE delivery_id IS NOT NULL DO NOTHING RETURNING processed",
        crate::events::no_enabled_rule!()
    )
});

const INSERT_LOG: &str = "INSERT INTO request_log (id, trigger_ref, key_prefix, received_at, source_ip, method, \
     path, query, headers, body, body_truncated, outcome, status_code, message, processing_us, event_id, \
     body_in_event) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)";

fn receive(tx: &Transaction<'_>, record: &ReceiveRecord) -> Result<Receipt, StoreError> {
    let mut log = Cow::Borrowed(&record.log);
    let receipt = match &record.event {
        None => Receipt {
            event_id: None,
            duplicate: false,
            awaits_rules: false,
        },
        Some(e) => {
            let processed: Option<bool> = {
                let values: [&dyn ToSql; 7] = [
                    &e.id,
                    &e.trigger_ref,
                    &e.payload,
                    &e.metadata,
                    &e.source,
                    &e.delivery_id,
                    &e.created_at,
                ];
                let mut st = prepare(tx, &INSERT_EVENT, &values)?;
                let mut rows = st.raw_query();
                match rows.next()? {
                    Some(row) => Some(row.get(0)?),
                    None => None,
                }
            };
            match processed {
                Some(processed) => Receipt {
                    event_id: Some(e.id.clone()),
                    duplicate: false,
                    awaits_rules: !processed,
                },
                None => {
                    let mut st = prepare(tx, sql::EXISTING_DELIVERY, &[&e.trigger_ref, &e.delivery_id])?;
                    let existing: String = match st.raw_query().next()? {
                        Some(row) => row.get(0)?,
                        None => return Err(StoreError::Corrupt("a conflicting delivery id has no event".into())),
                    };
                    duplicate(log.to_mut(), existing)
                }
            }
        }
    };
    let l = log.as_ref();
    let (body, body_in_event) = stored_body(record, &receipt);
    execute(
        tx,
        INSERT_LOG,
        &[
            &l.id,
            &l.trigger_ref,
            &l.key_prefix,
            &l.received_at,
            &l.source_ip,
            &l.method,
            &l.path,
            &l.query,
            &l.headers,
            &body,
            &l.body_truncated,
            &l.outcome,
            &l.status_code,
            &l.message,
            &l.processing_us,
            &l.event_id,
            &body_in_event,
        ],
    )?;
    Ok(receipt)
}

fn end_attempt(tx: &Transaction<'_>, end: &AttemptEnd, now: i64) -> Result<bool, StoreError> {
    execute(
        tx,
        sql::END_ATTEMPT,
        &[
            &end.execution_id,
            &end.attempt,
            &end.attempt_status,
            &now,
            &end.exit_code,
            &end.http_status,
            &end.summary,
            &end.stdout,
            &end.stderr,
            &end.stdout_truncated,
            &end.stderr_truncated,
        ],
    )?;
    let ended = execute(
        tx,
        sql::END_EXECUTION,
        &[
            &end.execution_id,
            &end.owner,
            &end.status,
            &end.next_run_at,
            &end.result,
            &end.output(),
            &now,
            &crate::status::is_terminal(&end.status),
        ],
    )?;
    Ok(ended == 1)
}

static CLAIM: LazyLock<[String; 2]> = LazyLock::new(sqlite_claim_sql);

/// One claim statement per owner; the writer runs them one after another, so
/// each sees the claims before it (and the concurrency count stays exact).
fn claim_executions(tx: &Transaction<'_>, claim: &Claim) -> Result<Vec<ClaimedExecution>, StoreError> {
    let mut claimed = Vec::with_capacity(claim.owners.len());
    for owner in &claim.owners {
        let mut row = None;
        for sql in CLAIM.iter() {
            let mut st = prepare(tx, sql, &[owner, &claim.lease_until, &claim.now])?;
            let mut rows = st.raw_query();
            if let Some(found) = rows.next()? {
                row = Some(execution_row(found)?);
                break;
            }
        }
        let Some(row) = row else { break };
        execute(tx, sql::LOSE_RUNNING_ATTEMPT, &[&row.id, &claim.now])?;
        execute(tx, sql::BEGIN_ATTEMPT, &[&row.id, &row.attempt, owner, &claim.now])?;
        let event = match &row.event_id {
            Some(event_id) => read_event(tx, event_id)?,
            None => None,
        };
        claimed.push(ClaimedExecution { row, event });
    }
    Ok(claimed)
}

fn read_event(tx: &Transaction<'_>, id: &str) -> Result<Option<EventRow>, StoreError> {
    let mut st = prepare(tx, crate::events::select_events!("WHERE id = $1"), &[&id])?;
    let mut rows = st.raw_query();
    let Some(row) = rows.next()? else {
        return Ok(None);
    };
    Ok(Some(EventRow {
        id: row.get(0)?,
        trigger_ref: row.get(1)?,
        payload: row.get(2)?,
        metadata: row.get(3)?,
        source: row.get(4)?,
        delivery_id: row.get(5)?,
        processed: row.get(6)?,
        created_at: row.get(7)?,
    }))
}

static DEBOUNCE: LazyLock<String> = LazyLock::new(|| format!("{INSERT_EXECUTION}{}", sql::DEBOUNCE_ON_CONFLICT));

fn evaluate(tx: &Transaction<'_>, batch: &[EventEvaluation], now: i64) -> Result<Vec<CreatedExecution>, StoreError> {
    let mut created = Vec::new();
    for event in batch {
        for ev in &event.evaluations {
            // A debounced execution's id is only known once its burst is found.
            let execution_id = ev
                .execution
                .as_ref()
                .filter(|x| x.debounce_key.is_none())
                .map(|x| &x.id);
            let recorded = execute(
                tx,
                sql::INSERT_EVALUATION,
                &[
                    &event.event_id,
                    &ev.rule_ref,
                    &ev.outcome,
                    &ev.reason,
                    &execution_id,
                    &now,
                ],
            )? == 1;
            // Evaluated already (another node, or before a crash): nothing more.
            let (true, Some(x)) = (recorded, &ev.execution) else {
                continue;
            };
            let values: [&dyn ToSql; 10] = [
                &x.id,
                &x.action_ref,
                &x.rule_ref,
                &x.event_id,
                &x.source,
                &x.max_attempts,
                &x.params,
                &x.debounce_key,
                &x.next_run_at,
                &now,
            ];
            let id = if x.debounce_key.is_none() {
                execute(tx, INSERT_EXECUTION, &values)?;
                x.id.clone()
            } else {
                let id: String = {
                    let mut st = prepare(tx, &DEBOUNCE, &values)?;
                    let mut rows = st.raw_query();
                    match rows.next()? {
                        Some(row) => row.get(0)?,
                        None => return Err(StoreError::Corrupt("a debounced execution returned no id".into())),
                    }
                };
                execute(tx, sql::SET_EVALUATION_EXECUTION, &[&id, &event.event_id, &ev.rule_ref])?;
                id
            };
            created.push(CreatedExecution {
                id,
                next_run_at: x.next_run_at,
            });
        }
        execute(
            tx,
            "UPDATE events SET processed = TRUE WHERE id = $1",
            &[&event.event_id],
        )?;
    }
    Ok(created)
}

fn execution_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<ExecutionRow> {
    Ok(ExecutionRow {
        id: row.get(0)?,
        action_ref: row.get(1)?,
        rule_ref: row.get(2)?,
        event_id: row.get(3)?,
        source: row.get(4)?,
        status: row.get(5)?,
        attempt: row.get(6)?,
        max_attempts: row.get(7)?,
        params: row.get(8)?,
        debounce_key: row.get(9)?,
        next_run_at: row.get(10)?,
        lease_owner: row.get(11)?,
        lease_expires_at: row.get(12)?,
        cancel_requested: row.get(13)?,
        result: row.get(14)?,
        output: row.get(15)?,
        created_at: row.get(16)?,
        started_at: row.get(17)?,
        finished_at: row.get(18)?,
        updated_at: row.get(19)?,
    })
}

/// The statements share their text with the sqlx paths, whose placeholders are
/// `$1`, `$2`, ...: `values[i]` is bound to `$i+1` by name, whatever order the
/// statement first names them in.
fn prepare<'c>(tx: &'c Transaction<'_>, sql: &str, values: &[&dyn ToSql]) -> rusqlite::Result<CachedStatement<'c>> {
    const NAMES: [&str; 17] = [
        "$1", "$2", "$3", "$4", "$5", "$6", "$7", "$8", "$9", "$10", "$11", "$12", "$13", "$14", "$15", "$16", "$17",
    ];
    debug_assert!(values.len() <= NAMES.len(), "more values than named placeholders");
    let mut st = tx.prepare_cached(sql)?;
    for (name, value) in NAMES.iter().zip(values) {
        if let Some(index) = st.parameter_index(name)? {
            st.raw_bind_parameter(index, value)?;
        }
    }
    Ok(st)
}

fn execute(tx: &Transaction<'_>, sql: &str, values: &[&dyn ToSql]) -> rusqlite::Result<usize> {
    prepare(tx, sql, values)?.raw_execute()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_round_copies_new_commits_and_skips_when_there_are_none() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("inlet.db");
        let database_size = || std::fs::metadata(&file).unwrap().len();
        let writer = Connection::open(&file).unwrap();
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        writer.execute_batch("CREATE TABLE t (b BLOB)").unwrap();
        let checkpoints = Connection::open(&file).unwrap();
        let mut checkpointed = None;

        assert_eq!(checkpoint_round(&checkpoints, &mut checkpointed), Ok(Round::Copied));
        assert_eq!(
            checkpoint_round(&checkpoints, &mut checkpointed),
            Ok(Round::NothingCommitted)
        );

        // Pages added by a commit reach the database file only by a checkpoint.
        let before = database_size();
        writer.execute("INSERT INTO t VALUES (zeroblob(65536))", []).unwrap();
        assert_eq!(database_size(), before);
        assert_eq!(checkpoint_round(&checkpoints, &mut checkpointed), Ok(Round::Copied));
        assert!(
            database_size() >= before + 65536,
            "the round copied nothing: {before} -> {}",
            database_size()
        );
        assert_eq!(
            checkpoint_round(&checkpoints, &mut checkpointed),
            Ok(Round::NothingCommitted)
        );
    }
}
