//! Webhook verification schemes (shared/PROVIDERS.md).
//!
//! Pure logic, no I/O. The flow on the server side is:
//!
//! ```text
//! settings change:  VerificationConfig --compile()--> Verifier      (decode secrets, parse keys once)
//! each request:     verifier.pre_verify_handshake(&req)             (Okta's unsigned GET challenge only)
//!                   verifier.verify(&req, now_unix)?                 (signature, then timestamp window)
//!                   verifier.handshake(&req, body_json)              (Slack / Zoom / Discord answers)
//!                   verifier.handshake_text(&req, body_json)         (Twitch answers with text/plain)
//!                   verifier.delivery_id(&req, body_json)            (dedup id)
//! ```
//!
//! Public API:
//!
//! - [`HeaderLookup`]: read access to request headers by lower-case name. Implemented here for
//!   `[(String, String)]`, `Vec<(String, String)>`, `[(&str, &str)]`, `Vec<(&str, &str)>` (names
//!   compared case-insensitively, first value wins), for `http::HeaderMap` and for `&T`.
//! - [`SignedRequest`]: what a verifier sees of a request (method, public URL, headers, query, raw body).
//! - [`VerificationConfig`] (serde, `deny_unknown_fields`) with [`Scheme`]; [`VerificationConfig::compile`]
//!   validates it into a [`Verifier`] or returns a [`ConfigError`] naming the field
//!   (`verification.secrets[1]`, `verification.algorithm`, ...). [`VerificationConfig::masked`] hides
//!   secrets for display; [`is_masked_secret`] recognises such a placeholder (compile refuses one).
//! - [`Verifier`]: `Send + Sync + Clone` (an `Arc` inside). [`Verifier::verify`] returns a
//!   [`Rejection`]: `BadSignature` (missing, malformed or wrong signature) or `StaleTimestamp`
//!   (signature fine but the timestamp lies outside the tolerance, in the past or the future).
//!   Messages are meant for the sender's owner and never contain a secret or an expected signature.
//!
//! Rotation: every scheme that uses secrets accepts several; a request passes when any of them
//! verifies it. The first secret is the current one (Zoom's URL validation answer uses it).
//!
//! Tolerance: `tolerance_seconds` overrides a scheme's default window (Stripe, Slack, Standard
//! Webhooks, Zoom, HubSpot 300 s; Paddle 5 s; Linear 60 s; Twitch 600 s; Mailgun, Discord,
//! SendGrid: no check unless set; generic `hmac`: 300 s when `timestamp_header` is set). `0`
//! turns the check off.

mod asymmetric;
mod body_hmac;
mod config;
mod generic;
mod git;
mod hmac_util;
mod mailgun;
mod shared_token;
mod sign;
mod slack;
mod standard_webhooks;
mod stripe;
mod twitch;
mod url_signed;

#[cfg(test)]
mod test_support;

use std::fmt;
use std::sync::Arc;

use serde_json::Value;

pub use config::{ConfigError, Scheme, VerificationConfig, is_masked_secret};

/// Read access to request headers, by lower-case name.
///
/// Implemented for `http::HeaderMap` (values that are not valid UTF-8 read as absent) and for
/// lists of name/value pairs. When a header occurs more than once, the first value is returned.
pub trait HeaderLookup {
    /// The value of the header named `lower_name` (always passed in lower case).
    fn header(&self, lower_name: &str) -> Option<&str>;
}

impl<T: HeaderLookup + ?Sized> HeaderLookup for &T {
    fn header(&self, lower_name: &str) -> Option<&str> {
        (**self).header(lower_name)
    }
}

impl HeaderLookup for [(String, String)] {
    fn header(&self, lower_name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(lower_name))
            .map(|(_, v)| v.as_str())
    }
}

impl HeaderLookup for Vec<(String, String)> {
    fn header(&self, lower_name: &str) -> Option<&str> {
        self.as_slice().header(lower_name)
    }
}

impl HeaderLookup for [(&str, &str)] {
    fn header(&self, lower_name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(lower_name))
            .map(|(_, v)| *v)
    }
}

impl HeaderLookup for Vec<(&str, &str)> {
    fn header(&self, lower_name: &str) -> Option<&str> {
        self.as_slice().header(lower_name)
    }
}

/// The server's headers (`http` is a plain data crate: no I/O). Values that are not visible
/// ASCII/UTF-8 read as absent.
impl HeaderLookup for http::HeaderMap {
    fn header(&self, lower_name: &str) -> Option<&str> {
        self.get(lower_name).and_then(|v| v.to_str().ok())
    }
}

/// What the verifier sees of a request.
#[derive(Debug)]
pub struct SignedRequest<'a, H: HeaderLookup + ?Sized> {
    /// `"POST"`, `"GET"`, ... (HubSpot signs it; Okta's challenge is a GET).
    pub method: &'a str,
    /// The full public URL as the sender addressed it, with its query
    /// (`https://hooks.example.com/api/v1/webhooks/KEY?x=1`). Twilio, Square and HubSpot sign it;
    /// their `url` setting overrides it when the server cannot know its public address.
    pub url: &'a str,
    pub headers: &'a H,
    /// The parsed query string (generic `token` with `query_param`).
    pub query: &'a [(String, String)],
    /// The raw body bytes, exactly as received.
    pub body: &'a [u8],
}

impl<H: HeaderLookup + ?Sized> Clone for SignedRequest<'_, H> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<H: HeaderLookup + ?Sized> Copy for SignedRequest<'_, H> {}

impl<'a, H: HeaderLookup + ?Sized> SignedRequest<'a, H> {
    /// The scheme code sees headers through a trait object, so it is compiled once.
    fn erased(&self) -> Req<'_> {
        Req {
            method: self.method,
            url: self.url,
            headers: &self.headers,
            query: self.query,
            body: self.body,
        }
    }
}

/// Why a request was refused. Never contains a secret or the expected signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Missing, malformed or wrong signature (or a missing/unparsable timestamp).
    BadSignature(String),
    /// Valid signature, but the timestamp lies outside the tolerance (past or future).
    StaleTimestamp(String),
}

impl Rejection {
    /// The request-log outcome: `"bad_signature"` or `"stale_timestamp"`.
    pub fn outcome(&self) -> &'static str {
        match self {
            Rejection::BadSignature(_) => "bad_signature",
            Rejection::StaleTimestamp(_) => "stale_timestamp",
        }
    }

    /// A message for the sender's owner.
    pub fn message(&self) -> &str {
        match self {
            Rejection::BadSignature(m) | Rejection::StaleTimestamp(m) => m,
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.outcome(), self.message())
    }
}

impl std::error::Error for Rejection {}

/// The request as the scheme implementations see it.
#[derive(Clone, Copy)]
pub(crate) struct Req<'a> {
    pub method: &'a str,
    pub url: &'a str,
    pub headers: &'a dyn HeaderLookup,
    pub query: &'a [(String, String)],
    pub body: &'a [u8],
}

impl<'a> Req<'a> {
    /// The header's value, `None` when absent.
    pub fn header(&self, lower_name: &str) -> Option<&'a str> {
        self.headers.header(lower_name)
    }
}

/// A compiled verification setting. Cheap to clone and to share between threads.
#[derive(Clone)]
pub struct Verifier {
    inner: Arc<Inner>,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("scheme", &self.inner.scheme)
            .finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub scheme: Scheme,
    pub check: Check,
    pub dedup: config::DedupSource,
}

/// One compiled scheme.
pub(crate) enum Check {
    Github(git::Github),
    Gitlab(git::Gitlab),
    Bitbucket(git::Bitbucket),
    Gitea(git::Gitea),
    Stripe(stripe::Stripe),
    Paddle(stripe::Paddle),
    Slack(slack::V0),
    Zoom(slack::V0),
    Shopify(body_hmac::Shopify),
    Linear(body_hmac::Linear),
    Pagerduty(body_hmac::Pagerduty),
    StandardWebhooks(standard_webhooks::StandardWebhooks),
    Twilio(url_signed::Twilio),
    Square(url_signed::Square),
    Hubspot(url_signed::Hubspot),
    Twitch(twitch::Twitch),
    Mailgun(mailgun::Mailgun),
    Discord(asymmetric::Discord),
    Sendgrid(asymmetric::Sendgrid),
    Okta(shared_token::Okta),
    Token(shared_token::Token),
    Hmac(generic::GenericHmac),
}

impl Verifier {
    pub(crate) fn from_inner(inner: Inner) -> Self {
        Verifier { inner: Arc::new(inner) }
    }

    /// The scheme this verifier checks.
    pub fn scheme(&self) -> Scheme {
        self.inner.scheme
    }

    /// Check the signature (and then the timestamp window, where the scheme has one) on the raw
    /// bytes. `now_unix` is the server's time in seconds since the epoch.
    pub fn verify<H: HeaderLookup + ?Sized>(&self, req: &SignedRequest<'_, H>, now_unix: i64) -> Result<(), Rejection> {
        let r = req.erased();
        let r = &r;
        match &self.inner.check {
            Check::Github(c) => c.verify(r),
            Check::Gitlab(c) => c.verify(r),
            Check::Bitbucket(c) => c.verify(r),
            Check::Gitea(c) => c.verify(r),
            Check::Stripe(c) => c.verify(r, now_unix),
            Check::Paddle(c) => c.verify(r, now_unix),
            Check::Slack(c) | Check::Zoom(c) => c.verify(r, now_unix),
            Check::Shopify(c) => c.verify(r),
            Check::Linear(c) => c.verify(r, now_unix),
            Check::Pagerduty(c) => c.verify(r),
            Check::StandardWebhooks(c) => c.verify(r, now_unix),
            Check::Twilio(c) => c.verify(r),
            Check::Square(c) => c.verify(r),
            Check::Hubspot(c) => c.verify(r, now_unix),
            Check::Twitch(c) => c.verify(r, now_unix),
            Check::Mailgun(c) => c.verify(r, now_unix),
            Check::Discord(c) => c.verify(r, now_unix),
            Check::Sendgrid(c) => c.verify(r, now_unix),
            Check::Okta(c) => c.verify(r),
            Check::Token(c) => c.verify(r),
            Check::Hmac(c) => c.verify(r, now_unix),
        }
    }

    /// The provider's delivery id for dedup (PROVIDERS.md table), from headers or the parsed JSON
    /// body (`body_json`; when `None` the raw body is parsed if the id lives there). A
    /// `dedup_header` / `dedup_jsonpath` setting replaces the preset's source. Ids longer than 200
    /// bytes are replaced by `sha256:<hex>` of the id.
    pub fn delivery_id<H: HeaderLookup + ?Sized>(
        &self,
        req: &SignedRequest<'_, H>,
        body_json: Option<&Value>,
    ) -> Option<String> {
        self.inner.dedup.extract(&req.erased(), body_json)
    }

    /// Answers to provider handshakes: the JSON body to answer with 200, or `None` when the
    /// request is an ordinary delivery. Call it only after [`Verifier::verify`] succeeded.
    ///
    /// - Slack `{"type": "url_verification", "challenge": C}` → `{"challenge": C}`
    /// - Zoom `{"event": "endpoint.url_validation", "payload": {"plainToken": P}}` →
    ///   `{"plainToken": P, "encryptedToken": hex(HMAC-SHA256(first secret, P))}`
    /// - Discord interaction `{"type": 1}` (PING) → `{"type": 1}` (PONG)
    /// - Okta GET with `X-Okta-Verification-Challenge: V` → `{"verification": V}` (also returned
    ///   by [`Verifier::pre_verify_handshake`], which needs no verify()).
    pub fn handshake<H: HeaderLookup + ?Sized>(
        &self,
        req: &SignedRequest<'_, H>,
        body_json: Option<&Value>,
    ) -> Option<Value> {
        let r = req.erased();
        match &self.inner.check {
            Check::Slack(_) => with_json(&r, body_json, slack::slack_handshake),
            Check::Zoom(c) => with_json(&r, body_json, |v| c.zoom_handshake(v)),
            Check::Discord(_) => with_json(&r, body_json, asymmetric::discord_handshake),
            Check::Okta(_) => shared_token::okta_handshake(&r),
            _ => None,
        }
    }

    /// Handshakes answered *before* (and without) [`Verifier::verify`]: only Okta's one-time
    /// verification `GET` carrying `X-Okta-Verification-Challenge`, which Okta does not
    /// necessarily authenticate. Echoing the challenge reveals nothing. Returns the JSON body to
    /// answer with 200; `None` for every other request and scheme.
    pub fn pre_verify_handshake<H: HeaderLookup + ?Sized>(&self, req: &SignedRequest<'_, H>) -> Option<Value> {
        match &self.inner.check {
            Check::Okta(_) => shared_token::okta_handshake(&req.erased()),
            _ => None,
        }
    }

    /// Handshakes answered with a `text/plain` body: Twitch EventSub's
    /// `webhook_callback_verification` (header `Twitch-Eventsub-Message-Type`) must be answered
    /// with the raw `challenge` string. Call after [`Verifier::verify`] succeeded.
    pub fn handshake_text<H: HeaderLookup + ?Sized>(
        &self,
        req: &SignedRequest<'_, H>,
        body_json: Option<&Value>,
    ) -> Option<String> {
        let r = req.erased();
        match &self.inner.check {
            Check::Twitch(_) if twitch::is_callback_verification(&r) => with_json(&r, body_json, twitch::challenge),
            _ => None,
        }
    }
}

/// Run `f` on the parsed body: the caller's parse when given, else a parse of the raw body when
/// it looks like JSON.
fn with_json<T>(req: &Req<'_>, body_json: Option<&Value>, f: impl FnOnce(&Value) -> Option<T>) -> Option<T> {
    match body_json {
        Some(v) => f(v),
        None => {
            let v = parse_json_object(req.body)?;
            f(&v)
        }
    }
}

/// Parse the body as JSON when its first non-blank byte opens an object or array.
pub(crate) fn parse_json_object(body: &[u8]) -> Option<Value> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' && *first != b'[' {
        return None;
    }
    serde_json::from_slice(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync + Clone>() {}

    #[test]
    fn verifier_is_send_sync_clone() {
        assert_send_sync::<Verifier>();
    }

    #[test]
    fn header_lookup_is_case_insensitive_first_wins() {
        let h: Vec<(String, String)> = vec![("X-Thing".into(), "a".into()), ("x-thing".into(), "b".into())];
        assert_eq!(h.header("x-thing"), Some("a"));
        assert_eq!(h.header("x-other"), None);
        let h2: Vec<(&str, &str)> = vec![("Content-Type", "text/plain")];
        assert_eq!(h2.header("content-type"), Some("text/plain"));
        let slice: &[(String, String)] = &h;
        assert_eq!(slice.header("x-thing"), Some("a"));
        // a slice works as SignedRequest headers too
        let req = SignedRequest {
            method: "POST",
            url: "https://x/",
            headers: slice,
            query: &[],
            body: b"",
        };
        let v = VerificationConfig::new(Scheme::Gitlab, vec!["a".into()])
            .compile()
            .unwrap();
        assert!(v.verify(&req, 0).is_err());
        assert_eq!(v.scheme(), Scheme::Gitlab);
        assert!(format!("{v:?}").contains("Gitlab"));
    }

    #[test]
    fn header_map_lookup() {
        let mut m = http::HeaderMap::new();
        m.append("X-Gitlab-Token", http::HeaderValue::from_static("tok"));
        m.append("X-Gitlab-Token", http::HeaderValue::from_static("other"));
        m.insert("x-bin", http::HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(m.header("x-gitlab-token"), Some("tok"));
        assert_eq!(m.header("x-bin"), None);
        let v = VerificationConfig::new(Scheme::Gitlab, vec!["tok".into()])
            .compile()
            .unwrap();
        let req = SignedRequest {
            method: "POST",
            url: "https://x/",
            headers: &m,
            query: &[],
            body: b"{}",
        };
        assert_eq!(v.verify(&req, 0), Ok(()));
    }

    #[test]
    fn rejection_outcomes() {
        let b = Rejection::BadSignature("x".into());
        let s = Rejection::StaleTimestamp("y".into());
        assert_eq!(b.outcome(), "bad_signature");
        assert_eq!(s.outcome(), "stale_timestamp");
        assert_eq!(b.message(), "x");
        assert_eq!(s.to_string(), "stale_timestamp: y");
    }
}
