//! Output of running executions, line by line, for followers (SSE).

use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// Lines kept for a follower who arrives late (the first ones of the attempt).
const KEPT_LINES: usize = 2000;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LogLine {
    pub attempt: i64,
    /// `stdout` or `stderr` (an HTTP response body is `stdout`).
    pub stream: &'static str,
    pub line: String,
}

struct Run {
    attempt: i64,
    lines: Vec<LogLine>,
    tx: broadcast::Sender<LogLine>,
}

/// A follower's start: the lines so far, then the live ones. The receiver ends
/// (closed) when the attempt ends.
pub struct Follow {
    pub attempt: i64,
    pub backlog: Vec<LogLine>,
    pub live: broadcast::Receiver<LogLine>,
}

#[derive(Default)]
pub struct Live {
    runs: Mutex<HashMap<String, Run>>,
}

impl Live {
    pub fn open(&self, id: &str, attempt: i64) {
        let (tx, _) = broadcast::channel(1024);
        self.runs.lock().expect("live lock").insert(
            id.to_owned(),
            Run {
                attempt,
                lines: Vec::new(),
                tx,
            },
        );
    }

    pub fn push(&self, id: &str, line: LogLine) {
        let mut runs = self.runs.lock().expect("live lock");
        if let Some(run) = runs.get_mut(id) {
            if run.lines.len() < KEPT_LINES {
                run.lines.push(line.clone());
            }
            let _ = run.tx.send(line);
        }
    }

    pub fn close(&self, id: &str) {
        self.runs.lock().expect("live lock").remove(id);
    }

    pub fn follow(&self, id: &str) -> Option<Follow> {
        let runs = self.runs.lock().expect("live lock");
        runs.get(id).map(|run| Follow {
            attempt: run.attempt,
            backlog: run.lines.clone(),
            live: run.tx.subscribe(),
        })
    }
}
