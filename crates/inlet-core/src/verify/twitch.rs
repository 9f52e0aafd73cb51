//! Twitch EventSub: `Twitch-Eventsub-Message-Signature: sha256=<hex>` over
//! message id + timestamp + body, the timestamp in RFC 3339, 10 minutes.

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::config::{ConfigError, VerificationConfig};
use super::hmac_util::{
    Algorithm, Hdr, HmacKey, SignedHeaders, any_match, check_window, hdr, header_pair, no_match, prefixed_hex,
    require_hdr, shown, sign_current, tolerance, utf8_keys,
};
use super::{Rejection, Req};

const SIG: Hdr = hdr("twitch-eventsub-message-signature", "Twitch-Eventsub-Message-Signature");
const ID: Hdr = hdr("twitch-eventsub-message-id", "Twitch-Eventsub-Message-Id");
const TS: Hdr = hdr("twitch-eventsub-message-timestamp", "Twitch-Eventsub-Message-Timestamp");
const TYPE: &str = "twitch-eventsub-message-type";

pub(crate) struct Twitch {
    keys: Vec<HmacKey>,
    tolerance: Option<u64>,
}

impl Twitch {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        Ok(Twitch {
            keys: utf8_keys(&c.secrets, Algorithm::Sha256)?,
            tolerance: tolerance(c.tolerance_seconds, Some(600)),
        })
    }

    pub fn verify(&self, req: &Req<'_>, now: i64) -> Result<(), Rejection> {
        let sig = prefixed_hex(require_hdr(req, SIG)?, "sha256=", SIG.display)?;
        let id = require_hdr(req, ID)?;
        let ts_raw = require_hdr(req, TS)?;
        let ts = OffsetDateTime::parse(ts_raw, &Rfc3339)
            .map_err(|_| {
                Rejection::BadSignature(format!("{} {:?} is not an RFC 3339 time", TS.display, shown(ts_raw)))
            })?
            .unix_timestamp();
        if !any_match(&self.keys, &[id.as_bytes(), ts_raw.as_bytes(), req.body], &[sig]) {
            return Err(no_match());
        }
        check_window(ts, ts_raw, now, self.tolerance)
    }

    /// A `notification` with a made-up message id, the RFC 3339 time of `now` and its signature.
    pub fn sign(&self, body: &[u8], now: i64) -> Result<SignedHeaders, String> {
        let id = format!("inlet-test-{now}");
        let ts = OffsetDateTime::from_unix_timestamp(now)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .ok_or_else(|| format!("{now} is not a representable time"))?;
        let sig = hex::encode(sign_current(&self.keys, &[id.as_bytes(), ts.as_bytes(), body])?);
        Ok(vec![
            header_pair(SIG, format!("sha256={sig}")),
            header_pair(ID, id),
            header_pair(TS, ts),
            (TYPE.to_string(), "notification".to_string()),
        ])
    }
}

pub(crate) fn is_callback_verification(req: &Req<'_>) -> bool {
    req.header(TYPE)
        .is_some_and(|t| t.trim() == "webhook_callback_verification")
}

/// The `challenge` to echo as `text/plain`.
pub(crate) fn challenge(body: &Value) -> Option<String> {
    body.get("challenge")?.as_str().map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::super::Scheme;
    use super::super::test_support::*;

    const SECRET: &str = "twitch-eventsub-secret";
    const ID_: &str = "befa7b53-d79d-478f-86b9-120f112b044e";
    const TS_: &str = "2023-06-26T15:47:26.123456789Z";
    const T: i64 = 1_687_794_446; // 2023-06-26T15:47:26Z

    fn req(body: &str, secret: &str) -> TestReq {
        let sig = hex::encode(hmac_sha256(secret.as_bytes(), format!("{ID_}{TS_}{body}").as_bytes()));
        TestReq::post(body)
            .header("Twitch-Eventsub-Message-Id", ID_)
            .header("Twitch-Eventsub-Message-Timestamp", TS_)
            .header("Twitch-Eventsub-Message-Signature", format!("sha256={sig}"))
            .header("Twitch-Eventsub-Message-Type", "notification")
    }

    #[test]
    fn twitch() {
        let body = r#"{"subscription":{"type":"channel.follow"},"event":{"user_id":"1"}}"#;
        let v = cfg(Scheme::Twitch, &[SECRET, "old"]).compile().unwrap();
        for s in [SECRET, "old"] {
            let r = req(body, s);
            assert_eq!(r.check(&v, T + 600), Ok(()));
            assert_eq!(v.delivery_id(&r.signed(), None).as_deref(), Some(ID_));
            assert_stale(r.check(&v, T + 601));
            assert_stale(r.check(&v, T - 601));
            assert_bad(r.clone().body("{}").check(&v, T));
            assert_bad(r.clone().with("Twitch-Eventsub-Message-Id", "other").check(&v, T));
        }
        let r = req(body, SECRET);
        assert_bad(r.check(&cfg(Scheme::Twitch, &["x"]).compile().unwrap(), T));
        for h in [
            "Twitch-Eventsub-Message-Signature",
            "Twitch-Eventsub-Message-Id",
            "Twitch-Eventsub-Message-Timestamp",
        ] {
            assert_eq!(
                assert_bad(r.clone().without(h).check(&v, T)),
                format!("header {h} is missing")
            );
        }
        let bad_ts = r.clone().with("Twitch-Eventsub-Message-Timestamp", "1687794446");
        assert!(assert_bad(bad_ts.check(&v, T)).contains("RFC 3339"));
    }

    #[test]
    fn callback_verification_text_handshake() {
        let body = r#"{"challenge":"pogchamp-kappa-360noscope-vohiyo","subscription":{"status":"webhook_callback_verification_pending"}}"#;
        let v = cfg(Scheme::Twitch, &[SECRET]).compile().unwrap();
        let r = req(body, SECRET).with("Twitch-Eventsub-Message-Type", "webhook_callback_verification");
        assert_eq!(r.check(&v, T), Ok(()));
        assert_eq!(
            v.handshake_text(&r.signed(), None).as_deref(),
            Some("pogchamp-kappa-360noscope-vohiyo")
        );
        assert_eq!(v.handshake(&r.signed(), None), None);
        let n = req(body, SECRET);
        assert_eq!(v.handshake_text(&n.signed(), None), None);
    }
}
