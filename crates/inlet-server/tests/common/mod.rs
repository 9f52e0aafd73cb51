//! A real server on 127.0.0.1:0 with a fresh database, and a small client.
#![allow(dead_code)]

use inlet_server::{App, Config, Listeners};
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::Value;
use std::path::PathBuf;
use tokio::sync::oneshot;

pub const TOKEN: &str = "inlet_test_token_0123456789abcdefghij";

pub struct TestServer {
    pub backend: String,
    pub base: String,
    pub client: Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: Option<tempfile::TempDir>,
    pub cfg: Config,
    engine: Option<inlet_engine::EngineHandle>,
    store: Option<inlet_store::Store>,
}

/// Engine settings that keep tests fast: quick polls, short leases and grace.
pub fn test_engine_config() -> inlet_engine::EngineConfig {
    inlet_engine::EngineConfig {
        workers: 8,
        lease_seconds: 2.0,
        poll_interval_seconds: 0.1,
        shutdown_grace_seconds: 5.0,
        kill_grace_seconds: 1.0,
        ..inlet_engine::EngineConfig::default()
    }
}

/// Runs `test` once per backend (SQLite, and PostgreSQL when available).
pub async fn each_backend<F, Fut>(test: F)
where
    F: Fn(TestServer) -> Fut,
    Fut: std::future::Future<Output = TestServer>,
{
    let scratch = tempfile::tempdir().unwrap();
    for (backend, url) in inlet_store::test_support::database_urls(scratch.path()).await {
        eprintln!("-- backend {backend}");
        let server = TestServer::start(&backend, Some(url)).await;
        test(server).await.stop().await;
    }
}

/// A test server's configuration: data in `dir`, port 0, the test token, the
/// shipped packs and a fast engine. Tests change fields with `..test_config(dir)`.
pub fn test_config(dir: &std::path::Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_token: Some(TOKEN.into()),
        packs_dir: packs_dir(),
        engine: test_engine_config(),
        ..Config::default()
    }
}

pub fn packs_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../packs")
}

impl TestServer {
    pub async fn start(backend: &str, database_url: Option<String>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cfg = Config {
            database_url,
            ..test_config(dir.path())
        };
        Self::start_with(backend, cfg, Some(dir)).await
    }

    pub async fn start_with(backend: &str, cfg: Config, dir: Option<tempfile::TempDir>) -> Self {
        // reqwest is built with `rustls-no-provider`: without this, Client::new() panics
        // when this crate's tests are built alone (`cargo test -p inlet-server`).
        inlet_engine::runner::install_crypto_provider();
        let listeners = Listeners::bind(&cfg).await.unwrap();
        Self::start_on(backend, cfg, listeners, dir).await
    }

    pub async fn start_on(backend: &str, cfg: Config, listeners: Listeners, dir: Option<tempfile::TempDir>) -> Self {
        inlet_engine::runner::install_crypto_provider();
        let addr = listeners.management.local_addr().unwrap();
        let app = App::prepare(&cfg, listeners.public_addr().unwrap()).await.unwrap();
        let engine = Some(app.state.engine.clone());
        let store = Some(app.state.store.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(app.serve(listeners, async move {
            let _ = stopped.await;
        }));
        Self {
            backend: backend.into(),
            base: format!("http://{addr}"),
            client: Client::new(),
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
            cfg,
            engine,
            store,
        }
    }

    /// Kills the server as a crash would (running executions are dropped without a
    /// word to the store, leases left to expire), then starts a new one on the same
    /// database and data directory.
    pub async fn crash_and_restart(self) -> Self {
        self.crash_and_restart_with(|_| async {}).await
    }

    /// Like [`TestServer::crash_and_restart`], running `between` (given the database
    /// URL) while the server is down.
    pub async fn crash_and_restart_with<F, Fut>(mut self, between: F) -> Self
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        if let Some(engine) = self.engine.take() {
            engine.abort().await;
        }
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
        if let Some(store) = self.store.take() {
            store.close().await;
        }
        let cfg = self.cfg.clone();
        between(cfg.database_url()).await;
        let dir = self._dir.take();
        Self::start_with(&self.backend, cfg, dir).await
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// The server's store, for checks of what is kept at rest.
    pub fn store(&self) -> &inlet_store::Store {
        self.store.as_ref().expect("a running server has a store")
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.request(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: Value) -> Response {
        self.request(Method::POST, path).json(&body).send().await.unwrap()
    }

    /// Creates a trigger with only its ref and enables its webhook; returns (key, url).
    pub async fn new_webhook(&self, trigger_ref: &str) -> (String, String) {
        let created = self
            .post_json("/api/v1/triggers", serde_json::json!({"ref": trigger_ref}))
            .await;
        assert_eq!(created.status(), 201, "POST /api/v1/triggers {trigger_ref}");
        self.enable(trigger_ref).await
    }

    /// Enables the trigger's webhook; returns (key, url).
    pub async fn enable(&self, trigger_ref: &str) -> (String, String) {
        let response = self
            .request(Method::POST, &format!("/api/v1/triggers/{trigger_ref}/webhooks/enable"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        (
            body["data"]["webhook_key"].as_str().unwrap().to_owned(),
            body["data"]["webhook_url"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn send(&self, url: &str, content_type: &str, body: impl Into<reqwest::Body>) -> Response {
        self.client
            .post(url)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn events(&self, trigger_ref: &str) -> Vec<Value> {
        let body = self
            .get_json(&format!("/api/v1/events?trigger={trigger_ref}&limit=500"))
            .await;
        body["data"].as_array().unwrap().clone()
    }

    pub async fn log(&self, trigger_ref: &str) -> Vec<Value> {
        let body = self
            .get_json(&format!("/api/v1/webhook-log?trigger={trigger_ref}&limit=500"))
            .await;
        body["data"].as_array().unwrap().clone()
    }
}

/// The response is a server-sent event stream.
pub fn assert_event_stream(response: &Response) {
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(content_type.starts_with("text/event-stream"), "{content_type}");
}
