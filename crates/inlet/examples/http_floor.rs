//! The benchmark's floor: Inlet's HTTP stack with no receiver behind it.
//!
//! Same runtime, allocator and accept loop as `inlet serve`; the webhook route
//! reads the body and answers what an accepted delivery gets, with nothing
//! checked or stored. `bench/run` drives it as the system `http-floor`, so
//! every run shows the requests/s this machine and load generator allow
//! before any of the receiver's work is done.
//!
//! `INLET_LISTEN=127.0.0.1:8080 cargo run --release -p inlet --example http_floor`

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use serde_json::json;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn accept(_body: Bytes) -> Json<serde_json::Value> {
    Json(json!({"data": {"event_id": uuid::Uuid::now_v7().to_string(), "duplicate": false}}))
}

fn main() -> anyhow::Result<()> {
    let listen = std::env::var("INLET_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(&listen).await?;
        let router = Router::new().route("/api/v1/webhooks/{key}", post(accept));
        let (stop, stopped) = watch::channel(false);
        tokio::spawn(async move {
            inlet_server::shutdown_signal().await;
            let _ = stop.send(true);
        });
        inlet_server::serve::serve(listener, router, Duration::from_secs(10), stopped).await;
        Ok(())
    })
}
