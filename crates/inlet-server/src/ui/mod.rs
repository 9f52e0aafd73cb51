//! The web UI: server-rendered HTML at `/` on the management listener.
//!
//! Pages read and change everything through the JSON API, called in process
//! with the signed-in user's token (`api::Api`), so the UI has no business
//! logic and no checks of its own beyond the session and CSRF. Scripts only
//! add live updates, copy and confirmation; every page works without them.

mod api;
mod automation;
mod chart;
mod form;
mod log;
mod session;
mod signin;
mod triggers;
mod view;

use crate::state::AppState;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use std::sync::Arc;
use tokio::sync::watch;

/// What UI handlers share: the app state and the routers they call in process.
pub struct UiCtx {
    pub state: AppState,
    /// The management API (`/api/v1`), behind its own bearer-token check.
    pub api: Router,
    /// The webhook receiver, for the trigger page's test tool.
    pub receiver: Router,
    /// Turns true when the server stops: live streams end so that it can drain.
    pub stopping: watch::Receiver<bool>,
}

pub fn router(state: AppState, stopping: watch::Receiver<bool>) -> Router<AppState> {
    let ctx = Arc::new(UiCtx {
        stopping,
        api: crate::api::router(state.clone()).with_state(state.clone()),
        receiver: crate::receiver::router().with_state(state.clone()),
        state,
    });
    Router::new()
        .route("/", get(|| async { Redirect::to("/triggers") }))
        .route("/signin", get(signin::page).post(signin::submit))
        .route("/signout", post(signin::signout))
        .route("/triggers", get(triggers::list))
        .route("/triggers/{ref}", get(triggers::detail))
        .route("/triggers/{ref}/enable", post(triggers::enable))
        .route("/triggers/{ref}/disable", post(triggers::disable))
        .route("/triggers/{ref}/regenerate", post(triggers::regenerate))
        .route("/triggers/{ref}/settings", post(triggers::settings))
        .route("/triggers/{ref}/secret", post(triggers::generate_secret))
        .route("/triggers/{ref}/test", post(triggers::send_test))
        .route("/log", get(log::list))
        .route("/log/stream", get(log::stream))
        .route("/log/{id}", get(log::detail))
        .route("/log/{id}/replay", post(log::replay))
        .route("/events/{id}/replay", post(log::replay_event))
        .route("/rules", get(automation::rules))
        .route("/rules/{ref}", get(automation::rule))
        .route("/actions", get(automation::actions))
        .route("/actions/{ref}", get(automation::action))
        .route("/executions", get(automation::executions))
        .route("/executions/{id}", get(automation::execution))
        .route("/executions/{id}/log/stream", get(automation::execution_log_stream))
        .route("/executions/{id}/{verb}", post(automation::execution_command))
        .route("/static/app.css", get(css))
        .route("/static/app.js", get(js))
        .layer(axum::middleware::from_fn(security_headers))
        .layer(axum::Extension(ctx))
}

const CSS: &str = include_str!("assets/app.css");
const JS: &str = include_str!("assets/app.js");

async fn css() -> Response {
    asset("text/css; charset=utf-8", CSS)
}

async fn js() -> Response {
    asset("text/javascript; charset=utf-8", JS)
}

fn asset(content_type: &'static str, text: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        text,
    )
        .into_response()
}

/// Pages hold webhook keys: never cache them, never frame them, run only our
/// own scripts and styles.
async fn security_headers(request: Request, next: Next) -> Response {
    let is_asset = request.uri().path().starts_with("/static/");
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !is_asset && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}
