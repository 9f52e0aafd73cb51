//! Timestamped signature lists: Stripe (`t=..,v1=..`) and Paddle (`ts=..;h1=..`).

use super::config::{ConfigError, VerificationConfig};
use super::hmac_util::{
    Algorithm, Hdr, HmacKey, SignedHeaders, any_match, bad_timestamp, check_window, decode_hex, hdr, header_pair,
    kv_list, no_match, parse_unix, require_hdr, secret_field, sign_current, tolerance, utf8_keys,
};
use super::{Rejection, Req};

const STRIPE: Hdr = hdr("stripe-signature", "Stripe-Signature");
const PADDLE: Hdr = hdr("paddle-signature", "Paddle-Signature");

/// A parsed `t=<ts>,v1=<hex>,...` style header.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TimestampedList<'a> {
    pub timestamp: Option<&'a str>,
    /// Decoded signatures of the wanted version; undecodable ones are dropped.
    pub signatures: Vec<Vec<u8>>,
    /// How many entries of the wanted version were present, decodable or not.
    pub seen: usize,
}

/// Parse `value` split by `sep`: the first `ts_key` entry is the timestamp, every `sig_key`
/// entry a hex signature.
pub(crate) fn parse_timestamped_list<'a>(
    value: &'a str,
    sep: char,
    ts_key: &str,
    sig_key: &str,
) -> TimestampedList<'a> {
    let mut out = TimestampedList::default();
    for (k, v) in kv_list(value, sep) {
        if k == ts_key {
            if out.timestamp.is_none() {
                out.timestamp = Some(v);
            }
        } else if k == sig_key {
            out.seen += 1;
            if let Some(sig) = decode_hex(v) {
                out.signatures.push(sig);
            }
        }
    }
    out
}

/// The shape of a timestamped list header.
struct ListFormat {
    header: Hdr,
    sep: char,
    ts_key: &'static str,
    sig_key: &'static str,
    /// Between timestamp and body in the signed bytes.
    joiner: &'static [u8],
}

const STRIPE_FORMAT: ListFormat = ListFormat {
    header: STRIPE,
    sep: ',',
    ts_key: "t",
    sig_key: "v1",
    joiner: b".",
};

const PADDLE_FORMAT: ListFormat = ListFormat {
    header: PADDLE,
    sep: ';',
    ts_key: "ts",
    sig_key: "h1",
    joiner: b":",
};

fn check_list(f: &ListFormat, keys: &[HmacKey], req: &Req<'_>, now: i64, tol: Option<u64>) -> Result<(), Rejection> {
    let h = f.header;
    let v = require_hdr(req, h)?;
    let list = parse_timestamped_list(v, f.sep, f.ts_key, f.sig_key);
    let Some(ts_raw) = list.timestamp else {
        return Err(Rejection::BadSignature(format!(
            "header {} has no timestamp ({}=)",
            h.display, f.ts_key
        )));
    };
    let ts = parse_unix(ts_raw).ok_or_else(|| bad_timestamp(&format!("{} {}", h.display, f.ts_key), ts_raw))?;
    if list.signatures.is_empty() {
        let why = if list.seen == 0 { "no" } else { "no valid hex" };
        return Err(Rejection::BadSignature(format!(
            "header {} has {why} {} signature",
            h.display, f.sig_key
        )));
    }
    if !any_match(keys, &[ts_raw.as_bytes(), f.joiner, req.body], &list.signatures) {
        return Err(no_match());
    }
    check_window(ts, ts_raw, now, tol)
}

/// The header a sender writes at `now`: `<ts_key>=<now><sep><sig_key>=<hex>`.
fn sign_list(f: &ListFormat, keys: &[HmacKey], body: &[u8], now: i64) -> Result<SignedHeaders, String> {
    let ts = now.to_string();
    let sig = hex::encode(sign_current(keys, &[ts.as_bytes(), f.joiner, body])?);
    Ok(vec![header_pair(
        f.header,
        format!("{}={ts}{}{}={sig}", f.ts_key, f.sep, f.sig_key),
    )])
}

/// Stripe: `HMAC-SHA256(whsec_..., "{t}.{body}")`, any `v1` may match, 300 s.
pub(crate) struct Stripe {
    keys: Vec<HmacKey>,
    tolerance: Option<u64>,
}

impl Stripe {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        for (i, s) in c.secrets.iter().enumerate() {
            if !s.starts_with("whsec_") {
                return Err(ConfigError::new(
                    secret_field(i),
                    "a Stripe signing secret starts with whsec_ (Dashboard → Developers → \
                     Webhooks → your endpoint → Signing secret); API keys do not go here",
                ));
            }
        }
        Ok(Stripe {
            // the whole whsec_... string is the key, not decoded
            keys: utf8_keys(&c.secrets, Algorithm::Sha256)?,
            tolerance: tolerance(c.tolerance_seconds, Some(300)),
        })
    }

    pub fn verify(&self, req: &Req<'_>, now: i64) -> Result<(), Rejection> {
        check_list(&STRIPE_FORMAT, &self.keys, req, now, self.tolerance)
    }

    pub fn sign(&self, body: &[u8], now: i64) -> Result<SignedHeaders, String> {
        sign_list(&STRIPE_FORMAT, &self.keys, body, now)
    }
}

/// Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex>`, `HMAC-SHA256(secret, "{ts}:{body}")`,
/// 5 s by default.
pub(crate) struct Paddle {
    keys: Vec<HmacKey>,
    tolerance: Option<u64>,
}

impl Paddle {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        Ok(Paddle {
            keys: utf8_keys(&c.secrets, Algorithm::Sha256)?,
            tolerance: tolerance(c.tolerance_seconds, Some(5)),
        })
    }

    pub fn verify(&self, req: &Req<'_>, now: i64) -> Result<(), Rejection> {
        check_list(&PADDLE_FORMAT, &self.keys, req, now, self.tolerance)
    }

    pub fn sign(&self, body: &[u8], now: i64) -> Result<SignedHeaders, String> {
        sign_list(&PADDLE_FORMAT, &self.keys, body, now)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Scheme;
    use super::super::test_support::*;
    use super::*;
    use proptest::prelude::*;

    const WHSEC: &str = "whsec_test_secret_0123456789";
    const BODY: &str = r#"{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event"}"#;
    const T: i64 = 1_700_000_000;

    fn stripe_sig(secret: &str, t: i64, body: &str) -> String {
        hex::encode(hmac_sha256(secret.as_bytes(), format!("{t}.{body}").as_bytes()))
    }

    #[test]
    fn stripe_key_is_not_decoded() {
        // From python3: hmac.new(b"whsec_test_secret_0123456789",
        //   b'1700000000.{"id":"evt_1NG8Du2eZvKYlo2CUI79vXWy","object":"event"}', hashlib.sha256).hexdigest()
        let expected = "30abf77d0dc4ae43def9931c40ae26aad737b9d885f70d081b76d9b7fece0d81";
        assert_eq!(stripe_sig(WHSEC, T, BODY), expected);
        let v = cfg(Scheme::Stripe, &[WHSEC]).compile().unwrap();
        let r = TestReq::post(BODY).header("Stripe-Signature", format!("t={T},v1={expected}"));
        assert_eq!(r.check(&v, T + 10), Ok(()));
        assert_eq!(
            v.delivery_id(&r.signed(), None).as_deref(),
            Some("evt_1NG8Du2eZvKYlo2CUI79vXWy")
        );
    }

    #[test]
    fn stripe_behaviour() {
        let v = cfg(Scheme::Stripe, &[WHSEC, "whsec_old"]).compile().unwrap();
        let good = stripe_sig(WHSEC, T, BODY);
        let old = stripe_sig("whsec_old", T, BODY);
        // several v1 (rotation on Stripe's side) plus a v0 that is ignored
        let r = TestReq::post(BODY).header(
            "Stripe-Signature",
            format!("t={T},v1={},v1={good},v0=deadbeef", "ab".repeat(32)),
        );
        assert_eq!(r.check(&v, T), Ok(()));
        let r_old = TestReq::post(BODY).header("Stripe-Signature", format!("t={T},v1={old}"));
        assert_eq!(r_old.check(&v, T), Ok(()));
        assert_bad(r.clone().body("{}").check(&v, T));
        let wrong = cfg(Scheme::Stripe, &["whsec_other"]).compile().unwrap();
        assert_bad(r.check(&wrong, T));
        assert_eq!(
            assert_bad(TestReq::post(BODY).check(&v, T)),
            "header Stripe-Signature is missing"
        );
        // stale and future
        let m = assert_stale(r.check(&v, T + 301));
        assert_eq!(m, "timestamp 1700000000 is 301 s behind server time, tolerance 300 s");
        assert!(assert_stale(r.check(&v, T - 400)).contains("ahead of"));
        assert_eq!(r.check(&v, T + 300), Ok(()));
        // a wrong signature with a stale timestamp is reported as a bad signature
        assert_bad(r.clone().body("x").check(&v, T + 10_000));
        // malformed headers
        let no_t = TestReq::post(BODY).header("Stripe-Signature", format!("v1={good}"));
        assert!(assert_bad(no_t.check(&v, T)).contains("no timestamp"));
        let no_v1 = TestReq::post(BODY).header("Stripe-Signature", format!("t={T},v0={good}"));
        assert!(assert_bad(no_v1.check(&v, T)).contains("no v1"));
        let bad_t = TestReq::post(BODY).header("Stripe-Signature", format!("t=abc,v1={good}"));
        assert!(assert_bad(bad_t.check(&v, T)).contains("not a Unix timestamp"));
        let bad_hex = TestReq::post(BODY).header("Stripe-Signature", format!("t={T},v1=zz"));
        assert!(assert_bad(bad_hex.check(&v, T)).contains("no valid hex"));
    }

    #[test]
    fn stripe_configs() {
        let e = cfg(Scheme::Stripe, &["sk_live_123"]).compile().unwrap_err();
        assert_eq!(e.field, "verification.secrets[0]");
        assert!(!e.message.contains("sk_live_123"));
        let mut c = cfg(Scheme::Stripe, &[WHSEC]);
        c.tolerance_seconds = Some(0);
        let v = c.compile().unwrap();
        let r = TestReq::post(BODY).header("Stripe-Signature", format!("t={T},v1={}", stripe_sig(WHSEC, T, BODY)));
        assert_eq!(r.check(&v, T + 1_000_000), Ok(()));
    }

    #[test]
    fn paddle() {
        let body = r#"{"event_id":"evt_01h8bzakzx3hm2fmen703n5q45","event_type":"transaction.created"}"#;
        let v = cfg(Scheme::Paddle, &["pdl_ntfset_secret", "pdl_old"])
            .compile()
            .unwrap();
        for s in ["pdl_ntfset_secret", "pdl_old"] {
            let h1 = hex::encode(hmac_sha256(s.as_bytes(), format!("{T}:{body}").as_bytes()));
            let r = TestReq::post(body).header("Paddle-Signature", format!("ts={T};h1={h1}"));
            assert_eq!(r.check(&v, T + 5), Ok(()));
            assert_eq!(
                v.delivery_id(&r.signed(), None).as_deref(),
                Some("evt_01h8bzakzx3hm2fmen703n5q45")
            );
            assert_stale(r.check(&v, T + 6));
            assert_stale(r.check(&v, T - 6));
            assert_bad(r.clone().body("{}").check(&v, T));
        }
        // two h1 during rotation
        let h1 = hex::encode(hmac_sha256(b"pdl_old", format!("{T}:{body}").as_bytes()));
        let r = TestReq::post(body).header("Paddle-Signature", format!("ts={T}; h1={}; h1={h1}", "00".repeat(32)));
        assert_eq!(r.check(&v, T), Ok(()));
        let wrong = cfg(Scheme::Paddle, &["x"]).compile().unwrap();
        assert_bad(r.check(&wrong, T));
        assert_eq!(
            assert_bad(TestReq::post(body).check(&v, T)),
            "header Paddle-Signature is missing"
        );
        let mut c = cfg(Scheme::Paddle, &["pdl_old"]);
        c.tolerance_seconds = Some(60);
        assert_eq!(r.check(&c.compile().unwrap(), T + 60), Ok(()));
    }

    #[test]
    fn list_parser() {
        let l = parse_timestamped_list("t=1, v1=00ff ,v1=zz,t=2,junk,v0=11", ',', "t", "v1");
        assert_eq!(l.timestamp, Some("1"));
        assert_eq!(l.signatures, vec![vec![0, 255]]);
        assert_eq!(l.seen, 2);
        assert_eq!(parse_timestamped_list("", ',', "t", "v1"), TimestampedList::default());
    }

    proptest! {
        #[test]
        fn list_parser_never_panics(s in ".*", sep in prop::sample::select(vec![',', ';', ' '])) {
            let _ = parse_timestamped_list(&s, sep, "t", "v1");
            let _ = parse_timestamped_list(&s, sep, "ts", "h1");
        }
    }
}
