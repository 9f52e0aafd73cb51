//! A trigger's payload mapping: what the event keeps of a webhook's body.

use super::{Context, ExprError, Template};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use serde_json_path::JsonPath;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How a webhook's parsed body becomes the event's payload.
///
/// JSON shapes: absent or `null` (pass-through, the default), `{"jsonpath": {"commit_sha":
/// "$.head_commit.id", "branch": "$.ref"}}` (RFC 9535 paths; each key gets its first
/// match, or null when nothing matches), or `{"template": "..."}` (a template whose
/// rendering must be JSON, e.g. `{"sha": {{ payload.after | tojson }}}`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Mapping {
    #[default]
    PassThrough,
    JsonPath(BTreeMap<String, String>),
    Template(String),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
enum MappingRepr {
    #[serde(rename = "jsonpath")]
    JsonPath(BTreeMap<String, String>),
    #[serde(rename = "template")]
    Template(String),
    #[serde(rename = "pass_through", alias = "passthrough")]
    PassThrough,
}

impl Serialize for Mapping {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Mapping::PassThrough => serializer.serialize_none(),
            Mapping::JsonPath(paths) => MappingRepr::JsonPath(paths.clone()).serialize(serializer),
            Mapping::Template(source) => MappingRepr::Template(source.clone()).serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Mapping {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Option::<MappingRepr>::deserialize(deserializer)? {
            None | Some(MappingRepr::PassThrough) => Mapping::PassThrough,
            Some(MappingRepr::JsonPath(paths)) => Mapping::JsonPath(paths),
            Some(MappingRepr::Template(source)) => Mapping::Template(source),
        })
    }
}

impl Mapping {
    pub fn is_pass_through(&self) -> bool {
        matches!(self, Mapping::PassThrough)
    }

    /// Checks and compiles the mapping. Errors name the part at fault
    /// (`jsonpath.<key>` or `template`) with the position in it.
    pub fn compile(&self) -> Result<CompiledMapping, ExprError> {
        match self {
            Mapping::PassThrough => Ok(CompiledMapping::PassThrough),
            Mapping::JsonPath(paths) => {
                if paths.is_empty() {
                    return Err(ExprError::compile("a JSONPath mapping needs at least one key").in_field("jsonpath"));
                }
                let mut compiled = Vec::with_capacity(paths.len());
                for (key, path) in paths {
                    if key.is_empty() {
                        return Err(ExprError::compile("a mapping key must not be empty").in_field("jsonpath"));
                    }
                    let parsed = JsonPath::parse(path).map_err(|e| {
                        ExprError::compile(format!("invalid JSONPath: {}", e.message()))
                            .at(Some(1), Some(e.position().max(1)))
                            .in_field(key.clone())
                            .in_field("jsonpath")
                    })?;
                    compiled.push((key.clone(), parsed));
                }
                Ok(CompiledMapping::JsonPath(Arc::new(compiled)))
            }
            Mapping::Template(source) => Template::compile(source)
                .map(CompiledMapping::Template)
                .map_err(|e| e.in_field("template")),
        }
    }
}

/// A mapping ready to apply to payloads.
#[derive(Debug, Clone, Default)]
pub enum CompiledMapping {
    #[default]
    PassThrough,
    JsonPath(Arc<Vec<(String, JsonPath)>>),
    Template(Template),
}

impl CompiledMapping {
    /// Whether [`CompiledMapping::apply`] looks at its context (only a template does), so
    /// that a caller can skip building one.
    pub fn needs_context(&self) -> bool {
        matches!(self, CompiledMapping::Template(_))
    }

    pub fn is_pass_through(&self) -> bool {
        matches!(self, CompiledMapping::PassThrough)
    }

    /// The mapped payload. JSONPath and pass-through read `payload`; a template renders
    /// against `ctx` (whose payload should be the same) and must produce JSON.
    pub fn apply(&self, payload: &Value, ctx: &Context) -> Result<Value, ExprError> {
        match self {
            CompiledMapping::PassThrough => Ok(payload.clone()),
            CompiledMapping::JsonPath(paths) => {
                let mut out = serde_json::Map::with_capacity(paths.len());
                for (key, path) in paths.iter() {
                    let value = path.query(payload).first().cloned().unwrap_or(Value::Null);
                    out.insert(key.clone(), value);
                }
                Ok(Value::Object(out))
            }
            CompiledMapping::Template(template) => {
                let text = template.render(ctx).map_err(|e| e.in_field("template"))?;
                serde_json::from_str(&text).map_err(|e| {
                    let snippet: String = text.chars().take(200).collect();
                    ExprError::evaluate(format!(
                        "the mapping template did not render JSON ({e}); it rendered: {snippet}"
                    ))
                    .in_field("template")
                })
            }
        }
    }
}
