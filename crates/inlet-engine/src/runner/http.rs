//! The HTTP runner: one request, its status and the start of its response body.

use inlet_core::automation::HttpInvocation;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Makes rustls use the ring provider (the one sqlx uses). Call once at start-up, before
/// any TLS; calling it again is harmless. Without a provider installed, rustls panics on
/// first use when more than one is compiled in.
pub fn install_crypto_provider() {
    // Err means one is installed already: fine either way.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A client fit for actions: no redirects followed (a 3xx is the receiver's answer and
/// counts as failure unless listed in `success_status`), a 10 s connect timeout, and an
/// `Inlet/<version>` user agent. Installs the crypto provider if need be.
pub fn build_client() -> Result<reqwest::Client, String> {
    install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        .user_agent(concat!("Inlet/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {}", error_chain(&e)))
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HttpOutcome {
    /// The response status; None when no response came (connection refused, timeout...).
    pub status: Option<u16>,
    /// The first `body_cap` bytes of the response body.
    pub body: Vec<u8>,
    pub body_truncated: bool,
    /// Why there is no (complete) response.
    pub error: Option<String>,
    /// The status is one of the invocation's success statuses (any 2xx by default).
    pub success: bool,
    pub duration: Duration,
}

impl HttpOutcome {
    /// A one-line account of the request, for logs and execution records.
    pub fn summary(&self) -> String {
        let secs = self.duration.as_secs_f64();
        match (self.status, &self.error) {
            (_, Some(e)) => e.clone(),
            (Some(s), None) if self.success => format!("HTTP {s} after {secs:.2}s"),
            (Some(s), None) => format!("HTTP {s} (not a success status) after {secs:.2}s"),
            (None, None) => format!("no response after {secs:.2}s"),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

fn describe(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        format!("timed out after {}s", timeout.as_secs_f64())
    } else {
        error_chain(e)
    }
}

/// Sends the request, within `inv.timeout` (connecting, sending and reading the body),
/// signed with the Standard Webhooks scheme when the invocation has a secret:
/// `webhook-id` (`inv.message_id`, or a fresh `msg_<uuid>`), `webhook-timestamp` (now,
/// Unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256>`).
pub async fn run_http(client: &reqwest::Client, inv: &HttpInvocation, body_cap: usize) -> HttpOutcome {
    let start = Instant::now();
    let mut outcome = HttpOutcome::default();
    let method = match reqwest::Method::from_bytes(inv.method.as_bytes()) {
        Ok(m) => m,
        Err(_) => {
            outcome.error = Some(format!("invalid HTTP method {:?}", inv.method));
            return outcome;
        }
    };
    let mut request = client
        .request(method, &inv.url)
        .timeout(inv.timeout)
        .body(inv.body.clone());
    for (name, value) in &inv.headers {
        request = request.header(name.as_str(), value.as_str());
    }
    if let Some(secret) = &inv.sign_secret {
        let id = inv
            .message_id
            .clone()
            .unwrap_or_else(|| format!("msg_{}", uuid::Uuid::now_v7().simple()));
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let signature = secret.sign(&id, timestamp, &inv.body);
        request = request
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature);
    }

    match request.send().await {
        Err(e) => outcome.error = Some(describe(&e, inv.timeout)),
        Ok(mut response) => {
            let status = response.status().as_u16();
            outcome.status = Some(status);
            outcome.success = inv.is_success(status);
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        let room = body_cap - outcome.body.len();
                        if chunk.len() > room {
                            outcome.body.extend_from_slice(&chunk[..room]);
                            outcome.body_truncated = true;
                            break;
                        }
                        outcome.body.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        // The status is in: the verdict stands on it; say the body was cut.
                        outcome.error = Some(format!(
                            "reading the response body failed: {}",
                            describe(&e, inv.timeout)
                        ));
                        break;
                    }
                }
            }
        }
    }
    outcome.duration = start.elapsed();
    outcome
}
