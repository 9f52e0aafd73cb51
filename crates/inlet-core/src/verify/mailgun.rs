//! Mailgun: the signature travels in the body, `signature.{timestamp, token, signature}` in
//! JSON webhooks (or top-level `timestamp`, `token`, `signature` form fields for legacy webhooks
//! and routes), `hex(HMAC-SHA256(signing key, timestamp + token))`.

use serde::Deserialize;
use serde_json::Value;

use super::config::{ConfigError, VerificationConfig};
use super::hmac_util::{
    Algorithm, HmacKey, any_match, bad_timestamp, check_window, decode_hex, no_match, parse_unix, tolerance, utf8_keys,
};
use super::{Rejection, Req};

pub(crate) struct Mailgun {
    keys: Vec<HmacKey>,
    tolerance: Option<u64>,
}

#[derive(Deserialize)]
struct JsonBody {
    signature: Option<JsonSig>,
}

#[derive(Deserialize)]
struct JsonSig {
    timestamp: Option<Value>,
    token: Option<String>,
    signature: Option<String>,
}

/// (timestamp, token, signature) as sent.
type Parts = (String, String, String);

fn missing() -> Rejection {
    Rejection::BadSignature(
        "body has no Mailgun signature (signature.timestamp, signature.token, signature.signature)".into(),
    )
}

pub(crate) fn extract(body: &[u8]) -> Result<Parts, Rejection> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        let parsed: JsonBody = serde_json::from_slice(body).map_err(|_| missing())?;
        let sig = parsed.signature.ok_or_else(missing)?;
        let ts = match sig.timestamp.ok_or_else(missing)? {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ => return Err(missing()),
        };
        return Ok((ts, sig.token.ok_or_else(missing)?, sig.signature.ok_or_else(missing)?));
    }
    let (mut ts, mut token, mut sig) = (None, None, None);
    for (k, v) in form_urlencoded::parse(body) {
        match k.as_ref() {
            "timestamp" if ts.is_none() => ts = Some(v.into_owned()),
            "token" if token.is_none() => token = Some(v.into_owned()),
            "signature" if sig.is_none() => sig = Some(v.into_owned()),
            _ => {}
        }
    }
    match (ts, token, sig) {
        (Some(a), Some(b), Some(c)) => Ok((a, b, c)),
        _ => Err(missing()),
    }
}

impl Mailgun {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        Ok(Mailgun {
            keys: utf8_keys(&c.secrets, Algorithm::Sha256)?,
            tolerance: tolerance(c.tolerance_seconds, None),
        })
    }

    pub fn verify(&self, req: &Req<'_>, now: i64) -> Result<(), Rejection> {
        let (ts_raw, token, sig_hex) = extract(req.body)?;
        let sig = decode_hex(&sig_hex)
            .ok_or_else(|| Rejection::BadSignature("signature.signature in the body is not hex".into()))?;
        let ts = parse_unix(&ts_raw).ok_or_else(|| bad_timestamp("signature.timestamp", &ts_raw))?;
        if !any_match(&self.keys, &[ts_raw.as_bytes(), token.as_bytes()], &[sig]) {
            return Err(no_match());
        }
        check_window(ts, &ts_raw, now, self.tolerance)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Scheme;
    use super::super::test_support::*;
    use super::extract;
    use proptest::prelude::*;

    const KEY: &str = "key-mailgun-signing-key";
    const TS: i64 = 1_529_006_854;
    const TOKEN: &str = "a8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0";

    fn json_body(key: &str) -> String {
        let sig = hex::encode(hmac_sha256(key.as_bytes(), format!("{TS}{TOKEN}").as_bytes()));
        format!(
            r#"{{"signature":{{"timestamp":"{TS}","token":"{TOKEN}","signature":"{sig}"}},"event-data":{{"event":"delivered"}}}}"#
        )
    }

    #[test]
    fn mailgun_json() {
        // From python3: hmac.new(KEY, b"1529006854" + TOKEN, hashlib.sha256).hexdigest()
        let expected = "1a9ca9e40b5d1d85975c4ab7db6a4b0ee070a99e6b50258c00f177811ca3c0ef";
        assert!(json_body(KEY).contains(expected));
        let v = cfg(Scheme::Mailgun, &[KEY, "key-old"]).compile().unwrap();
        for k in [KEY, "key-old"] {
            let r = TestReq::post(json_body(k));
            assert_eq!(r.check(&v, TS + 100_000), Ok(()), "no window by default");
            assert_eq!(v.delivery_id(&r.signed(), None).as_deref(), Some(TOKEN));
        }
        let r = TestReq::post(json_body(KEY));
        assert_bad(r.check(&cfg(Scheme::Mailgun, &["x"]).compile().unwrap(), TS));
        // tampering with the signed fields
        let tampered = json_body(KEY).replace(TOKEN, "b8ce0edb2dd8301dee6c2405235584e45aa91d1e9f979f3de0");
        assert_bad(TestReq::post(tampered).check(&v, TS));
        // the body outside the signature is not covered (documented)
        let changed = json_body(KEY).replace("delivered", "failed");
        assert_eq!(TestReq::post(changed).check(&v, TS), Ok(()));
        assert!(assert_bad(TestReq::post(r#"{"event-data":{}}"#).check(&v, TS)).contains("no Mailgun signature"));
        assert_bad(TestReq::post("").check(&v, TS));
    }

    #[test]
    fn mailgun_window_when_configured() {
        let mut c = cfg(Scheme::Mailgun, &[KEY]);
        c.tolerance_seconds = Some(300);
        let v = c.compile().unwrap();
        let r = TestReq::post(json_body(KEY));
        assert_eq!(r.check(&v, TS + 300), Ok(()));
        assert_stale(r.check(&v, TS + 301));
        assert_stale(r.check(&v, TS - 301));
    }

    #[test]
    fn mailgun_form() {
        let sig = hex::encode(hmac_sha256(KEY.as_bytes(), format!("{TS}{TOKEN}").as_bytes()));
        let body = format!("recipient=a%40b.c&timestamp={TS}&token={TOKEN}&signature={sig}&event=delivered");
        let v = cfg(Scheme::Mailgun, &[KEY]).compile().unwrap();
        let r = TestReq::post(&body);
        assert_eq!(r.check(&v, TS), Ok(()));
        assert_eq!(v.delivery_id(&r.signed(), None).as_deref(), Some(TOKEN));
        assert_bad(TestReq::post(body.replace(&sig, &"0".repeat(64))).check(&v, TS));
    }

    proptest! {
        #[test]
        fn extract_never_panics(b in proptest::collection::vec(any::<u8>(), 0..100), s in ".*") {
            let _ = extract(&b);
            let _ = extract(s.as_bytes());
        }
    }
}
