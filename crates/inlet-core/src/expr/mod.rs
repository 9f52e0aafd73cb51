//! Expressions: conditions, templates, JSONPath mapping, payload schemas (DESIGN.md section 5).
//!
//! One language for conditions and templates: Jinja, through minijinja. Everything is
//! compiled once (when a rule, action or trigger is saved or loaded) and the compiled
//! forms are cheap to clone and share between threads.
//!
//! # Undefined values
//!
//! The environment uses minijinja's *chainable* undefined behaviour: looking up a key
//! that is not there (`payload.missing`, `payload.pull_request.merged` on a push event,
//! `headers["x-absent"]`) gives `undefined`, which is falsy, compares unequal to
//! everything, and renders as the empty string. Webhook payloads differ between event
//! types of the same trigger, and a condition such as `payload.missing == 'x'` must be
//! simply false rather than an error. Where a value must be present, a template can say
//! so with the `required` filter: `{{ payload.version | required }}` fails the render
//! (and so the execution) when `version` is missing or null.
//!
//! Other settings: no auto-escaping (nothing here is HTML), the trailing newline of a
//! template is kept (so a template renders exactly like the same text without tags),
//! and debug mode is off (errors do not carry copies of the context).
//!
//! minijinja resolves filters, tests and functions when it runs, not when it compiles.
//! Compiling therefore also runs the source once against an empty context and refuses
//! it when that run meets an unknown name (best effort: a branch the dry run does not
//! take is not checked).

mod mapping;
mod schema;

pub use mapping::{CompiledMapping, Mapping};
pub use schema::{PayloadSchema, SchemaViolation};

use minijinja::value::Serde;
use minijinja::{Environment, ErrorKind, Expression, UndefinedBehavior, Value};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, LazyLock, OnceLock};

/// What went wrong with an expression or template: compiling it (refused when saved,
/// with its position and the reason) or evaluating it against an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExprError {
    pub kind: ExprErrorKind,
    /// Which field of a rule, action or trigger the expression came from, e.g.
    /// `condition`, `runner.argv[1]`, `parameters.version`, `jsonpath.branch`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
    /// 1-based line in the expression's source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column (in characters) in that line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ExprErrorKind {
    /// The source does not compile: refused when saved or loaded.
    Compile,
    /// The source compiled but failed against this context.
    Evaluate,
}

impl ExprError {
    pub fn compile(message: impl Into<String>) -> Self {
        Self {
            kind: ExprErrorKind::Compile,
            field: None,
            message: message.into(),
            line: None,
            column: None,
        }
    }

    pub fn evaluate(message: impl Into<String>) -> Self {
        Self {
            kind: ExprErrorKind::Evaluate,
            ..Self::compile(message)
        }
    }

    /// Tags the error with the field it came from. A field already set is kept as the
    /// inner part: `in_field("parameters")` on an error of field `version` gives
    /// `parameters.version` (or `argv[1]` for an inner part `[1]`).
    pub fn in_field(mut self, field: impl Into<String>) -> Self {
        let outer = field.into();
        self.field = Some(match self.field.take() {
            None => outer,
            Some(inner) if inner.starts_with('[') => format!("{outer}{inner}"),
            Some(inner) => format!("{outer}.{inner}"),
        });
        self
    }

    pub fn at(mut self, line: Option<usize>, column: Option<usize>) -> Self {
        self.line = line;
        self.column = column;
        self
    }

    fn from_minijinja(err: &minijinja::Error, source: &str, kind: ExprErrorKind) -> Self {
        let message = match err.detail() {
            Some(detail) => format!("{}: {}", err.kind(), detail),
            None => err.kind().to_string(),
        };
        let (line, column) = match err.range() {
            Some(range) if range.start <= source.len() => {
                let (line, column) = line_column(source, range.start);
                (Some(line), Some(column))
            }
            _ => (err.line(), None),
        };
        Self {
            kind,
            field: None,
            message,
            line,
            column,
        }
    }
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        match (self.line, self.column) {
            (Some(line), Some(column)) => write!(f, "line {line}, column {column}: ")?,
            (Some(line), None) => write!(f, "line {line}: ")?,
            _ => {}
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExprError {}

/// 1-based line and column (in characters) of a byte offset.
pub(crate) fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn required_filter(value: Value) -> Result<Value, minijinja::Error> {
    if value.is_undefined() || value.is_none() {
        Err(minijinja::Error::new(
            ErrorKind::InvalidOperation,
            "a required value is missing",
        ))
    } else {
        Ok(value)
    }
}

/// Refuses a source whose dry run (see the module documentation) met an unknown filter,
/// test or function. Other failures of the dry run are ignored: they may only reflect
/// the missing data.
fn refuse_unknown_names(err: &minijinja::Error, source: &str) -> Result<(), ExprError> {
    match err.kind() {
        ErrorKind::UnknownFilter | ErrorKind::UnknownTest | ErrorKind::UnknownFunction => {
            Err(ExprError::from_minijinja(err, source, ExprErrorKind::Compile))
        }
        _ => Ok(()),
    }
}

/// A configured environment (see the module documentation for the settings).
fn new_environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env.set_debug(false);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .keep_trailing_newline(true)
        .build()
        .expect("the default syntax is valid");
    env.set_syntax(syntax);
    env.add_filter("required", required_filter);
    env
}

/// The shared environment expressions are compiled against.
static EXPRESSION_ENV: LazyLock<Environment<'static>> = LazyLock::new(new_environment);

/// An environment holding one template, `source`. minijinja ties a compiled template to
/// an environment, so each template needs its own; cloning the shared one keeps its
/// filter, test and global tables shared (they are behind `Arc`s) where a fresh
/// environment would copy them (several KiB) when `required` is added.
fn template_environment(source: &str) -> Result<Environment<'static>, minijinja::Error> {
    let mut env = EXPRESSION_ENV.clone();
    env.add_template_owned(TEMPLATE_NAME, source.to_owned())?;
    Ok(env)
}

/// What expressions and templates see: `payload`, `headers` (lower-case names), `query`,
/// `meta` (trigger, source_ip, received_at, ...), `event` (id, trigger, source, ...) and,
/// in an action's templates, `params` (the rule's rendered parameters). Each is an empty
/// map until set.
///
/// Build it once per event and share it between the rules of the trigger; the payload is
/// converted to template values once, here.
#[derive(Clone, Debug)]
pub struct Context {
    payload_json: Arc<serde_json::Value>,
    payload: Value,
    header_map: Arc<BTreeMap<String, String>>,
    headers: Value,
    query: Value,
    meta: Value,
    event: Value,
    params: Value,
}

impl Default for Context {
    fn default() -> Self {
        Self::new(&serde_json::Value::Null)
    }
}

impl Context {
    pub fn new(payload: &serde_json::Value) -> Self {
        Self::from_arc(Arc::new(payload.clone()))
    }

    /// Like [`Context::new`], without copying a payload that is already shared.
    pub fn from_arc(payload: Arc<serde_json::Value>) -> Self {
        let empty = Value::from(BTreeMap::<String, Value>::new());
        Self {
            payload: Value::from(Serde(&*payload)),
            payload_json: payload,
            header_map: Arc::default(),
            headers: empty.clone(),
            query: empty.clone(),
            meta: empty.clone(),
            event: empty.clone(),
            params: empty,
        }
    }

    /// Request headers. Names are lower-cased; a name given more than once has its
    /// values joined with `", "` (as HTTP folds them).
    pub fn with_headers<I, K, V>(mut self, headers: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in headers {
            let name = name.as_ref().to_ascii_lowercase();
            match map.get_mut(&name) {
                Some(existing) => {
                    existing.push_str(", ");
                    existing.push_str(value.as_ref());
                }
                None => {
                    map.insert(name, value.as_ref().to_owned());
                }
            }
        }
        self.headers = Value::from(map.clone());
        self.header_map = Arc::new(map);
        self
    }

    /// Query parameters. A name given more than once keeps its first value.
    pub fn with_query<I, K, V>(mut self, query: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in query {
            map.entry(name.as_ref().to_owned())
                .or_insert_with(|| value.as_ref().to_owned());
        }
        self.query = Value::from(map);
        self
    }

    /// `meta`: anything serializable, typically `{"trigger", "source_ip", "received_at"}`.
    pub fn with_meta<T: Serialize + ?Sized>(mut self, meta: &T) -> Self {
        self.meta = Value::from(Serde(meta));
        self
    }

    /// `event`: anything serializable, typically `{"id", "trigger", "source", ...}`.
    pub fn with_event<T: Serialize + ?Sized>(mut self, event: &T) -> Self {
        self.event = Value::from(Serde(event));
        self
    }

    /// `params`: a rule's rendered parameters, for its action's templates.
    pub fn with_params(mut self, params: &serde_json::Value) -> Self {
        self.set_params(params);
        self
    }

    pub fn set_params(&mut self, params: &serde_json::Value) {
        self.params = Value::from(Serde(params));
    }

    /// The payload as it was given (for `stdin: payload` and forwarding).
    pub fn payload_json(&self) -> &serde_json::Value {
        &self.payload_json
    }

    /// One header by lower-case name, as given to [`Context::with_headers`].
    pub fn header(&self, lower_name: &str) -> Option<&str> {
        self.header_map.get(lower_name).map(String::as_str)
    }

    /// All headers, by lower-case name.
    pub fn headers(&self) -> &BTreeMap<String, String> {
        &self.header_map
    }

    fn root(&self) -> Value {
        minijinja::context! {
            payload => self.payload.clone(),
            headers => self.headers.clone(),
            query => self.query.clone(),
            meta => self.meta.clone(),
            event => self.event.clone(),
            params => self.params.clone(),
        }
    }
}

/// A rule's condition: a Jinja expression, true or false for an event. Empty (or only
/// whitespace) means always true.
#[derive(Clone)]
pub struct Condition {
    source: Arc<str>,
    expr: Option<Arc<Expression<'static, 'static>>>,
}

impl fmt::Debug for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Condition").field(&self.source).finish()
    }
}

impl Condition {
    pub fn compile(source: &str) -> Result<Self, ExprError> {
        if source.trim().is_empty() {
            return Ok(Self::always());
        }
        let expr = EXPRESSION_ENV
            .compile_expression_owned(source.to_owned())
            .map_err(|e| {
                let mut err = ExprError::from_minijinja(&e, source, ExprErrorKind::Compile);
                // `{{ }}` around a condition is a common slip; say what is expected.
                if source.trim_start().starts_with("{{") {
                    err.message.push_str(
                        " (a condition is a bare expression, without `{{ }}`: e.g. `payload.ref == 'refs/heads/main'`)",
                    );
                }
                err
            })?;
        if let Err(e) = expr.eval(Context::default().root()) {
            refuse_unknown_names(&e, source)?;
        }
        Ok(Self {
            source: source.into(),
            expr: Some(Arc::new(expr)),
        })
    }

    pub fn always() -> Self {
        Self {
            source: "".into(),
            expr: None,
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn is_always(&self) -> bool {
        self.expr.is_none()
    }

    /// The truthiness of the expression (Jinja's: empty strings, lists and maps, zero,
    /// none and undefined are false).
    pub fn evaluate(&self, ctx: &Context) -> Result<bool, ExprError> {
        match &self.expr {
            None => Ok(true),
            Some(expr) => expr
                .eval(ctx.root())
                .map(|v| v.is_true())
                .map_err(|e| ExprError::from_minijinja(&e, &self.source, ExprErrorKind::Evaluate)),
        }
    }
}

/// A template: text with `{{ expression }}` and `{% statement %}` tags, rendered to a
/// string. Text without tags is kept as it is and renders without the template engine.
#[derive(Clone)]
pub struct Template {
    inner: TemplateInner,
}

#[derive(Clone)]
enum TemplateInner {
    Literal(Arc<str>),
    Jinja(Arc<JinjaTemplate>),
}

struct JinjaTemplate {
    source: Box<str>,
    /// The compiled template. Each compiled form costs about 12 KiB (minijinja reserves
    /// room for 256 instructions), so a template that is one expression, whose usual
    /// use is [`Template::render_value`], keeps only `sole` until it is first rendered
    /// to a string.
    env: OnceLock<Environment<'static>>,
    /// When the whole template is one `{{ expression }}`: that expression, so that
    /// [`Template::render_value`] can keep its type.
    sole: Option<Expression<'static, 'static>>,
}

impl JinjaTemplate {
    fn environment(&self) -> Result<&Environment<'static>, ExprError> {
        if let Some(env) = self.env.get() {
            return Ok(env);
        }
        let env = template_environment(&self.source).map_err(|e| self.error(&e))?;
        // A render racing this one may have set it first; either copy will do.
        Ok(self.env.get_or_init(|| env))
    }

    fn error(&self, err: &minijinja::Error) -> ExprError {
        ExprError::from_minijinja(err, &self.source, ExprErrorKind::Evaluate)
    }
}

const TEMPLATE_NAME: &str = "template";

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Template").field(&self.source()).finish()
    }
}

/// Whether a string contains template syntax (`{{`, `{%` or `{#`).
pub fn has_template_syntax(source: &str) -> bool {
    source.contains("{{") || source.contains("{%") || source.contains("{#")
}

/// The expression of a template that is exactly one `{{ expression }}`.
fn sole_expression(source: &str) -> Option<&str> {
    let inner = source.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
    let inner = inner.strip_suffix(['-', '+']).unwrap_or(inner);
    if has_template_syntax(inner) || inner.contains("}}") || inner.contains("%}") {
        return None;
    }
    Some(inner)
}

impl Template {
    pub fn compile(source: &str) -> Result<Self, ExprError> {
        if !has_template_syntax(source) {
            return Ok(Self::literal(source));
        }
        let env =
            template_environment(source).map_err(|e| ExprError::from_minijinja(&e, source, ExprErrorKind::Compile))?;
        if let Err(e) = env
            .get_template(TEMPLATE_NAME)
            .and_then(|t| t.render(Context::default().root()))
        {
            refuse_unknown_names(&e, source)?;
        }
        let sole =
            sole_expression(source).and_then(|expr| EXPRESSION_ENV.compile_expression_owned(expr.to_owned()).ok());
        let compiled = OnceLock::new();
        if sole.is_none() {
            let _ = compiled.set(env);
        }
        Ok(Self {
            inner: TemplateInner::Jinja(Arc::new(JinjaTemplate {
                source: source.into(),
                env: compiled,
                sole,
            })),
        })
    }

    /// A template that renders `text` as it is, whatever it contains.
    pub fn literal(text: &str) -> Self {
        Self {
            inner: TemplateInner::Literal(text.into()),
        }
    }

    pub fn source(&self) -> &str {
        match &self.inner {
            TemplateInner::Literal(text) => text,
            TemplateInner::Jinja(t) => &t.source,
        }
    }

    pub fn is_literal(&self) -> bool {
        matches!(self.inner, TemplateInner::Literal(_))
    }

    pub fn render(&self, ctx: &Context) -> Result<String, ExprError> {
        match &self.inner {
            TemplateInner::Literal(text) => Ok(text.to_string()),
            TemplateInner::Jinja(t) => t
                .environment()?
                .get_template(TEMPLATE_NAME)
                .and_then(|tmpl| tmpl.render(ctx.root()))
                .map_err(|e| t.error(&e)),
        }
    }

    /// Renders to a JSON value. A template that is exactly one `{{ expression }}` keeps
    /// the expression's type (number, boolean, list, object; undefined and none become
    /// null); any other template gives a string.
    pub fn render_value(&self, ctx: &Context) -> Result<serde_json::Value, ExprError> {
        if let TemplateInner::Jinja(t) = &self.inner
            && let Some(expr) = &t.sole
        {
            let value = expr.eval(ctx.root()).map_err(|e| t.error(&e))?;
            if value.is_undefined() {
                return Ok(serde_json::Value::Null);
            }
            return serde_json::to_value(&value)
                .map_err(|e| ExprError::evaluate(format!("the value cannot be represented as JSON: {e}")));
        }
        self.render(ctx).map(serde_json::Value::String)
    }
}

#[cfg(test)]
mod tests;
