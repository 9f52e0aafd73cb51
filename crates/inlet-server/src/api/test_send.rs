//! `POST /api/v1/triggers/{ref}/webhooks/test`: send a JSON payload to the trigger's webhook
//! through the receiver, in process, signed with the configured verification scheme when it
//! can be signed (the secrets never leave the server).

use super::data;
use super::triggers::find;
use super::webhooks::{not_enabled, open_settings, unseal};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{Method, Request, header};
use axum::response::IntoResponse;
use axum::routing::post;
use http_body_util::BodyExt;
use inlet_core::clock::now_micros;
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use tower::ServiceExt;

/// Largest receiver answer read back (it answers with small JSON documents).
const MAX_ANSWER_BYTES: usize = 1024 * 1024;

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/triggers/{ref}/webhooks/test", post(send_test))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestBody {
    payload: Value,
}

async fn send_test(
    State(state): State<AppState>,
    Path(raw): Path<String>,
    body: Bytes,
) -> Result<impl IntoResponse, ApiError> {
    let body: TestBody = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("body must be {{\"payload\": <JSON>}}: {e}")))?;
    let trigger = find(&state, &raw).await?;
    let webhook = state
        .store
        .get_webhook(&trigger.trigger_ref)
        .await?
        .filter(|w| w.enabled)
        .ok_or_else(|| not_enabled(&trigger.trigger_ref))?;
    let keys = state.store.live_keys(&trigger.trigger_ref, now_micros()).await?;
    let key = keys
        .iter()
        .find(|k| k.expires_at.is_none())
        .ok_or_else(|| not_enabled(&trigger.trigger_ref))?;
    let key = unseal(&state, key)?;
    let settings = open_settings(&state, &webhook)?;
    let payload = serde_json::to_vec(&body.payload).expect("JSON values serialize");

    let (headers, note) = match &settings.verification {
        None => (Vec::new(), None),
        Some(config) => {
            let verifier = config
                .compile()
                .map_err(|e| ApiError::Internal(format!("verification of {}: {e}", trigger.trigger_ref)))?;
            let now = now_micros().div_euclid(1_000_000);
            match verifier.sign(&payload, &state.webhook_url(&key), now) {
                Ok(headers) => (headers, None),
                Err(why) => (Vec::new(), Some(format!("sent unsigned: {why}"))),
            }
        }
    };
    let signed = !headers.is_empty();

    let mut request = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/webhooks/{key}"))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "Inlet-UI-test-tool");
    for (name, value) in &headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let mut request = request
        .body(Body::from(payload))
        .map_err(|e| ApiError::Internal(format!("test request for {}: {e}", trigger.trigger_ref)))?;
    request
        .extensions_mut()
        .insert(ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 0))));
    let receiver = crate::receiver::router().with_state(state.clone());
    let response = match receiver.oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = response.status().as_u16();
    let bytes = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let answer = serde_json::from_slice::<Value>(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    let mut out = json!({"status": status, "body": answer, "signed": signed});
    if let Some(note) = note {
        out["note"] = json!(note);
    }
    Ok(data(out))
}
