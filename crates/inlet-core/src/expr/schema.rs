//! A trigger's `payload_schema`: JSON Schema, checked at the receiver.

use super::ExprError;
use serde::Serialize;
use serde_json::Value;
use std::fmt;
use std::sync::Arc;

/// A compiled JSON Schema (draft detected from `$schema`, 2020-12 by default). Remote
/// `$ref`s are not fetched: a schema must be self-contained.
#[derive(Clone)]
pub struct PayloadSchema {
    validator: Arc<jsonschema::Validator>,
}

impl fmt::Debug for PayloadSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PayloadSchema")
    }
}

/// Why a payload does not conform: the first failing place, as a JSON pointer into the
/// payload (`""` is the payload itself), and the reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SchemaViolation {
    pub instance_path: String,
    pub message: String,
}

impl fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = if self.instance_path.is_empty() {
            "/"
        } else {
            &self.instance_path
        };
        write!(f, "payload does not match the schema at {path}: {}", self.message)
    }
}

impl std::error::Error for SchemaViolation {}

impl PayloadSchema {
    /// Compiles a schema; an invalid one is refused with the place in it at fault.
    pub fn compile(schema: &Value) -> Result<Self, ExprError> {
        let validator = jsonschema::validator_for(schema).map_err(|e| {
            let at = e.instance_path().as_str();
            let at = if at.is_empty() { "/" } else { at };
            ExprError::compile(format!("invalid JSON Schema at {at}: {}", e.masked()))
        })?;
        Ok(Self {
            validator: Arc::new(validator),
        })
    }

    pub fn is_valid(&self, payload: &Value) -> bool {
        self.validator.is_valid(payload)
    }

    /// `Ok` when the payload conforms, otherwise the first violation. The message names
    /// the rule broken without quoting the payload's values.
    pub fn check(&self, payload: &Value) -> Result<(), SchemaViolation> {
        if self.validator.is_valid(payload) {
            return Ok(());
        }
        match self.validator.validate(payload) {
            Ok(()) => Ok(()),
            Err(e) => Err(SchemaViolation {
                instance_path: e.instance_path().as_str().to_owned(),
                message: e.masked().to_string(),
            }),
        }
    }
}
