//! `POST /api/v1/webhooks/{key}`: check the request, store it durably as an
//! event with its request-log row, and answer only after the commit.

pub mod cache;

use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use cache::Target;
use http_body_util::BodyExt;
use inlet_core::clock::{now_micros, rfc3339};
use inlet_core::keys::WebhookKey;
use inlet_core::outcome::Outcome;
use inlet_core::payload::{parse_body, parse_form};
use inlet_core::redact::{REDACTED, is_credential_header};
use inlet_store::{NewEvent, ReceiveRecord, RequestLogRow};
use serde_json::{Map, Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a sender may take to deliver the body once headers are in.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/api/v1/webhooks/{key}", axum::routing::any(receive))
}

/// A request to a known key, carried to whichever answer it gets so that
/// every outcome leaves the same kind of log row.
struct Reception {
    target: Arc<Target>,
    started: Instant,
    received_at: i64,
    source_ip: IpAddr,
    method: String,
    query: Value,
    headers: Value,
    user_agent: Option<String>,
}

async fn receive(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(raw_key): Path<String>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let received_at = now_micros();
    let Some(key) = WebhookKey::parse(&raw_key) else {
        return unknown_key();
    };
    let target = match state.targets.get(&state.store, &key.digest()).await {
        Ok(Some(target)) if target.expires_at.is_none_or(|at| at > received_at) => target,
        Ok(_) => return unknown_key(),
        Err(err) => {
            tracing::error!(error = %err, "key lookup failed");
            return error_body(Outcome::Error, "the store is unavailable; retry later");
        }
    };
    let (parts, body) = request.into_parts();
    let reception = Reception {
        started,
        received_at,
        source_ip: peer.ip(),
        method: parts.method.as_str().to_owned(),
        query: parts
            .uri
            .query()
            .and_then(|q| parse_form(q.as_bytes()).ok())
            .unwrap_or_else(|| Value::Object(Map::new())),
        headers: stored_headers(&parts.headers),
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        target,
    };
    let settings = &reception.target.settings;

    if !reception.target.enabled {
        return reject(
            &state,
            reception,
            Outcome::Disabled,
            "webhooks are disabled for this trigger",
            Bytes::new(),
        )
        .await;
    }
    if !settings.allows_method(parts.method.as_str()) {
        let message = format!(
            "method {} is not accepted; allowed: {}",
            parts.method,
            settings.methods.join(", ")
        );
        return reject(&state, reception, Outcome::MethodNotAllowed, &message, Bytes::new()).await;
    }
    let limit = settings.max_payload_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        let message = format!(
            "body of {} bytes exceeds the limit of {limit} bytes",
            declared.unwrap_or(0)
        );
        return reject(&state, reception, Outcome::TooLarge, &message, Bytes::new()).await;
    }
    let raw = match tokio::time::timeout(BODY_READ_TIMEOUT, read_limited(body, limit)).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(BodyError::TooLarge)) => {
            let message = format!("body exceeds the limit of {limit} bytes");
            return reject(&state, reception, Outcome::TooLarge, &message, Bytes::new()).await;
        }
        Ok(Err(BodyError::Broken)) => {
            return reject(
                &state,
                reception,
                Outcome::InvalidPayload,
                "the body could not be read",
                Bytes::new(),
            )
            .await;
        }
        Err(_) => {
            let message = format!("the body was not received within {} s", BODY_READ_TIMEOUT.as_secs());
            return reject(&state, reception, Outcome::Timeout, &message, Bytes::new()).await;
        }
    };
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let payload = match parse_body(content_type, &raw) {
        Ok(payload) => payload,
        Err(err) => {
            return reject(&state, reception, Outcome::InvalidPayload, &err.to_string(), raw).await;
        }
    };
    accept(&state, reception, payload, raw).await
}

async fn accept(state: &AppState, reception: Reception, payload: Value, raw: Bytes) -> Response {
    let event_id = uuid::Uuid::now_v7().to_string();
    let metadata = json!({
        "source": "webhook",
        "key_prefix": reception.target.key_prefix,
        "received_at": rfc3339(reception.received_at),
        "source_ip": reception.source_ip.to_string(),
        "user_agent": reception.user_agent,
        "headers": reception.headers,
        "query": reception.query,
    });
    let event = NewEvent {
        id: event_id.clone(),
        trigger_ref: reception.target.trigger_ref.clone(),
        payload: payload.to_string(),
        metadata: metadata.to_string(),
        source: "webhook".into(),
        delivery_id: None,
        created_at: reception.received_at,
    };
    let mut log = log_row(&reception, Outcome::Accepted, "", raw);
    log.event_id = Some(event_id);
    let record = ReceiveRecord {
        event: Some(event),
        log,
        key_id: Some(reception.target.key_id.clone()),
    };
    match state.record_request(record).await {
        Ok(receipt) => (
            StatusCode::OK,
            Json(json!({"data": {"event_id": receipt.event_id, "duplicate": receipt.duplicate}})),
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, trigger = %reception.target.trigger_ref, "could not store an event");
            error_body(Outcome::Error, "the event could not be stored; retry later")
        }
    }
}

async fn reject(state: &AppState, reception: Reception, outcome: Outcome, message: &str, raw: Bytes) -> Response {
    let record = ReceiveRecord {
        event: None,
        log: log_row(&reception, outcome, message, raw),
        key_id: Some(reception.target.key_id.clone()),
    };
    if let Err(err) = state.store.record_request(record).await {
        tracing::error!(error = %err, "could not log a rejected request");
    }
    error_body(outcome, message)
}

fn log_row(reception: &Reception, outcome: Outcome, message: &str, raw: Bytes) -> RequestLogRow {
    RequestLogRow {
        id: uuid::Uuid::now_v7().to_string(),
        trigger_ref: Some(reception.target.trigger_ref.clone()),
        key_prefix: Some(reception.target.key_prefix.clone()),
        received_at: reception.received_at,
        source_ip: reception.source_ip.to_string(),
        method: reception.method.clone(),
        // The key itself never reaches storage: only its prefix.
        path: format!("/api/v1/webhooks/{}…", reception.target.key_prefix),
        query: reception.query.to_string(),
        headers: reception.headers.to_string(),
        body: raw.to_vec(),
        body_truncated: false,
        outcome: outcome.as_str().into(),
        status_code: outcome.status().into(),
        message: message.into(),
        processing_us: reception.started.elapsed().as_micros() as i64,
        event_id: None,
    }
}

/// Headers as stored in the log and event metadata: lower-case names,
/// credentials replaced, repeated headers joined.
fn stored_headers(headers: &HeaderMap) -> Value {
    let mut object = Map::new();
    for name in headers.keys() {
        let value = if is_credential_header(name.as_str(), &[]) {
            REDACTED.to_owned()
        } else {
            headers
                .get_all(name)
                .iter()
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                .collect::<Vec<_>>()
                .join(", ")
        };
        object.insert(name.as_str().to_owned(), Value::String(value));
    }
    Value::Object(object)
}

enum BodyError {
    TooLarge,
    Broken,
}

/// Reads at most `limit` bytes, stopping as soon as the body goes past it,
/// whether or not it declared a length.
async fn read_limited(body: Body, limit: u64) -> Result<Bytes, BodyError> {
    let mut body = body;
    let mut buffer = BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| BodyError::Broken)?;
        if let Ok(data) = frame.into_data() {
            if (buffer.len() + data.len()) as u64 > limit {
                return Err(BodyError::TooLarge);
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

fn unknown_key() -> Response {
    error_body_with(StatusCode::NOT_FOUND, "not_found", "no webhook has this key")
}

fn error_body(outcome: Outcome, message: &str) -> Response {
    let status = StatusCode::from_u16(outcome.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    error_body_with(status, outcome.as_str(), message)
}

fn error_body_with(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message}}))).into_response()
}
