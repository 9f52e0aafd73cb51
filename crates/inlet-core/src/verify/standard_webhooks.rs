//! Standard Webhooks (Svix, GitLab signing tokens, ...): `webhook-id`, `webhook-timestamp`,
//! `webhook-signature: v1,<b64> [v1,<b64> ...]` (or the `svix-*` names), over
//! `{id}.{ts}.{body}`, keyed with the base64-decoded `whsec_` secret.

use super::config::{ConfigError, VerificationConfig};
use super::hmac_util::{
    Algorithm, Hdr, HmacKey, SignedHeaders, any_match, bad_timestamp, check_window, decode_b64, encode_b64, hdr,
    header_pair, no_match, parse_unix, require_hdr, secret_field, sign_current, tolerance,
};
use super::{Rejection, Req};

const ID: [Hdr; 2] = [hdr("webhook-id", "webhook-id"), hdr("svix-id", "svix-id")];
const TS: [Hdr; 2] = [
    hdr("webhook-timestamp", "webhook-timestamp"),
    hdr("svix-timestamp", "svix-timestamp"),
];
const SIG: [Hdr; 2] = [
    hdr("webhook-signature", "webhook-signature"),
    hdr("svix-signature", "svix-signature"),
];

pub(crate) struct StandardWebhooks {
    keys: Vec<HmacKey>,
    tolerance: Option<u64>,
}

/// The decoded `v1` signatures of a space-separated `v1,<b64>` list (other versions, such as
/// the asymmetric `v1a`, and undecodable entries dropped).
pub(crate) fn parse_signature_list(value: &str) -> Vec<Vec<u8>> {
    value
        .split_ascii_whitespace()
        .filter_map(|item| item.split_once(','))
        .filter(|(version, _)| *version == "v1")
        .filter_map(|(_, sig)| decode_b64(sig))
        .collect()
}

/// The key bytes of a Standard Webhooks secret: `whsec_` stripped, the rest base64-decoded.
pub(crate) fn decode_secret(secret: &str) -> Option<Vec<u8>> {
    let b64 = secret.strip_prefix("whsec_").unwrap_or(secret);
    decode_b64(b64).filter(|k| !k.is_empty())
}

/// The webhook-* header when present, else the svix-* one.
fn pick<'a>(req: &Req<'a>, pair: &[Hdr; 2]) -> Result<&'a str, Rejection> {
    if req.header(pair[0].lower).is_none() && req.header(pair[1].lower).is_some() {
        require_hdr(req, pair[1])
    } else {
        require_hdr(req, pair[0])
    }
}

impl StandardWebhooks {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        let mut keys = Vec::with_capacity(c.secrets.len());
        for (i, s) in c.secrets.iter().enumerate() {
            let field = secret_field(i);
            let bytes = decode_secret(s).ok_or_else(|| {
                ConfigError::new(&field, "is not a Standard Webhooks secret (whsec_ followed by base64)")
            })?;
            keys.push(HmacKey::new(Algorithm::Sha256, &bytes, &field)?);
        }
        Ok(StandardWebhooks {
            keys,
            tolerance: tolerance(c.tolerance_seconds, Some(300)),
        })
    }

    pub fn verify(&self, req: &Req<'_>, now: i64) -> Result<(), Rejection> {
        let sig_value = pick(req, &SIG)?;
        let id = pick(req, &ID)?;
        let ts_raw = pick(req, &TS)?;
        let ts = parse_unix(ts_raw).ok_or_else(|| bad_timestamp("webhook-timestamp", ts_raw))?;
        let sigs = parse_signature_list(sig_value);
        if sigs.is_empty() {
            return Err(Rejection::BadSignature(
                "header webhook-signature has no 'v1,<base64>' signature".into(),
            ));
        }
        if !any_match(
            &self.keys,
            &[id.as_bytes(), b".", ts_raw.as_bytes(), b".", req.body],
            &sigs,
        ) {
            return Err(no_match());
        }
        check_window(ts, ts_raw, now, self.tolerance)
    }

    /// `webhook-id` (a made-up test id), `webhook-timestamp` and `webhook-signature: v1,<b64>`.
    pub fn sign(&self, body: &[u8], now: i64) -> Result<SignedHeaders, String> {
        let id = format!("msg_inlet_test_{now}");
        let ts = now.to_string();
        let sig = sign_current(&self.keys, &[id.as_bytes(), b".", ts.as_bytes(), b".", body])?;
        Ok(vec![
            header_pair(ID[0], id),
            header_pair(TS[0], ts),
            header_pair(SIG[0], format!("v1,{}", encode_b64(&sig))),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::super::Scheme;
    use super::super::test_support::*;
    use super::*;
    use proptest::prelude::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID_: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS_: i64 = 1_614_265_330;
    const BODY: &str = r#"{"test": 2432232314}"#;
    const SIG_: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    fn req() -> TestReq {
        TestReq::post(BODY)
            .header("webhook-id", ID_)
            .header("webhook-timestamp", TS_.to_string())
            .header("webhook-signature", SIG_)
    }

    #[test]
    fn published_vector() {
        let v = cfg(Scheme::StandardWebhooks, &[SECRET]).compile().unwrap();
        assert_eq!(req().check(&v, TS_), Ok(()));
        assert_eq!(v.delivery_id(&req().signed(), None).as_deref(), Some(ID_));
        assert_bad(req().body(r#"{"test": 2432232315}"#).check(&v, TS_));
        assert_bad(req().with("webhook-id", "msg_other").check(&v, TS_));
        assert_stale(req().check(&v, TS_ + 301));
        assert_stale(req().check(&v, TS_ - 301));
        let wrong = cfg(Scheme::StandardWebhooks, &["whsec_dGVzdA=="]).compile().unwrap();
        assert_bad(req().check(&wrong, TS_));
        for h in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
            assert_eq!(
                assert_bad(req().without(h).check(&v, TS_)),
                format!("header {h} is missing")
            );
        }
    }

    #[test]
    fn svix_names_and_lists() {
        let v = cfg(Scheme::StandardWebhooks, &[SECRET]).compile().unwrap();
        let svix = TestReq::post(BODY)
            .header("svix-id", ID_)
            .header("svix-timestamp", TS_.to_string())
            .header("svix-signature", SIG_);
        assert_eq!(svix.check(&v, TS_), Ok(()));
        assert_eq!(v.delivery_id(&svix.signed(), None).as_deref(), Some(ID_));
        // several signatures, unknown versions ignored
        let list = req().with("webhook-signature", format!("v1a,AAAA v1,{} {SIG_}", b64(&[0u8; 32])));
        assert_eq!(list.check(&v, TS_), Ok(()));
        let none = req().with("webhook-signature", "v2,abcd");
        assert!(assert_bad(none.check(&v, TS_)).contains("no 'v1,<base64>'"));
        let bad_ts = req().with("webhook-timestamp", "yesterday");
        assert!(assert_bad(bad_ts.check(&v, TS_)).contains("not a Unix timestamp"));
    }

    #[test]
    fn rotation_and_key_decoding() {
        // a second secret: raw bytes "second-key-bytes", signed independently
        let second = format!("whsec_{}", b64(b"second-key-bytes"));
        let v = cfg(Scheme::StandardWebhooks, &[&second, SECRET]).compile().unwrap();
        assert_eq!(req().check(&v, TS_), Ok(()));
        let sig = b64(&hmac_sha256(
            b"second-key-bytes",
            format!("{ID_}.{TS_}.{BODY}").as_bytes(),
        ));
        let r = req().with("webhook-signature", format!("v1,{sig}"));
        assert_eq!(r.check(&v, TS_), Ok(()));
        // without the prefix, the secret is still base64
        let unprefixed = cfg(Scheme::StandardWebhooks, &["MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"])
            .compile()
            .unwrap();
        assert_eq!(req().check(&unprefixed, TS_), Ok(()));
    }

    #[test]
    fn bad_secret() {
        let e = cfg(Scheme::StandardWebhooks, &["whsec_%%%not-base64"])
            .compile()
            .unwrap_err();
        assert_eq!(e.field, "verification.secrets[0]");
        assert!(!e.message.contains("%%%"));
        let e = cfg(Scheme::StandardWebhooks, &["whsec_"]).compile().unwrap_err();
        assert_eq!(e.field, "verification.secrets[0]");
    }

    proptest! {
        #[test]
        fn list_parser_never_panics(s in ".*") {
            let _ = parse_signature_list(&s);
            let _ = decode_secret(&s);
        }
    }
}
