//! Shared primitives: keyed HMAC states, lenient decoders, constant-time matching, timestamp
//! windows, header access with helpful messages.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT};
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};
use subtle::{Choice, ConstantTimeEq};

use super::config::ConfigError;
use super::{Rejection, Req};

/// A hash function for HMAC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

/// An HMAC state with the key already absorbed; cloned per request, so the key is hashed once.
#[derive(Clone)]
pub(crate) enum HmacKey {
    Sha1(Hmac<Sha1>),
    Sha256(Hmac<Sha256>),
    Sha512(Hmac<Sha512>),
}

impl HmacKey {
    /// HMAC takes keys of any length, so this only fails if the crate changes its mind.
    pub fn new(alg: Algorithm, key: &[u8], field: &str) -> Result<Self, ConfigError> {
        let err = |_| ConfigError::new(field, "cannot be used as an HMAC key");
        Ok(match alg {
            Algorithm::Sha1 => HmacKey::Sha1(<Hmac<Sha1> as KeyInit>::new_from_slice(key).map_err(err)?),
            Algorithm::Sha256 => HmacKey::Sha256(<Hmac<Sha256> as KeyInit>::new_from_slice(key).map_err(err)?),
            Algorithm::Sha512 => HmacKey::Sha512(<Hmac<Sha512> as KeyInit>::new_from_slice(key).map_err(err)?),
        })
    }

    /// HMAC over the concatenation of `parts`.
    pub fn compute(&self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<M: Mac + Clone>(m: &M, parts: &[&[u8]]) -> Vec<u8> {
            let mut m = m.clone();
            for p in parts {
                m.update(p);
            }
            m.finalize().into_bytes().to_vec()
        }
        match self {
            HmacKey::Sha1(m) => run(m, parts),
            HmacKey::Sha256(m) => run(m, parts),
            HmacKey::Sha512(m) => run(m, parts),
        }
    }
}

/// One `HmacKey` per secret, the secrets taken as their UTF-8 bytes.
pub(crate) fn utf8_keys(secrets: &[String], alg: Algorithm) -> Result<Vec<HmacKey>, ConfigError> {
    secrets
        .iter()
        .enumerate()
        .map(|(i, s)| HmacKey::new(alg, s.as_bytes(), &secret_field(i)))
        .collect()
}

pub(crate) fn secret_field(i: usize) -> String {
    format!("verification.secrets[{i}]")
}

/// True when any key's HMAC over `parts` equals any candidate. Each comparison is constant time
/// (a length mismatch compares unequal).
pub(crate) fn any_match<C: AsRef<[u8]>>(keys: &[HmacKey], parts: &[&[u8]], candidates: &[C]) -> bool {
    if candidates.is_empty() {
        return false;
    }
    let mut ok = Choice::from(0);
    for k in keys {
        let tag = k.compute(parts);
        for c in candidates {
            ok |= tag.as_slice().ct_eq(c.as_ref());
        }
    }
    ok.into()
}

/// Headers a sender adds, as (display name, value) pairs.
pub(crate) type SignedHeaders = Vec<(String, String)>;

/// The MAC a sender holding the current (first) secret computes over the concatenation of
/// `parts`; the counterpart of [`any_match`] for signing.
pub(crate) fn sign_current(keys: &[HmacKey], parts: &[&[u8]]) -> Result<Vec<u8>, String> {
    keys.first()
        .map(|k| k.compute(parts))
        .ok_or_else(|| "no secret is configured to sign with".to_string())
}

/// Standard base64 with padding, as providers send it.
pub(crate) fn encode_b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// One header to send, named as shown in messages.
pub(crate) fn header_pair(h: Hdr, value: impl Into<String>) -> (String, String) {
    (h.display.to_string(), value.into())
}

/// The usual refusal when nothing matched.
pub(crate) fn no_match() -> Rejection {
    Rejection::BadSignature("signature does not match any configured secret".into())
}

/// Hex (either case), surrounding blanks ignored.
pub(crate) fn decode_hex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    hex::decode(s).ok()
}

/// Base64, standard or URL-safe alphabet, padding optional, surrounding blanks ignored.
pub(crate) fn decode_b64(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.contains(['-', '_']) {
        URL_SAFE_PAD_INDIFFERENT.decode(s).ok()
    } else {
        STANDARD_PAD_INDIFFERENT.decode(s).ok()
    }
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Strip an ASCII prefix, ignoring case.
pub(crate) fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// A header name as looked up (lower case) and as shown in messages.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hdr {
    pub lower: &'static str,
    pub display: &'static str,
}

pub(crate) const fn hdr(lower: &'static str, display: &'static str) -> Hdr {
    Hdr { lower, display }
}

/// A value quoted in a message: cut short, control characters replaced.
pub(crate) fn shown(s: &str) -> String {
    const MAX: usize = 40;
    let mut out: String = s
        .chars()
        .take(MAX)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(MAX).is_some() {
        out.push('…');
    }
    out
}

/// The header's trimmed value, or a BadSignature naming it when missing or blank.
pub(crate) fn require<'a>(req: &Req<'a>, lower: &str, display: &str) -> Result<&'a str, Rejection> {
    match req.header(lower) {
        None => Err(Rejection::BadSignature(format!("header {display} is missing"))),
        Some(v) if v.trim().is_empty() => Err(Rejection::BadSignature(format!("header {display} is empty"))),
        Some(v) => Ok(v.trim()),
    }
}

pub(crate) fn require_hdr<'a>(req: &Req<'a>, h: Hdr) -> Result<&'a str, Rejection> {
    require(req, h.lower, h.display)
}

/// The first of several alternative headers that is present (`names[0]` is named when none is).
pub(crate) fn require_any<'a>(req: &Req<'a>, names: &[Hdr]) -> Result<&'a str, Rejection> {
    for h in names {
        if req.header(h.lower).is_some() {
            return require_hdr(req, *h);
        }
    }
    let display = names.first().map(|h| h.display).unwrap_or("signature");
    Err(Rejection::BadSignature(format!("header {display} is missing")))
}

/// `<prefix><hex>` as found in GitHub-style headers.
pub(crate) fn prefixed_hex(value: &str, prefix: &str, display: &str) -> Result<Vec<u8>, Rejection> {
    strip_prefix_ci(value.trim(), prefix)
        .and_then(decode_hex)
        .ok_or_else(|| Rejection::BadSignature(format!("header {display} is not '{prefix}<hex>'")))
}

pub(crate) fn bare_hex(value: &str, display: &str) -> Result<Vec<u8>, Rejection> {
    decode_hex(value).ok_or_else(|| Rejection::BadSignature(format!("header {display} is not hex")))
}

pub(crate) fn bare_b64(value: &str, display: &str) -> Result<Vec<u8>, Rejection> {
    decode_b64(value).ok_or_else(|| Rejection::BadSignature(format!("header {display} is not base64")))
}

/// Split `a=1,b=2` style lists (`sep` between items, `=` inside); blanks trimmed, items without
/// `=` skipped.
pub(crate) fn kv_list(value: &str, sep: char) -> impl Iterator<Item = (&str, &str)> {
    value
        .split(sep)
        .filter_map(|item| item.split_once('='))
        .map(|(k, v)| (k.trim(), v.trim()))
}

/// Integer Unix seconds.
pub(crate) fn parse_unix(s: &str) -> Option<i64> {
    s.trim().parse::<i64>().ok()
}

pub(crate) fn bad_timestamp(display: &str, value: &str) -> Rejection {
    Rejection::BadSignature(format!("{display} {:?} is not a Unix timestamp", shown(value)))
}

/// Check `ts` (seconds) against `now` within `tolerance` (None: no check). `raw` is what the
/// sender sent, quoted in the message.
pub(crate) fn check_window(ts: i64, raw: &str, now: i64, tolerance: Option<u64>) -> Result<(), Rejection> {
    let Some(tol) = tolerance else {
        return Ok(());
    };
    let diff = i128::from(now) - i128::from(ts);
    let away = diff.unsigned_abs();
    if away > u128::from(tol) {
        let dir = if diff > 0 { "behind" } else { "ahead of" };
        return Err(Rejection::StaleTimestamp(format!(
            "timestamp {} is {away} s {dir} server time, tolerance {tol} s",
            shown(raw.trim())
        )));
    }
    Ok(())
}

/// Resolve a configured tolerance against a scheme default: unset → default, 0 → no check.
pub(crate) fn tolerance(configured: Option<u64>, default: Option<u64>) -> Option<u64> {
    match configured {
        Some(0) => None,
        Some(n) => Some(n),
        None => default,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decoders() {
        assert_eq!(decode_hex("0aFF"), Some(vec![0x0a, 0xff]));
        assert_eq!(decode_hex("0a F"), None);
        assert_eq!(decode_hex(""), None);
        assert_eq!(decode_b64("AQID"), Some(vec![1, 2, 3]));
        assert_eq!(decode_b64("AQI="), Some(vec![1, 2]));
        assert_eq!(decode_b64("AQI"), Some(vec![1, 2]));
        assert_eq!(decode_b64("-_8="), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_b64("+/8="), Some(vec![0xfb, 0xff]));
        assert_eq!(decode_b64("!!"), None);
    }

    #[test]
    fn windows() {
        assert!(check_window(1000, "1000", 1300, Some(300)).is_ok());
        assert!(check_window(1000, "1000", 700, Some(300)).is_ok());
        let e = check_window(1000, "1000", 1400, Some(300)).unwrap_err();
        assert_eq!(e.outcome(), "stale_timestamp");
        assert_eq!(
            e.message(),
            "timestamp 1000 is 400 s behind server time, tolerance 300 s"
        );
        let e = check_window(1400, "1400", 1000, Some(300)).unwrap_err();
        assert!(e.message().contains("ahead of"));
        assert!(check_window(i64::MIN, "x", i64::MAX, Some(u64::MAX - 1)).is_err());
        assert!(check_window(i64::MIN, "x", i64::MAX, Some(u64::MAX)).is_ok());
        assert!(check_window(0, "0", i64::MAX, None).is_ok());
        assert_eq!(tolerance(Some(0), Some(300)), None);
        assert_eq!(tolerance(None, Some(300)), Some(300));
        assert_eq!(tolerance(Some(10), None), Some(10));
    }

    #[test]
    fn prefix_ci() {
        assert_eq!(strip_prefix_ci("SHA256=ab", "sha256="), Some("ab"));
        assert_eq!(strip_prefix_ci("sha", "sha256="), None);
        // multi-byte input never splits inside a character
        assert_eq!(strip_prefix_ci("é", "a"), None);
        assert_eq!(strip_prefix_ci("aé", "a"), Some("é"));
    }

    #[test]
    fn shown_is_bounded() {
        let long = "x".repeat(1000);
        assert!(shown(&long).chars().count() <= 41);
        assert_eq!(shown("a\nb"), "a?b");
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in ".*", p in ".{0,8}") {
            let _ = decode_hex(&s);
            let _ = decode_b64(&s);
            let _ = strip_prefix_ci(&s, &p);
            let _ = prefixed_hex(&s, &p, "X");
            let _ = kv_list(&s, ',').count();
            let _ = kv_list(&s, ';').count();
            let _ = parse_unix(&s);
            let _ = shown(&s);
        }

        #[test]
        fn windows_never_panic(ts in any::<i64>(), now in any::<i64>(), tol in proptest::option::of(any::<u64>())) {
            let _ = check_window(ts, "t", now, tol);
        }
    }
}
