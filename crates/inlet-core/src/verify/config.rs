//! The settings (`VerificationConfig`), their validation into a `Verifier`, masking, and the
//! dedup-id sources.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json_path::JsonPath;

use super::hmac_util::{self, Hdr, hdr, sha256};
use super::{
    Check, Inner, Req, Verifier, asymmetric, body_hmac, generic, git, mailgun, parse_json_object, shared_token, slack,
    standard_webhooks, stripe, twitch, url_signed,
};

/// A verification scheme: a provider preset or a generic one (`hmac`, `token`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scheme {
    Github,
    Stripe,
    Slack,
    Shopify,
    StandardWebhooks,
    Gitlab,
    Bitbucket,
    Gitea,
    Twilio,
    Paddle,
    Linear,
    Twitch,
    Zoom,
    Pagerduty,
    Square,
    Hubspot,
    Mailgun,
    Discord,
    Sendgrid,
    Okta,
    Hmac,
    Token,
}

impl Scheme {
    /// Every scheme, in PROVIDERS.md order.
    pub const ALL: [Scheme; 22] = [
        Scheme::Github,
        Scheme::Stripe,
        Scheme::Slack,
        Scheme::Shopify,
        Scheme::StandardWebhooks,
        Scheme::Gitlab,
        Scheme::Bitbucket,
        Scheme::Gitea,
        Scheme::Twilio,
        Scheme::Paddle,
        Scheme::Linear,
        Scheme::Twitch,
        Scheme::Zoom,
        Scheme::Pagerduty,
        Scheme::Square,
        Scheme::Hubspot,
        Scheme::Mailgun,
        Scheme::Discord,
        Scheme::Sendgrid,
        Scheme::Okta,
        Scheme::Hmac,
        Scheme::Token,
    ];

    /// The serde / API name (`"standard-webhooks"`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Github => "github",
            Scheme::Stripe => "stripe",
            Scheme::Slack => "slack",
            Scheme::Shopify => "shopify",
            Scheme::StandardWebhooks => "standard-webhooks",
            Scheme::Gitlab => "gitlab",
            Scheme::Bitbucket => "bitbucket",
            Scheme::Gitea => "gitea",
            Scheme::Twilio => "twilio",
            Scheme::Paddle => "paddle",
            Scheme::Linear => "linear",
            Scheme::Twitch => "twitch",
            Scheme::Zoom => "zoom",
            Scheme::Pagerduty => "pagerduty",
            Scheme::Square => "square",
            Scheme::Hubspot => "hubspot",
            Scheme::Mailgun => "mailgun",
            Scheme::Discord => "discord",
            Scheme::Sendgrid => "sendgrid",
            Scheme::Okta => "okta",
            Scheme::Hmac => "hmac",
            Scheme::Token => "token",
        }
    }

    /// Whether the scheme checks a timestamp window (by default or when configured).
    pub fn has_timestamp(self) -> bool {
        matches!(
            self,
            Scheme::Stripe
                | Scheme::Slack
                | Scheme::StandardWebhooks
                | Scheme::Paddle
                | Scheme::Linear
                | Scheme::Twitch
                | Scheme::Zoom
                | Scheme::Hubspot
                | Scheme::Mailgun
                | Scheme::Discord
                | Scheme::Sendgrid
                | Scheme::Hmac
        )
    }

    /// Whether the scheme verifies with a public key (`public_key`) instead of secrets.
    pub fn uses_public_key(self) -> bool {
        matches!(self, Scheme::Discord | Scheme::Sendgrid)
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scheme {
    type Err = ConfigError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scheme::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| {
            ConfigError::new(
                "verification.scheme",
                format!("unknown scheme {:?}", hmac_util::shown(s)),
            )
        })
    }
}

/// Verification settings as the management API accepts them and as stored (secrets in plain
/// text here; sealing at rest happens elsewhere).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct VerificationConfig {
    pub scheme: Scheme,
    /// Secrets, current first; during rotation a request passes if any verifies it.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Timestamp window in seconds (past and future); 0 turns the check off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance_seconds: Option<u64>,
    /// `hmac`: `sha1`, `sha256` (default) or `sha512`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<String>,
    /// `hmac`: the signature header (required). `token`: the token header. `okta`: the header
    /// carrying the secret (default `authorization`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// `hmac`: `hex` (default) or `base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// `hmac`: a prefix before the signature, e.g. `sha256=`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// `hmac`: header with the Unix timestamp (seconds, or milliseconds, or RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp_header: Option<String>,
    /// `hmac`: header with a message id (for `{id}` in `signed_content`, and dedup).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_header: Option<String>,
    /// `hmac`: what is signed, a template over `{id}`, `{timestamp}`, `{body}` (default `{body}`;
    /// `{{` and `}}` stand for literal braces).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_content: Option<String>,
    /// `token`: the query parameter carrying the token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_param: Option<String>,
    /// `twilio`, `square`, `hubspot`: the public URL configured at the provider. Without a query
    /// part, the incoming request's query is appended. Absent: the request's URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `discord`: hex Ed25519 key. `sendgrid`: base64 SPKI (or PEM) P-256 key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key: Option<String>,
    /// Any scheme: take the dedup id from this header instead of the preset's source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_header: Option<String>,
    /// Any scheme: take the dedup id from this JSONPath (RFC 9535) over the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_jsonpath: Option<String>,
}

impl VerificationConfig {
    /// A config with only a scheme and secrets; the other fields unset.
    pub fn new(scheme: Scheme, secrets: Vec<String>) -> Self {
        VerificationConfig {
            scheme,
            secrets,
            tolerance_seconds: None,
            algorithm: None,
            header: None,
            encoding: None,
            prefix: None,
            timestamp_header: None,
            id_header: None,
            signed_content: None,
            query_param: None,
            url: None,
            public_key: None,
            dedup_header: None,
            dedup_jsonpath: None,
        }
    }

    /// Validate and precompute (decode secrets, parse keys) once, so the hot path does no
    /// parsing. Errors name the field and the offending value, never a secret.
    pub fn compile(&self) -> Result<Verifier, ConfigError> {
        self.check_fields()?;
        self.check_secrets()?;
        let dedup = self.dedup_source()?;
        let check = match self.scheme {
            Scheme::Github => Check::Github(git::Github::compile(self)?),
            Scheme::Gitlab => Check::Gitlab(git::Gitlab::compile(self)),
            Scheme::Bitbucket => Check::Bitbucket(git::Bitbucket::compile(self)?),
            Scheme::Gitea => Check::Gitea(git::Gitea::compile(self)?),
            Scheme::Stripe => Check::Stripe(stripe::Stripe::compile(self)?),
            Scheme::Paddle => Check::Paddle(stripe::Paddle::compile(self)?),
            Scheme::Slack => Check::Slack(slack::V0::slack(self)?),
            Scheme::Zoom => Check::Zoom(slack::V0::zoom(self)?),
            Scheme::Shopify => Check::Shopify(body_hmac::Shopify::compile(self)?),
            Scheme::Linear => Check::Linear(body_hmac::Linear::compile(self)?),
            Scheme::Pagerduty => Check::Pagerduty(body_hmac::Pagerduty::compile(self)?),
            Scheme::StandardWebhooks => Check::StandardWebhooks(standard_webhooks::StandardWebhooks::compile(self)?),
            Scheme::Twilio => Check::Twilio(url_signed::Twilio::compile(self)?),
            Scheme::Square => Check::Square(url_signed::Square::compile(self)?),
            Scheme::Hubspot => Check::Hubspot(url_signed::Hubspot::compile(self)?),
            Scheme::Twitch => Check::Twitch(twitch::Twitch::compile(self)?),
            Scheme::Mailgun => Check::Mailgun(mailgun::Mailgun::compile(self)?),
            Scheme::Discord => Check::Discord(asymmetric::Discord::compile(self)?),
            Scheme::Sendgrid => Check::Sendgrid(asymmetric::Sendgrid::compile(self)?),
            Scheme::Okta => Check::Okta(shared_token::Okta::compile(self)?),
            Scheme::Token => Check::Token(shared_token::Token::compile(self)?),
            Scheme::Hmac => Check::Hmac(generic::GenericHmac::compile(self)?),
        };
        Ok(Verifier::from_inner(Inner {
            scheme: self.scheme,
            check,
            dedup,
        }))
    }

    /// The same config with every secret masked for display: `••••abcd` (the last 4 characters)
    /// for secrets of 16 characters or more, `••••` for shorter ones.
    pub fn masked(&self) -> VerificationConfig {
        let mut out = self.clone();
        out.secrets = self.secrets.iter().map(|s| mask_secret(s)).collect();
        out
    }

    /// Refuse fields that the scheme does not use, so a typo'd setup fails loudly.
    fn check_fields(&self) -> Result<(), ConfigError> {
        let s = self.scheme;
        let hmac = s == Scheme::Hmac;
        let set: [(&str, bool, bool); 12] = [
            ("tolerance_seconds", self.tolerance_seconds.is_some(), s.has_timestamp()),
            ("algorithm", self.algorithm.is_some(), hmac),
            (
                "header",
                self.header.is_some(),
                matches!(s, Scheme::Hmac | Scheme::Token | Scheme::Okta),
            ),
            ("encoding", self.encoding.is_some(), hmac),
            ("prefix", self.prefix.is_some(), hmac),
            ("timestamp_header", self.timestamp_header.is_some(), hmac),
            ("id_header", self.id_header.is_some(), hmac),
            ("signed_content", self.signed_content.is_some(), hmac),
            ("query_param", self.query_param.is_some(), s == Scheme::Token),
            (
                "url",
                self.url.is_some(),
                matches!(s, Scheme::Twilio | Scheme::Square | Scheme::Hubspot),
            ),
            ("public_key", self.public_key.is_some(), s.uses_public_key()),
            (
                "dedup_header",
                self.dedup_header.is_some() && self.dedup_jsonpath.is_some(),
                false,
            ),
        ];
        for (name, present, allowed) in set {
            if present && !allowed {
                if name == "dedup_header" {
                    return Err(ConfigError::new(
                        "verification.dedup_header",
                        "set dedup_header or dedup_jsonpath, not both",
                    ));
                }
                return Err(ConfigError::new(
                    format!("verification.{name}"),
                    format!("is not used by scheme {s}"),
                ));
            }
        }
        if let Some(u) = &self.url
            && (!(u.starts_with("https://") || u.starts_with("http://")) || u.len() <= 8)
        {
            return Err(ConfigError::new(
                "verification.url",
                format!("{:?} is not an absolute http(s) URL", hmac_util::shown(u)),
            ));
        }
        Ok(())
    }

    fn check_secrets(&self) -> Result<(), ConfigError> {
        if self.scheme.uses_public_key() {
            if !self.secrets.is_empty() {
                return Err(ConfigError::new(
                    "verification.secrets",
                    format!("scheme {} verifies with public_key, not secrets", self.scheme),
                ));
            }
            return Ok(());
        }
        if self.secrets.is_empty() {
            return Err(ConfigError::new(
                "verification.secrets",
                format!("scheme {} needs at least one secret", self.scheme),
            ));
        }
        if self.secrets.len() > MAX_SECRETS {
            return Err(ConfigError::new(
                "verification.secrets",
                format!(
                    "{} secrets given, at most {MAX_SECRETS} are accepted",
                    self.secrets.len()
                ),
            ));
        }
        for (i, s) in self.secrets.iter().enumerate() {
            let field = hmac_util::secret_field(i);
            if s.is_empty() {
                return Err(ConfigError::new(field, "is empty"));
            }
            if is_masked_secret(s) {
                return Err(ConfigError::new(field, "is a masked placeholder; send the real secret"));
            }
            if s.trim() != s {
                return Err(ConfigError::new(
                    field,
                    "has leading or trailing whitespace (a copy-paste slip?)",
                ));
            }
        }
        Ok(())
    }

    fn dedup_source(&self) -> Result<DedupSource, ConfigError> {
        if let Some(h) = &self.dedup_header {
            return Ok(DedupSource::Header(header_name("verification.dedup_header", h)?));
        }
        if let Some(p) = &self.dedup_jsonpath {
            let path = JsonPath::parse(p).map_err(|e| {
                ConfigError::new(
                    "verification.dedup_jsonpath",
                    format!("{:?} is not a JSONPath: {e}", hmac_util::shown(p)),
                )
            })?;
            return Ok(DedupSource::JsonPath(Box::new(path)));
        }
        const GITHUB: &[Hdr] = &[hdr("x-github-delivery", "X-GitHub-Delivery")];
        const SHOPIFY: &[Hdr] = &[hdr("x-shopify-webhook-id", "X-Shopify-Webhook-Id")];
        const STDWH: &[Hdr] = &[hdr("webhook-id", "webhook-id"), hdr("svix-id", "svix-id")];
        const GITLAB: &[Hdr] = &[
            hdr("x-gitlab-event-uuid", "X-Gitlab-Event-UUID"),
            hdr("idempotency-key", "Idempotency-Key"),
        ];
        const BITBUCKET: &[Hdr] = &[
            hdr("x-request-id", "X-Request-Id"),
            hdr("x-atlassian-webhook-identifier", "X-Atlassian-Webhook-Identifier"),
            hdr("x-request-uuid", "X-Request-UUID"),
        ];
        const GITEA: &[Hdr] = &[
            hdr("x-gitea-delivery", "X-Gitea-Delivery"),
            hdr("x-forgejo-delivery", "X-Forgejo-Delivery"),
        ];
        const TWILIO: &[Hdr] = &[hdr("i-twilio-idempotency-token", "I-Twilio-Idempotency-Token")];
        const LINEAR: &[Hdr] = &[hdr("linear-delivery", "Linear-Delivery")];
        const TWITCH: &[Hdr] = &[hdr("twitch-eventsub-message-id", "Twitch-Eventsub-Message-Id")];
        Ok(match self.scheme {
            Scheme::Github => DedupSource::Headers(GITHUB),
            Scheme::Stripe => DedupSource::BodyField(&["id"]),
            Scheme::Shopify => DedupSource::Headers(SHOPIFY),
            Scheme::StandardWebhooks => DedupSource::Headers(STDWH),
            Scheme::Gitlab => DedupSource::Headers(GITLAB),
            Scheme::Bitbucket => DedupSource::Headers(BITBUCKET),
            Scheme::Gitea => DedupSource::Headers(GITEA),
            Scheme::Twilio => DedupSource::Headers(TWILIO),
            Scheme::Paddle | Scheme::Square => DedupSource::BodyField(&["event_id"]),
            Scheme::Linear => DedupSource::Headers(LINEAR),
            Scheme::Twitch => DedupSource::Headers(TWITCH),
            Scheme::Mailgun => DedupSource::Mailgun,
            Scheme::Sendgrid => DedupSource::Sendgrid,
            Scheme::Hmac => match &self.id_header {
                Some(h) => DedupSource::Header(header_name("verification.id_header", h)?),
                None => DedupSource::None,
            },
            Scheme::Slack
            | Scheme::Zoom
            | Scheme::Pagerduty
            | Scheme::Hubspot
            | Scheme::Discord
            | Scheme::Okta
            | Scheme::Token => DedupSource::None,
        })
    }
}

/// At most this many secrets per setting (rotation needs two or three).
pub(crate) const MAX_SECRETS: usize = 16;

const MASK: &str = "••••";

fn mask_secret(s: &str) -> String {
    if is_masked_secret(s) {
        return s.to_string();
    }
    let n = s.chars().count();
    if n >= 16 {
        let tail: String = s.chars().skip(n - 4).collect();
        format!("{MASK}{tail}")
    } else {
        MASK.to_string()
    }
}

/// True when `s` is a placeholder produced by [`VerificationConfig::masked`] (an API client that
/// sends the masked config back means "keep the stored secret").
pub fn is_masked_secret(s: &str) -> bool {
    s.starts_with(MASK)
}

/// A configured header name, validated and lower-cased.
pub(crate) fn header_name(field: &str, name: &str) -> Result<String, ConfigError> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    if !ok {
        return Err(ConfigError::new(
            field,
            format!("{:?} is not a valid header name", hmac_util::shown(name)),
        ));
    }
    Ok(name.to_ascii_lowercase())
}

/// Why a config was refused: the field (`verification.algorithm`) and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Where a scheme's delivery id comes from.
pub(crate) enum DedupSource {
    None,
    /// The first present of these headers.
    Headers(&'static [Hdr]),
    /// A configured header (lower case).
    Header(String),
    /// A member path in the JSON body.
    BodyField(&'static [&'static str]),
    /// `signature.token` in a JSON body, or `token` in a form body.
    Mailgun,
    /// `sg_event_id` of the single event, or a digest of all of them for a batch.
    Sendgrid,
    JsonPath(Box<JsonPath>),
}

/// Longer ids are replaced by a digest so they fit an index.
const MAX_ID_LEN: usize = 200;

fn finish_id(id: &str) -> Option<String> {
    let id = id.trim();
    if id.is_empty() {
        return None;
    }
    if id.len() > MAX_ID_LEN {
        return Some(format!("sha256:{}", hex::encode(sha256(id.as_bytes()))));
    }
    Some(id.to_string())
}

fn scalar_id(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => finish_id(s),
        other => finish_id(&other.to_string()),
    }
}

/// The caller's parsed body, or a parse of the raw body kept in `slot`.
fn body_value<'v>(body_json: Option<&'v Value>, body: &[u8], slot: &'v mut Option<Value>) -> Option<&'v Value> {
    match body_json {
        Some(v) => Some(v),
        None => {
            *slot = parse_json_object(body);
            slot.as_ref()
        }
    }
}

impl DedupSource {
    pub(crate) fn extract(&self, req: &Req<'_>, body_json: Option<&Value>) -> Option<String> {
        let mut slot = None;
        match self {
            DedupSource::None => None,
            DedupSource::Headers(hs) => hs.iter().find_map(|h| req.header(h.lower).and_then(finish_id)),
            DedupSource::Header(h) => req.header(h).and_then(finish_id),
            DedupSource::BodyField(path) => {
                let mut v = body_value(body_json, req.body, &mut slot)?;
                for key in path.iter() {
                    v = v.get(key)?;
                }
                scalar_id(v)
            }
            DedupSource::JsonPath(path) => {
                let v = body_value(body_json, req.body, &mut slot)?;
                path.query(v).first().and_then(scalar_id)
            }
            DedupSource::Mailgun => {
                if let Some(v) = body_value(body_json, req.body, &mut slot) {
                    return v.get("signature")?.get("token").and_then(scalar_id);
                }
                form_urlencoded::parse(req.body)
                    .find(|(k, _)| k == "token")
                    .and_then(|(_, v)| finish_id(&v))
            }
            DedupSource::Sendgrid => {
                let v = body_value(body_json, req.body, &mut slot)?;
                sendgrid_id(v)
            }
        }
    }
}

fn sendgrid_id(v: &Value) -> Option<String> {
    let events: Vec<&Value> = match v {
        Value::Array(a) => a.iter().collect(),
        obj @ Value::Object(_) => vec![obj],
        _ => return None,
    };
    let ids: Option<Vec<&str>> = events
        .iter()
        .map(|e| e.get("sg_event_id").and_then(Value::as_str))
        .collect();
    let ids = ids?;
    match ids.as_slice() {
        [] => None,
        [one] => finish_id(one),
        many => Some(format!("sha256:{}", hex::encode(sha256(many.join("\n").as_bytes())))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(scheme: Scheme, secrets: &[&str]) -> VerificationConfig {
        VerificationConfig::new(scheme, secrets.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn scheme_names_round_trip() {
        for s in Scheme::ALL {
            let j = serde_json::to_value(s).unwrap();
            assert_eq!(j, Value::String(s.as_str().into()));
            let back: Scheme = serde_json::from_value(j).unwrap();
            assert_eq!(back, s);
            assert_eq!(s.as_str().parse::<Scheme>().unwrap(), s);
        }
        assert!("nope".parse::<Scheme>().is_err());
    }

    #[test]
    fn serde_shape() {
        let c: VerificationConfig =
            serde_json::from_value(json!({"scheme": "standard-webhooks", "secrets": ["whsec_AAAA"]})).unwrap();
        assert_eq!(c.scheme, Scheme::StandardWebhooks);
        let out = serde_json::to_value(&c).unwrap();
        assert_eq!(out, json!({"scheme": "standard-webhooks", "secrets": ["whsec_AAAA"]}));
        let unknown =
            serde_json::from_value::<VerificationConfig>(json!({"scheme": "github", "secrets": ["x"], "sekret": 1}));
        assert!(unknown.is_err());
        let c: VerificationConfig = serde_json::from_value(json!({"scheme": "github"})).unwrap();
        assert!(c.secrets.is_empty());
    }

    #[test]
    fn every_secret_scheme_needs_a_secret() {
        for s in Scheme::ALL {
            if s.uses_public_key() {
                continue;
            }
            let mut c = cfg(s, &[]);
            // fill in what the generic schemes need besides secrets
            if s == Scheme::Hmac {
                c.header = Some("x-sig".into());
            }
            if s == Scheme::Token {
                c.header = Some("x-token".into());
            }
            let e = c.compile().unwrap_err();
            assert_eq!(e.field, "verification.secrets", "{s}");
            assert!(e.message.contains("at least one secret"), "{s}: {e}");
        }
    }

    #[test]
    fn secrets_validated_without_echo() {
        let e = cfg(Scheme::Github, &["good-secret", " leaky-secret "])
            .compile()
            .unwrap_err();
        assert_eq!(e.field, "verification.secrets[1]");
        assert!(!e.to_string().contains("leaky"));
        let e = cfg(Scheme::Github, &[""]).compile().unwrap_err();
        assert_eq!(e.field, "verification.secrets[0]");
        let e = cfg(Scheme::Github, &["••••abcd"]).compile().unwrap_err();
        assert!(e.message.contains("masked"));
        let many: Vec<String> = (0..=MAX_SECRETS).map(|i| format!("s{i}")).collect();
        let e = VerificationConfig::new(Scheme::Github, many).compile().unwrap_err();
        assert_eq!(e.field, "verification.secrets");
    }

    #[test]
    fn unused_fields_refused() {
        let mut c = cfg(Scheme::Github, &["s"]);
        c.tolerance_seconds = Some(10);
        let e = c.compile().unwrap_err();
        assert_eq!(e.field, "verification.tolerance_seconds");
        assert_eq!(e.message, "is not used by scheme github");
        let mut c = cfg(Scheme::Stripe, &["whsec_x"]);
        c.public_key = Some("00".into());
        assert_eq!(c.compile().unwrap_err().field, "verification.public_key");
        let mut c = cfg(Scheme::Square, &["k"]);
        c.url = Some("ftp://x".into());
        assert_eq!(c.compile().unwrap_err().field, "verification.url");
        let mut c = cfg(Scheme::Github, &["s"]);
        c.dedup_header = Some("x-id".into());
        c.dedup_jsonpath = Some("$.id".into());
        assert_eq!(c.compile().unwrap_err().field, "verification.dedup_header");
        let mut c = cfg(Scheme::Github, &["s"]);
        c.dedup_jsonpath = Some("$[".into());
        assert_eq!(c.compile().unwrap_err().field, "verification.dedup_jsonpath");
        let mut c = cfg(Scheme::Github, &["s"]);
        c.dedup_header = Some("bad header".into());
        assert_eq!(c.compile().unwrap_err().field, "verification.dedup_header");
    }

    #[test]
    fn masking() {
        let c = cfg(Scheme::Stripe, &["whsec_0123456789abcdefWXYZ", "short", "••••WXYZ"]);
        let m = c.masked();
        assert_eq!(m.secrets, vec!["••••WXYZ", "••••", "••••WXYZ"]);
        assert!(m.secrets.iter().all(|s| is_masked_secret(s)));
        assert_eq!(m.scheme, c.scheme);
        // exactly 16 characters: the last 4 only
        let m = cfg(Scheme::Github, &["abcdefghijklmnop"]).masked();
        assert_eq!(m.secrets, vec!["••••mnop"]);
        let m = cfg(Scheme::Github, &["abcdefghijklmno"]).masked();
        assert_eq!(m.secrets, vec!["••••"]);
    }

    #[test]
    fn config_error_display() {
        let e = ConfigError::new("verification.algorithm", "unknown algorithm \"md5\"");
        assert_eq!(e.to_string(), "verification.algorithm: unknown algorithm \"md5\"");
    }

    #[test]
    fn dedup_overrides_and_limits() {
        let mut c = cfg(Scheme::Pagerduty, &["s"]);
        c.dedup_jsonpath = Some("$.event.id".into());
        let v = c.compile().unwrap();
        let body = br#"{"event":{"id":"01ABC"}}"#;
        let h: Vec<(String, String)> = vec![];
        let req = crate::verify::SignedRequest {
            method: "POST",
            url: "https://x/",
            headers: &h,
            query: &[],
            body,
        };
        assert_eq!(v.delivery_id(&req, None).as_deref(), Some("01ABC"));
        let parsed: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v.delivery_id(&req, Some(&parsed)).as_deref(), Some("01ABC"));

        let mut c = cfg(Scheme::Slack, &["s"]);
        c.dedup_header = Some("X-Custom-Id".into());
        let v = c.compile().unwrap();
        let long = "a".repeat(500);
        let h: Vec<(String, String)> = vec![("X-Custom-Id".into(), long.clone())];
        let req = crate::verify::SignedRequest {
            method: "POST",
            url: "https://x/",
            headers: &h,
            query: &[],
            body: b"",
        };
        let id = v.delivery_id(&req, None).unwrap();
        assert!(id.starts_with("sha256:") && id.len() == 7 + 64);

        // numbers become strings
        assert_eq!(scalar_id(&json!(42)).as_deref(), Some("42"));
        assert_eq!(scalar_id(&json!(null)), None);
        assert_eq!(scalar_id(&json!("")), None);
    }

    #[test]
    fn sendgrid_batch_ids() {
        assert_eq!(sendgrid_id(&json!([{"sg_event_id": "a"}])).as_deref(), Some("a"));
        let two = sendgrid_id(&json!([{"sg_event_id": "a"}, {"sg_event_id": "b"}])).unwrap();
        assert_eq!(two, format!("sha256:{}", hex::encode(sha256(b"a\nb"))));
        assert_eq!(sendgrid_id(&json!([{"sg_event_id": "a"}, {}])), None);
        assert_eq!(sendgrid_id(&json!([])), None);
    }
}
