//! Rules: which events of a trigger run which action, with which parameters.

use super::check_ref;
use crate::expr::{Condition, Context, ExprError, Template};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

pub const MAX_DEBOUNCE_SECONDS: u64 = 86_400;

/// A rule as the API and pack files give it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(rename = "ref")]
    pub rule_ref: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The trigger's ref.
    pub trigger: String,
    /// A Jinja expression; empty (or null) means always.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub condition: String,
    /// The action's ref.
    pub action: String,
    /// An object whose string values (at any depth) are templates. A value that is
    /// exactly one `{{ expression }}` keeps the expression's type.
    #[serde(default)]
    pub parameters: Map<String, Value>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// A burst of matching events within this quiet period becomes one execution, run
    /// with the latest event once the burst has been quiet that long.
    #[serde(default)]
    pub debounce_seconds: Option<u64>,
    /// A template: bursts are told apart by its rendering (e.g.
    /// `{{ payload.repository.full_name }}`). None: one burst per rule.
    #[serde(default)]
    pub debounce_key: Option<String>,
}

fn yes() -> bool {
    true
}

fn null_as_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

impl RuleSpec {
    /// The pack part of the ref.
    pub fn pack(&self) -> &str {
        self.rule_ref.split_once('.').map_or("", |(p, _)| p)
    }

    /// Validates the rule and compiles its condition and templates. An error names the
    /// field at fault (`condition`, `parameters.version`, `debounce_key`...).
    pub fn compile(&self) -> Result<CompiledRule, ExprError> {
        check_ref(&self.rule_ref).map_err(|e| e.in_field("ref"))?;
        check_ref(&self.trigger).map_err(|e| e.in_field("trigger"))?;
        check_ref(&self.action).map_err(|e| e.in_field("action"))?;
        let condition = Condition::compile(&self.condition).map_err(|e| e.in_field("condition"))?;
        let parameters = compile_object(&self.parameters).map_err(|e| e.in_field("parameters"))?;
        let debounce = match self.debounce_seconds {
            None => None,
            Some(s) if s == 0 || s > MAX_DEBOUNCE_SECONDS => {
                return Err(ExprError::compile(format!(
                    "must be between 1 and {MAX_DEBOUNCE_SECONDS} (or null for none)"
                ))
                .in_field("debounce_seconds"));
            }
            Some(s) => Some(Duration::from_secs(s)),
        };
        let debounce_key = match (&self.debounce_key, debounce) {
            (None, _) => None,
            (Some(_), None) => {
                return Err(ExprError::compile("debounce_key needs debounce_seconds").in_field("debounce_key"));
            }
            (Some(k), Some(_)) => Some(Template::compile(k).map_err(|e| e.in_field("debounce_key"))?),
        };
        Ok(CompiledRule {
            spec: Arc::new(self.clone()),
            condition,
            parameters: Arc::new(parameters),
            debounce,
            debounce_key,
        })
    }
}

/// A parameter value with its templates compiled.
#[derive(Debug)]
enum Param {
    /// No template anywhere below: used as it is.
    Static(Value),
    Template(Template),
    Array(Vec<Param>),
    Object(Vec<(String, Param)>),
}

fn compile_object(map: &Map<String, Value>) -> Result<Param, ExprError> {
    let mut out = Vec::with_capacity(map.len());
    for (key, value) in map {
        out.push((key.clone(), compile_param(value).map_err(|e| e.in_field(key.clone()))?));
    }
    Ok(if out.iter().all(|(_, p)| matches!(p, Param::Static(_))) {
        Param::Static(Value::Object(map.clone()))
    } else {
        Param::Object(out)
    })
}

fn compile_param(value: &Value) -> Result<Param, ExprError> {
    Ok(match value {
        Value::String(s) => {
            let t = Template::compile(s)?;
            if t.is_literal() {
                Param::Static(value.clone())
            } else {
                Param::Template(t)
            }
        }
        Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                out.push(compile_param(item).map_err(|e| e.in_field(format!("[{i}]")))?);
            }
            if out.iter().all(|p| matches!(p, Param::Static(_))) {
                Param::Static(value.clone())
            } else {
                Param::Array(out)
            }
        }
        Value::Object(map) => compile_object(map)?,
        other => Param::Static(other.clone()),
    })
}

fn render_param(param: &Param, ctx: &Context) -> Result<Value, ExprError> {
    Ok(match param {
        Param::Static(v) => v.clone(),
        Param::Template(t) => t.render_value(ctx)?,
        Param::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, p)| render_param(p, ctx).map_err(|e| e.in_field(format!("[{i}]"))))
                .collect::<Result<_, _>>()?,
        ),
        Param::Object(entries) => {
            let mut map = Map::with_capacity(entries.len());
            for (key, p) in entries {
                map.insert(key.clone(), render_param(p, ctx).map_err(|e| e.in_field(key.clone()))?);
            }
            Value::Object(map)
        }
    })
}

/// A rule ready for the hot path: condition and templates compiled. Cheap to clone.
#[derive(Debug, Clone)]
pub struct CompiledRule {
    spec: Arc<RuleSpec>,
    condition: Condition,
    parameters: Arc<Param>,
    debounce: Option<Duration>,
    debounce_key: Option<Template>,
}

impl CompiledRule {
    pub fn spec(&self) -> &RuleSpec {
        &self.spec
    }

    pub fn rule_ref(&self) -> &str {
        &self.spec.rule_ref
    }

    pub fn trigger(&self) -> &str {
        &self.spec.trigger
    }

    pub fn action(&self) -> &str {
        &self.spec.action
    }

    pub fn enabled(&self) -> bool {
        self.spec.enabled
    }

    /// Whether the event matches. An error (the condition failed to evaluate) is the
    /// answer to "why didn't my rule fire?", tagged with the field `condition`.
    pub fn matches(&self, ctx: &Context) -> Result<bool, ExprError> {
        self.condition.evaluate(ctx).map_err(|e| e.in_field("condition"))
    }

    /// The rendered parameters: always a JSON object. Errors name the parameter
    /// (`parameters.version`).
    pub fn render_parameters(&self, ctx: &Context) -> Result<Value, ExprError> {
        render_param(&self.parameters, ctx).map_err(|e| e.in_field("parameters"))
    }

    /// The quiet period, when the rule debounces.
    pub fn debounce(&self) -> Option<Duration> {
        self.debounce
    }

    /// The burst an event belongs to: None when the rule does not debounce; the
    /// rendered `debounce_key`, or `""` without one.
    pub fn debounce_key(&self, ctx: &Context) -> Result<Option<String>, ExprError> {
        if self.debounce.is_none() {
            return Ok(None);
        }
        match &self.debounce_key {
            None => Ok(Some(String::new())),
            Some(t) => t.render(ctx).map(Some).map_err(|e| e.in_field("debounce_key")),
        }
    }
}

/// A rule as the store keeps it (its JSON spec), compiled the first time it is asked for.
///
/// A compiled rule costs about 12 KiB per condition or template (minijinja reserves room
/// for 256 instructions in each compiled unit), so the engine compiles a trigger's rules
/// only once an event of that trigger is evaluated: the rules of triggers that receive
/// nothing cost their stored text only.
#[derive(Debug)]
pub struct StoredRule {
    rule_ref: String,
    spec: Box<str>,
    compiled: OnceLock<Result<CompiledRule, String>>,
}

impl StoredRule {
    pub fn new(rule_ref: String, spec: String) -> Self {
        Self {
            rule_ref,
            spec: spec.into(),
            compiled: OnceLock::new(),
        }
    }

    pub fn rule_ref(&self) -> &str {
        &self.rule_ref
    }

    /// The compiled rule, or why the stored spec could not be used (a rule's `error`
    /// verdict). Compiled once; later calls, from any thread, share the result.
    pub fn compiled(&self) -> Result<&CompiledRule, &str> {
        self.compiled
            .get_or_init(|| {
                let spec: RuleSpec =
                    serde_json::from_str(&self.spec).map_err(|e| format!("stored rule does not parse: {e}"))?;
                spec.compile().map_err(|e| format!("rule does not compile: {e}"))
            })
            .as_ref()
            .map_err(String::as_str)
    }
}
