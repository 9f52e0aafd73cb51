//! What became of a request to a webhook, as the request log records it.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Accepted,
    Duplicate,
    Disabled,
    IpDenied,
    RateLimited,
    MethodNotAllowed,
    TooLarge,
    BadSignature,
    StaleTimestamp,
    InvalidPayload,
    SchemaMismatch,
    Timeout,
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 13] = [
        Outcome::Accepted,
        Outcome::Duplicate,
        Outcome::Disabled,
        Outcome::IpDenied,
        Outcome::RateLimited,
        Outcome::MethodNotAllowed,
        Outcome::TooLarge,
        Outcome::BadSignature,
        Outcome::StaleTimestamp,
        Outcome::InvalidPayload,
        Outcome::SchemaMismatch,
        Outcome::Timeout,
        Outcome::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Accepted => "accepted",
            Outcome::Duplicate => "duplicate",
            Outcome::Disabled => "disabled",
            Outcome::IpDenied => "ip_denied",
            Outcome::RateLimited => "rate_limited",
            Outcome::MethodNotAllowed => "method_not_allowed",
            Outcome::TooLarge => "too_large",
            Outcome::BadSignature => "bad_signature",
            Outcome::StaleTimestamp => "stale_timestamp",
            Outcome::InvalidPayload => "invalid_payload",
            Outcome::SchemaMismatch => "schema_mismatch",
            Outcome::Timeout => "timeout",
            Outcome::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// The HTTP status the receiver answers with.
    pub fn status(self) -> u16 {
        match self {
            Outcome::Accepted | Outcome::Duplicate => 200,
            Outcome::InvalidPayload => 400,
            Outcome::BadSignature | Outcome::StaleTimestamp => 401,
            Outcome::Disabled | Outcome::IpDenied => 403,
            Outcome::MethodNotAllowed => 405,
            Outcome::Timeout => 408,
            Outcome::TooLarge => 413,
            Outcome::SchemaMismatch => 422,
            Outcome::RateLimited => 429,
            Outcome::Error => 503,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for o in Outcome::ALL {
            assert_eq!(Outcome::parse(o.as_str()), Some(o));
        }
        assert_eq!(Outcome::parse("nope"), None);
    }
}
