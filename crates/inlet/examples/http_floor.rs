//! The benchmark's floors: Inlet's HTTP stack with no receiver behind it, and
//! the same with the least durable write a receiver can make.
//!
//! Same runtime, allocator and accept loop as `inlet serve`; the webhook route
//! reads the body and answers what an accepted delivery gets, with nothing
//! checked. With `FLOOR_DB` set to a file, each body is also stored as one row
//! (a time-ordered text key and the body) in SQLite, in group commits flushed
//! to disk before the answers, as Inlet's writer does; without it nothing is
//! stored. `bench/run` drives both (`http-floor`, `durable-floor`), so every
//! run shows the requests/s this machine and load generator allow before any
//! of the receiver's work, and with only its durable write.
//!
//! `INLET_LISTEN=127.0.0.1:8080 cargo run --release -p inlet --example http_floor`

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, extract::Path};
use serde_json::json;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A body to store, and where to send its row's key once it is on disk.
type Store = mpsc::Sender<(Bytes, oneshot::Sender<String>)>;

async fn accept(State(store): State<Option<Store>>, Path(_key): Path<String>, body: Bytes) -> Response {
    let event_id = match store {
        None => uuid::Uuid::now_v7().to_string(),
        Some(store) => {
            // A writer that stopped drops the sender: the answer is an error.
            let (stored, id) = oneshot::channel();
            let _ = store.send((body, stored)).await;
            match id.await {
                Ok(id) => id,
                Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
            }
        }
    };
    Json(json!({"data": {"event_id": event_id, "duplicate": false}})).into_response()
}

/// Stores every queued body in one transaction, flushes the log, answers;
/// what queued meanwhile is the next batch.
fn write_rows(file: &str, mut queue: mpsc::Receiver<(Bytes, oneshot::Sender<String>)>) -> anyhow::Result<()> {
    let conn = rusqlite::Connection::open(file)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch("CREATE TABLE IF NOT EXISTS rows (id TEXT PRIMARY KEY, body BLOB NOT NULL)")?;
    let log = std::fs::File::open(format!("{file}-wal"))?;
    let mut batch = Vec::new();
    while let Some(first) = queue.blocking_recv() {
        batch.push(first);
        while let Ok(next) = queue.try_recv() {
            batch.push(next);
        }
        let tx = conn.unchecked_transaction()?;
        let mut ids = Vec::with_capacity(batch.len());
        for (body, _) in &batch {
            let id = uuid::Uuid::now_v7().to_string();
            tx.prepare_cached("INSERT INTO rows (id, body) VALUES (?1, ?2)")?
                .execute((&id, &body[..]))?;
            ids.push(id);
        }
        tx.commit()?;
        log.sync_data()?;
        for ((_, stored), id) in batch.drain(..).zip(ids) {
            let _ = stored.send(id);
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let listen = std::env::var("INLET_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let store = std::env::var("FLOOR_DB").ok().map(|file| {
        let (store, queue) = mpsc::channel(8192);
        std::thread::spawn(move || {
            if let Err(err) = write_rows(&file, queue) {
                eprintln!("durable floor: {err:#}");
            }
        });
        store
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(&listen).await?;
        let router = Router::new()
            .route("/api/v1/webhooks/{key}", post(accept))
            .with_state(store);
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            inlet_server::shutdown_signal().await;
            let _ = stop.send(true);
        });
        inlet_server::serve::serve(listener, router, Duration::from_secs(10), stopped).await;
        Ok(())
    })
}
