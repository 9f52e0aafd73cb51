//! The `v0:{ts}:{body}` scheme shared by Slack and Zoom, and their URL handshakes.

use serde_json::{Value, json};

use super::config::{ConfigError, VerificationConfig};
use super::hmac_util::{
    Algorithm, Hdr, HmacKey, SignedHeaders, any_match, bad_timestamp, check_window, hdr, header_pair, no_match,
    parse_unix, prefixed_hex, require_hdr, sign_current, tolerance, utf8_keys,
};
use super::{Rejection, Req};

/// `<sig header>: v0=<hex>` over `v0:{ts}:{body}`, with `<ts header>` in Unix seconds.
pub(crate) struct V0 {
    keys: Vec<HmacKey>,
    tolerance: Option<u64>,
    sig: Hdr,
    ts: Hdr,
}

impl V0 {
    pub fn slack(c: &VerificationConfig) -> Result<Self, ConfigError> {
        Ok(V0 {
            keys: utf8_keys(&c.secrets, Algorithm::Sha256)?,
            tolerance: tolerance(c.tolerance_seconds, Some(300)),
            sig: hdr("x-slack-signature", "X-Slack-Signature"),
            ts: hdr("x-slack-request-timestamp", "X-Slack-Request-Timestamp"),
        })
    }

    pub fn zoom(c: &VerificationConfig) -> Result<Self, ConfigError> {
        Ok(V0 {
            keys: utf8_keys(&c.secrets, Algorithm::Sha256)?,
            tolerance: tolerance(c.tolerance_seconds, Some(300)),
            sig: hdr("x-zm-signature", "x-zm-signature"),
            ts: hdr("x-zm-request-timestamp", "x-zm-request-timestamp"),
        })
    }

    pub fn verify(&self, req: &Req<'_>, now: i64) -> Result<(), Rejection> {
        let sig = prefixed_hex(require_hdr(req, self.sig)?, "v0=", self.sig.display)?;
        let ts_raw = require_hdr(req, self.ts)?;
        let ts = parse_unix(ts_raw).ok_or_else(|| bad_timestamp(self.ts.display, ts_raw))?;
        if !any_match(&self.keys, &[b"v0:", ts_raw.as_bytes(), b":", req.body], &[sig]) {
            return Err(no_match());
        }
        check_window(ts, ts_raw, now, self.tolerance)
    }

    /// The signature (`v0=<hex>`) and timestamp headers at `now`.
    pub fn sign(&self, body: &[u8], now: i64) -> Result<SignedHeaders, String> {
        let ts = now.to_string();
        let sig = hex::encode(sign_current(&self.keys, &[b"v0:", ts.as_bytes(), b":", body])?);
        Ok(vec![
            header_pair(self.sig, format!("v0={sig}")),
            header_pair(self.ts, ts),
        ])
    }

    /// Zoom `endpoint.url_validation`: `encryptedToken = hex(HMAC-SHA256(secret, plainToken))`
    /// with the first (current) secret.
    pub fn zoom_handshake(&self, body: &Value) -> Option<Value> {
        if body.get("event")?.as_str()? != "endpoint.url_validation" {
            return None;
        }
        let plain = body.get("payload")?.get("plainToken")?.as_str()?;
        let key = self.keys.first()?;
        let encrypted = hex::encode(key.compute(&[plain.as_bytes()]));
        Some(json!({ "plainToken": plain, "encryptedToken": encrypted }))
    }
}

/// Slack Events API `url_verification`: answer with its `challenge`.
pub(crate) fn slack_handshake(body: &Value) -> Option<Value> {
    if body.get("type")?.as_str()? != "url_verification" {
        return None;
    }
    let challenge = body.get("challenge")?.as_str()?;
    Some(json!({ "challenge": challenge }))
}

#[cfg(test)]
mod tests {
    use super::super::Scheme;
    use super::super::test_support::*;
    use serde_json::json;

    const SLACK_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";
    const SLACK_TS: i64 = 1_531_420_618;
    const SLACK_BODY: &str = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
    const SLACK_SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn slack_req() -> TestReq {
        TestReq::post(SLACK_BODY)
            .header("X-Slack-Signature", SLACK_SIG)
            .header("X-Slack-Request-Timestamp", SLACK_TS.to_string())
    }

    #[test]
    fn slack_published_vector() {
        let v = cfg(Scheme::Slack, &[SLACK_SECRET]).compile().unwrap();
        let r = slack_req();
        assert_eq!(r.check(&v, SLACK_TS + 60), Ok(()));
        assert_bad(r.clone().body(format!("{SLACK_BODY}&x=1")).check(&v, SLACK_TS));
        let wrong = cfg(Scheme::Slack, &["8f742231b10e8888abcd99yyyzzz85a6"])
            .compile()
            .unwrap();
        let res = r.check(&wrong, SLACK_TS);
        assert_no_secret(&res, &[SLACK_SECRET]);
        assert_bad(res);
        assert_eq!(
            assert_bad(r.clone().without("X-Slack-Signature").check(&v, SLACK_TS)),
            "header X-Slack-Signature is missing"
        );
        assert_eq!(
            assert_bad(r.clone().without("X-Slack-Request-Timestamp").check(&v, SLACK_TS)),
            "header X-Slack-Request-Timestamp is missing"
        );
        // the timestamp is signed: changing it breaks the signature
        let moved = r.clone().with("X-Slack-Request-Timestamp", (SLACK_TS + 1).to_string());
        assert_bad(moved.check(&v, SLACK_TS));
        assert_stale(r.check(&v, SLACK_TS + 301));
        assert_stale(r.check(&v, SLACK_TS - 301));
        assert_eq!(v.delivery_id(&r.signed(), None), None);
    }

    #[test]
    fn slack_rotation() {
        let v = cfg(Scheme::Slack, &["new-signing-secret", SLACK_SECRET])
            .compile()
            .unwrap();
        assert_eq!(slack_req().check(&v, SLACK_TS), Ok(()));
        let body = "payload=1";
        let sig = hex::encode(hmac_sha256(
            b"new-signing-secret",
            format!("v0:{SLACK_TS}:{body}").as_bytes(),
        ));
        let r = TestReq::post(body)
            .header("X-Slack-Signature", format!("v0={sig}"))
            .header("X-Slack-Request-Timestamp", SLACK_TS.to_string());
        assert_eq!(r.check(&v, SLACK_TS), Ok(()));
    }

    #[test]
    fn slack_handshake() {
        let v = cfg(Scheme::Slack, &[SLACK_SECRET]).compile().unwrap();
        let body = r#"{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        let r = TestReq::post(body);
        let want = json!({"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"});
        assert_eq!(v.handshake(&r.signed(), None), Some(want.clone()));
        let parsed: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v.handshake(&r.signed(), Some(&parsed)), Some(want));
        let event = TestReq::post(r#"{"type":"event_callback","event":{}}"#);
        assert_eq!(v.handshake(&event.signed(), None), None);
        assert_eq!(v.handshake(&slack_req().signed(), None), None);
    }

    #[test]
    fn zoom() {
        let secret = "zoom-secret-token";
        let body = r#"{"event":"meeting.started","payload":{"object":{"id":"1"}},"event_ts":1700000000123}"#;
        let ts = 1_700_000_000_i64;
        let v = cfg(Scheme::Zoom, &[secret, "zoom-old"]).compile().unwrap();
        for s in [secret, "zoom-old"] {
            let sig = hex::encode(hmac_sha256(s.as_bytes(), format!("v0:{ts}:{body}").as_bytes()));
            let r = TestReq::post(body)
                .header("x-zm-signature", format!("v0={sig}"))
                .header("x-zm-request-timestamp", ts.to_string());
            assert_eq!(r.check(&v, ts + 299), Ok(()));
            assert_bad(r.clone().body("{}").check(&v, ts));
            assert_stale(r.check(&v, ts + 301));
            assert_stale(r.check(&v, ts - 301));
            assert_eq!(
                assert_bad(r.clone().without("x-zm-signature").check(&v, ts)),
                "header x-zm-signature is missing"
            );
            let wrong = cfg(Scheme::Zoom, &["nope"]).compile().unwrap();
            assert_bad(r.check(&wrong, ts));
        }
    }

    #[test]
    fn zoom_handshake() {
        let v = cfg(Scheme::Zoom, &["zoom-secret-token", "zoom-old"]).compile().unwrap();
        let body = r#"{"payload":{"plainToken":"qgg8vlvZRS6UYooatFL8Aw"},"event_ts":1654503849680,"event":"endpoint.url_validation"}"#;
        // From python3: hmac.new(b"zoom-secret-token", b"qgg8vlvZRS6UYooatFL8Aw", hashlib.sha256).hexdigest()
        let expected = "d9e0d764a78494688ba3f2d5c0ed4ca311394b4834d959759213424d2df961e3";
        assert_eq!(
            hex::encode(hmac_sha256(b"zoom-secret-token", b"qgg8vlvZRS6UYooatFL8Aw")),
            expected
        );
        let r = TestReq::post(body);
        assert_eq!(
            v.handshake(&r.signed(), None),
            Some(json!({"plainToken": "qgg8vlvZRS6UYooatFL8Aw", "encryptedToken": expected}))
        );
        let other = TestReq::post(r#"{"event":"meeting.started","payload":{}}"#);
        assert_eq!(v.handshake(&other.signed(), None), None);
        let no_token = TestReq::post(r#"{"event":"endpoint.url_validation","payload":{}}"#);
        assert_eq!(v.handshake(&no_token.signed(), None), None);
    }
}
