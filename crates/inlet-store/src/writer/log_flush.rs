//! Flushes the SQLite writer's commits to disk, and answers their writers
//! only then.
//!
//! The writer's connection commits with `synchronous=NORMAL`: SQLite appends
//! the commit's frames to the write-ahead log and returns without flushing it.
//! The writer then flushes the log here — one `fdatasync` per batch — and
//! answers the batch; requests that arrive meanwhile queue up and make the
//! next batch. (A thread of its own for the flush, with the writer going on
//! meanwhile, made the writer commit about twice per flush, in batches half
//! the size, each writing its tables' and indexes' last pages again; flushing
//! here gave 1.01–1.19× in the benchmark, bench/README.md.) Other connections
//! may read a commit up to one flush before it is durable; a crash of the
//! machine in that moment loses it together with everything committed after
//! it, since the log is only ever replayed up to its first missing frame.
//!
//! The log is flushed through a descriptor of its own: `fdatasync` flushes the
//! file, whichever descriptor wrote it (PostgreSQL's checkpointer relies on
//! the same for files its backends wrote).

use super::{Done, StoreError, Write, reply};
use std::fs::File;
use std::path::{Path, PathBuf};

/// Committed writes, with their results.
pub(super) type Committed = Vec<(Write, Done)>;

/// The log file and what became of its flushes.
pub(super) struct LogFlush {
    path: PathBuf,
    file: Option<File>,
    /// Why a flush failed. After a failed `fdatasync` the kernel may have
    /// dropped the pages it could not write, and a later flush would succeed
    /// without them, so no later commit is acknowledged either (PostgreSQL
    /// stops in this case); SQLite repairs the log when the server starts
    /// again.
    failed: Option<String>,
}

impl LogFlush {
    /// The log of the database at `database`.
    pub(super) fn of_database(database: &Path) -> Self {
        let mut log = database.as_os_str().to_owned();
        log.push("-wal");
        LogFlush::new(PathBuf::from(log))
    }

    fn new(path: PathBuf) -> Self {
        LogFlush {
            path,
            file: None,
            failed: None,
        }
    }

    /// Flushes the log, then answers the writes: with their results if the
    /// flush succeeded, with its error otherwise.
    pub(super) fn answer(&mut self, committed: Committed) {
        // A batch whose writes all failed has been answered already.
        if committed.is_empty() {
            return;
        }
        match self.flush() {
            Ok(()) => {
                for (write, done) in committed {
                    reply(write, Ok(done));
                }
            }
            Err(why) => {
                tracing::error!(error = %why, writes = committed.len(), "cannot flush the SQLite log to disk");
                for (write, _) in committed {
                    reply(write, Err(StoreError::Unflushed(why.clone())));
                }
            }
        }
    }

    fn flush(&mut self) -> Result<(), String> {
        if let Some(why) = &self.failed {
            return Err(format!("an earlier flush failed: {why}"));
        }
        let file = match &self.file {
            Some(file) => file,
            // Opened at the first commit, when the log surely exists. A commit
            // whose log cannot be opened is still in the kernel's cache, and
            // the next flush that succeeds writes it too: no need to stop.
            None => self.file.insert(open_log(&self.path).map_err(|e| e.to_string())?),
        };
        file.sync_data().map_err(|e| {
            let why = e.to_string();
            self.failed = Some(why.clone());
            why
        })
    }
}

/// Opens the log and flushes its directory entry: SQLite flushes that with
/// the log's first flush of its own, which under `synchronous=NORMAL` is the
/// first checkpoint's.
fn open_log(path: &Path) -> std::io::Result<File> {
    let file = File::open(path)?;
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        File::open(dir)?.sync_all()?;
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writer::{Receipt, ReceiveRecord};
    use tokio::sync::oneshot;

    /// Hands one committed write to `flush` and returns its answer.
    fn answer_one(flush: &mut LogFlush) -> Result<Receipt, StoreError> {
        let (tx, mut rx) = oneshot::channel();
        let record = ReceiveRecord {
            event: None,
            log: crate::test_support::log_row("l1", "a.b"),
            key_id: None,
        };
        let receipt = Receipt {
            event_id: None,
            duplicate: false,
            awaits_rules: false,
        };
        flush.answer(vec![(Write::Receive(Box::new(record), tx), Done::Receipt(receipt))]);
        rx.try_recv().expect("answered before `answer` returned")
    }

    /// A log file in a fresh directory (kept while the directory lives).
    fn log_file(frames: bool) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inlet.db-wal");
        if frames {
            std::fs::write(&path, b"frames").unwrap();
        }
        (dir, path)
    }

    #[test]
    fn writes_are_answered_once_the_log_is_flushed() {
        let (_dir, path) = log_file(true);
        assert!(answer_one(&mut LogFlush::new(path)).is_ok());
    }

    #[test]
    fn a_batch_with_nothing_committed_is_not_flushed() {
        let (_dir, path) = log_file(true);
        let mut flush = LogFlush::new(path);
        flush.answer(Vec::new());
        assert!(flush.file.is_none(), "the log was opened to flush nothing");
    }

    #[test]
    fn a_log_that_cannot_be_opened_fails_its_writes_but_not_later_ones() {
        let (_dir, path) = log_file(false);
        let mut flush = LogFlush::new(path.clone());
        assert!(matches!(answer_one(&mut flush), Err(StoreError::Unflushed(_))));

        std::fs::write(&path, b"frames").unwrap();
        assert!(answer_one(&mut flush).is_ok());
    }

    #[test]
    fn after_a_failed_flush_nothing_more_is_acknowledged() {
        let (_dir, path) = log_file(true);
        let mut flush = LogFlush::new(path);
        flush.failed = Some("Input/output error (os error 5)".into());
        let Err(StoreError::Unflushed(why)) = answer_one(&mut flush) else {
            panic!("a write was acknowledged after a failed flush");
        };
        assert!(why.contains("os error 5"), "{why}");
    }
}
