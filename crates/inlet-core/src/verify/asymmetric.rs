//! Public-key schemes: Discord (Ed25519 over timestamp + body) and SendGrid Event Webhook
//! (ECDSA P-256 / SHA-256 over timestamp + body).

use ed25519_dalek::{Signature as EdSignature, VerifyingKey as EdKey};
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature as EcSignature, VerifyingKey as EcKey};
use p256::pkcs8::DecodePublicKey;
use serde_json::{Value, json};

use super::config::{ConfigError, VerificationConfig};
use super::hmac_util::{
    Hdr, bad_timestamp, check_window, decode_b64, decode_hex, hdr, parse_unix, require_hdr, tolerance,
};
use super::{Rejection, Req};

const DISCORD_SIG: Hdr = hdr("x-signature-ed25519", "X-Signature-Ed25519");
const DISCORD_TS: Hdr = hdr("x-signature-timestamp", "X-Signature-Timestamp");
const SENDGRID_SIG: Hdr = hdr(
    "x-twilio-email-event-webhook-signature",
    "X-Twilio-Email-Event-Webhook-Signature",
);
const SENDGRID_TS: Hdr = hdr(
    "x-twilio-email-event-webhook-timestamp",
    "X-Twilio-Email-Event-Webhook-Timestamp",
);

const FIELD: &str = "verification.public_key";

fn public_key(c: &VerificationConfig) -> Result<&str, ConfigError> {
    match c.public_key.as_deref().map(str::trim) {
        Some(k) if !k.is_empty() => Ok(k),
        _ => Err(ConfigError::new(FIELD, format!("scheme {} needs public_key", c.scheme))),
    }
}

fn bad_sig(display: &str) -> Rejection {
    Rejection::BadSignature(format!("signature does not verify against the public key ({display})"))
}

/// Discord interactions: `X-Signature-Ed25519: <hex>`, `X-Signature-Timestamp`.
pub(crate) struct Discord {
    key: EdKey,
    tolerance: Option<u64>,
}

impl Discord {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        let raw = public_key(c)?;
        let bytes: [u8; 32] = decode_hex(raw).and_then(|b| b.try_into().ok()).ok_or_else(|| {
            ConfigError::new(
                FIELD,
                format!(
                    "is not an Ed25519 public key in hex (64 hex digits, got {} characters); \
                         copy it from the Discord developer portal, General Information → Public Key",
                    raw.chars().count()
                ),
            )
        })?;
        let key = EdKey::from_bytes(&bytes)
            .map_err(|_| ConfigError::new(FIELD, "is not a valid Ed25519 public key (not a curve point)"))?;
        Ok(Discord {
            key,
            tolerance: tolerance(c.tolerance_seconds, None),
        })
    }

    pub fn verify(&self, req: &Req<'_>, now: i64) -> Result<(), Rejection> {
        let sig_raw = require_hdr(req, DISCORD_SIG)?;
        let ts_raw = require_hdr(req, DISCORD_TS)?;
        let sig: [u8; 64] = decode_hex(sig_raw).and_then(|b| b.try_into().ok()).ok_or_else(|| {
            Rejection::BadSignature(format!("header {} is not a 64-byte hex signature", DISCORD_SIG.display))
        })?;
        let sig = EdSignature::from_bytes(&sig);
        let mut msg = Vec::with_capacity(ts_raw.len() + req.body.len());
        msg.extend_from_slice(ts_raw.as_bytes());
        msg.extend_from_slice(req.body);
        self.key
            .verify_strict(&msg, &sig)
            .map_err(|_| bad_sig(DISCORD_SIG.display))?;
        if self.tolerance.is_some() {
            let ts = parse_unix(ts_raw).ok_or_else(|| bad_timestamp(DISCORD_TS.display, ts_raw))?;
            check_window(ts, ts_raw, now, self.tolerance)?;
        }
        Ok(())
    }
}

/// Discord PING (`type` 1) is answered with PONG (`type` 1).
pub(crate) fn discord_handshake(body: &Value) -> Option<Value> {
    (body.get("type")?.as_u64()? == 1).then(|| json!({ "type": 1 }))
}

/// SendGrid Event Webhook: `X-Twilio-Email-Event-Webhook-Signature: <b64 DER>` and
/// `...-Timestamp`, ECDSA P-256 over timestamp + body.
pub(crate) struct Sendgrid {
    key: EcKey,
    tolerance: Option<u64>,
}

/// The DER bytes of a base64 SPKI key, with or without PEM armour.
fn spki_der(raw: &str) -> Option<Vec<u8>> {
    let body: String = if raw.contains("-----BEGIN") {
        raw.lines()
            .filter(|l| !l.starts_with("-----"))
            .collect::<Vec<_>>()
            .join("")
    } else {
        raw.split_whitespace().collect()
    };
    decode_b64(&body)
}

impl Sendgrid {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        let raw = public_key(c)?;
        let der = spki_der(raw).ok_or_else(|| {
            ConfigError::new(
                FIELD,
                "is not base64 (paste the Verification Key from SendGrid → Settings → Mail \
                 Settings → Event Webhook → Signature Verification)",
            )
        })?;
        let key = EcKey::from_public_key_der(&der)
            .map_err(|_| ConfigError::new(FIELD, "is not a P-256 (prime256v1) public key in SPKI form"))?;
        Ok(Sendgrid {
            key,
            tolerance: tolerance(c.tolerance_seconds, None),
        })
    }

    pub fn verify(&self, req: &Req<'_>, now: i64) -> Result<(), Rejection> {
        let sig_raw = require_hdr(req, SENDGRID_SIG)?;
        let ts_raw = require_hdr(req, SENDGRID_TS)?;
        let der = decode_b64(sig_raw)
            .ok_or_else(|| Rejection::BadSignature(format!("header {} is not base64", SENDGRID_SIG.display)))?;
        let sig = EcSignature::from_der(&der).map_err(|_| {
            Rejection::BadSignature(format!("header {} is not a DER ECDSA signature", SENDGRID_SIG.display))
        })?;
        let mut msg = Vec::with_capacity(ts_raw.len() + req.body.len());
        msg.extend_from_slice(ts_raw.as_bytes());
        msg.extend_from_slice(req.body);
        self.key.verify(&msg, &sig).map_err(|_| bad_sig(SENDGRID_SIG.display))?;
        if self.tolerance.is_some() {
            let ts = parse_unix(ts_raw).ok_or_else(|| bad_timestamp(SENDGRID_TS.display, ts_raw))?;
            check_window(ts, ts_raw, now, self.tolerance)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Scheme, VerificationConfig};
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::json;

    // A fixed seed (bytes 0..32); the public key and the PING signature below come from
    // python3's `cryptography` (Ed25519PrivateKey.from_private_bytes(bytes(range(32)))).
    const SEED: [u8; 32] = [
        0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29,
        30, 31,
    ];
    const PUBLIC: &str = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
    const PING_SIG: &str = "515aed9dc6e57982fc0fdab4a78ec7547d0f1c0fc4b87fd13c40f46f6f50666bee53ea588d9a533ef91340875036d079050e5dd51604ad922483f2563a8b050b";

    fn discord_cfg(key: &str) -> VerificationConfig {
        let mut c = cfg(Scheme::Discord, &[]);
        c.public_key = Some(key.into());
        c
    }

    fn discord_req(body: &str, ts: &str, signer: &SigningKey) -> TestReq {
        let sig = signer.sign(format!("{ts}{body}").as_bytes());
        TestReq::post(body)
            .header("X-Signature-Ed25519", hex::encode(sig.to_bytes()))
            .header("X-Signature-Timestamp", ts)
    }

    #[test]
    fn discord() {
        let signer = SigningKey::from_bytes(&SEED);
        assert_eq!(hex::encode(signer.verifying_key().to_bytes()), PUBLIC);
        let v = discord_cfg(PUBLIC).compile().unwrap();
        let body = r#"{"type":2,"data":{"name":"ping"}}"#;
        let r = discord_req(body, "1700000000", &signer);
        assert_eq!(r.check(&v, 0), Ok(()), "no window by default");
        assert_bad(r.clone().body(r#"{"type":3}"#).check(&v, 0));
        assert_bad(r.clone().with("X-Signature-Timestamp", "1700000001").check(&v, 0));
        let other = SigningKey::from_bytes(&[7u8; 32]);
        assert_bad(discord_req(body, "1700000000", &other).check(&v, 0));
        assert_eq!(
            assert_bad(r.clone().without("X-Signature-Ed25519").check(&v, 0)),
            "header X-Signature-Ed25519 is missing"
        );
        assert_eq!(
            assert_bad(r.clone().without("X-Signature-Timestamp").check(&v, 0)),
            "header X-Signature-Timestamp is missing"
        );
        assert!(assert_bad(r.clone().with("X-Signature-Ed25519", "abcd").check(&v, 0)).contains("64-byte"));
        let mut c = discord_cfg(PUBLIC);
        c.tolerance_seconds = Some(5);
        let v5 = c.compile().unwrap();
        assert_eq!(r.check(&v5, 1_700_000_005), Ok(()));
        assert_stale(r.check(&v5, 1_700_000_006));
        assert_stale(r.check(&v5, 1_699_999_994));
        assert_eq!(v.delivery_id(&r.signed(), None), None);
    }

    #[test]
    fn discord_ping_pong() {
        let signer = SigningKey::from_bytes(&SEED);
        let v = discord_cfg(PUBLIC).compile().unwrap();
        let r = discord_req(r#"{"type":1,"id":"x"}"#, "1700000000", &signer);
        assert_eq!(r.check(&v, 0), Ok(()));
        // the same request signed by python's cryptography
        let py = r.clone().with("X-Signature-Ed25519", PING_SIG);
        assert_eq!(py.check(&v, 0), Ok(()));
        assert_eq!(v.handshake(&r.signed(), None), Some(json!({"type": 1})));
        let cmd = discord_req(r#"{"type":2}"#, "1700000000", &signer);
        assert_eq!(v.handshake(&cmd.signed(), None), None);
    }

    #[test]
    fn discord_config_errors() {
        let e = discord_cfg("abcd").compile().unwrap_err();
        assert_eq!(e.field, "verification.public_key");
        assert!(discord_cfg(&"zz".repeat(32)).compile().is_err());
        let e = cfg(Scheme::Discord, &[]).compile().unwrap_err();
        assert_eq!(e.field, "verification.public_key");
        let mut c = discord_cfg(PUBLIC);
        c.secrets = vec!["s".into()];
        assert_eq!(c.compile().unwrap_err().field, "verification.secrets");
    }

    const SG_KEY: &str = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEEDr2LjtURuePQzplybdC+u4CwrqDqBaWjcMMsTbhdbcwHBcepxo7yAQGhHPTnlvFYPAZFceEu/1FwCM/QmGUhA==";
    const SG_TS: &str = "1588788367";
    const SG_BODY: &str = r#"{"category":"example_payload","event":"test_event","message_id":"message_id"}"#;
    const SG_SIG: &str =
        "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDWYNH2j/0=";

    fn sg_cfg(key: &str) -> VerificationConfig {
        let mut c = cfg(Scheme::Sendgrid, &[]);
        c.public_key = Some(key.into());
        c
    }

    fn sg_req() -> TestReq {
        TestReq::post(SG_BODY)
            .header("X-Twilio-Email-Event-Webhook-Signature", SG_SIG)
            .header("X-Twilio-Email-Event-Webhook-Timestamp", SG_TS)
    }

    #[test]
    fn sendgrid_published_vector() {
        let v = sg_cfg(SG_KEY).compile().unwrap();
        assert_eq!(sg_req().check(&v, 0), Ok(()));
        assert_bad(sg_req().body(SG_BODY.replace("test_event", "test_evenu")).check(&v, 0));
        assert_bad(
            sg_req()
                .with("X-Twilio-Email-Event-Webhook-Timestamp", "1588788368")
                .check(&v, 0),
        );
        assert_eq!(
            assert_bad(sg_req().without("X-Twilio-Email-Event-Webhook-Signature").check(&v, 0)),
            "header X-Twilio-Email-Event-Webhook-Signature is missing"
        );
        assert_eq!(
            assert_bad(sg_req().without("X-Twilio-Email-Event-Webhook-Timestamp").check(&v, 0)),
            "header X-Twilio-Email-Event-Webhook-Timestamp is missing"
        );
        assert!(
            assert_bad(
                sg_req()
                    .with("X-Twilio-Email-Event-Webhook-Signature", "AAAA")
                    .check(&v, 0)
            )
            .contains("DER")
        );
        // a different key (generated with openssl ecparam -name prime256v1)
        let other = sg_cfg("MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAERnY56mQ1HTTjHCNnyHdKrf0mjH3gOF3Az9+pBWQlkNxOjoszoUFklohe3fOPdzzv64zwp+bInnhoUH3NyG2SPQ==")
            .compile()
            .unwrap();
        assert_bad(sg_req().check(&other, 0));
        // PEM armour accepted
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n{}\n-----END PUBLIC KEY-----\n",
            &SG_KEY[..64],
            &SG_KEY[64..]
        );
        assert_eq!(sg_req().check(&sg_cfg(&pem).compile().unwrap(), 0), Ok(()));
    }

    #[test]
    fn sendgrid_window_and_ids() {
        let mut c = sg_cfg(SG_KEY);
        c.tolerance_seconds = Some(600);
        let v = c.compile().unwrap();
        assert_eq!(sg_req().check(&v, 1_588_788_367 + 600), Ok(()));
        assert_stale(sg_req().check(&v, 1_588_788_367 + 601));
        assert_stale(sg_req().check(&v, 1_588_788_367 - 601));
        let batch = TestReq::post(r#"[{"event":"delivered","sg_event_id":"sg-1"}]"#);
        assert_eq!(v.delivery_id(&batch.signed(), None).as_deref(), Some("sg-1"));
    }

    #[test]
    fn sendgrid_config_errors() {
        let e = sg_cfg("not base64 !!").compile().unwrap_err();
        assert_eq!(e.field, "verification.public_key");
        // valid base64, but an Ed25519 SPKI key, not P-256
        let e = sg_cfg("MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
            .compile()
            .unwrap_err();
        assert_eq!(e.field, "verification.public_key");
        assert!(e.message.contains("P-256"));
        let e = cfg(Scheme::Sendgrid, &["secret"]).compile().unwrap_err();
        assert_eq!(e.field, "verification.secrets");
    }
}
