//! Test helpers: requests, independent HMAC computation (straight from the `hmac` crate, not the
//! code under test), and the no-panic property over every scheme.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};

use super::{Rejection, Scheme, SignedRequest, VerificationConfig, Verifier};

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

pub(crate) fn hmac_sha1(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

pub(crate) fn hmac_sha512(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<sha2::Sha512> as KeyInit>::new_from_slice(key).unwrap();
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

pub(crate) fn cfg(scheme: Scheme, secrets: &[&str]) -> VerificationConfig {
    VerificationConfig::new(scheme, secrets.iter().map(|s| s.to_string()).collect())
}

/// An owned request to build in tests.
#[derive(Clone, Debug)]
pub(crate) struct TestReq {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl TestReq {
    pub fn post(body: impl AsRef<[u8]>) -> Self {
        TestReq {
            method: "POST".into(),
            url: "https://hooks.example.com/api/v1/webhooks/key123".into(),
            headers: Vec::new(),
            query: Vec::new(),
            body: body.as_ref().to_vec(),
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    pub fn url(mut self, url: &str) -> Self {
        self.url = url.to_string();
        self
    }

    pub fn method(mut self, m: &str) -> Self {
        self.method = m.to_string();
        self
    }

    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = body.as_ref().to_vec();
        self
    }

    /// Drop every header with this name.
    pub fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self
    }

    /// Replace a header's value.
    pub fn with(self, name: &str, value: impl Into<String>) -> Self {
        self.without(name).header(name, value)
    }

    pub fn signed(&self) -> SignedRequest<'_, Vec<(String, String)>> {
        SignedRequest {
            method: &self.method,
            url: &self.url,
            headers: &self.headers,
            query: &self.query,
            body: &self.body,
        }
    }

    pub fn check(&self, v: &Verifier, now: i64) -> Result<(), Rejection> {
        v.verify(&self.signed(), now)
    }
}

#[track_caller]
pub(crate) fn assert_bad(r: Result<(), Rejection>) -> String {
    match r {
        Err(Rejection::BadSignature(m)) => m,
        other => panic!("expected BadSignature, got {other:?}"),
    }
}

#[track_caller]
pub(crate) fn assert_stale(r: Result<(), Rejection>) -> String {
    match r {
        Err(Rejection::StaleTimestamp(m)) => m,
        other => panic!("expected StaleTimestamp, got {other:?}"),
    }
}

/// Messages never quote a secret.
#[track_caller]
pub(crate) fn assert_no_secret(r: &Result<(), Rejection>, secrets: &[&str]) {
    if let Err(e) = r {
        for s in secrets {
            assert!(!e.message().contains(s), "message leaks a secret: {e}");
        }
    }
}

/// A valid verifier for every scheme (used by the no-panic property).
pub(crate) fn sample_verifiers() -> Vec<Verifier> {
    let mut out = Vec::new();
    for s in Scheme::ALL {
        let mut c = cfg(s, &["It's a Secret to Everybody", "second-secret"]);
        match s {
            Scheme::Stripe => c.secrets = vec!["whsec_test".into()],
            Scheme::StandardWebhooks => c.secrets = vec!["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into()],
            Scheme::Discord => {
                c.secrets.clear();
                c.public_key = Some("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8".into());
            }
            Scheme::Sendgrid => {
                c.secrets.clear();
                c.public_key = Some("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==".into());
                c.tolerance_seconds = Some(300);
            }
            Scheme::Hmac => {
                c.header = Some("x-signature".into());
                c.prefix = Some("sha256=".into());
                c.timestamp_header = Some("x-timestamp".into());
                c.id_header = Some("x-id".into());
                c.signed_content = Some("{id}.{timestamp}.{body}".into());
            }
            Scheme::Token => {
                c.header = Some("x-token".into());
                c.query_param = Some("token".into());
            }
            _ => {}
        }
        out.push(c.compile().unwrap_or_else(|e| panic!("{s}: {e}")));
    }
    out
}

/// Header names any scheme reads, so random requests reach the parsers.
const HEADER_NAMES: &[&str] = &[
    "X-Hub-Signature-256",
    "X-Hub-Signature",
    "Stripe-Signature",
    "X-Slack-Signature",
    "X-Slack-Request-Timestamp",
    "X-Shopify-Hmac-Sha256",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "X-Gitlab-Token",
    "X-Gitea-Signature",
    "X-Forgejo-Signature",
    "X-Twilio-Signature",
    "Paddle-Signature",
    "Linear-Signature",
    "Twitch-Eventsub-Message-Signature",
    "Twitch-Eventsub-Message-Id",
    "Twitch-Eventsub-Message-Timestamp",
    "Twitch-Eventsub-Message-Type",
    "x-zm-signature",
    "x-zm-request-timestamp",
    "X-PagerDuty-Signature",
    "x-square-hmacsha256-signature",
    "X-HubSpot-Signature-v3",
    "X-HubSpot-Request-Timestamp",
    "X-Signature-Ed25519",
    "X-Signature-Timestamp",
    "X-Twilio-Email-Event-Webhook-Signature",
    "X-Twilio-Email-Event-Webhook-Timestamp",
    "Authorization",
    "X-Okta-Verification-Challenge",
    "x-signature",
    "x-timestamp",
    "x-id",
    "x-token",
    "Content-Type",
];

mod props {
    use super::*;
    use proptest::prelude::*;
    use std::sync::OnceLock;

    fn verifiers() -> &'static [Verifier] {
        static V: OnceLock<Vec<Verifier>> = OnceLock::new();
        V.get_or_init(sample_verifiers)
    }

    fn header_value() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,80}",
            "(t|v1|v0|ts|h1)=[0-9a-fA-F]{0,70}([,; ]{1,2}(t|v1|ts|h1)=[0-9a-f=]{0,66}){0,4}",
            "(sha256=|sha1=|v0=|v1=|v1,|Bearer )?[0-9a-fA-F+/=_-]{0,130}",
            "(v1,[A-Za-z0-9+/=]{0,50} ?){0,4}",
            "-?[0-9]{0,22}",
            "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]{0,20}Z?",
        ]
    }

    fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
        proptest::collection::vec(
            (proptest::sample::select(HEADER_NAMES), header_value()).prop_map(|(n, v)| (n.to_string(), v)),
            0..8,
        )
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..200),
            ".{0,200}".prop_map(String::into_bytes),
            r#"\{"(webhookTimestamp|signature|type|event|challenge|payload)":( ?-?[0-9.e]{1,25}|"[a-z]{0,10}"|\{"(token|timestamp|signature|plainToken)":"?[0-9a-f]{0,20}"?\}|null|\[\])\}"#
                .prop_map(String::into_bytes),
            "(token|timestamp|signature|a)=[0-9a-f%+]{0,30}(&[a-z]{1,9}=[^&]{0,9}){0,4}"
                .prop_map(String::into_bytes),
        ]
    }

    fn url() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,60}",
            "https?://[a-z.@:\\[\\]0-9]{0,20}(/[a-z%0-9A-F]{0,10}){0,3}(\\?[a-zA-Z0-9=&%]{0,40})?",
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

        #[test]
        fn nothing_panics(
            method in "(POST|GET|PUT|)",
            url in url(),
            headers in headers(),
            body in body(),
            now in prop_oneof![any::<i64>(), 1_600_000_000i64..1_900_000_000],
        ) {
            let query: Vec<(String, String)> = vec![("token".into(), "x".into())];
            let req = SignedRequest { method: &method, url: &url, headers: &headers, query: &query, body: &body };
            let parsed = super::super::parse_json_object(&body);
            for v in verifiers() {
                if let Err(e) = v.verify(&req, now) {
                    prop_assert!(!e.message().contains("Secret to Everybody"));
                    prop_assert!(!e.message().contains("second-secret"));
                    prop_assert!(e.message().len() < 300, "{}", e.message());
                }
                let _ = v.delivery_id(&req, None);
                let _ = v.delivery_id(&req, parsed.as_ref());
                let _ = v.handshake(&req, None);
                let _ = v.handshake(&req, parsed.as_ref());
                let _ = v.pre_verify_handshake(&req);
                let _ = v.handshake_text(&req, parsed.as_ref());
            }
        }
    }
}
