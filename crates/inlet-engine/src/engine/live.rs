//! Output of running executions, line by line, for followers (SSE).

use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// Lines kept for a follower who arrives late (the first ones of the attempt).
const KEPT_LINES: usize = 2000;
/// Lines a follower may fall behind the run before it misses some.
const LIVE_LINES: usize = 1024;

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
    /// Made when the first follower arrives: most runs have none, and a
    /// channel reserves its whole buffer up front.
    tx: Option<broadcast::Sender<LogLine>>,
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
        self.runs.lock().expect("live lock").insert(
            id.to_owned(),
            Run {
                attempt,
                lines: Vec::new(),
                tx: None,
            },
        );
    }

    pub fn push(&self, id: &str, line: LogLine) {
        let mut runs = self.runs.lock().expect("live lock");
        if let Some(run) = runs.get_mut(id) {
            if run.lines.len() < KEPT_LINES {
                run.lines.push(line.clone());
            }
            if let Some(tx) = &run.tx {
                let _ = tx.send(line);
            }
        }
    }

    pub fn close(&self, id: &str) {
        self.runs.lock().expect("live lock").remove(id);
    }

    pub fn follow(&self, id: &str) -> Option<Follow> {
        let mut runs = self.runs.lock().expect("live lock");
        runs.get_mut(id).map(|run| Follow {
            attempt: run.attempt,
            backlog: run.lines.clone(),
            live: run
                .tx
                .get_or_insert_with(|| broadcast::channel(LIVE_LINES).0)
                .subscribe(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> LogLine {
        LogLine {
            attempt: 1,
            stream: "stdout",
            line: text.into(),
        }
    }

    #[tokio::test]
    async fn a_late_follower_gets_the_lines_so_far_then_the_live_ones() {
        let live = Live::default();
        assert!(live.follow("x").is_none());
        live.open("x", 1);
        live.push("x", line("one"));
        live.push("x", line("two"));
        let mut first = live.follow("x").unwrap();
        assert_eq!(first.backlog, [line("one"), line("two")]);
        live.push("x", line("three"));
        let mut second = live.follow("x").unwrap();
        assert_eq!(second.backlog.len(), 3);
        live.push("x", line("four"));
        assert_eq!(first.live.recv().await.unwrap(), line("three"));
        assert_eq!(first.live.recv().await.unwrap(), line("four"));
        assert_eq!(second.live.recv().await.unwrap(), line("four"));
        live.close("x");
        assert!(first.live.recv().await.is_err(), "closed with the run");
        assert!(live.follow("x").is_none());
    }
}
