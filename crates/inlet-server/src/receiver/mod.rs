//! `POST /api/v1/webhooks/{key}`: check the request, store it durably as an
//! event with its request-log row, and answer only after the commit.

pub mod cache;
pub mod limits;
pub mod shape;

use crate::state::AppState;
use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use cache::Target;
use http_body_util::BodyExt;
use inlet_core::clock::{now_micros, rfc3339};
use inlet_core::expr::Context;
use inlet_core::keys::WebhookKey;
use inlet_core::net::any_contains;
use inlet_core::outcome::Outcome;
use inlet_core::payload::{BodyKind, check_json, parse_body, parse_form};
use inlet_core::redact::{REDACTED, is_credential_header};
use inlet_core::verify::{Rejection, SignedRequest};
use inlet_store::{NewEvent, ReceiveRecord, RequestLogRow};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

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
    /// Stored query parameters and headers, as JSON text: serialised once for
    /// both the log row and the event's metadata.
    query: Box<RawValue>,
    headers: Box<RawValue>,
    user_agent: Option<String>,
}

/// What the answer to a request is, besides its outcome.
struct Answer {
    outcome: Outcome,
    message: String,
    body: Bytes,
    /// Seconds for `Retry-After`, on 429.
    retry_after: Option<u64>,
}

impl Answer {
    fn new(outcome: Outcome, message: impl Into<String>) -> Self {
        Self {
            outcome,
            message: message.into(),
            body: Bytes::new(),
            retry_after: None,
        }
    }

    fn with_body(mut self, body: Bytes) -> Self {
        self.body = body;
        self
    }
}

async fn receive(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(raw_key): Path<String>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let received_at = now_micros();
    let (parts, body) = request.into_parts();
    let source_ip = client_ip(&state, peer.ip(), &parts.headers);
    if let Err(retry_after) = state.limits.unknown_key_block(source_ip, received_at) {
        return too_many_unknown_keys(retry_after);
    }
    let target = match WebhookKey::parse(&raw_key) {
        None => None,
        Some(key) => match state.targets.get(&state.store, &state.master_key, &key.digest()).await {
            Ok(target) => target.filter(|t| t.expires_at.is_none_or(|at| at > received_at)),
            Err(err) => {
                tracing::error!(error = %err, "key lookup failed");
                return error_body(Outcome::Error, "the store is unavailable; retry later");
            }
        },
    };
    let Some(target) = target else {
        state.limits.count_unknown_key(source_ip, received_at);
        return unknown_key();
    };
    let query_pairs: Vec<(String, String)> = parts
        .uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let reception = Reception {
        started,
        received_at,
        source_ip,
        method: parts.method.as_str().to_owned(),
        query: json_text(&stored_query(parts.uri.query(), target.secret_query_param.as_deref())),
        headers: json_text(&stored_headers(&parts.headers, &target.secret_headers)),
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        target,
    };
    let url = format!(
        "{}{}",
        state.public_base_url,
        parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("")
    );
    match check(&state, &reception, &parts, &query_pairs, &url, body).await {
        Ok(Accepted::Event {
            payload,
            raw,
            delivery_id,
        }) => accept(&state, reception, payload, raw, delivery_id).await,
        Ok(Accepted::Handshake { reply, raw }) => {
            let answer =
                Answer::new(Outcome::Accepted, "answered the provider's verification handshake").with_body(raw);
            record(&state, &reception, &answer).await;
            reply
        }
        Err(answer) => {
            record(&state, &reception, &answer).await;
            rejection(&answer)
        }
    }
}

enum Accepted {
    Event {
        /// The event payload, as stored (JSON text).
        payload: String,
        raw: Bytes,
        delivery_id: Option<String>,
    },
    /// A provider's URL verification, answered instead of storing an event.
    Handshake { reply: Response, raw: Bytes },
}

/// The receiver's checks, in their documented order.
async fn check(
    state: &AppState,
    reception: &Reception,
    parts: &axum::http::request::Parts,
    query: &[(String, String)],
    url: &str,
    body: Body,
) -> Result<Accepted, Answer> {
    let target = &reception.target;
    let settings = &target.settings;
    if !target.enabled {
        return Err(Answer::new(Outcome::Disabled, "webhooks are disabled for this trigger"));
    }
    if !settings.ip_allowlist.is_empty() && !any_contains(&settings.ip_allowlist, reception.source_ip) {
        return Err(Answer::new(
            Outcome::IpDenied,
            format!(
                "client address {} is not in this webhook's IP allowlist",
                reception.source_ip
            ),
        ));
    }
    if let Some(limit) = settings.rate_limit
        && let Err(retry_after) = state.limits.acquire_key(&target.key_id, limit, reception.received_at)
    {
        let mut answer = Answer::new(
            Outcome::RateLimited,
            format!(
                "more than {} requests in {} s; retry after {retry_after} s",
                limit.requests, limit.window_seconds
            ),
        );
        answer.retry_after = Some(retry_after);
        return Err(answer);
    }
    let signed = |body| signed_request(parts, url, query, body);
    // Okta verifies an endpoint with a GET before it sends anything signed.
    if let Some(verifier) = &target.verifier
        && let Some(reply) = verifier.pre_verify_handshake(&signed(&[]))
    {
        return Ok(Accepted::Handshake {
            reply: (StatusCode::OK, Json(reply)).into_response(),
            raw: Bytes::new(),
        });
    }
    if !settings.allows_method(parts.method.as_str()) {
        return Err(Answer::new(
            Outcome::MethodNotAllowed,
            format!(
                "method {} is not accepted; allowed: {}",
                parts.method,
                settings.methods.join(", ")
            ),
        ));
    }
    let limit = settings.max_payload_bytes;
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(declared) = declared.filter(|len| *len > limit) {
        return Err(Answer::new(
            Outcome::TooLarge,
            format!("body of {declared} bytes exceeds the limit of {limit} bytes"),
        ));
    }
    let raw = match tokio::time::timeout(state.body_timeout, read_limited(body, limit)).await {
        Ok(Ok(raw)) => raw,
        Ok(Err(BodyError::TooLarge)) => {
            return Err(Answer::new(
                Outcome::TooLarge,
                format!("body exceeds the limit of {limit} bytes"),
            ));
        }
        Ok(Err(BodyError::Broken)) => return Err(Answer::new(Outcome::InvalidPayload, "the body could not be read")),
        Err(_) => {
            return Err(Answer::new(
                Outcome::Timeout,
                format!("the body was not received within {} s", state.body_timeout.as_secs()),
            ));
        }
    };
    if let Some(verifier) = &target.verifier
        && let Err(rejection) = verifier.verify(&signed(&raw), reception.received_at / 1_000_000)
    {
        let outcome = match rejection {
            Rejection::BadSignature(_) => Outcome::BadSignature,
            Rejection::StaleTimestamp(_) => Outcome::StaleTimestamp,
        };
        return Err(Answer::new(outcome, rejection.message()).with_body(raw));
    }
    let content_type = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    // A JSON body that no mapping changes is stored as received: serialising
    // the parsed value again would cost time and could only lose detail
    // (number precision). With no schema to check either, it is only checked,
    // never built into a value.
    let kept_text = (target.shaping.passes_through()
        && !raw.is_empty()
        && matches!(BodyKind::from_content_type(content_type), BodyKind::Json))
    .then(|| std::str::from_utf8(&raw).ok())
    .flatten();
    let body = match kept_text {
        Some(text) if !target.shaping.reads_payload() => check_json(text).map(|()| CheckedBody::AsReceived(text)),
        _ => parse_body(content_type, &raw).map(CheckedBody::Parsed),
    };
    let body = match body {
        Ok(body) => body,
        Err(err) => return Err(Answer::new(Outcome::InvalidPayload, err.to_string()).with_body(raw)),
    };
    let mut delivery_id = None;
    if let Some(verifier) = &target.verifier {
        let request = signed(&raw);
        // Given no parsed body, a scheme that reads it (a handshake, a delivery
        // id in the body) parses it itself.
        if let Some(reply) = verifier.handshake(&request, body.value()) {
            return Ok(Accepted::Handshake {
                reply: (StatusCode::OK, Json(reply)).into_response(),
                raw,
            });
        }
        if let Some(text) = verifier.handshake_text(&request, body.value()) {
            return Ok(Accepted::Handshake {
                reply: (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain")], text).into_response(),
                raw,
            });
        }
        if settings.dedup {
            delivery_id = verifier.delivery_id(&request, body.value());
        }
    }
    let payload = match body {
        CheckedBody::AsReceived(text) => text.to_owned(),
        CheckedBody::Parsed(payload) => {
            let shaped = target.shaping.apply(payload, |payload| {
                Context::new(payload)
                    .with_headers(
                        parts
                            .headers
                            .iter()
                            .filter_map(|(n, v)| Some((n.as_str(), v.to_str().ok()?))),
                    )
                    .with_query(query.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .with_meta(&json!({
                        "trigger": target.trigger_ref,
                        "source_ip": reception.source_ip.to_string(),
                        "received_at": rfc3339(reception.received_at),
                    }))
            });
            match (shaped, kept_text) {
                (Ok(_), Some(text)) => text.to_owned(),
                (Ok(payload), None) => payload.to_string(),
                (Err(message), _) => return Err(Answer::new(Outcome::SchemaMismatch, message).with_body(raw)),
            }
        }
    };
    Ok(Accepted::Event {
        payload,
        raw,
        delivery_id,
    })
}

/// A request body on its way to becoming an event's payload.
enum CheckedBody<'a> {
    /// JSON that nothing reads, checked and stored as received.
    AsReceived(&'a str),
    Parsed(Value),
}

impl CheckedBody<'_> {
    fn value(&self) -> Option<&Value> {
        match self {
            CheckedBody::AsReceived(_) => None,
            CheckedBody::Parsed(value) => Some(value),
        }
    }
}

fn signed_request<'a>(
    parts: &'a axum::http::request::Parts,
    url: &'a str,
    query: &'a [(String, String)],
    body: &'a [u8],
) -> SignedRequest<'a, HeaderMap> {
    SignedRequest {
        method: parts.method.as_str(),
        url,
        headers: &parts.headers,
        query,
        body,
    }
}

async fn accept(
    state: &AppState,
    reception: Reception,
    payload: String,
    raw: Bytes,
    delivery_id: Option<String>,
) -> Response {
    let mut log = log_row(&reception, &Answer::new(Outcome::Accepted, "").with_body(raw));
    // The event takes its log row's id: the store finds the original request
    // of an event by it.
    let event_id = log.id.clone();
    let metadata = EventMetadata {
        source: "webhook",
        key_prefix: &reception.target.key_prefix,
        received_at: rfc3339(reception.received_at),
        source_ip: reception.source_ip.to_string(),
        user_agent: reception.user_agent.as_deref(),
        headers: &reception.headers,
        query: &reception.query,
        delivery_id: delivery_id.as_deref(),
    };
    let event = NewEvent {
        id: event_id.clone(),
        trigger_ref: reception.target.trigger_ref.clone(),
        payload,
        metadata: serde_json::to_string(&metadata).expect("metadata serialises"),
        source: "webhook".into(),
        delivery_id,
        created_at: reception.received_at,
    };
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

/// Logs a request that created no event.
async fn record(state: &AppState, reception: &Reception, answer: &Answer) {
    let record = ReceiveRecord {
        event: None,
        log: log_row(reception, answer),
        key_id: Some(reception.target.key_id.clone()),
    };
    if let Err(err) = state.store.record_request(record).await {
        tracing::error!(error = %err, "could not log a rejected request");
    }
}

fn rejection(answer: &Answer) -> Response {
    let mut response = error_body(answer.outcome, &answer.message);
    if let Some(seconds) = answer.retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn client_ip(state: &AppState, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if state.trusted_proxies.is_empty() {
        return peer;
    }
    let values = |name: &str| -> Vec<&str> { headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect() };
    state
        .trusted_proxies
        .client_ip(peer, &values("x-forwarded-for"), &values("forwarded"))
}

fn log_row(reception: &Reception, answer: &Answer) -> RequestLogRow {
    RequestLogRow {
        id: uuid::Uuid::now_v7().to_string(),
        trigger_ref: Some(reception.target.trigger_ref.clone()),
        key_prefix: Some(reception.target.key_prefix.clone()),
        received_at: reception.received_at,
        source_ip: reception.source_ip.to_string(),
        method: reception.method.clone(),
        // The key itself never reaches storage: only its prefix.
        path: format!("/api/v1/webhooks/{}…", reception.target.key_prefix),
        query: reception.query.get().to_owned(),
        headers: reception.headers.get().to_owned(),
        body: answer.body.to_vec(),
        body_truncated: false,
        outcome: answer.outcome.as_str().into(),
        status_code: answer.outcome.status().into(),
        message: answer.message.clone(),
        processing_us: reception.started.elapsed().as_micros() as i64,
        event_id: None,
    }
}

/// A webhook event's metadata, as stored.
#[derive(Serialize)]
struct EventMetadata<'a> {
    source: &'static str,
    key_prefix: &'a str,
    received_at: String,
    source_ip: String,
    user_agent: Option<&'a str>,
    headers: &'a RawValue,
    query: &'a RawValue,
    delivery_id: Option<&'a str>,
}

fn json_text(value: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).expect("a JSON value serialises")
}

/// Headers as stored in the log and event metadata: lower-case names,
/// credentials replaced, repeated headers joined.
fn stored_headers(headers: &HeaderMap, secret_headers: &[String]) -> Value {
    let mut object = Map::new();
    for name in headers.keys() {
        let value = if is_credential_header(name.as_str(), secret_headers) {
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

/// Query parameters as stored, without the one carrying a shared secret.
fn stored_query(query: Option<&str>, secret_param: Option<&str>) -> Value {
    let mut value = query
        .and_then(|q| parse_form(q.as_bytes()).ok())
        .unwrap_or_else(|| Value::Object(Map::new()));
    if let (Some(param), Value::Object(object)) = (secret_param, &mut value)
        && let Some(v) = object.get_mut(param)
    {
        *v = Value::String(REDACTED.into());
    }
    value
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

fn too_many_unknown_keys(retry_after: u64) -> Response {
    let mut response = error_body_with(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many requests to unknown webhook keys from this address",
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    response
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
