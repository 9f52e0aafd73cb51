//! Schemes that sign the public URL: Twilio (URL + sorted form params, HMAC-SHA1), Square
//! (URL + body), HubSpot v3 (method + URL + body + timestamp).

use std::borrow::Cow;

use super::config::{ConfigError, VerificationConfig};
use super::hmac_util::{
    Algorithm, Hdr, HmacKey, SignedHeaders, any_match, bad_timestamp, bare_b64, check_window, encode_b64, hdr,
    header_pair, no_match, parse_unix, require_hdr, sha256, sign_current, tolerance, utf8_keys,
};
use super::{Rejection, Req};

const TWILIO: Hdr = hdr("x-twilio-signature", "X-Twilio-Signature");
const SQUARE: Hdr = hdr("x-square-hmacsha256-signature", "x-square-hmacsha256-signature");
const HUBSPOT: Hdr = hdr("x-hubspot-signature-v3", "X-HubSpot-Signature-v3");
const HUBSPOT_TS: Hdr = hdr("x-hubspot-request-timestamp", "X-HubSpot-Request-Timestamp");

/// The URL the provider signed: the configured one (with the request's query appended when it
/// has none of its own), else the request's.
pub(crate) fn effective_url<'a>(configured: Option<&'a str>, request_url: &'a str) -> Cow<'a, str> {
    match configured {
        None => Cow::Borrowed(request_url),
        Some(c) if c.contains('?') => Cow::Borrowed(c),
        Some(c) => match request_url.split_once('?') {
            Some((_, q)) => Cow::Owned(format!("{c}?{q}")),
            None => Cow::Borrowed(c),
        },
    }
}

/// The URL itself and the variant with the default port added (when absent) or removed (when
/// present), as Twilio's SDKs try both.
pub(crate) fn port_variants(url: &str) -> Vec<String> {
    let mut out = vec![url.to_string()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rfind('@') {
        Some(i) => authority.split_at(i + 1),
        None => ("", authority),
    };
    // a port is a ':' followed by digits after the host (after ']' for IPv6 literals)
    let host_end = hostport.rfind(']').map(|i| i + 1).unwrap_or(0);
    let port_colon = hostport[host_end..].rfind(':').map(|i| i + host_end);
    let alt = match port_colon {
        Some(i) => {
            let port = &hostport[i + 1..];
            if port.bytes().all(|b| b.is_ascii_digit()) {
                Some(format!("{scheme}://{userinfo}{}{tail}", &hostport[..i]))
            } else {
                None
            }
        }
        None => {
            let default = if scheme.eq_ignore_ascii_case("https") {
                Some("443")
            } else if scheme.eq_ignore_ascii_case("http") {
                Some("80")
            } else {
                None
            };
            default.map(|p| format!("{scheme}://{userinfo}{hostport}:{p}{tail}"))
        }
    };
    if let Some(a) = alt
        && a != url
    {
        out.push(a);
    }
    out
}

fn configured_url(c: &VerificationConfig) -> Option<String> {
    c.url.clone()
}

/// Twilio: `X-Twilio-Signature: base64(HMAC-SHA1(auth token, url + sorted name+value pairs))`.
/// JSON bodies: the URL carries `bodySHA256=<hex sha256(body)>` and no params are appended.
pub(crate) struct Twilio {
    keys: Vec<HmacKey>,
    url: Option<String>,
}

impl Twilio {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        Ok(Twilio {
            keys: utf8_keys(&c.secrets, Algorithm::Sha1)?,
            url: configured_url(c),
        })
    }

    pub fn verify(&self, req: &Req<'_>) -> Result<(), Rejection> {
        let sig = bare_b64(require_hdr(req, TWILIO)?, TWILIO.display)?;
        let url = effective_url(self.url.as_deref(), req.url);
        let (body_hash, tail) = twilio_tail(&url, req.method, req.body);
        let matched = port_variants(&url)
            .iter()
            .any(|u| any_match(&self.keys, &[u.as_bytes(), &tail], &[&sig]));
        if !matched {
            return Err(no_match());
        }
        if let Some(h) = body_hash {
            let actual = hex::encode(sha256(req.body));
            if !actual.eq_ignore_ascii_case(h.trim()) {
                return Err(Rejection::BadSignature(
                    "the body does not match the bodySHA256 in the signed URL".into(),
                ));
            }
        }
        Ok(())
    }

    /// `X-Twilio-Signature` for a POST of `body` to `url` (or the configured URL).
    pub fn sign(&self, body: &[u8], url: &str) -> Result<SignedHeaders, String> {
        let url = effective_url(self.url.as_deref(), url);
        let (_, tail) = twilio_tail(&url, "POST", body);
        let sig = sign_current(&self.keys, &[url.as_bytes(), &tail])?;
        Ok(vec![header_pair(TWILIO, encode_b64(&sig))])
    }
}

/// The `bodySHA256` the signed URL carries, if any, and what Twilio appends to the URL before
/// signing: the sorted form parameters' names and values (none for GET, HEAD, or when the URL
/// carries `bodySHA256`).
fn twilio_tail(url: &str, method: &str, body: &[u8]) -> (Option<String>, Vec<u8>) {
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    let query = query.split_once('#').map(|(q, _)| q).unwrap_or(query);
    let body_hash = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| v.into_owned());
    let mut params: Vec<(Cow<'_, str>, Cow<'_, str>)> = Vec::new();
    let is_get = method.eq_ignore_ascii_case("GET") || method.eq_ignore_ascii_case("HEAD");
    if body_hash.is_none() && !is_get {
        params = form_urlencoded::parse(body).collect();
        params.sort();
    }
    let mut tail = Vec::new();
    for (k, v) in &params {
        tail.extend_from_slice(k.as_bytes());
        tail.extend_from_slice(v.as_bytes());
    }
    (body_hash, tail)
}

/// Square: `x-square-hmacsha256-signature: base64(HMAC-SHA256(key, notification URL + body))`.
pub(crate) struct Square {
    keys: Vec<HmacKey>,
    url: Option<String>,
}

impl Square {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        Ok(Square {
            keys: utf8_keys(&c.secrets, Algorithm::Sha256)?,
            url: configured_url(c),
        })
    }

    pub fn verify(&self, req: &Req<'_>) -> Result<(), Rejection> {
        let sig = bare_b64(require_hdr(req, SQUARE)?, SQUARE.display)?;
        let url = effective_url(self.url.as_deref(), req.url);
        if any_match(&self.keys, &[url.as_bytes(), req.body], &[sig]) {
            Ok(())
        } else {
            Err(no_match())
        }
    }

    pub fn sign(&self, body: &[u8], url: &str) -> Result<SignedHeaders, String> {
        let url = effective_url(self.url.as_deref(), url);
        let sig = sign_current(&self.keys, &[url.as_bytes(), body])?;
        Ok(vec![header_pair(SQUARE, encode_b64(&sig))])
    }
}

/// HubSpot v3: `base64(HMAC-SHA256(client secret, method + uri + body + timestamp))`, the
/// timestamp in ms, 300 s.
pub(crate) struct Hubspot {
    keys: Vec<HmacKey>,
    url: Option<String>,
    tolerance: Option<u64>,
}

/// HubSpot decodes these percent-escapes in the URI before signing (and only these).
pub(crate) fn hubspot_uri(uri: &str) -> Cow<'_, str> {
    if !uri.contains('%') {
        return Cow::Borrowed(uri);
    }
    const TABLE: [(&str, char); 12] = [
        ("3A", ':'),
        ("2F", '/'),
        ("3F", '?'),
        ("40", '@'),
        ("21", '!'),
        ("24", '$'),
        ("27", '\''),
        ("28", '('),
        ("29", ')'),
        ("2A", '*'),
        ("2C", ','),
        ("3B", ';'),
    ];
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    while let Some(i) = rest.find('%') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let decoded = after
            .get(..2)
            .and_then(|code| TABLE.iter().find(|(c, _)| c.eq_ignore_ascii_case(code)));
        match decoded {
            Some((_, ch)) => {
                out.push(*ch);
                rest = &after[2..];
            }
            None => {
                out.push('%');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

impl Hubspot {
    pub fn compile(c: &VerificationConfig) -> Result<Self, ConfigError> {
        Ok(Hubspot {
            keys: utf8_keys(&c.secrets, Algorithm::Sha256)?,
            url: configured_url(c),
            tolerance: tolerance(c.tolerance_seconds, Some(300)),
        })
    }

    pub fn verify(&self, req: &Req<'_>, now: i64) -> Result<(), Rejection> {
        let sig = bare_b64(require_hdr(req, HUBSPOT)?, HUBSPOT.display)?;
        let ts_raw = require_hdr(req, HUBSPOT_TS)?;
        let ms = parse_unix(ts_raw).ok_or_else(|| bad_timestamp(HUBSPOT_TS.display, ts_raw))?;
        let url = effective_url(self.url.as_deref(), req.url);
        let uri = hubspot_uri(&url);
        if !any_match(
            &self.keys,
            &[req.method.as_bytes(), uri.as_bytes(), req.body, ts_raw.as_bytes()],
            &[sig],
        ) {
            return Err(no_match());
        }
        check_window(ms.div_euclid(1000), &format!("{ts_raw} (ms)"), now, self.tolerance)
    }

    /// The v3 signature of a POST at `now` (milliseconds) and its timestamp header.
    pub fn sign(&self, body: &[u8], url: &str, now: i64) -> Result<SignedHeaders, String> {
        let ms = now.saturating_mul(1000).to_string();
        let url = effective_url(self.url.as_deref(), url);
        let uri = hubspot_uri(&url);
        let sig = sign_current(&self.keys, &[b"POST", uri.as_bytes(), body, ms.as_bytes()])?;
        Ok(vec![
            header_pair(HUBSPOT, encode_b64(&sig)),
            header_pair(HUBSPOT_TS, ms),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::super::Scheme;
    use super::super::test_support::*;
    use super::*;
    use proptest::prelude::*;

    const TWILIO_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

    fn twilio_body(number: &str) -> String {
        // form-encoded, in the order Twilio sends them (not sorted)
        form_urlencoded::Serializer::new(String::new())
            .append_pair("To", "+18005551212")
            .append_pair("Digits", "1234")
            .append_pair("Caller", number)
            .append_pair("From", number)
            .append_pair("CallSid", "CA1234567890ABCDE")
            .finish()
    }

    #[test]
    fn twilio_published_vectors() {
        let v = cfg(Scheme::Twilio, &["12345"]).compile().unwrap();
        let r = TestReq::post(twilio_body("+14158675310"))
            .url(TWILIO_URL)
            .header("X-Twilio-Signature", "GvWf1cFY/Q7PnoempGyD5oXAezc=")
            .header("I-Twilio-Idempotency-Token", "idem-1");
        assert_eq!(r.check(&v, 0), Ok(()));
        assert_eq!(v.delivery_id(&r.signed(), None).as_deref(), Some("idem-1"));
        let r2 = TestReq::post(twilio_body("+14158675309"))
            .url(TWILIO_URL)
            .header("X-Twilio-Signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
        assert_eq!(r2.check(&v, 0), Ok(()));
        // tampered param, wrong URL, wrong token, missing header
        assert_bad(r.clone().body(twilio_body("+14158675309")).check(&v, 0));
        assert_bad(
            r.clone()
                .url("https://mycompany.com/myapp.php?foo=1&bar=3")
                .check(&v, 0),
        );
        assert_bad(r.check(&cfg(Scheme::Twilio, &["54321"]).compile().unwrap(), 0));
        assert_eq!(
            assert_bad(r.clone().without("X-Twilio-Signature").check(&v, 0)),
            "header X-Twilio-Signature is missing"
        );
        // the same URL with the default port, as some proxies report it
        let ported = r.clone().url("https://mycompany.com:443/myapp.php?foo=1&bar=2");
        assert_eq!(ported.check(&v, 0), Ok(()));
        // configured public URL (server behind a proxy sees an internal URL)
        let mut c = cfg(Scheme::Twilio, &["12345"]);
        c.url = Some("https://mycompany.com/myapp.php".into());
        let behind = r.clone().url("http://10.0.0.5:8080/api/v1/webhooks/k?foo=1&bar=2");
        assert_eq!(behind.check(&c.compile().unwrap(), 0), Ok(()));
    }

    #[test]
    fn twilio_rotation() {
        let v = cfg(Scheme::Twilio, &["new-token", "12345"]).compile().unwrap();
        let r = TestReq::post(twilio_body("+14158675310"))
            .url(TWILIO_URL)
            .header("X-Twilio-Signature", "GvWf1cFY/Q7PnoempGyD5oXAezc=");
        assert_eq!(r.check(&v, 0), Ok(()));
        let data =
            format!("{TWILIO_URL}CallSidCA1234567890ABCDECaller+14158675310Digits1234From+14158675310To+18005551212");
        let sig = b64(&hmac_sha1(b"new-token", data.as_bytes()));
        assert_eq!(r.with("X-Twilio-Signature", sig).check(&v, 0), Ok(()));
    }

    #[test]
    fn twilio_json_body() {
        let body = r#"{"property": "value", "boolean": true}"#;
        // From python3: hashlib.sha256(body).hexdigest()
        let body_hash = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620".to_string();
        assert_eq!(
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(body.as_bytes())),
            body_hash
        );
        let url = format!("https://mycompany.com/myapp.php?bodySHA256={body_hash}");
        let sig = b64(&hmac_sha1(b"12345", url.as_bytes()));
        let v = cfg(Scheme::Twilio, &["12345"]).compile().unwrap();
        let r = TestReq::post(body)
            .url(&url)
            .header("Content-Type", "application/json")
            .header("X-Twilio-Signature", sig);
        assert_eq!(r.check(&v, 0), Ok(()));
        let m = assert_bad(r.clone().body(r#"{"property": "other"}"#).check(&v, 0));
        assert!(m.contains("bodySHA256"), "{m}");
    }

    #[test]
    fn twilio_get_signs_url_only() {
        let url = "https://example.com/voice?CallSid=CA1&From=%2B1555";
        let sig = b64(&hmac_sha1(b"12345", url.as_bytes()));
        let v = cfg(Scheme::Twilio, &["12345"]).compile().unwrap();
        let r = TestReq::post("")
            .method("GET")
            .url(url)
            .header("X-Twilio-Signature", sig);
        assert_eq!(r.check(&v, 0), Ok(()));
    }

    #[test]
    fn square_published_vector() {
        let v = cfg(Scheme::Square, &["asdf1234"]).compile().unwrap();
        let r = TestReq::post(r#"{"hello":"world"}"#)
            .url("https://example.com/webhook")
            .header(
                "x-square-hmacsha256-signature",
                "2kRE5qRU2tR+tBGlDwMEw2avJ7QM4ikPYD/PJ3bd9Og=",
            );
        assert_eq!(r.check(&v, 0), Ok(()));
        assert_bad(r.clone().body(r#"{"hello":"world!"}"#).check(&v, 0));
        assert_bad(r.clone().url("https://example.com/webhook2").check(&v, 0));
        assert_bad(r.check(&cfg(Scheme::Square, &["asdf12345"]).compile().unwrap(), 0));
        assert_eq!(
            assert_bad(r.clone().without("x-square-hmacsha256-signature").check(&v, 0)),
            "header x-square-hmacsha256-signature is missing"
        );
        // configured URL overrides the request's
        let mut c = cfg(Scheme::Square, &["other-key", "asdf1234"]);
        c.url = Some("https://example.com/webhook".into());
        let internal = r.clone().url("http://127.0.0.1:8080/api/v1/webhooks/k");
        assert_eq!(internal.check(&c.compile().unwrap(), 0), Ok(()));
        // rotation: the other key
        let sig = b64(&hmac_sha256(
            b"other-key",
            br#"https://example.com/webhook{"hello":"world"}"#,
        ));
        let r2 = internal.with("x-square-hmacsha256-signature", sig);
        assert_eq!(r2.check(&c.compile().unwrap(), 0), Ok(()));
        let ev = TestReq::post(r#"{"merchant_id":"M","event_id":"6a8f5f28-54a1-4eb0-a98a-3111513fd4fc"}"#);
        assert_eq!(
            v.delivery_id(&ev.signed(), None).as_deref(),
            Some("6a8f5f28-54a1-4eb0-a98a-3111513fd4fc")
        );
    }

    #[test]
    fn hubspot_v3() {
        let secret = "hubspot-client-secret";
        let ts_ms = 1_700_000_000_000_i64;
        let body = r#"[{"eventId":1,"subscriptionType":"contact.creation"}]"#;
        let url = "https://hooks.example.com/api/v1/webhooks/k?a=b%3Ac";
        let signed = format!("POSThttps://hooks.example.com/api/v1/webhooks/k?a=b:c{body}{ts_ms}");
        let sig = b64(&hmac_sha256(secret.as_bytes(), signed.as_bytes()));
        let v = cfg(Scheme::Hubspot, &["old-secret", secret]).compile().unwrap();
        let r = TestReq::post(body)
            .url(url)
            .header("X-HubSpot-Signature-v3", sig)
            .header("X-HubSpot-Request-Timestamp", ts_ms.to_string());
        let now = ts_ms / 1000;
        assert_eq!(r.check(&v, now + 300), Ok(()));
        assert_stale(r.check(&v, now + 301));
        assert_stale(r.check(&v, now - 301));
        assert_bad(r.clone().body("[]").check(&v, now));
        assert_bad(r.clone().method("PUT").check(&v, now));
        assert_bad(
            r.clone()
                .with("X-HubSpot-Request-Timestamp", (ts_ms + 1).to_string())
                .check(&v, now),
        );
        assert_bad(r.check(&cfg(Scheme::Hubspot, &["x"]).compile().unwrap(), now));
        assert_eq!(
            assert_bad(r.clone().without("X-HubSpot-Signature-v3").check(&v, now)),
            "header X-HubSpot-Signature-v3 is missing"
        );
        assert_eq!(
            assert_bad(r.clone().without("X-HubSpot-Request-Timestamp").check(&v, now)),
            "header X-HubSpot-Request-Timestamp is missing"
        );
        let old_sig = b64(&hmac_sha256(b"old-secret", signed.as_bytes()));
        assert_eq!(r.with("X-HubSpot-Signature-v3", old_sig).check(&v, now), Ok(()));
    }

    #[test]
    fn helpers() {
        assert_eq!(hubspot_uri("a%3a%2Fb%20c%3D%"), "a:/b%20c%3D%");
        assert_eq!(hubspot_uri("%2"), "%2");
        assert_eq!(effective_url(Some("https://x/p"), "http://in/p?q=1"), "https://x/p?q=1");
        assert_eq!(
            effective_url(Some("https://x/p?z=2"), "http://in/p?q=1"),
            "https://x/p?z=2"
        );
        assert_eq!(effective_url(None, "http://in/p?q=1"), "http://in/p?q=1");
        assert_eq!(
            port_variants("https://a.com/p?x=1"),
            vec!["https://a.com/p?x=1", "https://a.com:443/p?x=1"]
        );
        assert_eq!(
            port_variants("http://u:pw@a.com:8080/p"),
            vec!["http://u:pw@a.com:8080/p", "http://u:pw@a.com/p"]
        );
        assert_eq!(
            port_variants("https://[::1]/p"),
            vec!["https://[::1]/p", "https://[::1]:443/p"]
        );
        assert_eq!(port_variants("nonsense"), vec!["nonsense"]);
    }

    proptest! {
        #[test]
        fn url_helpers_never_panic(s in ".*", t in ".*") {
            let _ = port_variants(&s);
            let _ = hubspot_uri(&s);
            let _ = effective_url(Some(&s), &t);
        }
    }
}
