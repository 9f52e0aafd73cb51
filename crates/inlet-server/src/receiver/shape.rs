//! What a parsed body goes through before it becomes an event: the trigger's
//! payload schema, then its mapping. The receiver and a replay of a logged
//! request share it, so a replay is held to the same rules.

use inlet_core::expr::{CompiledMapping, Context, PayloadSchema};
use inlet_core::settings::WebhookSettings;
use serde_json::Value;

pub struct Shaping {
    schema: Option<PayloadSchema>,
    mapping: CompiledMapping,
}

impl Shaping {
    pub fn compile(payload_schema: Option<&str>, settings: &WebhookSettings) -> Result<Self, String> {
        let schema = payload_schema
            .map(|text| {
                let value: Value = serde_json::from_str(text).map_err(|e| format!("payload_schema: {e}"))?;
                PayloadSchema::compile(&value).map_err(|e| format!("payload_schema: {e}"))
            })
            .transpose()?;
        let mapping = settings.mapping.compile().map_err(|e| format!("mapping: {e}"))?;
        Ok(Self { schema, mapping })
    }

    /// Whether the payload stays exactly as parsed (no mapping).
    pub fn passes_through(&self) -> bool {
        self.mapping.is_pass_through()
    }

    /// Whether the payload is read at all (a schema to check or a mapping).
    pub fn reads_payload(&self) -> bool {
        self.schema.is_some() || !self.passes_through()
    }

    /// The event payload, or why the body is refused (a `schema_mismatch`).
    /// `context` builds the template context, only for mappings that use it.
    pub fn apply(&self, payload: Value, context: impl FnOnce(&Value) -> Context) -> Result<Value, String> {
        if let Some(schema) = &self.schema {
            schema.check(&payload).map_err(|violation| violation.to_string())?;
        }
        if self.mapping.is_pass_through() {
            return Ok(payload);
        }
        self.mapping
            .apply(&payload, &context(&payload))
            .map_err(|e| format!("payload mapping failed: {e}"))
    }
}
