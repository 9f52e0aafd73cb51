//! The engine: evaluates events against rules and runs the executions they make
//! (DESIGN.md section 1).
//!
//! - The evaluator reads unprocessed events (woken by [`EngineHandle::notify`] after
//!   a commit, and by a poll), evaluates each against the enabled rules of its
//!   trigger and commits, per batch, one (event, rule) record each, the executions
//!   of the matches and the events' processed flag. Events committed but not
//!   evaluated before a crash are simply still unprocessed at the next start.
//! - The dispatcher claims due executions with a lease while a worker slot is free
//!   and runs each in its own task, which renews the lease, streams output lines to
//!   followers and records the attempt. Failures are retried with the action's
//!   backoff (with jitter) and end `dead` after the last attempt.

mod cache;
mod config;
mod context;
mod evaluate;
mod live;
mod worker;

pub use config::EngineConfig;
pub use context::event_context;
pub use evaluate::RuleVerdict;
pub use live::{Follow, LogLine};

use cache::Cache;
use inlet_store::{CancelResult, Store, StoreError};
use live::Live;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Notify, watch};
use tokio::task::JoinHandle;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Run,
    /// Stop claiming; let running executions finish within the grace.
    Stop,
    /// Drop everything at once, as a crash would (tests).
    Abort,
}

struct Inner {
    store: Store,
    cfg: EngineConfig,
    /// Lease owner prefix of this process.
    node: String,
    evaluate: Notify,
    work: Notify,
    cache: Mutex<Cache>,
    live: Live,
    /// Local cancel signals of running executions.
    cancels: std::sync::Mutex<std::collections::HashMap<String, watch::Sender<bool>>>,
    mode: watch::Sender<Mode>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    http: reqwest::Client,
}

/// The running engine; cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    inner: Arc<Inner>,
}

impl EngineHandle {
    /// Starts the evaluator and the dispatcher on the current runtime.
    /// `master_key` opens the signing secrets sealed in stored actions.
    pub fn start(store: Store, cfg: EngineConfig, master_key: inlet_core::seal::MasterKey) -> Result<Self, String> {
        cfg.validate()?;
        let http = crate::runner::build_client()?;
        let (mode, _) = watch::channel(Mode::Run);
        let inner = Arc::new(Inner {
            store,
            cfg,
            node: format!("node-{}", uuid::Uuid::now_v7().simple()),
            evaluate: Notify::new(),
            work: Notify::new(),
            cache: Mutex::new(Cache::new(master_key)),
            live: Live::default(),
            cancels: Default::default(),
            mode,
            tasks: Mutex::new(Vec::new()),
            http,
        });
        let handle = Self { inner };
        let evaluator = tokio::spawn(evaluate::run(handle.clone()));
        let dispatcher = tokio::spawn(worker::dispatch(handle.clone()));
        handle
            .inner
            .tasks
            .try_lock()
            .expect("fresh lock")
            .extend([evaluator, dispatcher]);
        Ok(handle)
    }

    /// An event was committed: evaluate it (and any other unprocessed one) now.
    pub fn notify(&self) {
        self.inner.evaluate.notify_one();
    }

    /// Rules or actions changed on this node: recompile before the next evaluation.
    pub async fn invalidate(&self) {
        self.inner.cache.lock().await.invalidate();
    }

    /// An execution became due (created, retried): look for work now.
    pub fn wake_workers(&self) {
        self.inner.work.notify_one();
    }

    /// Whether the engine was told to stop (followers of live output give up then).
    pub fn is_stopping(&self) -> bool {
        *self.inner.mode.borrow() != Mode::Run
    }

    /// Live output of an execution running on this node.
    pub fn follow(&self, execution_id: &str) -> Option<Follow> {
        self.inner.live.follow(execution_id)
    }

    /// Cancels a waiting execution, or stops a running one (on this node at once, on
    /// another at its next lease renewal).
    pub async fn cancel(&self, execution_id: &str) -> Result<CancelResult, StoreError> {
        let result = self.inner.store.cancel_execution(execution_id).await?;
        if result == CancelResult::Requested
            && let Some(tx) = self.inner.cancels.lock().expect("cancels lock").get(execution_id)
        {
            let _ = tx.send(true);
        }
        Ok(result)
    }

    /// Re-evaluates the enabled rules of the event's trigger on a stored event, making
    /// new executions (source `replay`) for the matches; no evaluation record is kept.
    pub async fn replay_event(&self, event_id: &str) -> Result<Vec<RuleVerdict>, StoreError> {
        evaluate::replay(self, event_id).await
    }

    /// Stops gracefully: no new claims or evaluations; running executions get
    /// `shutdown_grace` to finish, after which they are stopped and their leases left
    /// to expire (another node, or the next start, picks them up).
    pub async fn stop(&self) {
        self.shutdown(Mode::Stop).await;
    }

    /// Drops all work at once without touching the store, as a crash would.
    pub async fn abort(&self) {
        self.shutdown(Mode::Abort).await;
    }

    async fn shutdown(&self, mode: Mode) {
        let _ = self.inner.mode.send(mode);
        let tasks = std::mem::take(&mut *self.inner.tasks.lock().await);
        for task in tasks {
            let _ = task.await;
        }
    }

    fn mode(&self) -> watch::Receiver<Mode> {
        self.inner.mode.subscribe()
    }

    fn poll(&self) -> Duration {
        self.inner.cfg.poll_interval()
    }

    /// Wakes the dispatcher when `at` (µs) comes (a retry or debounce time).
    fn wake_at(&self, at: i64) {
        let wait = at - inlet_core::clock::now_micros();
        if wait <= 0 {
            self.wake_workers();
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_micros(wait as u64 + 1_000)).await;
            me.wake_workers();
        });
    }
}

/// Waits for `notify` or the poll interval, unless the engine is told to stop
/// first; true when stopping.
async fn wait_for_work(engine: &EngineHandle, mode: &mut watch::Receiver<Mode>, notify: &Notify) -> bool {
    let poll = engine.poll();
    wait_or_stop(mode, async {
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    })
    .await
}

/// Waits for `until` unless the engine is told to stop first; true when stopping.
async fn wait_or_stop(mode: &mut watch::Receiver<Mode>, until: impl std::future::Future<Output = ()>) -> bool {
    if *mode.borrow() != Mode::Run {
        return true;
    }
    let stopping = tokio::select! {
        _ = until => false,
        _ = mode.wait_for(|m| *m != Mode::Run) => true,
    };
    stopping || *mode.borrow() != Mode::Run
}
