//! The UI's only way to read or change anything: the JSON API, called in
//! process with the signed-in user's bearer token. Every action therefore
//! goes through the same handlers and checks as the API itself.

use super::UiCtx;
use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

/// Largest API answer the UI reads (the request log's bodies are capped far below).
const MAX_REPLY_BYTES: usize = 16 * 1024 * 1024;

pub struct Api {
    ctx: Arc<UiCtx>,
    token: String,
}

/// An API answer: its status and JSON body (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl Reply {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }

    pub fn data(&self) -> &Value {
        &self.body["data"]
    }

    /// The route does not exist in this build (an API still to come): a 404
    /// or 405 without the API's error envelope.
    pub fn route_missing(&self) -> bool {
        matches!(self.status, StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED)
            && self.body.get("error").is_none()
    }

    pub fn unauthorized(&self) -> bool {
        self.status == StatusCode::UNAUTHORIZED
    }

    /// The API's message for a failure, or a generic one.
    pub fn error_message(&self) -> String {
        match self.body["error"]["message"].as_str() {
            Some(message) => message.to_owned(),
            None if self.route_missing() => "not available in this version of Inlet".to_owned(),
            None => format!("the server answered {}", self.status),
        }
    }
}

/// Percent-encodes one path segment, so that a value taken from a UI URL can
/// never reach a different API route.
pub fn seg(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `?a=1&b=2` from the pairs whose value is not empty.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        ser.append_pair(k, v);
    }
    let q = ser.finish();
    if q.is_empty() { q } else { format!("?{q}") }
}

impl Api {
    pub fn new(ctx: Arc<UiCtx>, token: &str) -> Self {
        Self {
            ctx,
            token: token.to_owned(),
        }
    }

    /// Sends a request to the API router and returns its raw response.
    pub async fn raw(&self, method: Method, path: &str, body: Option<&Value>) -> Response {
        let mut request = Request::builder().method(method).uri(path);
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {}", self.token)) {
            request = request.header(header::AUTHORIZATION, value);
        }
        let request = match body {
            Some(json) => request
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(json.to_string())),
            None => request.body(Body::empty()),
        }
        .expect("API request is well-formed");
        match self.ctx.api.clone().oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Reply {
        let response = self.raw(method, path, body).await;
        let status = response.status();
        let body = match http_body_util::Limited::new(response.into_body(), MAX_REPLY_BYTES)
            .collect()
            .await
        {
            Ok(collected) => serde_json::from_slice(&collected.to_bytes()).unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        Reply { status, body }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    pub async fn post(&self, path: &str, body: Option<&Value>) -> Reply {
        self.call(Method::POST, path, body).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::PATCH, path, Some(body)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_cannot_escape_their_route() {
        assert_eq!(seg("github.push"), "github.push");
        assert_eq!(seg("a/../b?x=1"), "a%2F..%2Fb%3Fx%3D1");
        assert_eq!(query(&[("trigger", "a b"), ("outcome", "")]), "?trigger=a+b");
        assert_eq!(query(&[("x", "")]), "");
    }
}
