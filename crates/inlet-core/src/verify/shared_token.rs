//! Shared-secret tokens sent verbatim: Okta (a configured header), generic `token` (a header or
//! a query parameter). GitLab's `X-Gitlab-Token` uses [`Tokens`] too.

use serde_json::{Value, json};
use subtle::{Choice, ConstantTimeEq};

use super::config::{ConfigError, VerificationConfig, header_name};
use super::hmac_util::{sha256, strip_prefix_ci};
use super::{Rejection, Req};

/// Secrets kept as SHA-256 digests; a presented token is hashed and compared in constant time,
/// which hides the secrets' lengths too.
pub(crate) struct Tokens {
    digests: Vec<[u8; 32]>,
    /// The current (first) secret, sent when signing a test request.
    current: Option<String>,
}

impl Tokens {
    pub fn new(secrets: &[String]) -> Self {
        Tokens {
            digests: secrets.iter().map(|s| sha256(s.as_bytes())).collect(),
            current: secrets.first().cloned(),
        }
    }

    /// The token a sender would present: the current secret.
    pub fn current(&self) -> Result<String, String> {
        self.current
            .clone()
            .ok_or_else(|| "no secret is configured to sign with".to_string())
    }

    pub fn matches(&self, presented: &str) -> bool {
        let d = sha256(presented.as_bytes());
        let mut ok = Choice::from(0);
        for s in &self.digests {
            ok |= s.ct_eq(&d);
        }
        ok.into()
    }

    /// The value as sent, or after an `Authorization`-style `Bearer ` prefix.
    pub fn matches_header(&self, value: &str) -> bool {
        let v = value.trim();
        let bearer = strip_prefix_ci(v, "Bearer ").map(str::trim);
        // evaluate both so timing does not tell which form matched
        let a = self.matches(v);
        let b = bearer.is_some_and(|b| self.matches(b));
        a | b
    }
}

/// Okta event hooks: a configured header (default `Authorization`) carries the shared secret.
pub(crate) struct Okta {
    header: String,
    display: String,
    tokens: Tokens,
}

impl Okta {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        let display = c.header.clone().unwrap_or_else(|| "Authorization".into());
        Ok(Okta {
            header: header_name("verification.header", &display)?,
            display,
            tokens: Tokens::new(&c.secrets),
        })
    }

    pub fn verify(&self, req: &Req<'_>) -> Result<(), Rejection> {
        let v = req
            .header(&self.header)
            .ok_or_else(|| Rejection::BadSignature(format!("header {} is missing", self.display)))?;
        if self.tokens.matches_header(v) {
            Ok(())
        } else {
            Err(Rejection::BadSignature(format!(
                "header {} does not match any configured secret",
                self.display
            )))
        }
    }

    /// The configured header carrying the current secret.
    pub fn sign(&self) -> Result<Vec<(String, String)>, String> {
        Ok(vec![(self.display.clone(), self.tokens.current()?)])
    }
}

/// Okta's one-time verification: `GET` with `X-Okta-Verification-Challenge`.
pub(crate) fn okta_handshake(req: &Req<'_>) -> Option<Value> {
    if !req.method.eq_ignore_ascii_case("GET") {
        return None;
    }
    let challenge = req.header("x-okta-verification-challenge")?;
    Some(json!({ "verification": challenge }))
}

/// Generic token: in a header, a query parameter, or either.
pub(crate) struct Token {
    header: Option<(String, String)>,
    query_param: Option<String>,
    tokens: Tokens,
}

impl Token {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        let header = match &c.header {
            Some(h) => Some((header_name("verification.header", h)?, h.clone())),
            None => None,
        };
        let query_param = match &c.query_param {
            Some(q) if q.is_empty() => {
                return Err(ConfigError::new("verification.query_param", "is empty"));
            }
            other => other.clone(),
        };
        if header.is_none() && query_param.is_none() {
            return Err(ConfigError::new(
                "verification.header",
                "scheme token needs header or query_param (or both)",
            ));
        }
        Ok(Token {
            header,
            query_param,
            tokens: Tokens::new(&c.secrets),
        })
    }

    pub fn verify(&self, req: &Req<'_>) -> Result<(), Rejection> {
        let from_header = self.header.as_ref().and_then(|(lower, _)| req.header(lower));
        let from_query = self
            .query_param
            .as_ref()
            .and_then(|q| req.query.iter().find(|(k, _)| k == q).map(|(_, v)| v.as_str()));
        if from_header.is_none() && from_query.is_none() {
            let where_ = match (&self.header, &self.query_param) {
                (Some((_, h)), Some(q)) => format!("header {h} and query parameter {q} are"),
                (Some((_, h)), None) => format!("header {h} is"),
                (None, Some(q)) => format!("query parameter {q} is"),
                (None, None) => "token is".into(),
            };
            return Err(Rejection::BadSignature(format!("{where_} missing")));
        }
        let ok_header = from_header.is_some_and(|v| self.tokens.matches_header(v));
        let ok_query = from_query.is_some_and(|v| self.tokens.matches(v));
        if ok_header | ok_query {
            Ok(())
        } else {
            Err(Rejection::BadSignature(
                "token does not match any configured secret".into(),
            ))
        }
    }

    /// The token header with the current secret; a query-parameter-only token belongs in the
    /// URL, which is not a header.
    pub fn sign(&self) -> Result<Vec<(String, String)>, String> {
        match (&self.header, &self.query_param) {
            (Some((_, display)), _) => Ok(vec![(display.clone(), self.tokens.current()?)]),
            (None, Some(q)) => Err(format!(
                "scheme token carries its secret in the query parameter {q}, not a header; \
                 add ?{q}=<secret> to the webhook URL yourself"
            )),
            (None, None) => Err("scheme token has neither header nor query_param".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::*;
    use super::super::{Rejection, Scheme};
    use serde_json::json;

    #[test]
    fn okta_default_header_and_rotation() {
        let v = cfg(Scheme::Okta, &["okta-secret-1", "okta-secret-2"])
            .compile()
            .unwrap();
        for s in ["okta-secret-1", "okta-secret-2"] {
            let r = TestReq::post("{}").header("Authorization", s);
            assert_eq!(r.check(&v, 0), Ok(()));
            let r = TestReq::post("{}").header("authorization", format!("Bearer {s}"));
            assert_eq!(r.check(&v, 0), Ok(()));
        }
        let r = TestReq::post("{}").header("Authorization", "okta-secret-3");
        let res = r.check(&v, 0);
        assert_no_secret(&res, &["okta-secret-1", "okta-secret-2"]);
        assert_bad(res);
        assert_eq!(
            assert_bad(TestReq::post("{}").check(&v, 0)),
            "header Authorization is missing"
        );
        assert_eq!(v.delivery_id(&TestReq::post("{}").signed(), None), None);
    }

    #[test]
    fn okta_custom_header() {
        let mut c = cfg(Scheme::Okta, &["s3cr3t"]);
        c.header = Some("X-Okta-Secret".into());
        let v = c.compile().unwrap();
        assert_eq!(
            TestReq::post("{}").header("x-okta-secret", "s3cr3t").check(&v, 0),
            Ok(())
        );
        assert_bad(TestReq::post("{}").header("Authorization", "s3cr3t").check(&v, 0));
        c.header = Some("bad:header".into());
        assert_eq!(c.compile().unwrap_err().field, "verification.header");
    }

    #[test]
    fn okta_handshake() {
        let v = cfg(Scheme::Okta, &["s3cr3t"]).compile().unwrap();
        let r = TestReq::post("")
            .method("GET")
            .header("X-Okta-Verification-Challenge", "chal-123");
        // unsigned: answered before verify()
        assert_eq!(
            v.pre_verify_handshake(&r.signed()),
            Some(json!({"verification": "chal-123"}))
        );
        assert_eq!(
            v.handshake(&r.signed(), None),
            Some(json!({"verification": "chal-123"}))
        );
        let post = r.clone().method("POST");
        assert_eq!(v.pre_verify_handshake(&post.signed()), None);
        let plain = TestReq::post("").method("GET");
        assert_eq!(v.pre_verify_handshake(&plain.signed()), None);
        // other schemes never answer before verify
        let g = cfg(Scheme::Github, &["x"]).compile().unwrap();
        assert_eq!(g.pre_verify_handshake(&r.signed()), None);
        assert_eq!(g.handshake(&r.signed(), None), None);
    }

    #[test]
    fn token_header_and_query() {
        let mut c = cfg(Scheme::Token, &["tok-a", "tok-b"]);
        c.header = Some("X-Token".into());
        c.query_param = Some("token".into());
        c.dedup_header = Some("X-Delivery".into());
        let v = c.compile().unwrap();
        for t in ["tok-a", "tok-b"] {
            let r = TestReq::post("{}").header("X-Token", t).header("X-Delivery", "d9");
            assert_eq!(r.check(&v, 0), Ok(()));
            assert_eq!(v.delivery_id(&r.signed(), None).as_deref(), Some("d9"));
            let mut q = TestReq::post("{}");
            q.query = vec![("token".into(), t.into())];
            assert_eq!(q.check(&v, 0), Ok(()));
        }
        let wrong = TestReq::post("{}").header("X-Token", "tok-c");
        assert_bad(wrong.check(&v, 0));
        let m = assert_bad(TestReq::post("{}").check(&v, 0));
        assert_eq!(m, "header X-Token and query parameter token are missing");
        // a wrong header and a right query parameter: either place may carry it
        let mut both = TestReq::post("{}").header("X-Token", "nope");
        both.query = vec![("token".into(), "tok-a".into())];
        assert_eq!(both.check(&v, 0), Ok(()));
        // the token does not cover the body
        assert_eq!(TestReq::post("changed").header("X-Token", "tok-a").check(&v, 0), Ok(()));
    }

    #[test]
    fn token_config_errors() {
        let c = cfg(Scheme::Token, &["t"]);
        assert_eq!(c.compile().unwrap_err().field, "verification.header");
        let mut c = cfg(Scheme::Token, &["t"]);
        c.query_param = Some(String::new());
        assert_eq!(c.compile().unwrap_err().field, "verification.query_param");
        let mut c = cfg(Scheme::Token, &["t"]);
        c.query_param = Some("k".into());
        c.dedup_jsonpath = Some("$.meta.id".into());
        let v = c.compile().unwrap();
        let mut r = TestReq::post(r#"{"meta":{"id":7}}"#);
        r.query = vec![("k".into(), "t".into())];
        assert_eq!(r.check(&v, 0), Ok(()));
        assert_eq!(v.delivery_id(&r.signed(), None).as_deref(), Some("7"));
        let m = assert_bad(TestReq::post("{}").check(&v, 0));
        assert_eq!(m, "query parameter k is missing");
        assert!(matches!(
            TestReq::post("{}").check(&v, 0),
            Err(Rejection::BadSignature(_))
        ));
    }
}
