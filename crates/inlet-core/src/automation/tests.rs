use super::*;
use crate::expr::{Context, ExprErrorKind};
use serde_json::{Value, json};
use std::time::Duration;

fn deploy_action() -> Value {
    json!({"ref": "myapp.deploy", "runner": {"type": "command", "argv": ["/usr/local/bin/deploy", "{{ params.version }}"], "env": {"ENV": "{{ params.environment }}"}, "stdin": "payload", "working_dir": "/srv"}, "timeout_seconds": 60, "retry": {"max_attempts": 3, "initial_backoff_seconds": 1, "max_backoff_seconds": 300}, "concurrency": 1})
}

fn notify_action() -> Value {
    json!({"ref": "myapp.notify", "runner": {"type": "http", "method": "POST", "url": "https://chat.example/hook", "headers": {"Content-Type": "application/json"}, "body": "{\"text\": \"{{ params.message }}\"}", "success_status": [200, 204]}})
}

fn prod_rule() -> Value {
    json!({"ref": "myapp.on_prod_deploy", "trigger": "myapp.deployment_complete", "condition": "payload.environment == 'production'", "action": "myapp.deploy", "parameters": {"version": "{{ payload.version }}", "environment": "{{ payload.environment }}"}, "enabled": true, "debounce_seconds": null, "debounce_key": null})
}

#[test]
fn refs() {
    for good in ["github.push", "my-app.deploy-2", "a.b", "x1.y_z"] {
        assert!(is_valid_ref(good), "{good}");
    }
    for bad in [
        "",
        "github",
        ".push",
        "github.",
        "a.b.c",
        "GitHub.push",
        "_x.y",
        "a.b/c",
        "a b.c",
    ] {
        assert!(!is_valid_ref(bad), "{bad}");
    }
    assert!(!is_valid_ref(&format!("a.{}", "x".repeat(65))));
}

#[test]
fn issue_shapes_round_trip() {
    for shape in [deploy_action(), notify_action()] {
        let spec: ActionSpec = serde_json::from_value(shape.clone()).unwrap();
        spec.compile().unwrap();
        let back: ActionSpec = serde_json::from_value(serde_json::to_value(&spec).unwrap()).unwrap();
        assert_eq!(back, spec);
    }
    let spec: ActionSpec = serde_json::from_value(deploy_action()).unwrap();
    assert_eq!(
        serde_json::to_value(&spec).unwrap()["runner"],
        deploy_action()["runner"]
    );
    let RunnerSpec::Command(c) = &spec.runner else { panic!() };
    assert_eq!(c.stdin, Stdin::Payload);
    assert_eq!(spec.concurrency, Some(1));

    let rule: RuleSpec = serde_json::from_value(prod_rule()).unwrap();
    assert_eq!(serde_json::to_value(&rule).unwrap(), prod_rule());
    rule.compile().unwrap();
}

#[test]
fn defaults() {
    let spec: ActionSpec =
        serde_json::from_value(json!({"ref": "a.b", "runner": {"type": "http", "url": "http://x/"}})).unwrap();
    assert_eq!(spec.timeout_seconds, 60);
    assert_eq!(
        spec.retry,
        RetryPolicy {
            max_attempts: 3,
            initial_backoff_seconds: 1.0,
            max_backoff_seconds: 300.0
        }
    );
    assert_eq!(spec.concurrency, None);
    let RunnerSpec::Http(h) = &spec.runner else { panic!() };
    assert_eq!(h.method, "POST");
    assert!(!h.forward);
    let a = spec.compile().unwrap();
    assert_eq!(a.timeout(), Duration::from_secs(60));

    let rule: RuleSpec = serde_json::from_value(json!({"ref": "a.r", "trigger": "a.t", "action": "a.b"})).unwrap();
    assert!(rule.enabled);
    assert_eq!(rule.condition, "");
    assert!(rule.parameters.is_empty());
    let rule: RuleSpec =
        serde_json::from_value(json!({"ref": "a.r", "trigger": "a.t", "action": "a.b", "condition": null})).unwrap();
    let compiled = rule.compile().unwrap();
    assert!(compiled.matches(&Context::default()).unwrap());
    assert_eq!(compiled.render_parameters(&Context::default()).unwrap(), json!({}));
    assert_eq!(compiled.debounce_key(&Context::default()).unwrap(), None);
}

#[test]
fn unknown_fields_and_bad_shapes_are_refused() {
    let mut a = deploy_action();
    a["retry"]["max_attempt"] = json!(3);
    assert!(serde_json::from_value::<ActionSpec>(a).is_err());
    let mut a = notify_action();
    a["runner"]["succes_status"] = json!([200]);
    assert!(serde_json::from_value::<ActionSpec>(a).is_err());
    let mut a = notify_action();
    a["runner"]["type"] = json!("ftp");
    assert!(serde_json::from_value::<ActionSpec>(a).is_err());
    let mut r = prod_rule();
    r["debounce"] = json!(5);
    assert!(serde_json::from_value::<RuleSpec>(r).is_err());
    let mut r = prod_rule();
    r["parameters"] = json!(["not", "an", "object"]);
    assert!(serde_json::from_value::<RuleSpec>(r).is_err());
}

fn compile_err(action: Value) -> crate::expr::ExprError {
    serde_json::from_value::<ActionSpec>(action)
        .unwrap()
        .compile()
        .unwrap_err()
}

#[test]
fn action_compile_errors_name_the_field() {
    let mut a = deploy_action();
    a["runner"]["argv"][1] = json!("{{ params.version ");
    let err = compile_err(a);
    assert_eq!(err.field.as_deref(), Some("runner.argv[1]"));
    assert_eq!(err.kind, ExprErrorKind::Compile);
    assert_eq!(err.line, Some(1));
    assert!(err.to_string().starts_with("runner.argv[1]: line 1, column"), "{err}");

    let mut a = deploy_action();
    a["runner"]["env"]["ENV"] = json!("{% if %}");
    assert_eq!(compile_err(a).field.as_deref(), Some("runner.env.ENV"));

    let mut a = notify_action();
    a["runner"]["headers"]["X-Token"] = json!("{{ params.token | nope }}");
    assert_eq!(compile_err(a).field.as_deref(), Some("runner.headers.X-Token"));

    let cases = [
        (json!({"ref": "Bad.ref"}), "ref"),
        (json!({"timeout_seconds": 0}), "timeout_seconds"),
        (json!({"retry": {"max_attempts": 0}}), "retry.max_attempts"),
        (
            json!({"retry": {"initial_backoff_seconds": 10, "max_backoff_seconds": 5}}),
            "retry.max_backoff_seconds",
        ),
        (json!({"concurrency": 0}), "concurrency"),
    ];
    for (patch, field) in cases {
        let mut a = deploy_action();
        for (k, v) in patch.as_object().unwrap() {
            a[k] = v.clone();
        }
        assert_eq!(compile_err(a).field.as_deref(), Some(field));
    }
    let mut a = deploy_action();
    a["runner"]["argv"] = json!([]);
    assert_eq!(compile_err(a).field.as_deref(), Some("runner.argv"));

    let http_cases = [
        (json!({"url": "ftp://x"}), "runner.url"),
        (json!({"url": "https://"}), "runner.url"),
        (json!({"method": "PO ST"}), "runner.method"),
        (json!({"headers": {"Bad Header": "x"}}), "runner.headers"),
        (json!({"forward": true}), "runner.body"),
        (json!({"forward_headers": ["x-a"]}), "runner.forward_headers"),
        (json!({"success_status": [200, 700]}), "runner.success_status[1]"),
        (json!({"sign": {"secret": "not base64!"}}), "runner.sign.secret"),
    ];
    for (patch, field) in http_cases {
        let mut a = notify_action();
        for (k, v) in patch.as_object().unwrap() {
            a["runner"][k] = v.clone();
        }
        assert_eq!(compile_err(a).field.as_deref(), Some(field), "{patch}");
    }
    let mut a = notify_action();
    a["runner"]["body"] = Value::Null;
    a["runner"]["forward"] = json!(true);
    a["runner"]["forward_headers"] = json!(["Host"]);
    assert_eq!(compile_err(a).field.as_deref(), Some("runner.forward_headers[0]"));
}

#[test]
fn rule_compile_errors_name_the_field() {
    let mut r = prod_rule();
    r["condition"] = json!("payload.environment ==");
    let err = serde_json::from_value::<RuleSpec>(r).unwrap().compile().unwrap_err();
    assert_eq!(err.field.as_deref(), Some("condition"));
    assert!(err.column.is_some());

    let mut r = prod_rule();
    r["parameters"] = json!({"deep": {"list": ["ok", "{{ oops"]}});
    let err = serde_json::from_value::<RuleSpec>(r).unwrap().compile().unwrap_err();
    assert_eq!(err.field.as_deref(), Some("parameters.deep.list[1]"));

    let mut r = prod_rule();
    r["debounce_key"] = json!("{{ payload.x }}");
    let err = serde_json::from_value::<RuleSpec>(r).unwrap().compile().unwrap_err();
    assert_eq!(err.field.as_deref(), Some("debounce_key"));

    for (field, value) in [("trigger", "nope"), ("action", "A.b"), ("ref", "x")] {
        let mut r = prod_rule();
        r[field] = json!(value);
        let err = serde_json::from_value::<RuleSpec>(r).unwrap().compile().unwrap_err();
        assert_eq!(err.field.as_deref(), Some(field));
    }
}

#[test]
fn stored_rules_compile_on_first_use_with_the_compile_errors() {
    let stored = StoredRule::new("myapp.on_prod_deploy".into(), prod_rule().to_string());
    assert_eq!(stored.rule_ref(), "myapp.on_prod_deploy");
    let rule = stored.compiled().unwrap();
    assert!(
        rule.matches(&Context::new(&json!({"environment": "production"})))
            .unwrap()
    );
    assert!(std::ptr::eq(rule, stored.compiled().unwrap()), "compiled once");

    let mut r = prod_rule();
    r["condition"] = json!("payload.environment ==");
    let spec: RuleSpec = serde_json::from_value(r.clone()).unwrap();
    let want = format!("rule does not compile: {}", spec.compile().unwrap_err());
    assert_eq!(
        StoredRule::new("x.y".into(), r.to_string()).compiled().unwrap_err(),
        want
    );

    let why = StoredRule::new("x.y".into(), "{".into())
        .compiled()
        .unwrap_err()
        .to_owned();
    assert!(why.starts_with("stored rule does not parse: "), "{why}");
}

#[test]
fn rule_matches_and_renders() {
    let rule: RuleSpec = serde_json::from_value(prod_rule()).unwrap();
    let rule = rule.compile().unwrap();
    let prod = Context::new(&json!({"environment": "production", "version": "1.4.2"}));
    let dev = Context::new(&json!({"environment": "dev", "version": "1.4.3"}));
    assert!(rule.matches(&prod).unwrap());
    assert!(!rule.matches(&dev).unwrap());
    assert_eq!(
        rule.render_parameters(&prod).unwrap(),
        json!({"version": "1.4.2", "environment": "production"})
    );

    let rule: RuleSpec = serde_json::from_value(json!({
        "ref": "gh.r", "trigger": "gh.push", "action": "gh.a",
        "condition": "payload.n + 'x'",
        "parameters": {"n": "{{ payload.n }}", "label": "n={{ payload.n }}", "fixed": 5, "list": ["{{ payload.n * 2 }}", "lit"], "nested": {"req": "{{ payload.missing | required }}"}},
        "debounce_seconds": 30, "debounce_key": "{{ payload.repo }}"
    }))
    .unwrap();
    let rule = rule.compile().unwrap();
    let ctx = Context::new(&json!({"n": 3, "repo": "acme/web", "missing": "here"}));
    assert_eq!(
        rule.render_parameters(&ctx).unwrap(),
        json!({"n": 3, "label": "n=3", "fixed": 5, "list": [6, "lit"], "nested": {"req": "here"}})
    );
    let err = rule.render_parameters(&Context::new(&json!({"n": 1}))).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("parameters.nested.req"));
    assert_eq!(err.kind, ExprErrorKind::Evaluate);
    let err = rule.matches(&ctx).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("condition"));
    assert_eq!(rule.debounce(), Some(Duration::from_secs(30)));
    assert_eq!(rule.debounce_key(&ctx).unwrap().as_deref(), Some("acme/web"));
}

#[test]
fn command_renders_with_params() {
    let spec: ActionSpec = serde_json::from_value(deploy_action()).unwrap();
    let action = spec.compile().unwrap();
    assert_eq!(action.kind(), RunnerKind::Command);
    let payload = json!({"environment": "production", "version": "1.4.2"});
    let ctx = Context::new(&payload).with_params(&json!({"version": "1.4.2", "environment": "production"}));
    let inv = action.render_command(&ctx).unwrap();
    assert_eq!(inv.argv, ["/usr/local/bin/deploy", "1.4.2"]);
    assert_eq!(inv.env.get("ENV").map(String::as_str), Some("production"));
    assert_eq!(
        serde_json::from_slice::<Value>(inv.stdin.as_ref().unwrap()).unwrap(),
        payload
    );
    assert_eq!(inv.working_dir.as_deref(), Some("/srv"));
    assert_eq!(inv.timeout, Duration::from_secs(60));
    assert!(action.render_http(&ctx, None).is_err());
    assert!(matches!(action.render(&ctx, None).unwrap(), Invocation::Command(_)));

    let spec: ActionSpec = serde_json::from_value(json!({"ref": "a.b", "runner": {"type": "command", "argv": ["{{ params.prog }}"], "stdin": "v={{ params.v }}\n"}})).unwrap();
    let action = spec.compile().unwrap();
    let err = action.render_command(&Context::default()).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("runner.argv[0]"));
    let inv = action
        .render_command(&Context::default().with_params(&json!({"prog": "/bin/cat", "v": 1})))
        .unwrap();
    assert_eq!(inv.stdin.as_deref(), Some(&b"v=1\n"[..]));
    assert_eq!(inv.working_dir, None);
}

#[test]
fn http_renders() {
    let spec: ActionSpec = serde_json::from_value(notify_action()).unwrap();
    let action = spec.compile().unwrap();
    let ctx = Context::default().with_params(&json!({"message": "deployed"}));
    let inv = action.render_http(&ctx, None).unwrap();
    assert_eq!(inv.method, "POST");
    assert_eq!(inv.url, "https://chat.example/hook");
    assert_eq!(
        inv.headers,
        [("Content-Type".to_owned(), "application/json".to_owned())]
    );
    assert_eq!(inv.body, br#"{"text": "deployed"}"#);
    assert!(inv.is_success(204) && !inv.is_success(201));
    assert_eq!(inv.sign_secret, None);

    let spec: ActionSpec = serde_json::from_value(json!({"ref": "a.b", "runner": {"type": "http", "method": "put", "url": "{{ params.url }}", "headers": {"X-A": "{{ params.h }}"}}})).unwrap();
    let action = spec.compile().unwrap();
    let inv = action
        .render_http(
            &Context::default().with_params(&json!({"url": "http://127.0.0.1:9/x", "h": "v"})),
            None,
        )
        .unwrap();
    assert_eq!(inv.method, "PUT");
    assert!(inv.body.is_empty());
    assert!(inv.is_success(201) && !inv.is_success(302));
    let err = action
        .render_http(
            &Context::default().with_params(&json!({"url": "file:///etc/passwd"})),
            None,
        )
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("runner.url"));
    let err = action
        .render_http(
            &Context::default().with_params(&json!({"url": "http://x/", "h": "a\r\nInjected: 1"})),
            None,
        )
        .unwrap_err();
    assert_eq!(err.field.as_deref(), Some("runner.headers.X-A"));
}

#[test]
fn http_forward() {
    let spec: ActionSpec = serde_json::from_value(json!({"ref": "a.fwd", "runner": {"type": "http", "url": "http://127.0.0.1:9/in", "forward": true, "forward_headers": ["Content-Type", "X-GitHub-Event"], "headers": {"Authorization": "Bearer t"}}})).unwrap();
    let action = spec.compile().unwrap();
    let headers = vec![
        (
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        ),
        ("X-GitHub-Event".to_owned(), "push".to_owned()),
        ("X-Hub-Signature-256".to_owned(), "sha256=...".to_owned()),
    ];
    let original = OriginalRequest {
        body: b"a=1&b=2",
        headers: &headers,
    };
    let inv = action.render_http(&Context::default(), Some(&original)).unwrap();
    assert_eq!(inv.body, b"a=1&b=2");
    assert_eq!(
        inv.headers,
        [
            (
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned()
            ),
            ("x-github-event".to_owned(), "push".to_owned()),
            ("Authorization".to_owned(), "Bearer t".to_owned()),
        ]
    );

    // Without the original request: the payload as JSON and the context's headers.
    let ctx = Context::new(&json!({"k": "v"})).with_headers([("X-GitHub-Event", "ping")]);
    let inv = action.render_http(&ctx, None).unwrap();
    assert_eq!(inv.body, br#"{"k":"v"}"#);
    assert!(inv.headers.contains(&("x-github-event".to_owned(), "ping".to_owned())));
    assert!(
        inv.headers
            .contains(&("content-type".to_owned(), "application/json".to_owned()))
    );
}

#[test]
fn signing_matches_the_published_vector() {
    let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    assert_eq!(
        secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#),
        "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    );
    assert_eq!(
        SigningSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap(),
        secret
    );
    assert!(SigningSecret::parse("whsec_short").is_err());
    assert!(!format!("{secret:?}").contains("MfKQ"));

    let mut a = notify_action();
    a["runner"]["sign"] = json!({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"});
    let spec: ActionSpec = serde_json::from_value(a).unwrap();
    assert!(!format!("{spec:?}").contains("MfKQ"));
    let shown = serde_json::to_value(spec.redacted()).unwrap();
    assert_eq!(shown["runner"]["sign"]["secret"], REDACTED_SECRET);
    let inv = spec.compile().unwrap().render_http(&Context::default(), None).unwrap();
    assert_eq!(inv.sign_secret, Some(secret));
}

#[test]
fn backoff_grows_with_equal_jitter_and_caps() {
    let p = RetryPolicy {
        max_attempts: 10,
        initial_backoff_seconds: 1.0,
        max_backoff_seconds: 30.0,
    };
    assert_eq!(p.backoff(1, 0.0), Duration::from_millis(500));
    assert_eq!(p.backoff(1, 0.999_999), Duration::from_secs_f64(0.999_999_5));
    assert_eq!(p.backoff(2, 0.0), Duration::from_secs(1));
    assert_eq!(p.backoff(3, 0.5), Duration::from_secs(3));
    // Below the cap, waits never shrink from one attempt to the next, whatever the jitter.
    for attempt in 1..5 {
        assert!(p.backoff(attempt + 1, 0.0) >= p.backoff(attempt, 0.999), "{attempt}");
    }
    for attempt in 1..40 {
        assert!(p.backoff(attempt, 0.999) < Duration::from_secs(30));
    }
    assert_eq!(p.backoff(40, 0.0), Duration::from_secs(15));
    assert_eq!(p.backoff(u32::MAX, 1.0), Duration::from_secs(30));
    assert_eq!(p.backoff(0, f64::NAN), Duration::from_millis(500));
    assert!(p.should_retry(9) && !p.should_retry(10));
    let zero = RetryPolicy {
        initial_backoff_seconds: 0.0,
        max_backoff_seconds: 0.0,
        ..p
    };
    assert_eq!(zero.backoff(3, 0.7), Duration::ZERO);
}

#[test]
fn pack_yaml() {
    let text = r#"
ref: myapp.deploy
description: Deploy a version
runner:
  type: command
  argv: ["/usr/local/bin/deploy", "{{ params.version }}"]
  env:
    ENV: "{{ params.environment }}"
  stdin: payload
timeout_seconds: 120
retry:
  max_attempts: 5
concurrency: 1
"#;
    let spec = parse_action_yaml(text, "packs/myapp/actions/deploy.yaml").unwrap();
    assert_eq!(spec.action_ref, "myapp.deploy");
    assert_eq!(spec.pack(), "myapp");
    assert_eq!(spec.retry.max_attempts, 5);
    assert_eq!(spec.retry.max_backoff_seconds, 300.0);

    let err = parse_action_yaml(
        "ref: a.b\nrunner:\n  type: command\n  argv: [x]\n  workdir: /tmp\n",
        "p.yaml",
    )
    .unwrap_err();
    assert_eq!(err.path, "p.yaml");
    assert_eq!(err.line, Some(5), "{err}");
    assert!(err.message.contains("workdir"), "{err}");

    let err = parse_action_yaml("ref: a.b\nrunner: [oops\n", "p.yaml").unwrap_err();
    assert!(err.line.is_some(), "{err}");

    let err = parse_action_yaml("ref: a.b\nrunner:\n  type: command\n  argv: ['{{ x']\n", "p.yaml").unwrap_err();
    assert!(err.to_string().starts_with("p.yaml: runner.argv[0]: line 1"), "{err}");

    let rule = r#"
ref: myapp.on_prod_deploy
trigger: myapp.deployment_complete
condition: payload.environment == 'production'
action: myapp.deploy
parameters:
  version: "{{ payload.version }}"
  tags: ["{{ payload.environment }}", 3]
debounce_seconds: 10
debounce_key: "{{ payload.service }}"
"#;
    let spec = parse_rule_yaml(rule, "packs/myapp/rules/prod.yaml").unwrap();
    assert_eq!(spec.trigger, "myapp.deployment_complete");
    assert_eq!(spec.debounce_seconds, Some(10));
    assert!(spec.enabled);

    let err = parse_rule_yaml(
        "ref: a.r\ntrigger: a.t\naction: a.a\ncondition: \"payload.x ==\"\n",
        "r.yaml",
    )
    .unwrap_err();
    assert!(err.message.starts_with("condition: line 1"), "{err}");
    let err = parse_rule_yaml("ref: a.r\ntrigger: a.t\naction: a.a\nenabled: maybe\n", "r.yaml").unwrap_err();
    assert_eq!(err.line, Some(4), "{err}");
}

#[test]
fn only_forwarding_http_actions_need_the_original_request() {
    let compiled = |v: Value| serde_json::from_value::<ActionSpec>(v).unwrap().compile().unwrap();
    assert!(!compiled(deploy_action()).forwards_original());
    assert!(!compiled(notify_action()).forwards_original());
    let forward = json!({"ref": "a.fwd", "runner": {"type": "http", "method": "POST", "url": "https://example.com/in", "forward": true, "forward_headers": ["content-type"]}});
    assert!(compiled(forward).forwards_original());
}

#[test]
fn only_templated_commands_and_http_actions_read_the_event() {
    let compiled = |runner: Value| {
        serde_json::from_value::<ActionSpec>(json!({"ref": "a.b", "runner": runner}))
            .unwrap()
            .compile()
            .unwrap()
    };
    let literal = json!({"type": "command", "argv": ["/bin/echo", "done"], "env": {"A": "1"}, "working_dir": "/tmp", "stdin": "fixed"});
    assert!(!compiled(literal).reads_event());
    for runner in [
        json!({"type": "command", "argv": ["/bin/echo", "{{ payload.ref }}"]}),
        json!({"type": "command", "argv": ["/bin/true"], "env": {"REF": "{{ payload.ref }}"}}),
        json!({"type": "command", "argv": ["/bin/true"], "working_dir": "/srv/{{ params.dir }}"}),
        json!({"type": "command", "argv": ["/bin/cat"], "stdin": "payload"}),
        json!({"type": "command", "argv": ["/bin/cat"], "stdin": "{{ headers['x-a'] }}"}),
        json!({"type": "http", "method": "POST", "url": "https://example.com/in"}),
    ] {
        assert!(compiled(runner.clone()).reads_event(), "{runner}");
    }
}
