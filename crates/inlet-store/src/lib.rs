//! Inlet's storage: one `Store` API over SQLite (embedded default) and
//! PostgreSQL (several nodes). SQL is written once with `$n` placeholders,
//! which both backends accept, and run on whichever pool is configured.

mod automation;
mod error;
mod events;
mod executions;
mod request_log;
mod rows;
mod sql;
mod stats;
mod tokens;
mod triggers;
mod webhooks;
mod writer;

#[cfg(feature = "test-support")]
pub mod test_support;

pub use automation::{ActionRow, AutomationVersion, NewAction, NewRule, RuleRow};
pub use error::StoreError;
pub(crate) use error::any_row;
pub use events::EventFilter;
pub use executions::{
    AttemptEnd, AttemptRow, CancelResult, ClaimedExecution, CreatedExecution, EvaluationRow, EventEvaluation,
    ExecutionFilter, ExecutionRow, NewEvaluation, NewExecution, status,
};
pub use request_log::LogFilter;
pub use rows::*;
pub use stats::OutcomeBucket;
pub use writer::{Receipt, ReceiveRecord};

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Runs `$body` with `$pool` bound to the configured backend's pool. The body
/// is compiled once per backend, so SQL and row types are shared.
macro_rules! on_pool {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite { read: $pool, .. } => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Like `on_pool!`, for statements that write. SQLite has one writer at a
/// time: writes queue on the writer's connection (which the group commit also
/// uses) instead of meeting it in SQLite's busy handler, which sleeps in steps
/// of milliseconds.
macro_rules! on_writer {
    ($store:expr, |$pool:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite { write: $pool, .. } => $body,
            $crate::Backend::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_writer;

/// Runs `$body` inside one transaction on the backend's write path.
macro_rules! in_transaction {
    ($store:expr, |$tx:ident| $body:expr) => {
        match &$store.backend {
            $crate::Backend::Sqlite { write, .. } => {
                let mut $tx = write.begin().await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
            $crate::Backend::Postgres(pool) => {
                let mut $tx = pool.begin().await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
        }
    };
}
pub(crate) use in_transaction;

#[derive(Clone)]
pub(crate) enum Backend {
    /// SQLite has one writer at a time: group commits go through `write`, a
    /// pool of one connection, while reads use their own pool (WAL).
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
    },
    Postgres(PgPool),
}

#[derive(Clone)]
pub struct Store {
    backend: Backend,
    writer: writer::WriterHandle,
    shared: Arc<Shared>,
}

struct Shared {
    writer_task: tokio::sync::Mutex<Option<writer::WriterTask>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    Sqlite,
    Postgres,
}

impl Store {
    /// Opens (creating a SQLite file if needed) and applies migrations.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let mut sqlite_file = None;
        let backend = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Config(format!("database url: {e}")))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true);
            sqlite_file = Some(options.get_filename().to_path_buf());
            let read = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options.clone())
                .await?;
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/sqlite").run(&write).await?;
            Backend::Sqlite { read, write }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options =
                PgConnectOptions::from_str(url).map_err(|e| StoreError::Config(format!("database url: {e}")))?;
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await?;
            sqlx::migrate!("./migrations/postgres").run(&pool).await?;
            Backend::Postgres(pool)
        } else {
            return Err(StoreError::Config(
                "database url must start with sqlite: or postgres:".into(),
            ));
        };
        let (writer, task) = writer::spawn(&backend, sqlite_file)?;
        Ok(Self {
            backend,
            writer,
            shared: Arc::new(Shared {
                writer_task: tokio::sync::Mutex::new(Some(task)),
            }),
        })
    }

    pub fn kind(&self) -> BackendKind {
        match self.backend {
            Backend::Sqlite { .. } => BackendKind::Sqlite,
            Backend::Postgres(_) => BackendKind::Postgres,
        }
    }

    /// Commits everything already queued for the group-commit writer, then
    /// closes the pools. Later writes fail with `StoreError::Closed`.
    pub async fn close(&self) {
        self.writer.shutdown().await;
        if let Some(task) = self.shared.writer_task.lock().await.take() {
            task.join().await;
        }
        match &self.backend {
            Backend::Sqlite { read, write } => {
                read.close().await;
                write.close().await;
            }
            Backend::Postgres(pool) => pool.close().await,
        }
    }

    /// Answers whether the database is reachable (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, |pool| sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }
}
