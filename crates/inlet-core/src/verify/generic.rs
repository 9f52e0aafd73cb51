//! The generic `hmac` scheme: any header, optional prefix, hex or base64, SHA-1/256/512, a
//! signed-content template over `{id}`, `{timestamp}`, `{body}`, and an optional timestamp
//! window.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::config::{ConfigError, VerificationConfig, header_name};
use super::hmac_util::{
    Algorithm, HmacKey, any_match, check_window, decode_b64, decode_hex, encode_b64, no_match, require, shown,
    sign_current, strip_prefix_ci, tolerance, utf8_keys,
};
use super::{Rejection, Req};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Hex,
    Base64,
}

/// One piece of the signed content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Part {
    Literal(String),
    Id,
    Timestamp,
    Body,
}

/// Parse a `signed_content` template: `{id}`, `{timestamp}`, `{body}`; `{{` and `}}` are
/// literal braces.
pub(crate) fn parse_template(t: &str) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut lit = String::new();
    let mut chars = t.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                chars.next();
                lit.push('{');
            }
            '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                chars.next();
                lit.push('}');
            }
            '{' => {
                let rest = &t[i + 1..];
                let Some(end) = rest.find('}') else {
                    return Err(format!("unclosed '{{' at position {i}"));
                };
                let name = &rest[..end];
                let part = match name {
                    "id" => Part::Id,
                    "timestamp" => Part::Timestamp,
                    "body" => Part::Body,
                    other => {
                        return Err(format!(
                            "unknown placeholder {{{}}} at position {i}; use {{id}}, {{timestamp}} or {{body}}",
                            shown(other)
                        ));
                    }
                };
                // skip the name and the closing brace
                for _ in 0..name.chars().count() + 1 {
                    chars.next();
                }
                if !lit.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut lit)));
                }
                parts.push(part);
            }
            '}' => {
                return Err(format!("stray '}}' at position {i} (write '}}}}' for a literal one)"));
            }
            c => lit.push(c),
        }
    }
    if !lit.is_empty() {
        parts.push(Part::Literal(lit));
    }
    Ok(parts)
}

/// Parse a timestamp header: integer Unix seconds, integer milliseconds (13+ digits), or RFC 3339.
pub(crate) fn parse_flexible_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(n) = s.parse::<i64>() {
        // 100_000_000_000 s is the year 5138: anything larger is milliseconds
        return Some(if n.unsigned_abs() >= 100_000_000_000 {
            n.div_euclid(1000)
        } else {
            n
        });
    }
    OffsetDateTime::parse(s, &Rfc3339).ok().map(|t| t.unix_timestamp())
}

pub(crate) struct GenericHmac {
    keys: Vec<HmacKey>,
    header: String,
    header_display: String,
    encoding: Encoding,
    prefix: Option<String>,
    timestamp_header: Option<(String, String)>,
    id_header: Option<(String, String)>,
    parts: Vec<Part>,
    tolerance: Option<u64>,
}

impl GenericHmac {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        let algorithm = match c.algorithm.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("sha256") | Some("sha-256") => Algorithm::Sha256,
            Some("sha1") | Some("sha-1") => Algorithm::Sha1,
            Some("sha512") | Some("sha-512") => Algorithm::Sha512,
            Some(_) => {
                return Err(ConfigError::new(
                    "verification.algorithm",
                    format!(
                        "unknown algorithm {:?}; use sha1, sha256 or sha512",
                        shown(c.algorithm.as_deref().unwrap_or_default())
                    ),
                ));
            }
        };
        let encoding = match c.encoding.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("hex") => Encoding::Hex,
            Some("base64") | Some("b64") => Encoding::Base64,
            Some(_) => {
                return Err(ConfigError::new(
                    "verification.encoding",
                    format!(
                        "unknown encoding {:?}; use hex or base64",
                        shown(c.encoding.as_deref().unwrap_or_default())
                    ),
                ));
            }
        };
        let header_display = c.header.clone().ok_or_else(|| {
            ConfigError::new(
                "verification.header",
                "scheme hmac needs header (the request header carrying the signature)",
            )
        })?;
        let header = header_name("verification.header", &header_display)?;
        let named = |field: &str, v: &Option<String>| -> Result<Option<(String, String)>, ConfigError> {
            match v {
                Some(h) => Ok(Some((header_name(field, h)?, h.clone()))),
                None => Ok(None),
            }
        };
        let timestamp_header = named("verification.timestamp_header", &c.timestamp_header)?;
        let id_header = named("verification.id_header", &c.id_header)?;
        let template = c.signed_content.as_deref().unwrap_or("{body}");
        let parts = parse_template(template).map_err(|m| ConfigError::new("verification.signed_content", m))?;
        if !parts.contains(&Part::Body) {
            return Err(ConfigError::new(
                "verification.signed_content",
                "must contain {body}, or the body could be changed without breaking the signature",
            ));
        }
        if parts.contains(&Part::Timestamp) && timestamp_header.is_none() {
            return Err(ConfigError::new(
                "verification.signed_content",
                "uses {timestamp} but timestamp_header is not set",
            ));
        }
        if parts.contains(&Part::Id) && id_header.is_none() {
            return Err(ConfigError::new(
                "verification.signed_content",
                "uses {id} but id_header is not set",
            ));
        }
        if c.tolerance_seconds.is_some() && timestamp_header.is_none() {
            return Err(ConfigError::new(
                "verification.tolerance_seconds",
                "needs timestamp_header",
            ));
        }
        let prefix = match &c.prefix {
            Some(p) if p.is_empty() => None,
            Some(p) => Some(p.clone()),
            None => None,
        };
        Ok(GenericHmac {
            keys: utf8_keys(&c.secrets, algorithm)?,
            header,
            header_display,
            encoding,
            prefix,
            tolerance: if timestamp_header.is_some() {
                tolerance(c.tolerance_seconds, Some(300))
            } else {
                None
            },
            timestamp_header,
            id_header,
            parts,
        })
    }

    pub fn verify(&self, req: &Req<'_>, now: i64) -> Result<(), Rejection> {
        let value = require(req, &self.header, &self.header_display)?;
        let sig_text = match &self.prefix {
            Some(p) => strip_prefix_ci(value, p).ok_or_else(|| {
                Rejection::BadSignature(format!(
                    "header {} does not start with {:?}",
                    self.header_display,
                    shown(p)
                ))
            })?,
            None => value,
        };
        let sig = match self.encoding {
            Encoding::Hex => decode_hex(sig_text),
            Encoding::Base64 => decode_b64(sig_text),
        }
        .ok_or_else(|| {
            Rejection::BadSignature(format!(
                "header {} is not {}",
                self.header_display,
                match self.encoding {
                    Encoding::Hex => "hex",
                    Encoding::Base64 => "base64",
                }
            ))
        })?;
        let ts = match &self.timestamp_header {
            Some((lower, display)) => {
                let raw = require(req, lower, display)?;
                let secs = parse_flexible_timestamp(raw).ok_or_else(|| {
                    Rejection::BadSignature(format!(
                        "{display} {:?} is not a Unix timestamp or RFC 3339 time",
                        shown(raw)
                    ))
                })?;
                Some((raw, secs))
            }
            None => None,
        };
        let id = match &self.id_header {
            Some((lower, display)) if self.parts.contains(&Part::Id) => Some(require(req, lower, display)?),
            _ => None,
        };
        let slices = self.content(id, ts.map(|(raw, _)| raw), req.body);
        if !any_match(&self.keys, &slices, &[sig]) {
            return Err(no_match());
        }
        if let Some((raw, secs)) = ts {
            check_window(secs, raw, now, self.tolerance)?;
        }
        Ok(())
    }

    /// The signed content: the template with `{id}`, `{timestamp}`, `{body}` filled in.
    fn content<'a>(&'a self, id: Option<&'a str>, ts: Option<&'a str>, body: &'a [u8]) -> Vec<&'a [u8]> {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => s.as_bytes(),
                Part::Id => id.unwrap_or_default().as_bytes(),
                Part::Timestamp => ts.unwrap_or_default().as_bytes(),
                Part::Body => body,
            })
            .collect()
    }

    /// The signature header (prefix + encoding), plus the timestamp (Unix seconds) and id
    /// headers when configured.
    pub fn sign(&self, body: &[u8], now: i64) -> Result<Vec<(String, String)>, String> {
        let ts = now.to_string();
        let id = format!("inlet-test-{now}");
        let ts_used = self.timestamp_header.as_ref().map(|_| ts.as_str());
        let id_used = self.id_header.as_ref().map(|_| id.as_str());
        let mac = sign_current(&self.keys, &self.content(id_used, ts_used, body))?;
        let sig = match self.encoding {
            Encoding::Hex => hex::encode(mac),
            Encoding::Base64 => encode_b64(&mac),
        };
        let mut out = vec![(
            self.header_display.clone(),
            format!("{}{sig}", self.prefix.as_deref().unwrap_or_default()),
        )];
        if let Some((_, display)) = &self.timestamp_header {
            out.push((display.clone(), ts.clone()));
        }
        if let Some((_, display)) = &self.id_header {
            out.push((display.clone(), id));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Scheme, VerificationConfig};
    use super::*;
    use proptest::prelude::*;

    fn base(secrets: &[&str]) -> VerificationConfig {
        let mut c = cfg(Scheme::Hmac, secrets);
        c.header = Some("X-Signature".into());
        c
    }

    #[test]
    fn defaults_sha256_hex_body() {
        let body = r#"{"a":1}"#;
        // From python3: hmac.new(b"generic-secret", b'{"a":1}', hashlib.sha256).hexdigest()
        let sig = "25356a87463a4b8f8cc3d46102f9e21794a511ab94e337c1faf307f1d9a5677c";
        assert_eq!(hex::encode(hmac_sha256(b"generic-secret", body.as_bytes())), sig);
        let v = base(&["generic-secret", "other"]).compile().unwrap();
        let r = TestReq::post(body).header("X-Signature", sig);
        assert_eq!(r.check(&v, 0), Ok(()));
        assert_bad(r.clone().body("{}").check(&v, 0));
        assert_bad(r.check(&base(&["nope"]).compile().unwrap(), 0));
        assert_eq!(
            assert_bad(TestReq::post(body).check(&v, 0)),
            "header X-Signature is missing"
        );
        let other = TestReq::post(body).header("x-signature", hex::encode(hmac_sha256(b"other", body.as_bytes())));
        assert_eq!(other.check(&v, 0), Ok(()));
        assert_eq!(v.delivery_id(&r.signed(), None), None);
    }

    #[test]
    fn algorithms_encodings_prefix() {
        let body = b"payload";
        let mut c = base(&["k"]);
        c.algorithm = Some("sha512".into());
        c.encoding = Some("base64".into());
        c.prefix = Some("sha512=".into());
        let v = c.compile().unwrap();
        let r = TestReq::post(body).header("X-Signature", format!("sha512={}", b64(&hmac_sha512(b"k", body))));
        assert_eq!(r.check(&v, 0), Ok(()));
        let no_prefix = r.clone().with("X-Signature", b64(&hmac_sha512(b"k", body)));
        assert!(assert_bad(no_prefix.check(&v, 0)).contains("does not start with"));
        let mut c = base(&["k"]);
        c.algorithm = Some("SHA1".into());
        let v = c.compile().unwrap();
        let r = TestReq::post(body).header("X-Signature", hex::encode(hmac_sha1(b"k", body)));
        assert_eq!(r.check(&v, 0), Ok(()));
        let wrong_alg = TestReq::post(body).header("X-Signature", hex::encode(hmac_sha256(b"k", body)));
        assert_bad(wrong_alg.check(&v, 0));
        let not_hex = TestReq::post(body).header("X-Signature", "xyz");
        assert!(assert_bad(not_hex.check(&v, 0)).contains("not hex"));
    }

    #[test]
    fn template_with_id_and_timestamp() {
        let mut c = base(&["tpl-secret", "tpl-old"]);
        c.timestamp_header = Some("X-Timestamp".into());
        c.id_header = Some("X-Id".into());
        c.signed_content = Some("{id}.{timestamp}.{body}".into());
        c.prefix = Some("v1=".into());
        let v = c.compile().unwrap();
        let t = 1_700_000_000_i64;
        for s in ["tpl-secret", "tpl-old"] {
            let sig = hex::encode(hmac_sha256(s.as_bytes(), format!("msg-1.{t}.hello").as_bytes()));
            let r = TestReq::post("hello")
                .header("X-Signature", format!("v1={sig}"))
                .header("X-Timestamp", t.to_string())
                .header("X-Id", "msg-1");
            assert_eq!(r.check(&v, t + 300), Ok(()));
            assert_eq!(v.delivery_id(&r.signed(), None).as_deref(), Some("msg-1"));
            assert_stale(r.check(&v, t + 301));
            assert_stale(r.check(&v, t - 301));
            assert_bad(r.clone().with("X-Id", "msg-2").check(&v, t));
            assert_bad(r.clone().with("X-Timestamp", (t + 1).to_string()).check(&v, t));
            assert_bad(r.clone().body("hellO").check(&v, t));
            assert_eq!(
                assert_bad(r.clone().without("X-Timestamp").check(&v, t)),
                "header X-Timestamp is missing"
            );
            assert_eq!(
                assert_bad(r.clone().without("X-Id").check(&v, t)),
                "header X-Id is missing"
            );
        }
    }

    #[test]
    fn timestamp_only_for_window() {
        // timestamp header checked but not signed; milliseconds accepted
        let mut c = base(&["k"]);
        c.timestamp_header = Some("X-Timestamp".into());
        c.tolerance_seconds = Some(60);
        let v = c.compile().unwrap();
        let sig = hex::encode(hmac_sha256(b"k", b"b"));
        let r = TestReq::post("b")
            .header("X-Signature", sig)
            .header("X-Timestamp", "1700000000000");
        assert_eq!(r.check(&v, 1_700_000_060), Ok(()));
        assert_stale(r.check(&v, 1_700_000_061));
        let rfc = r.clone().with("X-Timestamp", "2023-11-14T22:13:20Z");
        assert_eq!(rfc.check(&v, 1_700_000_000), Ok(()));
        let bad = r.clone().with("X-Timestamp", "soon");
        assert!(assert_bad(bad.check(&v, 0)).contains("not a Unix timestamp"));
    }

    #[test]
    fn config_errors() {
        let mut c = base(&["k"]);
        c.algorithm = Some("md5".into());
        let e = c.compile().unwrap_err();
        assert_eq!(e.field, "verification.algorithm");
        assert!(e.message.contains("\"md5\""));
        let mut c = base(&["k"]);
        c.encoding = Some("base32".into());
        assert_eq!(c.compile().unwrap_err().field, "verification.encoding");
        let c = cfg(Scheme::Hmac, &["k"]);
        assert_eq!(c.compile().unwrap_err().field, "verification.header");
        let mut c = base(&["k"]);
        c.header = Some("X Sig".into());
        assert_eq!(c.compile().unwrap_err().field, "verification.header");
        for (tpl, why) in [
            ("{timestamp}", "{body}"),
            ("{id}.{body}", "id_header"),
            ("{timestamp}.{body}", "timestamp_header"),
            ("{nope}.{body}", "unknown placeholder"),
            ("{body", "unclosed"),
            ("{body}}x", "stray"),
        ] {
            let mut c = base(&["k"]);
            c.signed_content = Some(tpl.into());
            let e = c.compile().unwrap_err();
            assert_eq!(e.field, "verification.signed_content", "{tpl}");
            assert!(e.message.contains(why), "{tpl}: {}", e.message);
        }
        let mut c = base(&["k"]);
        c.tolerance_seconds = Some(30);
        assert_eq!(c.compile().unwrap_err().field, "verification.tolerance_seconds");
        let mut c = base(&[]);
        c.algorithm = Some("sha256".into());
        assert_eq!(c.compile().unwrap_err().field, "verification.secrets");
    }

    #[test]
    fn template_parser() {
        assert_eq!(
            parse_template("{{x}}:{body}").unwrap(),
            vec![Part::Literal("{x}:".into()), Part::Body]
        );
        assert_eq!(
            parse_template("a{id}é{timestamp}{body}z").unwrap(),
            vec![
                Part::Literal("a".into()),
                Part::Id,
                Part::Literal("é".into()),
                Part::Timestamp,
                Part::Body,
                Part::Literal("z".into()),
            ]
        );
        assert_eq!(parse_flexible_timestamp(" 1700000000 "), Some(1_700_000_000));
        assert_eq!(parse_flexible_timestamp("-5"), Some(-5));
        assert_eq!(parse_flexible_timestamp("x"), None);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".*") {
            let _ = parse_template(&s);
            let _ = parse_flexible_timestamp(&s);
        }

        #[test]
        fn template_tokens_never_panic(s in "[{}a-z.é]{0,30}") {
            let _ = parse_template(&s);
        }
    }
}
