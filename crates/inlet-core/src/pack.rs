//! Pack files: `packs/<pack>/pack.yaml` and `packs/<pack>/triggers/*.yaml`.
//! Parsing only; the server walks the directories.

use crate::trigger_ref::TriggerRef;
use serde::Deserialize;
use std::fmt;

#[derive(Debug, Clone, Deserialize)]
pub struct PackManifest {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub version: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TriggerFile {
    pub name: String,
    #[serde(rename = "ref")]
    pub trigger_ref: TriggerRef,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub description: String,
    #[serde(rename = "type", default = "webhook_type")]
    pub trigger_type: String,
    #[serde(default)]
    pub payload_schema: Option<serde_json::Value>,
}

fn webhook_type() -> String {
    "webhook".into()
}

/// A pack file that could not be used, with where the problem is.
#[derive(Debug, Clone, PartialEq)]
pub struct PackError {
    pub path: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.path, line, self.message),
            None => write!(f, "{}: {}", self.path, self.message),
        }
    }
}

impl std::error::Error for PackError {}

/// Parses one YAML document, reporting serde errors with their line.
pub fn parse_yaml<T: serde::de::DeserializeOwned>(text: &str, path: &str) -> Result<T, PackError> {
    serde_norway::from_str(text).map_err(|e| PackError {
        path: path.to_owned(),
        line: e.location().map(|l| l.line()),
        message: e.to_string(),
    })
}

pub fn parse_manifest(text: &str, path: &str) -> Result<PackManifest, PackError> {
    parse_yaml(text, path)
}

/// A trigger file must belong to the pack it sits in and be of type `webhook`.
pub fn parse_trigger(text: &str, path: &str, pack: &str) -> Result<TriggerFile, PackError> {
    let trigger: TriggerFile = parse_yaml(text, path)?;
    let fail = |message: String| PackError {
        path: path.to_owned(),
        line: None,
        message,
    };
    if trigger.trigger_ref.pack() != pack {
        return Err(fail(format!("ref {} is not in pack {pack}", trigger.trigger_ref)));
    }
    if trigger.trigger_type != "webhook" {
        return Err(fail(format!(
            "type {:?} is not supported (only \"webhook\")",
            trigger.trigger_type
        )));
    }
    Ok(trigger)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_trigger_file() {
        let t = parse_trigger(
            "name: push\nref: github.push\ndescription: A push\ntype: webhook\npayload_schema:\n  type: object\n",
            "packs/github/triggers/push.yaml",
            "github",
        )
        .unwrap();
        assert_eq!(t.trigger_ref.as_str(), "github.push");
        assert_eq!(t.payload_schema.unwrap()["type"], "object");
    }

    #[test]
    fn reports_path_and_line() {
        let err = parse_trigger("name: push\nref: [oops\n", "p.yaml", "github").unwrap_err();
        assert_eq!(err.path, "p.yaml");
        assert!(err.line.is_some(), "{err}");
        let err = parse_trigger("name: push\nref: Bad\n", "p.yaml", "github").unwrap_err();
        assert!(err.message.contains("invalid ref"), "{err}");
        let err = parse_trigger("name: x\nref: other.x\n", "p.yaml", "github").unwrap_err();
        assert!(err.message.contains("not in pack"), "{err}");
    }
}
