//! Rules, actions and their retry policies, as the API and packs describe them.
//!
//! The JSON shapes (the API's, and as YAML the packs') are those of issue 4:
//!
//! ```json
//! {"ref": "myapp.deploy", "runner": {"type": "command", "argv": ["/usr/local/bin/deploy", "{{ params.version }}"],
//!  "env": {"ENV": "{{ params.environment }}"}, "stdin": "payload", "working_dir": "/srv"},
//!  "timeout_seconds": 60, "retry": {"max_attempts": 3, "initial_backoff_seconds": 1, "max_backoff_seconds": 300},
//!  "concurrency": 1}
//! {"ref": "myapp.on_prod_deploy", "trigger": "myapp.deployment_complete",
//!  "condition": "payload.environment == 'production'", "action": "myapp.deploy",
//!  "parameters": {"version": "{{ payload.version }}"}, "enabled": true,
//!  "debounce_seconds": null, "debounce_key": null}
//! ```
//!
//! A spec is checked and compiled once ([`ActionSpec::compile`], [`RuleSpec::compile`]);
//! the compiled forms are what the engine evaluates for each event. Unknown fields are
//! refused, so that a misspelt option in a pack file is an error rather than ignored.

mod action;
mod rule;
mod signing;

pub use action::{
    ActionSpec, CommandInvocation, CommandRunner, CompiledAction, DEFAULT_INITIAL_BACKOFF_SECONDS,
    DEFAULT_MAX_ATTEMPTS, DEFAULT_MAX_BACKOFF_SECONDS, DEFAULT_TIMEOUT_SECONDS, HttpInvocation, HttpRunner, Invocation,
    MAX_ATTEMPTS_LIMIT, MAX_TIMEOUT_SECONDS, OriginalRequest, REDACTED_SECRET, RetryPolicy, RunnerKind, RunnerSpec,
    SignSpec, Stdin,
};
pub use rule::{CompiledRule, MAX_DEBOUNCE_SECONDS, RuleSpec, StoredRule};
pub use signing::SigningSecret;

use crate::expr::ExprError;

/// Whether `s` is a ref: `pack.name`, each part 1-64 characters of lower-case letters,
/// digits, `_` and `-`, starting with a letter or digit (the rule triggers follow too).
pub fn is_valid_ref(s: &str) -> bool {
    fn part(p: &str) -> bool {
        let b = p.as_bytes();
        !b.is_empty()
            && b.len() <= 64
            && b[0].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
    }
    matches!(s.split_once('.'), Some((pack, name)) if part(pack) && part(name))
}

pub(crate) fn check_ref(s: &str) -> Result<(), ExprError> {
    if is_valid_ref(s) {
        Ok(())
    } else {
        Err(ExprError::compile(format!(
            "invalid ref {:?}: expected `pack.name`, each part 1-64 characters of a-z, 0-9, `_` or `-`, starting with a letter or digit",
            s.chars().take(100).collect::<String>()
        )))
    }
}

/// An HTTP token (header names, methods).
pub(crate) fn is_header_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A pack file (`packs/<pack>/actions/*.yaml`, `packs/<pack>/rules/*.yaml`) that could
/// not be used: the same error as for trigger files. For a template that does not
/// compile, the message names the field and the position inside the template.
pub use crate::pack::PackError;

fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str, path: &str) -> Result<T, PackError> {
    crate::pack::parse_yaml(text, path).map_err(|mut e| {
        e.line = unknown_field_line(text, &e.message).or(e.line);
        e
    })
}

/// The line of an unknown field. The runner is read through its `type` tag, which
/// costs serde the position of errors inside it; for the commonest one, a misspelt
/// field, the line is found again by looking for the key.
fn unknown_field_line(text: &str, message: &str) -> Option<usize> {
    let rest = message.split("unknown field `").nth(1)?;
    let field = rest.split('`').next()?;
    text.lines()
        .position(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix("- ").unwrap_or(line).trim_start();
            let key = line
                .strip_prefix(field)
                .or_else(|| line.strip_prefix(&format!("\"{field}\"")))
                .or_else(|| line.strip_prefix(&format!("'{field}'")));
            key.is_some_and(|after| after.trim_start().starts_with(':'))
        })
        .map(|i| i + 1)
}

fn refused(path: &str, err: ExprError) -> PackError {
    PackError {
        path: path.to_owned(),
        line: None,
        message: err.to_string(),
    }
}

/// Parses and checks an action file (its templates compile). `path` is for messages.
pub fn parse_action_yaml(text: &str, path: &str) -> Result<ActionSpec, PackError> {
    let spec: ActionSpec = parse_yaml(text, path)?;
    spec.compile().map_err(|e| refused(path, e))?;
    Ok(spec)
}

/// Parses and checks a rule file (its condition and templates compile).
pub fn parse_rule_yaml(text: &str, path: &str) -> Result<RuleSpec, PackError> {
    let spec: RuleSpec = parse_yaml(text, path)?;
    spec.compile().map_err(|e| refused(path, e))?;
    Ok(spec)
}

#[cfg(test)]
mod tests;
