//! Actions: what runs when a rule matches (a local command or an HTTP request), with
//! their timeout, retry policy and concurrency limit.

use super::signing::SigningSecret;
use super::{check_ref, is_header_name};
use crate::expr::{Context, ExprError, Template};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub const DEFAULT_TIMEOUT_SECONDS: u64 = 60;
pub const MAX_TIMEOUT_SECONDS: u64 = 86_400;
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
pub const MAX_ATTEMPTS_LIMIT: u32 = 100;
pub const DEFAULT_INITIAL_BACKOFF_SECONDS: f64 = 1.0;
pub const DEFAULT_MAX_BACKOFF_SECONDS: f64 = 300.0;
/// Headers that describe the connection, not the message: never forwarded.
const UNFORWARDABLE: [&str; 6] = [
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
];

/// An action as the API and pack files give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionSpec {
    #[serde(rename = "ref")]
    pub action_ref: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub runner: RunnerSpec,
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Most executions of this action running at once; 1 serialises them. None: no limit.
    #[serde(default)]
    pub concurrency: Option<u32>,
}

fn default_timeout() -> u64 {
    DEFAULT_TIMEOUT_SECONDS
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RunnerSpec {
    Command(CommandRunner),
    Http(HttpRunner),
}

/// Runs a program directly (no shell). `argv`, `env` values, a template `stdin` and
/// `working_dir` are templates.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandRunner {
    pub argv: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Stdin::is_none")]
    pub stdin: Stdin,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

/// What the command reads: nothing (absent or null), `"payload"` (the event's payload
/// as JSON), or any other string, a template.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(from = "Option<String>", into = "Option<String>")]
pub enum Stdin {
    #[default]
    None,
    Payload,
    Template(String),
}

impl Stdin {
    pub fn is_none(&self) -> bool {
        matches!(self, Stdin::None)
    }
}

impl From<Option<String>> for Stdin {
    fn from(value: Option<String>) -> Self {
        match value {
            None => Stdin::None,
            Some(s) if s == "payload" => Stdin::Payload,
            Some(s) => Stdin::Template(s),
        }
    }
}

impl From<Stdin> for Option<String> {
    fn from(value: Stdin) -> Self {
        match value {
            Stdin::None => None,
            Stdin::Payload => Some("payload".to_owned()),
            Stdin::Template(s) => Some(s),
        }
    }
}

/// Sends an HTTP request. `url`, header values and `body` are templates; or `forward:
/// true` sends the original request's body and the headers named in `forward_headers`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpRunner {
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub forward: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forward_headers: Vec<String>,
    /// Statuses that count as success; empty means any 2xx.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub success_status: Vec<u16>,
    /// Sign the request with the Standard Webhooks scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign: Option<SignSpec>,
}

fn default_method() -> String {
    "POST".to_owned()
}

/// Standard Webhooks signing: `webhook-id`, `webhook-timestamp` and `webhook-signature`
/// headers, with a `whsec_<base64>` secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignSpec {
    pub secret: String,
}

impl fmt::Debug for SignSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignSpec").field("secret", &"<redacted>").finish()
    }
}

/// The placeholder [`ActionSpec::redacted`] puts in place of a signing secret.
pub const REDACTED_SECRET: &str = "whsec_********";

/// Retries of a failed execution: up to `max_attempts` attempts in all, with an
/// exponential backoff from `initial_backoff_seconds`, capped at `max_backoff_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    #[serde(serialize_with = "seconds")]
    pub initial_backoff_seconds: f64,
    #[serde(serialize_with = "seconds")]
    pub max_backoff_seconds: f64,
}

/// Whole seconds as integers (`1`, not `1.0`), as they were most likely given.
fn seconds<S: serde::Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    if value.fract() == 0.0 && (0.0..=u64::MAX as f64).contains(value) {
        serializer.serialize_u64(*value as u64)
    } else {
        serializer.serialize_f64(*value)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff_seconds: DEFAULT_INITIAL_BACKOFF_SECONDS,
            max_backoff_seconds: DEFAULT_MAX_BACKOFF_SECONDS,
        }
    }
}

impl RetryPolicy {
    pub fn validate(&self) -> Result<(), ExprError> {
        let fail = |field: &str, message: &str| Err(ExprError::compile(message).in_field(field));
        if self.max_attempts == 0 || self.max_attempts > MAX_ATTEMPTS_LIMIT {
            return fail("max_attempts", &format!("must be between 1 and {MAX_ATTEMPTS_LIMIT}"));
        }
        let limit = MAX_TIMEOUT_SECONDS as f64;
        if !(0.0..=limit).contains(&self.initial_backoff_seconds) {
            return fail("initial_backoff_seconds", &format!("must be between 0 and {limit}"));
        }
        if !(self.initial_backoff_seconds..=limit).contains(&self.max_backoff_seconds) {
            return fail(
                "max_backoff_seconds",
                &format!("must be between initial_backoff_seconds and {limit}"),
            );
        }
        Ok(())
    }

    /// Whether an execution whose attempt number `attempt` (1 for the first) failed is
    /// tried again.
    pub fn should_retry(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }

    /// The wait after failed attempt number `attempt` (1 for the first) before the next.
    ///
    /// The base is `initial * 2^(attempt-1)`, capped at `max`; the wait is "equal
    /// jitter": half the base plus `jitter` (in `[0, 1)`, the caller's randomness) times
    /// the other half. So the waits grow from one attempt to the next until the cap, and
    /// never exceed `max_backoff_seconds`.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(62) as i32;
        let base = (self.initial_backoff_seconds.max(0.0) * 2f64.powi(exponent)).min(self.max_backoff_seconds.max(0.0));
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let wait = base / 2.0 + jitter * base / 2.0;
        Duration::try_from_secs_f64(wait).unwrap_or(Duration::ZERO)
    }
}

impl ActionSpec {
    /// The pack part of the ref.
    pub fn pack(&self) -> &str {
        self.action_ref.split_once('.').map_or("", |(p, _)| p)
    }

    /// The form kept in the store: the signing secret sealed under the master key.
    pub fn sealed(&self, key: &crate::seal::MasterKey) -> ActionSpec {
        self.map_signing_secret(|s| Ok(key.seal_text(s)))
            .expect("sealing cannot fail")
    }

    /// Reverses [`ActionSpec::sealed`].
    pub fn opened(&self, key: &crate::seal::MasterKey) -> Result<ActionSpec, crate::seal::SealError> {
        self.map_signing_secret(|s| key.open_text(s))
    }

    fn map_signing_secret(
        &self,
        f: impl Fn(&str) -> Result<String, crate::seal::SealError>,
    ) -> Result<ActionSpec, crate::seal::SealError> {
        let mut out = self.clone();
        if let RunnerSpec::Http(HttpRunner { sign: Some(sign), .. }) = &mut out.runner {
            sign.secret = f(&sign.secret)?;
        }
        Ok(out)
    }

    /// A copy fit to show: the signing secret is replaced by [`REDACTED_SECRET`].
    pub fn redacted(&self) -> ActionSpec {
        let mut out = self.clone();
        if let RunnerSpec::Http(HttpRunner { sign: Some(sign), .. }) = &mut out.runner {
            sign.secret = REDACTED_SECRET.to_owned();
        }
        out
    }

    /// Validates the action and compiles its templates. An error names the field at
    /// fault (`runner.argv[1]`, `runner.headers.Authorization`, `retry.max_attempts`...).
    pub fn compile(&self) -> Result<CompiledAction, ExprError> {
        check_ref(&self.action_ref).map_err(|e| e.in_field("ref"))?;
        if self.timeout_seconds == 0 || self.timeout_seconds > MAX_TIMEOUT_SECONDS {
            return Err(
                ExprError::compile(format!("must be between 1 and {MAX_TIMEOUT_SECONDS}")).in_field("timeout_seconds"),
            );
        }
        self.retry.validate().map_err(|e| e.in_field("retry"))?;
        if self.concurrency == Some(0) {
            return Err(ExprError::compile("must be at least 1 (or null for no limit)").in_field("concurrency"));
        }
        let in_runner = |e: ExprError| e.in_field("runner");
        let runner = match &self.runner {
            RunnerSpec::Command(c) => CompiledRunner::Command(compile_command(c).map_err(in_runner)?),
            RunnerSpec::Http(h) => CompiledRunner::Http(compile_http(h).map_err(in_runner)?),
        };
        Ok(CompiledAction {
            spec: Arc::new(self.clone()),
            runner: Arc::new(runner),
            timeout: Duration::from_secs(self.timeout_seconds),
        })
    }
}

fn template(source: &str, field: &str) -> Result<Template, ExprError> {
    Template::compile(source).map_err(|e| e.in_field(field))
}

fn compile_command(c: &CommandRunner) -> Result<CompiledCommand, ExprError> {
    if c.argv.is_empty() {
        return Err(ExprError::compile("must name the program to run").in_field("argv"));
    }
    if c.argv[0].trim().is_empty() {
        return Err(ExprError::compile("the program must not be empty").in_field("argv[0]"));
    }
    let argv = c
        .argv
        .iter()
        .enumerate()
        .map(|(i, a)| template(a, &format!("argv[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut env = Vec::with_capacity(c.env.len());
    for (name, value) in &c.env {
        if name.is_empty() || name.contains(['=', '\0']) {
            return Err(ExprError::compile(format!("invalid environment variable name {name:?}")).in_field("env"));
        }
        env.push((name.clone(), template(value, name).map_err(|e| e.in_field("env"))?));
    }
    let stdin = match &c.stdin {
        Stdin::None => CompiledStdin::None,
        Stdin::Payload => CompiledStdin::Payload,
        Stdin::Template(t) => CompiledStdin::Template(template(t, "stdin")?),
    };
    let working_dir = c
        .working_dir
        .as_deref()
        .map(|w| template(w, "working_dir"))
        .transpose()?;
    Ok(CompiledCommand {
        argv,
        env,
        stdin,
        working_dir,
    })
}

fn compile_http(h: &HttpRunner) -> Result<CompiledHttp, ExprError> {
    let method = h.method.to_ascii_uppercase();
    if method.is_empty() || !is_header_name(&method) {
        return Err(ExprError::compile(format!("invalid HTTP method {:?}", h.method)).in_field("method"));
    }
    let url = template(&h.url, "url")?;
    if url.is_literal() {
        check_url(&h.url).map_err(|m| ExprError::compile(m).in_field("url"))?;
    }
    let mut headers = Vec::with_capacity(h.headers.len());
    for (name, value) in &h.headers {
        if !is_header_name(name) {
            return Err(ExprError::compile(format!("invalid header name {name:?}")).in_field("headers"));
        }
        headers.push((name.clone(), template(value, name).map_err(|e| e.in_field("headers"))?));
    }
    if h.forward && h.body.is_some() {
        return Err(
            ExprError::compile("a request that forwards the original body cannot also have a body").in_field("body"),
        );
    }
    if !h.forward && !h.forward_headers.is_empty() {
        return Err(ExprError::compile("forward_headers needs forward: true").in_field("forward_headers"));
    }
    let mut forward_headers = Vec::with_capacity(h.forward_headers.len());
    for (i, name) in h.forward_headers.iter().enumerate() {
        let lower = name.to_ascii_lowercase();
        if !is_header_name(&lower) || UNFORWARDABLE.contains(&lower.as_str()) {
            return Err(ExprError::compile(format!("header {name:?} cannot be forwarded"))
                .in_field(format!("forward_headers[{i}]")));
        }
        forward_headers.push(lower);
    }
    let body = h.body.as_deref().map(|b| template(b, "body")).transpose()?;
    for (i, status) in h.success_status.iter().enumerate() {
        if !(100..=599).contains(status) {
            return Err(
                ExprError::compile(format!("{status} is not an HTTP status")).in_field(format!("success_status[{i}]"))
            );
        }
    }
    let sign = h
        .sign
        .as_ref()
        .map(|s| SigningSecret::parse(&s.secret).map_err(|m| ExprError::compile(m).in_field("secret").in_field("sign")))
        .transpose()?;
    Ok(CompiledHttp {
        method,
        url,
        headers,
        body,
        forward: h.forward,
        forward_headers,
        success_status: h.success_status.clone(),
        sign,
    })
}

/// The URL is http(s) with a host, without spaces or line breaks. The rest is left to
/// the HTTP client.
fn check_url(url: &str) -> Result<(), String> {
    fn strip_scheme<'a>(url: &'a str, scheme: &str) -> Option<&'a str> {
        let head = url.get(..scheme.len())?;
        head.eq_ignore_ascii_case(scheme).then(|| &url[scheme.len()..])
    }
    let Some(rest) = strip_scheme(url, "https://").or_else(|| strip_scheme(url, "http://")) else {
        return Err(format!(
            "the URL must start with http:// or https:// (got {:?})",
            url.chars().take(100).collect::<String>()
        ));
    };
    if rest.is_empty() || rest.starts_with(['/', '?', '#']) {
        return Err("the URL has no host".to_owned());
    }
    if url.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err("the URL contains spaces or control characters".to_owned());
    }
    Ok(())
}

/// An action ready to run: templates compiled. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CompiledAction {
    spec: Arc<ActionSpec>,
    runner: Arc<CompiledRunner>,
    timeout: Duration,
}

#[derive(Debug)]
enum CompiledRunner {
    Command(CompiledCommand),
    Http(CompiledHttp),
}

#[derive(Debug)]
struct CompiledCommand {
    argv: Vec<Template>,
    env: Vec<(String, Template)>,
    stdin: CompiledStdin,
    working_dir: Option<Template>,
}

#[derive(Debug)]
enum CompiledStdin {
    None,
    Payload,
    Template(Template),
}

#[derive(Debug)]
struct CompiledHttp {
    method: String,
    url: Template,
    headers: Vec<(String, Template)>,
    body: Option<Template>,
    forward: bool,
    forward_headers: Vec<String>,
    success_status: Vec<u16>,
    sign: Option<SigningSecret>,
}

/// Which kind of runner an action has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerKind {
    Command,
    Http,
}

/// A command ready to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandInvocation {
    pub argv: Vec<String>,
    /// Added to (and overriding) the inherited environment.
    pub env: BTreeMap<String, String>,
    /// Written to the command's standard input, which is then closed. None: no input.
    pub stdin: Option<Vec<u8>>,
    pub working_dir: Option<String>,
    pub timeout: Duration,
}

/// An HTTP request ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpInvocation {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Statuses that count as success; empty means any 2xx.
    pub success_status: Vec<u16>,
    /// When set, the request is signed (Standard Webhooks).
    pub sign_secret: Option<SigningSecret>,
    /// The `webhook-id` to sign with; the same for every attempt of an execution (the
    /// engine sets the execution id). None: the runner makes one up.
    pub message_id: Option<String>,
    pub timeout: Duration,
}

impl HttpInvocation {
    pub fn is_success(&self, status: u16) -> bool {
        if self.success_status.is_empty() {
            (200..300).contains(&status)
        } else {
            self.success_status.contains(&status)
        }
    }
}

/// A rendered action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    Command(CommandInvocation),
    Http(HttpInvocation),
}

/// The webhook request behind an event, for `forward: true`: its raw body and headers.
#[derive(Debug, Clone, Copy)]
pub struct OriginalRequest<'a> {
    pub body: &'a [u8],
    pub headers: &'a [(String, String)],
}

fn no_line_breaks(value: String, field: &str) -> Result<String, ExprError> {
    if value.contains(['\r', '\n', '\0']) {
        Err(ExprError::evaluate("the rendered value contains a line break or NUL").in_field(field.to_owned()))
    } else {
        Ok(value)
    }
}

fn no_nul(value: String, field: &str) -> Result<String, ExprError> {
    if value.contains('\0') {
        Err(ExprError::evaluate("the rendered value contains a NUL byte").in_field(field.to_owned()))
    } else {
        Ok(value)
    }
}

impl CompiledAction {
    pub fn spec(&self) -> &ActionSpec {
        &self.spec
    }

    pub fn action_ref(&self) -> &str {
        &self.spec.action_ref
    }

    pub fn retry(&self) -> &RetryPolicy {
        &self.spec.retry
    }

    pub fn concurrency(&self) -> Option<u32> {
        self.spec.concurrency
    }

    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    pub fn kind(&self) -> RunnerKind {
        match &*self.runner {
            CompiledRunner::Command(_) => RunnerKind::Command,
            CompiledRunner::Http(_) => RunnerKind::Http,
        }
    }

    /// Whether rendering uses the webhook request behind the event (`forward: true`).
    pub fn forwards_original(&self) -> bool {
        matches!(&*self.runner, CompiledRunner::Http(h) if h.forward)
    }

    /// Whether rendering reads the event (payload, headers, query, meta): a
    /// command whose every part is literal text does not, and its run skips
    /// building the event's context. An HTTP action is taken to read it.
    pub fn reads_event(&self) -> bool {
        match &*self.runner {
            CompiledRunner::Http(_) => true,
            CompiledRunner::Command(c) => {
                let templated = |t: &Template| !t.is_literal();
                c.argv.iter().any(templated)
                    || c.env.iter().any(|(_, t)| templated(t))
                    || c.working_dir.as_ref().is_some_and(templated)
                    || match &c.stdin {
                        CompiledStdin::None => false,
                        CompiledStdin::Payload => true,
                        CompiledStdin::Template(t) => templated(t),
                    }
            }
        }
    }

    /// Renders the action against `ctx`, which should carry the rule's rendered
    /// parameters as `params` (see [`Context::with_params`]). `original` is the webhook
    /// request behind the event, for HTTP forwarding; without it, forwarding sends the
    /// event's payload as JSON and the headers of `ctx`.
    pub fn render(&self, ctx: &Context, original: Option<&OriginalRequest<'_>>) -> Result<Invocation, ExprError> {
        match &*self.runner {
            CompiledRunner::Command(c) => self.render_command_with(c, ctx).map(Invocation::Command),
            CompiledRunner::Http(h) => self.render_http_with(h, ctx, original).map(Invocation::Http),
        }
    }

    pub fn render_command(&self, ctx: &Context) -> Result<CommandInvocation, ExprError> {
        match &*self.runner {
            CompiledRunner::Command(c) => self.render_command_with(c, ctx),
            CompiledRunner::Http(_) => {
                Err(ExprError::evaluate("this action's runner is http, not command").in_field("runner.type"))
            }
        }
    }

    pub fn render_http(
        &self,
        ctx: &Context,
        original: Option<&OriginalRequest<'_>>,
    ) -> Result<HttpInvocation, ExprError> {
        match &*self.runner {
            CompiledRunner::Http(h) => self.render_http_with(h, ctx, original),
            CompiledRunner::Command(_) => {
                Err(ExprError::evaluate("this action's runner is command, not http").in_field("runner.type"))
            }
        }
    }

    fn render_command_with(&self, c: &CompiledCommand, ctx: &Context) -> Result<CommandInvocation, ExprError> {
        let in_runner = |e: ExprError| e.in_field("runner");
        let mut argv = Vec::with_capacity(c.argv.len());
        for (i, t) in c.argv.iter().enumerate() {
            let field = format!("argv[{i}]");
            let arg = t.render(ctx).map_err(|e| e.in_field(field.clone()));
            argv.push(arg.and_then(|a| no_nul(a, &field)).map_err(in_runner)?);
        }
        if argv[0].is_empty() {
            return Err(in_runner(
                ExprError::evaluate("the program rendered empty").in_field("argv[0]"),
            ));
        }
        let mut env = BTreeMap::new();
        for (name, t) in &c.env {
            let field = format!("env.{name}");
            let value = t
                .render(ctx)
                .map_err(|e| e.in_field(name.clone()).in_field("env"))
                .and_then(|v| no_nul(v, &field))
                .map_err(in_runner)?;
            env.insert(name.clone(), value);
        }
        let stdin = match &c.stdin {
            CompiledStdin::None => None,
            CompiledStdin::Payload => Some(
                serde_json::to_vec(ctx.payload_json())
                    .map_err(|e| in_runner(ExprError::evaluate(e.to_string()).in_field("stdin")))?,
            ),
            CompiledStdin::Template(t) => Some(t.render(ctx).map_err(|e| in_runner(e.in_field("stdin")))?.into_bytes()),
        };
        let working_dir = match &c.working_dir {
            None => None,
            Some(t) => {
                let dir = t
                    .render(ctx)
                    .map_err(|e| e.in_field("working_dir"))
                    .and_then(|d| no_nul(d, "working_dir"))
                    .map_err(in_runner)?;
                if dir.is_empty() {
                    return Err(in_runner(
                        ExprError::evaluate("the working directory rendered empty").in_field("working_dir"),
                    ));
                }
                Some(dir)
            }
        };
        Ok(CommandInvocation {
            argv,
            env,
            stdin,
            working_dir,
            timeout: self.timeout,
        })
    }

    fn render_http_with(
        &self,
        h: &CompiledHttp,
        ctx: &Context,
        original: Option<&OriginalRequest<'_>>,
    ) -> Result<HttpInvocation, ExprError> {
        let in_runner = |e: ExprError| e.in_field("runner");
        let url = h.url.render(ctx).map_err(|e| e.in_field("url")).map_err(in_runner)?;
        let url = url.trim().to_owned();
        check_url(&url).map_err(|m| in_runner(ExprError::evaluate(m).in_field("url")))?;

        let mut headers: Vec<(String, String)> = Vec::new();
        let body = if h.forward {
            let mut has_content_type = false;
            match original {
                Some(orig) => {
                    for (name, value) in orig.headers {
                        let lower = name.to_ascii_lowercase();
                        if h.forward_headers.contains(&lower) {
                            has_content_type |= lower == "content-type";
                            headers.push((lower, value.clone()));
                        }
                    }
                }
                None => {
                    for name in &h.forward_headers {
                        if let Some(value) = ctx.header(name) {
                            has_content_type |= name == "content-type";
                            headers.push((name.clone(), value.to_owned()));
                        }
                    }
                }
            }
            match original {
                Some(orig) => orig.body.to_vec(),
                None => {
                    if !has_content_type {
                        headers.push(("content-type".into(), "application/json".into()));
                    }
                    serde_json::to_vec(ctx.payload_json())
                        .map_err(|e| in_runner(ExprError::evaluate(e.to_string()).in_field("forward")))?
                }
            }
        } else {
            match &h.body {
                None => Vec::new(),
                Some(t) => t.render(ctx).map_err(|e| in_runner(e.in_field("body")))?.into_bytes(),
            }
        };
        // Configured headers come after forwarded ones and replace them.
        for (name, t) in &h.headers {
            let field = format!("headers.{name}");
            let value = t
                .render(ctx)
                .map_err(|e| e.in_field(name.clone()).in_field("headers"))
                .and_then(|v| no_line_breaks(v, &field))
                .map_err(in_runner)?;
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.clone(), value));
        }
        Ok(HttpInvocation {
            method: h.method.clone(),
            url,
            headers,
            body,
            success_status: h.success_status.clone(),
            sign_secret: h.sign.clone(),
            message_id: None,
            timeout: self.timeout,
        })
    }
}
