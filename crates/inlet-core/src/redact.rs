//! Which request headers carry credentials, so that stored copies (request
//! log, event metadata) never keep them.

pub const REDACTED: &str = "[redacted]";

const CREDENTIAL_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-gitlab-token",
    "x-api-key",
    "api-key",
    "x-okta-verification-challenge",
];
const CREDENTIAL_WORDS: &[&str] = &["token", "secret", "password", "passwd", "api-key", "apikey", "auth"];

/// `extra` names headers the trigger's settings use to carry a shared secret.
pub fn is_credential_header(lower_name: &str, extra: &[String]) -> bool {
    CREDENTIAL_HEADERS.contains(&lower_name)
        || CREDENTIAL_WORDS.iter().any(|w| contains(lower_name, w))
        || extra.iter().any(|e| e.eq_ignore_ascii_case(lower_name))
}

/// Header names are short: a plain scan costs less than preparing the
/// substring searcher of `str::contains` for each name and word.
fn contains(name: &str, word: &str) -> bool {
    name.as_bytes().windows(word.len()).any(|part| part == word.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_recognised() {
        for h in ["authorization", "cookie", "x-gitlab-token", "x-my-secret", "x-auth-key"] {
            assert!(is_credential_header(h, &[]), "{h}");
        }
        for h in ["content-type", "x-hub-signature-256", "x-github-delivery", "user-agent"] {
            assert!(!is_credential_header(h, &[]), "{h}");
        }
        assert!(is_credential_header("x-shared", &["X-Shared".into()]));
    }
}
