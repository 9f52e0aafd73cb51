//! `TriggerRef`: the `pack.name` identity of a trigger, valid by construction.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct TriggerRef(String);

#[derive(Debug, thiserror::Error, PartialEq)]
#[error(
    "invalid ref {value:?}: expected `pack.name`, each part 1-64 characters of a-z, 0-9, `_` or `-`, starting with a letter or digit"
)]
pub struct InvalidRef {
    pub value: String,
}

impl TriggerRef {
    pub fn parse(value: &str) -> Result<Self, InvalidRef> {
        let invalid = || InvalidRef {
            value: value.chars().take(100).collect(),
        };
        let (pack, name) = value.split_once('.').ok_or_else(invalid)?;
        if is_ref_part(pack) && is_ref_part(name) {
            Ok(Self(value.to_owned()))
        } else {
            Err(invalid())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn pack(&self) -> &str {
        self.0.split_once('.').map(|(pack, _)| pack).unwrap_or("")
    }

    pub fn name(&self) -> &str {
        self.0.split_once('.').map(|(_, name)| name).unwrap_or("")
    }
}

/// One half of a ref: what packs, rules and actions share as a naming rule.
pub fn is_ref_part(part: &str) -> bool {
    let bytes = part.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_' || *b == b'-')
}

impl fmt::Display for TriggerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for TriggerRef {
    type Err = InvalidRef;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl<'de> Deserialize<'de> for TriggerRef {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Self::parse(&raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_pack_dot_name() {
        let r = TriggerRef::parse("github.push").unwrap();
        assert_eq!((r.pack(), r.name()), ("github", "push"));
        assert!(TriggerRef::parse("stripe.payment_succeeded").is_ok());
        assert!(TriggerRef::parse("my-app.deploy-2").is_ok());
    }

    #[test]
    fn refuses_malformed_refs() {
        for bad in [
            "",
            "github",
            ".push",
            "github.",
            "a.b.c",
            "GitHub.push",
            "git hub.push",
            "_x.y",
            "a.b/c",
        ] {
            assert!(TriggerRef::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(TriggerRef::parse(&format!("a.{}", "x".repeat(65))).is_err());
    }
}
