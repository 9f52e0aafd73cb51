//! Signing: the headers a genuine sender of a scheme adds, so the server can send itself a
//! correctly signed test request. Uses the current (first) secret. Only headers are produced;
//! schemes that sign inside the body or with a private key cannot be signed here.

use super::{Check, Verifier};

impl Verifier {
    /// The headers a sender of this scheme would add to a `POST` of `body` to `url` at
    /// `now_unix`, signed with the current (first) secret. `Err` explains why the scheme cannot
    /// be signed from here (timestamp or signature in the body, private keys, query tokens).
    /// The headers carry secret material (tokens, signatures): do not log them.
    pub fn sign(&self, body: &[u8], url: &str, now_unix: i64) -> Result<Vec<(String, String)>, String> {
        let now = now_unix;
        match &self.inner.check {
            Check::Github(c) => c.sign(body),
            Check::Gitlab(c) => c.sign(),
            Check::Bitbucket(c) => c.sign(body),
            Check::Gitea(c) => c.sign(body),
            Check::Stripe(c) => c.sign(body, now),
            Check::Paddle(c) => c.sign(body, now),
            Check::Slack(c) | Check::Zoom(c) => c.sign(body, now),
            Check::Shopify(c) => c.sign(body),
            Check::Pagerduty(c) => c.sign(body),
            Check::StandardWebhooks(c) => c.sign(body, now),
            Check::Twilio(c) => c.sign(body, url),
            Check::Square(c) => c.sign(body, url),
            Check::Hubspot(c) => c.sign(body, url, now),
            Check::Twitch(c) => c.sign(body, now),
            Check::Okta(c) => c.sign(),
            Check::Token(c) => c.sign(),
            Check::Hmac(c) => c.sign(body, now),
            Check::Linear(_) => Err("scheme linear checks a webhookTimestamp inside the body, \
                 so a test payload cannot be signed as sent"
                .into()),
            Check::Mailgun(_) => Err("scheme mailgun carries its signature inside the body, \
                 so a test payload cannot be signed as sent"
                .into()),
            Check::Discord(_) => Err("scheme discord is signed with Discord's private key, \
                 which Inlet does not have"
                .into()),
            Check::Sendgrid(_) => Err("scheme sendgrid is signed with SendGrid's private key, \
                 which Inlet does not have"
                .into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{TestReq, assert_bad, cfg, sample_verifiers};
    use super::super::{Scheme, Verifier};

    const NOW: i64 = 1_750_000_000;
    const URL: &str = "https://hooks.example.com/api/v1/webhooks/key123";
    const BODY: &[u8] = br#"{"id":"evt_1","type":"test","data":{"n":1}}"#;

    fn request(headers: Vec<(String, String)>, body: &[u8]) -> TestReq {
        let mut r = TestReq::post(body).url(URL);
        r.headers = headers;
        r
    }

    /// Token schemes send the secret itself: the body is not covered.
    fn signs_body(s: Scheme) -> bool {
        !matches!(s, Scheme::Gitlab | Scheme::Okta | Scheme::Token)
    }

    #[test]
    fn every_signable_scheme_round_trips() {
        let unsignable = [Scheme::Linear, Scheme::Mailgun, Scheme::Discord, Scheme::Sendgrid];
        for v in sample_verifiers() {
            let s = v.scheme();
            match v.sign(BODY, URL, NOW) {
                Ok(headers) => {
                    assert!(!unsignable.contains(&s), "{s} should not sign");
                    let req = request(headers.clone(), BODY);
                    assert_eq!(req.check(&v, NOW), Ok(()), "{s}: {headers:?}");
                    if signs_body(s) {
                        let tampered = request(headers, br#"{"id":"evt_2","type":"test","data":{"n":1}}"#);
                        assert_bad(tampered.check(&v, NOW));
                    }
                }
                Err(m) => {
                    assert!(unsignable.contains(&s), "{s} failed to sign: {m}");
                    assert!(m.contains(s.as_str()), "{s}: {m}");
                }
            }
        }
    }

    #[test]
    fn signs_with_the_current_secret_only() {
        let both = cfg(Scheme::Github, &["current", "old"]).compile().unwrap();
        let old_only = cfg(Scheme::Github, &["old"]).compile().unwrap();
        let current_only = cfg(Scheme::Github, &["current"]).compile().unwrap();
        let req = request(both.sign(BODY, URL, NOW).unwrap(), BODY);
        assert_eq!(req.check(&current_only, NOW), Ok(()));
        assert_bad(req.check(&old_only, NOW));
    }

    #[test]
    fn url_schemes_use_the_configured_url() {
        for s in [Scheme::Twilio, Scheme::Square, Scheme::Hubspot] {
            let mut c = cfg(s, &["secret"]);
            c.url = Some("https://public.example.org/hook".into());
            let v: Verifier = c.compile().unwrap();
            // the request arrives at an internal address; the provider signed the public one
            let req = request(v.sign(BODY, URL, NOW).unwrap(), BODY).url("http://10.0.0.5:8080/api/v1/webhooks/k");
            assert_eq!(req.check(&v, NOW), Ok(()), "{s}");
            // without the setting, the given URL is what is signed
            let plain = cfg(s, &["secret"]).compile().unwrap();
            let other = request(plain.sign(BODY, URL, NOW).unwrap(), BODY).url("https://elsewhere.example/x");
            assert_bad(other.check(&plain, NOW));
        }
    }

    #[test]
    fn generic_hmac_variants_round_trip() {
        let mut c = cfg(Scheme::Hmac, &["k"]);
        c.header = Some("X-Sig".into());
        c.encoding = Some("base64".into());
        c.algorithm = Some("sha512".into());
        let v = c.compile().unwrap();
        let h = v.sign(BODY, URL, NOW).unwrap();
        assert_eq!(h.len(), 1);
        assert_eq!(request(h, BODY).check(&v, NOW), Ok(()));
    }

    #[test]
    fn token_in_query_cannot_be_signed() {
        let mut c = cfg(Scheme::Token, &["tok"]);
        c.query_param = Some("token".into());
        let e = c.compile().unwrap().sign(BODY, URL, NOW).unwrap_err();
        assert!(e.contains("query parameter token"), "{e}");
        assert!(!e.contains("tok\""), "{e}");
        let mut c = cfg(Scheme::Token, &["tok"]);
        c.header = Some("X-Token".into());
        let v = c.compile().unwrap();
        let h = v.sign(BODY, URL, NOW).unwrap();
        assert_eq!(h, vec![("X-Token".to_string(), "tok".to_string())]);
        assert_bad(request(vec![("X-Token".into(), "nope".into())], BODY).check(&v, NOW));
    }

    #[test]
    fn timestamps_are_fresh_at_signing_time() {
        let v = cfg(Scheme::Slack, &["s"]).compile().unwrap();
        let req = request(v.sign(BODY, URL, NOW).unwrap(), BODY);
        assert_eq!(req.check(&v, NOW + 10), Ok(()));
        assert!(req.check(&v, NOW + 3600).is_err());
    }
}
