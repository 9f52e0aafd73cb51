use super::*;
use serde_json::json;

fn github_ctx() -> Context {
    Context::new(&json!({
        "ref": "refs/heads/main",
        "head_commit": {"id": "abc123", "message": "fix"},
        "commits": [{"id": "a"}, {"id": "b"}],
        "repository": {"full_name": "acme/web", "stars": 42},
    }))
    .with_headers([("X-GitHub-Event", "push"), ("Content-Type", "application/json")])
    .with_query([("env", "prod"), ("env", "dev"), ("x", "1")])
    .with_meta(&json!({"trigger": "github.push", "source_ip": "192.0.2.1", "received_at": "2026-11-01T00:00:00Z"}))
    .with_event(&json!({"id": "evt_1", "trigger": "github.push", "source": "webhook"}))
}

#[test]
fn design_condition_matches() {
    let cond =
        Condition::compile(r#"headers["x-github-event"] == "push" and payload.ref == "refs/heads/main""#).unwrap();
    assert!(cond.evaluate(&github_ctx()).unwrap());

    let other = Context::new(&json!({"ref": "refs/heads/dev"})).with_headers([("x-github-event", "push")]);
    assert!(!cond.evaluate(&other).unwrap());
    // No headers at all: undefined, not an error.
    assert!(!cond.evaluate(&Context::new(&json!({}))).unwrap());
}

#[test]
fn empty_condition_is_always_true() {
    for src in ["", "   ", "\n\t"] {
        let cond = Condition::compile(src).unwrap();
        assert!(cond.is_always());
        assert!(cond.evaluate(&Context::default()).unwrap());
    }
}

#[test]
fn missing_fields_are_falsy_not_errors() {
    let ctx = github_ctx();
    for src in [
        "payload.missing == 'x'",
        "payload.pull_request.merged",
        "payload.a.b.c.d",
        "headers['x-absent'] == 'y'",
        "params.anything",
    ] {
        let cond = Condition::compile(src).unwrap();
        assert!(!cond.evaluate(&ctx).unwrap(), "{src}");
    }
    assert!(
        Condition::compile("payload.missing is undefined")
            .unwrap()
            .evaluate(&ctx)
            .unwrap()
    );
}

#[test]
fn truthiness_and_operators() {
    let ctx = github_ctx();
    let yes = [
        "payload.commits | length == 2",
        "payload.repository.stars > 40",
        "'fix' in payload.head_commit.message",
        "payload.ref is startingwith('refs/heads/')",
        "query.env == 'prod'",
        "meta.source_ip == '192.0.2.1' and event.source == 'webhook'",
        "payload.commits",
        "payload.repository.full_name is string",
    ];
    for src in yes {
        assert!(Condition::compile(src).unwrap().evaluate(&ctx).unwrap(), "{src}");
    }
    let no = [
        "payload.commits | length > 5",
        "[]",
        "0",
        "''",
        "none",
        "not payload.ref",
    ];
    for src in no {
        assert!(!Condition::compile(src).unwrap().evaluate(&ctx).unwrap(), "{src}");
    }
}

#[test]
fn condition_syntax_error_has_position() {
    let err = Condition::compile("payload.ref == ").unwrap_err();
    assert_eq!(err.kind, ExprErrorKind::Compile);
    assert_eq!(err.line, Some(1));
    assert!(err.column.is_some(), "{err:?}");
    assert!(err.message.contains("syntax error"), "{err}");

    let err = Condition::compile("payload.ref == 'a' and\n  (payload.x ==").unwrap_err();
    assert_eq!(err.line, Some(2), "{err:?}");

    let err = Condition::compile("payload.ref === 'x'").unwrap_err();
    assert_eq!((err.line, err.column), (Some(1), Some(15)), "{err:?}");

    let err = Condition::compile("{{ payload.ref }}").unwrap_err();
    assert!(err.message.contains("without `{{ }}`"), "{err}");
}

#[test]
fn condition_runtime_error() {
    let cond = Condition::compile("payload.ref + 1 > 2").unwrap();
    let err = cond.evaluate(&github_ctx()).unwrap_err();
    assert_eq!(err.kind, ExprErrorKind::Evaluate);
    // Unknown filters, tests and functions are caught when compiling (best effort: a
    // dry run against an empty context).
    for src in ["payload.ref | nosuchfilter", "payload.ref is nosuchtest", "nosuchfn(1)"] {
        let err = Condition::compile(src).unwrap_err();
        assert_eq!(err.kind, ExprErrorKind::Compile, "{src}");
        assert!(err.message.contains("unknown"), "{err}");
    }
    let err = Template::compile("x {{ payload.ref | nosuchfilter }}").unwrap_err();
    assert_eq!((err.kind, err.column), (ExprErrorKind::Compile, Some(20)), "{err:?}");
    // A dry run must not refuse what only fails on real data.
    assert!(Condition::compile("payload.n + 1 > 2").is_ok());
    assert!(Template::compile("{{ payload.items | join(',') }}").is_ok());
}

#[test]
fn template_renders() {
    let ctx = github_ctx().with_params(&json!({"version": "1.2.3", "n": 3}));
    let t = Template::compile("deploy {{ payload.head_commit.id }} of {{ payload.repository.full_name }}").unwrap();
    assert_eq!(t.render(&ctx).unwrap(), "deploy abc123 of acme/web");
    let t = Template::compile("{{ params.version }}-{{ params.n * 2 }}").unwrap();
    assert_eq!(t.render(&ctx).unwrap(), "1.2.3-6");
    let t = Template::compile("{% for c in payload.commits %}{{ c.id }},{% endfor %}").unwrap();
    assert_eq!(t.render(&ctx).unwrap(), "a,b,");
    let t = Template::compile("{{ payload.head_commit | tojson }}").unwrap();
    let v: serde_json::Value = serde_json::from_str(&t.render(&ctx).unwrap()).unwrap();
    assert_eq!(v, json!({"id": "abc123", "message": "fix"}));
    let t = Template::compile("{{ payload.missing }}|{{ payload.a.b }}").unwrap();
    assert_eq!(t.render(&ctx).unwrap(), "|");
    let t = Template::compile("line {{ 1 }}\n").unwrap();
    assert_eq!(t.render(&ctx).unwrap(), "line 1\n", "trailing newline kept");
    let t = Template::compile("q={{ 'a b&c' | urlencode }}").unwrap();
    assert_eq!(t.render(&ctx).unwrap(), "q=a%20b%26c");
}

#[test]
fn plain_template_is_literal() {
    let t = Template::compile("/usr/local/bin/deploy --flag {not a tag} }}").unwrap();
    assert!(t.is_literal());
    assert_eq!(
        t.render(&Context::default()).unwrap(),
        "/usr/local/bin/deploy --flag {not a tag} }}"
    );
    assert!(!Template::compile("{# comment #}x").unwrap().is_literal());
}

#[test]
fn template_errors() {
    let err = Template::compile("hello\n{{ payload.ref ").unwrap_err();
    assert_eq!(err.kind, ExprErrorKind::Compile);
    assert_eq!(err.line, Some(2), "{err:?}");
    assert!(err.column.is_some(), "{err:?}");

    let err = Template::compile("{% if x %}no end").unwrap_err();
    assert_eq!(err.kind, ExprErrorKind::Compile);

    let t = Template::compile("v={{ payload.version | required }}").unwrap();
    let err = t.render(&Context::new(&json!({}))).unwrap_err();
    assert_eq!(err.kind, ExprErrorKind::Evaluate);
    assert!(err.message.contains("required"), "{err}");
    assert_eq!(t.render(&Context::new(&json!({"version": 2}))).unwrap(), "v=2");

    let shown = ExprError::compile("bad")
        .at(Some(1), Some(4))
        .in_field("1")
        .in_field("argv")
        .in_field("runner")
        .to_string();
    assert_eq!(shown, "runner.argv.1: line 1, column 4: bad");
    let shown = ExprError::compile("bad").in_field("[1]").in_field("argv").to_string();
    assert_eq!(shown, "argv[1]: bad");
}

#[test]
fn render_value_keeps_types_of_sole_expressions() {
    let ctx = github_ctx();
    let cases = [
        ("{{ payload.repository.stars }}", json!(42)),
        ("{{ payload.commits }}", json!([{"id": "a"}, {"id": "b"}])),
        ("{{- payload.repository.stars > 3 -}}", json!(true)),
        ("{{ payload.missing }}", json!(null)),
        ("{{ payload.ref }}", json!("refs/heads/main")),
        ("n={{ payload.repository.stars }}", json!("n=42")),
        (
            "{{ payload.ref }}{{ payload.ref }}",
            json!("refs/heads/mainrefs/heads/main"),
        ),
        ("plain", json!("plain")),
    ];
    for (src, want) in cases {
        assert_eq!(
            Template::compile(src).unwrap().render_value(&ctx).unwrap(),
            want,
            "{src}"
        );
    }
}

/// A template that is one expression compiles its text form only when first rendered
/// as text: that form must render and fail exactly like any other template's.
#[test]
fn sole_expression_templates_render_as_text() {
    let ctx = github_ctx();
    let t = Template::compile("{{ payload.repository.stars }}").unwrap();
    assert_eq!(t.render_value(&ctx).unwrap(), json!(42));
    assert_eq!(t.render(&ctx).unwrap(), "42");
    assert_eq!(t.clone().render(&ctx).unwrap(), "42");
    assert_eq!(
        Template::compile("{{ payload.missing }}")
            .unwrap()
            .render(&ctx)
            .unwrap(),
        ""
    );

    let t = Template::compile("{{ payload.version | required }}").unwrap();
    let err = t.render(&ctx).unwrap_err();
    let other = Template::compile("{{ payload.version | required }}{# text #}").unwrap();
    assert_eq!(err, other.render(&ctx).unwrap_err());
    assert_eq!(err.kind, ExprErrorKind::Evaluate);
}

#[test]
fn compiled_forms_are_shareable() {
    fn assert_traits<T: Send + Sync + Clone + 'static>() {}
    assert_traits::<Condition>();
    assert_traits::<Template>();
    assert_traits::<Context>();
    assert_traits::<CompiledMapping>();
    assert_traits::<PayloadSchema>();

    let cond = Condition::compile("payload.n > 1").unwrap();
    let t = Template::compile("{{ payload.n }}").unwrap();
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (cond, t) = (cond.clone(), t.clone());
            std::thread::spawn(move || {
                let ctx = Context::new(&json!({"n": i}));
                (cond.evaluate(&ctx).unwrap(), t.render(&ctx).unwrap())
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(results[3], (true, "3".to_owned()));
    assert_eq!(results[0], (false, "0".to_owned()));
}

#[test]
fn context_headers_and_query() {
    let ctx = Context::new(&json!(null))
        .with_headers([("Accept", "a"), ("accept", "b"), ("X-One", "1")])
        .with_query([("a", "1"), ("a", "2")]);
    assert_eq!(ctx.header("accept"), Some("a, b"));
    assert_eq!(ctx.headers().len(), 2);
    let t = Template::compile("{{ headers.accept }}/{{ headers['x-one'] }}/{{ query.a }}").unwrap();
    assert_eq!(t.render(&ctx).unwrap(), "a, b/1/1");
}

#[test]
fn mapping_serde_shapes() {
    let m: Mapping = serde_json::from_value(json!({"jsonpath": {"commit_sha": "$.head_commit.id"}})).unwrap();
    assert_eq!(
        m,
        Mapping::JsonPath([("commit_sha".to_owned(), "$.head_commit.id".to_owned())].into())
    );
    assert_eq!(
        serde_json::to_value(&m).unwrap(),
        json!({"jsonpath": {"commit_sha": "$.head_commit.id"}})
    );
    let m: Mapping = serde_json::from_value(json!({"template": "{}"})).unwrap();
    assert_eq!(m, Mapping::Template("{}".into()));
    let m: Mapping = serde_json::from_value(json!(null)).unwrap();
    assert!(m.is_pass_through());
    assert_eq!(serde_json::to_value(&m).unwrap(), json!(null));

    #[derive(serde::Deserialize)]
    struct Holder {
        #[serde(default)]
        mapping: Mapping,
    }
    let h: Holder = serde_json::from_value(json!({})).unwrap();
    assert!(h.mapping.is_pass_through());
    assert!(serde_json::from_value::<Mapping>(json!({"xpath": {}})).is_err());
}

#[test]
fn jsonpath_mapping() {
    let payload =
        json!({"ref": "refs/heads/main", "head_commit": {"id": "abc"}, "commits": [{"id": "1"}, {"id": "2"}]});
    let m = Mapping::JsonPath(
        [
            ("commit_sha", "$.head_commit.id"),
            ("branch", "$.ref"),
            ("first", "$.commits[*].id"),
            ("none", "$.nothing.here"),
            ("all", "$.commits[?@.id == '2']"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
    )
    .compile()
    .unwrap();
    assert!(!m.needs_context());
    let out = m.apply(&payload, &Context::default()).unwrap();
    assert_eq!(
        out,
        json!({"commit_sha": "abc", "branch": "refs/heads/main", "first": "1", "none": null, "all": {"id": "2"}})
    );
}

#[test]
fn jsonpath_mapping_errors_have_position() {
    let m = Mapping::JsonPath([("sha".to_owned(), "$.head_commit[".to_owned())].into());
    let err = m.compile().unwrap_err();
    assert_eq!(err.field.as_deref(), Some("jsonpath.sha"));
    assert_eq!(err.kind, ExprErrorKind::Compile);
    assert!(err.column.is_some());
    let err = Mapping::JsonPath([("sha".to_owned(), "head_commit.id".to_owned())].into())
        .compile()
        .unwrap_err();
    assert!(err.message.contains("JSONPath"), "{err}");
    assert!(Mapping::JsonPath(Default::default()).compile().is_err());
}

#[test]
fn template_mapping() {
    let payload = json!({"after": "abc", "repository": {"name": "web"}});
    let ctx = Context::new(&payload).with_headers([("x-github-event", "push")]);
    let m = Mapping::Template(
        r#"{"sha": {{ payload.after | tojson }}, "repo": "{{ payload.repository.name }}", "kind": {{ headers["x-github-event"] | tojson }}}"#.into(),
    )
    .compile()
    .unwrap();
    assert!(m.needs_context());
    assert_eq!(
        m.apply(&payload, &ctx).unwrap(),
        json!({"sha": "abc", "repo": "web", "kind": "push"})
    );

    let m = Mapping::Template("not json {{ payload.after }}".into())
        .compile()
        .unwrap();
    let err = m.apply(&payload, &ctx).unwrap_err();
    assert_eq!(err.kind, ExprErrorKind::Evaluate);
    assert!(err.message.contains("did not render JSON"), "{err}");

    let err = Mapping::Template("{{ oops".into()).compile().unwrap_err();
    assert_eq!(err.field.as_deref(), Some("template"));

    let pass = Mapping::PassThrough.compile().unwrap();
    assert_eq!(pass.apply(&payload, &ctx).unwrap(), payload);
}

#[test]
fn payload_schema() {
    let schema = PayloadSchema::compile(&json!({
        "type": "object",
        "required": ["ref", "repository"],
        "properties": {
            "ref": {"type": "string"},
            "repository": {"type": "object", "properties": {"id": {"type": "integer"}}},
            "commits": {"type": "array", "items": {"type": "object", "required": ["id"]}},
        }
    }))
    .unwrap();
    assert!(schema.check(&json!({"ref": "x", "repository": {"id": 1}})).is_ok());

    let v = schema
        .check(&json!({"ref": "x", "repository": {"id": "one"}}))
        .unwrap_err();
    assert_eq!(v.instance_path, "/repository/id");
    assert!(v.message.contains("integer"), "{v}");
    assert!(!v.message.contains("one"), "the payload's values are not quoted: {v}");

    let v = schema
        .check(&json!({"ref": "x", "repository": {}, "commits": [{"id": 1}, {}]}))
        .unwrap_err();
    assert_eq!(v.instance_path, "/commits/1");

    let v = schema.check(&json!({"ref": "x"})).unwrap_err();
    assert_eq!(v.instance_path, "");
    assert!(v.to_string().contains("at /:"), "{v}");

    let err = PayloadSchema::compile(&json!({"type": "no-such-type"})).unwrap_err();
    assert_eq!(err.kind, ExprErrorKind::Compile);
    assert!(err.message.contains("invalid JSON Schema"), "{err}");
}

#[test]
fn line_column_counts_chars() {
    assert_eq!(line_column("abc", 0), (1, 1));
    assert_eq!(line_column("ab\ncd", 4), (2, 2));
    assert_eq!(line_column("é=x", 2), (1, 2));
    assert_eq!(line_column("abc", 99), (1, 4));
}
