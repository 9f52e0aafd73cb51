//! Inlet's HTTP server: the webhook receiver, the management API and health
//! endpoints. `App::prepare` does first-start work; `App::serve` runs until
//! told to stop, finishing in-flight requests and commits.

mod api;
pub mod bootstrap;
pub mod cfg;
mod error;
mod health;
pub mod packs;
mod receiver;
mod retention;
pub mod serve;
mod state;
mod ui;

pub use cfg::Config;
pub use state::AppState;

use inlet_core::keys::ApiToken;
use inlet_store::{BackendKind, Store};
use receiver::cache::TargetCache;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub struct App {
    pub state: AppState,
    /// A token generated on this start, to be shown once.
    pub first_token: Option<ApiToken>,
    pub packs: packs::PackReport,
    header_timeout: Duration,
    log_retention_days: u32,
}

pub struct Listeners {
    pub management: TcpListener,
    pub public: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(cfg: &Config) -> anyhow::Result<Self> {
        let management = TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| anyhow::anyhow!("cannot listen on {} (listen / INLET_LISTEN): {e}", cfg.listen))?;
        let public =
            match cfg.public_listen {
                Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                    anyhow::anyhow!("cannot listen on {addr} (public_listen / INLET_PUBLIC_LISTEN): {e}")
                })?),
                None => None,
            };
        Ok(Self { management, public })
    }

    /// The address webhook senders reach: the public listener when there is one.
    pub fn public_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(match &self.public {
            Some(public) => public.local_addr()?,
            None => self.management.local_addr()?,
        })
    }
}

impl App {
    pub async fn prepare(cfg: &Config, public_addr: SocketAddr) -> anyhow::Result<Self> {
        inlet_engine::runner::install_crypto_provider();
        bootstrap::prepare_data_dir(cfg)?;
        let master_key = bootstrap::master_key(cfg)?;
        inlet_engine::runner::install_crypto_provider();
        let store = bootstrap::open_store(cfg).await?;
        let first_token = bootstrap::ensure_admin_token(cfg, &store).await?;
        let packs = packs::load_packs(&cfg.packs_dir, &store, &master_key).await?;
        // One node owns a SQLite file, so local invalidation is enough there;
        // PostgreSQL may be shared by several nodes.
        let ttl = match store.kind() {
            BackendKind::Sqlite => Duration::from_secs(60),
            BackendKind::Postgres => Duration::from_secs(2),
        };
        let engine = inlet_engine::EngineHandle::start(store.clone(), cfg.engine.clone(), master_key.clone())
            .map_err(anyhow::Error::msg)?;
        let state = AppState {
            store,
            master_key,
            public_base_url: Arc::from(cfg.public_base_url(public_addr)),
            targets: Arc::new(TargetCache::new(ttl)),
            limits: Arc::new(receiver::limits::Limiters::new(cfg.unknown_key_limit_per_minute)),
            trusted_proxies: Arc::new(cfg.trusted_proxies()?),
            body_timeout: Duration::from_secs(cfg.body_timeout_seconds),
            engine,
        };
        Ok(Self {
            state,
            first_token,
            packs,
            header_timeout: Duration::from_secs(cfg.header_timeout_seconds),
            log_retention_days: cfg.log_retention_days,
        })
    }

    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight
    /// requests finish, commits what is queued and closes the store.
    pub async fn serve(self, listeners: Listeners, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let state = self.state;
        let receiver = receiver::router().with_state(state.clone());
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let management = axum::Router::new()
            .merge(receiver::router())
            .merge(api::router(state.clone()))
            .merge(health::router())
            .merge(ui::router(state.clone(), stopping.clone()))
            .fallback(not_found)
            .with_state(state.clone());
        let mut servers = tokio::task::JoinSet::new();
        let header_timeout = self.header_timeout;
        let stopping_for_retention = stopping.clone();
        servers.spawn(serve::serve(
            listeners.management,
            management,
            header_timeout,
            stopping.clone(),
        ));
        if let Some(public) = listeners.public {
            servers.spawn(serve::serve(
                public,
                receiver.fallback(not_found),
                header_timeout,
                stopping,
            ));
        }
        servers.spawn(retention::purge_periodically(
            state.store.clone(),
            self.log_retention_days,
            stopping_for_retention,
        ));
        shutdown.await;
        tracing::info!("stopping: finishing in-flight requests");
        let _ = stop.send(true);
        // The engine stops alongside: running executions get their grace, and
        // followers of their output are let go so connections can drain.
        let drain = async { while servers.join_next().await.is_some() {} };
        tokio::join!(drain, state.engine.stop());
        state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

async fn not_found() -> impl axum::response::IntoResponse {
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"error": {"code": "not_found", "message": "no such route"}})),
    )
}

/// Resolves on SIGINT or SIGTERM. The handlers are installed when this is
/// called, not when the future is first polled, so a signal that arrives
/// during start-up still stops the server cleanly.
pub fn shutdown_signal() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    let mut terminate = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    }
}
