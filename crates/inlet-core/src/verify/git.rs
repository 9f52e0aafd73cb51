//! Git forges: GitHub, GitLab (plain token), Bitbucket (and Jira admin webhooks), Gitea/Forgejo.

use super::config::{ConfigError, VerificationConfig};
use super::hmac_util::{
    Algorithm, Hdr, HmacKey, SignedHeaders, any_match, bare_hex, hdr, header_pair, no_match, prefixed_hex, require_any,
    require_hdr, sign_current, utf8_keys,
};
use super::shared_token::Tokens;
use super::{Rejection, Req};

const GITHUB_256: Hdr = hdr("x-hub-signature-256", "X-Hub-Signature-256");
const GITHUB_1: Hdr = hdr("x-hub-signature", "X-Hub-Signature");

/// `X-Hub-Signature-256: sha256=<hex>` over the body; the legacy `X-Hub-Signature: sha1=<hex>`
/// is checked only when the SHA-256 header is absent (never as a fallback after a mismatch).
pub(crate) struct Github {
    sha256: Vec<HmacKey>,
    sha1: Vec<HmacKey>,
}

impl Github {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        Ok(Github {
            sha256: utf8_keys(&c.secrets, Algorithm::Sha256)?,
            sha1: utf8_keys(&c.secrets, Algorithm::Sha1)?,
        })
    }

    pub fn verify(&self, req: &Req<'_>) -> Result<(), Rejection> {
        let (keys, sig) = if req.header(GITHUB_256.lower).is_some() {
            let v = require_hdr(req, GITHUB_256)?;
            (&self.sha256, prefixed_hex(v, "sha256=", GITHUB_256.display)?)
        } else if req.header(GITHUB_1.lower).is_some() {
            let v = require_hdr(req, GITHUB_1)?;
            (&self.sha1, prefixed_hex(v, "sha1=", GITHUB_1.display)?)
        } else {
            return Err(Rejection::BadSignature(format!(
                "header {} is missing",
                GITHUB_256.display
            )));
        };
        if any_match(keys, &[req.body], &[sig]) {
            Ok(())
        } else {
            Err(no_match())
        }
    }

    /// `X-Hub-Signature-256: sha256=<hex>` with the current secret.
    pub fn sign(&self, body: &[u8]) -> Result<SignedHeaders, String> {
        let sig = hex::encode(sign_current(&self.sha256, &[body])?);
        Ok(vec![header_pair(GITHUB_256, format!("sha256={sig}"))])
    }
}

const GITLAB_TOKEN: Hdr = hdr("x-gitlab-token", "X-Gitlab-Token");

/// `X-Gitlab-Token` carries the secret token verbatim.
pub(crate) struct Gitlab {
    tokens: Tokens,
}

impl Gitlab {
    pub fn compile(c: &VerificationConfig) -> Self {
        Gitlab {
            tokens: Tokens::new(&c.secrets),
        }
    }

    pub fn verify(&self, req: &Req<'_>) -> Result<(), Rejection> {
        let v = req
            .header(GITLAB_TOKEN.lower)
            .ok_or_else(|| Rejection::BadSignature("header X-Gitlab-Token is missing".into()))?;
        if self.tokens.matches(v) {
            Ok(())
        } else {
            Err(Rejection::BadSignature(
                "X-Gitlab-Token does not match any configured secret token".into(),
            ))
        }
    }

    pub fn sign(&self) -> Result<SignedHeaders, String> {
        Ok(vec![header_pair(GITLAB_TOKEN, self.tokens.current()?)])
    }
}

/// `X-Hub-Signature: sha256=<hex>` over the body (Bitbucket Server/Data Center/Cloud, Jira).
pub(crate) struct Bitbucket {
    keys: Vec<HmacKey>,
}

impl Bitbucket {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        Ok(Bitbucket {
            keys: utf8_keys(&c.secrets, Algorithm::Sha256)?,
        })
    }

    pub fn verify(&self, req: &Req<'_>) -> Result<(), Rejection> {
        let v = require_hdr(req, GITHUB_1)?;
        let sig = prefixed_hex(v, "sha256=", GITHUB_1.display)?;
        if any_match(&self.keys, &[req.body], &[sig]) {
            Ok(())
        } else {
            Err(no_match())
        }
    }

    /// `X-Hub-Signature: sha256=<hex>`.
    pub fn sign(&self, body: &[u8]) -> Result<SignedHeaders, String> {
        let sig = hex::encode(sign_current(&self.keys, &[body])?);
        Ok(vec![header_pair(GITHUB_1, format!("sha256={sig}"))])
    }
}

const GITEA: [Hdr; 2] = [
    hdr("x-gitea-signature", "X-Gitea-Signature"),
    hdr("x-forgejo-signature", "X-Forgejo-Signature"),
];

/// `X-Gitea-Signature: <hex>` (Forgejo: `X-Forgejo-Signature`), HMAC-SHA256 of the body.
pub(crate) struct Gitea {
    keys: Vec<HmacKey>,
}

impl Gitea {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        Ok(Gitea {
            keys: utf8_keys(&c.secrets, Algorithm::Sha256)?,
        })
    }

    pub fn verify(&self, req: &Req<'_>) -> Result<(), Rejection> {
        let v = require_any(req, &GITEA)?;
        let display = if req.header(GITEA[0].lower).is_some() {
            GITEA[0].display
        } else {
            GITEA[1].display
        };
        let sig = bare_hex(v, display)?;
        if any_match(&self.keys, &[req.body], &[sig]) {
            Ok(())
        } else {
            Err(no_match())
        }
    }

    /// `X-Gitea-Signature: <hex>`.
    pub fn sign(&self, body: &[u8]) -> Result<SignedHeaders, String> {
        Ok(vec![header_pair(
            GITEA[0],
            hex::encode(sign_current(&self.keys, &[body])?),
        )])
    }
}

#[cfg(test)]
mod tests {
    use super::super::Scheme;
    use super::super::test_support::*;

    const SECRET: &str = "It's a Secret to Everybody";

    #[test]
    fn github_published_vector() {
        let v = cfg(Scheme::Github, &[SECRET]).compile().unwrap();
        let r = TestReq::post("Hello, World!").header(
            "X-Hub-Signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        );
        assert_eq!(r.check(&v, 0), Ok(()));
        // upper-case hex is the same signature
        let r2 = r.clone().with(
            "X-Hub-Signature-256",
            "sha256=757107EA0EB2509FC211221CCE984B8A37570B6D7586C22C46F4379C8B043E17",
        );
        assert_eq!(r2.check(&v, 0), Ok(()));
        let tampered = r.clone().body("Hello, World?");
        assert_eq!(
            assert_bad(tampered.check(&v, 0)),
            "signature does not match any configured secret"
        );
        let wrong = cfg(Scheme::Github, &["other"]).compile().unwrap();
        assert_bad(r.check(&wrong, 0));
        let missing = TestReq::post("Hello, World!");
        assert_eq!(
            assert_bad(missing.check(&v, 0)),
            "header X-Hub-Signature-256 is missing"
        );
        let malformed = r.clone().with("X-Hub-Signature-256", "757107ea");
        assert!(assert_bad(malformed.check(&v, 0)).contains("sha256=<hex>"));
    }

    #[test]
    fn github_legacy_sha1_only_when_sha256_absent() {
        let v = cfg(Scheme::Github, &[SECRET]).compile().unwrap();
        let sha1 = hex::encode(hmac_sha1(SECRET.as_bytes(), b"Hello, World!"));
        let r = TestReq::post("Hello, World!").header("X-Hub-Signature", format!("sha1={sha1}"));
        assert_eq!(r.check(&v, 0), Ok(()));
        // a wrong sha256 header is not rescued by a right sha1 one
        let both = r
            .clone()
            .header("X-Hub-Signature-256", format!("sha256={}", "00".repeat(32)));
        assert_bad(both.check(&v, 0));
        assert_bad(r.clone().body("x").check(&v, 0));
    }

    #[test]
    fn github_rotation_and_delivery_id() {
        let v = cfg(Scheme::Github, &["new-secret", SECRET]).compile().unwrap();
        for s in ["new-secret", SECRET] {
            let sig = hex::encode(hmac_sha256(s.as_bytes(), b"{}"));
            let r = TestReq::post("{}")
                .header("X-Hub-Signature-256", format!("sha256={sig}"))
                .header("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958");
            assert_eq!(r.check(&v, 0), Ok(()));
            assert_eq!(
                v.delivery_id(&r.signed(), None).as_deref(),
                Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
            );
        }
    }

    #[test]
    fn gitlab_token() {
        let v = cfg(Scheme::Gitlab, &["tok-old", "tok-new"]).compile().unwrap();
        for t in ["tok-old", "tok-new"] {
            let r = TestReq::post("{}")
                .header("X-Gitlab-Token", t)
                .header("X-Gitlab-Event-UUID", "uuid-1");
            assert_eq!(r.check(&v, 0), Ok(()));
            assert_eq!(v.delivery_id(&r.signed(), None).as_deref(), Some("uuid-1"));
        }
        let wrong = TestReq::post("{}").header("X-Gitlab-Token", "tok-ol");
        let res = wrong.check(&v, 0);
        assert_no_secret(&res, &["tok-old", "tok-new"]);
        assert_bad(res);
        assert_eq!(
            assert_bad(TestReq::post("{}").check(&v, 0)),
            "header X-Gitlab-Token is missing"
        );
        // the token does not cover the body: a changed body still passes (documented)
        let r = TestReq::post("other").header("X-Gitlab-Token", "tok-new");
        assert_eq!(r.check(&v, 0), Ok(()));
        let r = TestReq::post("{}").header("Idempotency-Key", "idem");
        assert_eq!(v.delivery_id(&r.signed(), None).as_deref(), Some("idem"));
    }

    #[test]
    fn bitbucket() {
        let body = br#"{"eventKey":"repo:refs_changed"}"#;
        let v = cfg(Scheme::Bitbucket, &["bb-secret", "bb-old"]).compile().unwrap();
        for s in ["bb-secret", "bb-old"] {
            let sig = hex::encode(hmac_sha256(s.as_bytes(), body));
            let r = TestReq::post(body)
                .header("X-Hub-Signature", format!("sha256={sig}"))
                .header("X-Request-Id", "req-1");
            assert_eq!(r.check(&v, 0), Ok(()));
            assert_eq!(v.delivery_id(&r.signed(), None).as_deref(), Some("req-1"));
            assert_bad(r.clone().body(b"{}").check(&v, 0));
        }
        let wrong = cfg(Scheme::Bitbucket, &["nope"]).compile().unwrap();
        let sig = hex::encode(hmac_sha256(b"bb-secret", body));
        let r = TestReq::post(body).header("X-Hub-Signature", format!("sha256={sig}"));
        assert_bad(r.check(&wrong, 0));
        assert_eq!(
            assert_bad(TestReq::post(body).check(&v, 0)),
            "header X-Hub-Signature is missing"
        );
        let jira = TestReq::post(body).header("X-Atlassian-Webhook-Identifier", "jira-9");
        assert_eq!(v.delivery_id(&jira.signed(), None).as_deref(), Some("jira-9"));
    }

    #[test]
    fn gitea_and_forgejo() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let v = cfg(Scheme::Gitea, &["g1", "g2"]).compile().unwrap();
        for s in ["g1", "g2"] {
            let sig = hex::encode(hmac_sha256(s.as_bytes(), body));
            let r = TestReq::post(body)
                .header("X-Gitea-Signature", sig.clone())
                .header("X-Gitea-Delivery", "d-1");
            assert_eq!(r.check(&v, 0), Ok(()));
            assert_eq!(v.delivery_id(&r.signed(), None).as_deref(), Some("d-1"));
            assert_bad(r.clone().body("x").check(&v, 0));
            let f = TestReq::post(body).header("X-Forgejo-Signature", sig);
            assert_eq!(f.check(&v, 0), Ok(()));
        }
        let sig = hex::encode(hmac_sha256(b"g1", body));
        let prefixed = TestReq::post(body).header("X-Gitea-Signature", format!("sha256={sig}"));
        assert!(assert_bad(prefixed.check(&v, 0)).contains("not hex"));
        let wrong = cfg(Scheme::Gitea, &["g3"]).compile().unwrap();
        assert_bad(TestReq::post(body).header("X-Gitea-Signature", sig).check(&wrong, 0));
        assert_eq!(
            assert_bad(TestReq::post(body).check(&v, 0)),
            "header X-Gitea-Signature is missing"
        );
    }
}
