//! HMAC-SHA256 over the body alone: Shopify (base64), Linear (hex, timestamp inside the body),
//! PagerDuty (a list of `v1=<hex>`).

use serde::Deserialize;

use super::config::{ConfigError, VerificationConfig};
use super::hmac_util::{
    Algorithm, Hdr, HmacKey, SignedHeaders, any_match, bare_b64, bare_hex, check_window, decode_hex, encode_b64, hdr,
    header_pair, kv_list, no_match, require_hdr, sign_current, tolerance, utf8_keys,
};
use super::{Rejection, Req};

const SHOPIFY: Hdr = hdr("x-shopify-hmac-sha256", "X-Shopify-Hmac-Sha256");
const LINEAR: Hdr = hdr("linear-signature", "Linear-Signature");
const PAGERDUTY: Hdr = hdr("x-pagerduty-signature", "X-PagerDuty-Signature");

/// `X-Shopify-Hmac-Sha256: <base64>` over the body.
pub(crate) struct Shopify {
    keys: Vec<HmacKey>,
}

impl Shopify {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        Ok(Shopify {
            keys: utf8_keys(&c.secrets, Algorithm::Sha256)?,
        })
    }

    pub fn verify(&self, req: &Req<'_>) -> Result<(), Rejection> {
        let sig = bare_b64(require_hdr(req, SHOPIFY)?, SHOPIFY.display)?;
        if any_match(&self.keys, &[req.body], &[sig]) {
            Ok(())
        } else {
            Err(no_match())
        }
    }

    pub fn sign(&self, body: &[u8]) -> Result<SignedHeaders, String> {
        Ok(vec![header_pair(
            SHOPIFY,
            encode_b64(&sign_current(&self.keys, &[body])?),
        )])
    }
}

/// `Linear-Signature: <hex>` over the body; `webhookTimestamp` (ms) in the body, 60 s.
pub(crate) struct Linear {
    keys: Vec<HmacKey>,
    tolerance: Option<u64>,
}

#[derive(Deserialize)]
struct LinearBody {
    #[serde(rename = "webhookTimestamp", default)]
    webhook_timestamp: Option<serde_json::Value>,
}

impl Linear {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        Ok(Linear {
            keys: utf8_keys(&c.secrets, Algorithm::Sha256)?,
            tolerance: tolerance(c.tolerance_seconds, Some(60)),
        })
    }

    pub fn verify(&self, req: &Req<'_>, now: i64) -> Result<(), Rejection> {
        let sig = bare_hex(require_hdr(req, LINEAR)?, LINEAR.display)?;
        if !any_match(&self.keys, &[req.body], &[sig]) {
            return Err(no_match());
        }
        if self.tolerance.is_none() {
            return Ok(());
        }
        let missing = || Rejection::BadSignature("body has no numeric webhookTimestamp (milliseconds)".into());
        let body: LinearBody = serde_json::from_slice(req.body).map_err(|_| missing())?;
        let raw = body.webhook_timestamp.ok_or_else(missing)?;
        let ms = match &raw {
            serde_json::Value::Number(n) => n
                .as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64)),
            serde_json::Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        }
        .ok_or_else(missing)?;
        let shown = match &raw {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        check_window(ms.div_euclid(1000), &format!("{shown} (ms)"), now, self.tolerance)
    }
}

/// `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>...]` over the body.
pub(crate) struct Pagerduty {
    keys: Vec<HmacKey>,
}

/// The decoded `v1` signatures of a PagerDuty header (others and undecodable ones dropped).
pub(crate) fn parse_pagerduty(value: &str) -> Vec<Vec<u8>> {
    kv_list(value, ',')
        .filter(|(k, _)| *k == "v1")
        .filter_map(|(_, v)| decode_hex(v))
        .collect()
}

impl Pagerduty {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        Ok(Pagerduty {
            keys: utf8_keys(&c.secrets, Algorithm::Sha256)?,
        })
    }

    pub fn verify(&self, req: &Req<'_>) -> Result<(), Rejection> {
        let sigs = parse_pagerduty(require_hdr(req, PAGERDUTY)?);
        if sigs.is_empty() {
            return Err(Rejection::BadSignature(
                "header X-PagerDuty-Signature has no 'v1=<hex>' signature".into(),
            ));
        }
        if any_match(&self.keys, &[req.body], &sigs) {
            Ok(())
        } else {
            Err(no_match())
        }
    }

    pub fn sign(&self, body: &[u8]) -> Result<SignedHeaders, String> {
        let sig = hex::encode(sign_current(&self.keys, &[body])?);
        Ok(vec![header_pair(PAGERDUTY, format!("v1={sig}"))])
    }
}

#[cfg(test)]
mod tests {
    use super::super::Scheme;
    use super::super::test_support::*;
    use super::parse_pagerduty;
    use proptest::prelude::*;

    #[test]
    fn shopify() {
        let body = r#"{"id":820982911946154508,"email":"jon@example.com"}"#;
        // From python3: base64.b64encode(hmac.new(b"shpss_secret", body, hashlib.sha256).digest())
        let expected = "vo+n5h/cLxNKGlgJ0Fd1aDzU0aOaajK8Hs9m0hPqWiQ=";
        assert_eq!(b64(&hmac_sha256(b"shpss_secret", body.as_bytes())), expected);
        let v = cfg(Scheme::Shopify, &["shpss_secret", "shpss_old"]).compile().unwrap();
        let r = TestReq::post(body)
            .header("X-Shopify-Hmac-Sha256", expected)
            .header("X-Shopify-Webhook-Id", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043");
        assert_eq!(r.check(&v, 0), Ok(()));
        assert_eq!(
            v.delivery_id(&r.signed(), None).as_deref(),
            Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
        );
        let old = TestReq::post(body).header(
            "X-Shopify-Hmac-Sha256",
            b64(&hmac_sha256(b"shpss_old", body.as_bytes())),
        );
        assert_eq!(old.check(&v, 0), Ok(()));
        assert_bad(r.clone().body("{}").check(&v, 0));
        assert_bad(r.check(&cfg(Scheme::Shopify, &["x"]).compile().unwrap(), 0));
        assert_eq!(
            assert_bad(TestReq::post(body).check(&v, 0)),
            "header X-Shopify-Hmac-Sha256 is missing"
        );
        let bad = r.clone().with("X-Shopify-Hmac-Sha256", "%%%");
        assert!(assert_bad(bad.check(&v, 0)).contains("not base64"));
    }

    #[test]
    fn linear() {
        let ts_ms = 1_700_000_000_123_i64;
        let body = format!(r#"{{"action":"create","type":"Issue","data":{{"id":"i1"}},"webhookTimestamp":{ts_ms}}}"#);
        let now = ts_ms / 1000;
        let v = cfg(Scheme::Linear, &["lin_wh_secret", "lin_wh_old"]).compile().unwrap();
        for s in ["lin_wh_secret", "lin_wh_old"] {
            let sig = hex::encode(hmac_sha256(s.as_bytes(), body.as_bytes()));
            let r = TestReq::post(&body)
                .header("Linear-Signature", sig)
                .header("Linear-Delivery", "234d1a4e-b617-4388-90fe-adc3633d6b72");
            assert_eq!(r.check(&v, now + 60), Ok(()));
            assert_eq!(
                v.delivery_id(&r.signed(), None).as_deref(),
                Some("234d1a4e-b617-4388-90fe-adc3633d6b72")
            );
            let m = assert_stale(r.check(&v, now + 61));
            assert!(m.contains("1700000000123 (ms)"), "{m}");
            assert_stale(r.check(&v, now - 61));
            assert_bad(r.clone().body(body.replace("create", "remove")).check(&v, now));
            assert_bad(r.check(&cfg(Scheme::Linear, &["x"]).compile().unwrap(), now));
        }
        assert_eq!(
            assert_bad(TestReq::post(&body).check(&v, now)),
            "header Linear-Signature is missing"
        );
        // signed body without the timestamp
        let body2 = r#"{"action":"create"}"#;
        let sig = hex::encode(hmac_sha256(b"lin_wh_secret", body2.as_bytes()));
        let r = TestReq::post(body2).header("Linear-Signature", sig);
        assert!(assert_bad(r.check(&v, now)).contains("webhookTimestamp"));
        let mut c = cfg(Scheme::Linear, &["lin_wh_secret"]);
        c.tolerance_seconds = Some(0);
        assert_eq!(r.check(&c.compile().unwrap(), now), Ok(()));
    }

    #[test]
    fn pagerduty() {
        let body = r#"{"event":{"id":"01DEN","event_type":"incident.triggered"}}"#;
        let v = cfg(Scheme::Pagerduty, &["pd-secret", "pd-old"]).compile().unwrap();
        let s1 = hex::encode(hmac_sha256(b"pd-secret", body.as_bytes()));
        let s2 = hex::encode(hmac_sha256(b"pd-old", body.as_bytes()));
        let r = TestReq::post(body).header("X-PagerDuty-Signature", format!("v1={s1}"));
        assert_eq!(r.check(&v, 0), Ok(()));
        let only_old = cfg(Scheme::Pagerduty, &["pd-old"]).compile().unwrap();
        let both = TestReq::post(body).header("X-PagerDuty-Signature", format!("v1={s1},v1={s2}"));
        assert_eq!(both.check(&only_old, 0), Ok(()));
        assert_eq!(both.check(&v, 0), Ok(()));
        assert_bad(r.clone().body("{}").check(&v, 0));
        assert_bad(r.check(&cfg(Scheme::Pagerduty, &["x"]).compile().unwrap(), 0));
        assert_eq!(
            assert_bad(TestReq::post(body).check(&v, 0)),
            "header X-PagerDuty-Signature is missing"
        );
        let bare = TestReq::post(body).header("X-PagerDuty-Signature", s1);
        assert!(assert_bad(bare.check(&v, 0)).contains("no 'v1=<hex>'"));
        assert_eq!(v.delivery_id(&r.signed(), None), None);
    }

    #[test]
    fn pagerduty_parser() {
        assert_eq!(parse_pagerduty("v1=00, v1=zz,v2=11,v1=ff"), vec![vec![0], vec![255]]);
        assert!(parse_pagerduty("").is_empty());
    }

    proptest! {
        #[test]
        fn pagerduty_parser_never_panics(s in ".*") {
            let _ = parse_pagerduty(&s);
        }
    }
}
