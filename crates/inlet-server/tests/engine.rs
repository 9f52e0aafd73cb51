//! End-to-end tests of rules, actions and executions, on both backends.

mod common;

use common::{TestServer, assert_event_stream, each_backend};
use futures_util::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn create(s: &TestServer, path: &str, body: Value) -> Value {
    let response = s.post_json(path, body.clone()).await;
    let status = response.status();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "POST {path} {body}: {answer}");
    answer["data"].clone()
}

async fn trigger(s: &TestServer, r: &str) {
    create(s, "/api/v1/triggers", json!({"ref": r})).await;
}

async fn emit(s: &TestServer, trigger: &str, payload: Value) -> String {
    let data = create(s, "/api/v1/events", json!({"trigger": trigger, "payload": payload})).await;
    data["event_id"].as_str().unwrap().to_owned()
}

async fn executions(s: &TestServer, query: &str) -> Vec<Value> {
    s.get_json(&format!("/api/v1/executions?{query}&limit=500")).await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn execution(s: &TestServer, id: &str) -> Value {
    s.get_json(&format!("/api/v1/executions/{id}")).await["data"].clone()
}

/// Polls until `check` gives Some, or panics after `timeout`.
async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The executions of `query` once there are `n` of them and all have ended.
async fn ended(s: &TestServer, query: &str, n: usize) -> Vec<Value> {
    eventually(Duration::from_secs(30), query, || async {
        let xs = executions(s, query).await;
        let done = xs.len() == n
            && xs
                .iter()
                .all(|x| ["succeeded", "failed", "dead", "cancelled"].contains(&x["status"].as_str().unwrap()));
        done.then_some(xs)
    })
    .await
}

async fn processed_event(s: &TestServer, id: &str) -> Value {
    eventually(Duration::from_secs(20), "event processed", || async {
        let event = s.get_json(&format!("/api/v1/events/{id}")).await["data"].clone();
        (event["processed"] == true).then_some(event)
    })
    .await
}

fn sh(script: &str) -> Value {
    json!(["/bin/sh", "-c", script])
}

#[tokio::test]
async fn webhook_runs_a_command_with_templated_content_and_false_conditions_say_why() {
    each_backend(|s| async move {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out.txt");
        trigger(&s, "ci.build").await;
        create(
            &s,
            "/api/v1/actions",
            json!({"ref": "ci.write", "runner": {"type": "command",
                "argv": ["/bin/sh", "-c", "printf '%s' \"$1\" > \"$2\"", "sh", "{{ params.message }}", "{{ params.path }}"]}}),
        )
        .await;
        create(
            &s,
            "/api/v1/rules",
            json!({"ref": "ci.on_build", "trigger": "ci.build", "action": "ci.write",
                "condition": "payload.status == 'ok'",
                "parameters": {"message": "built {{ payload.name }} at {{ headers['x-ci'] }}", "path": out.display().to_string()}}),
        )
        .await;
        create(
            &s,
            "/api/v1/rules",
            json!({"ref": "ci.on_prod", "trigger": "ci.build", "action": "ci.write",
                "condition": "payload.environment == 'production'", "parameters": {"path": "/nonexistent/x"}}),
        )
        .await;
        let (_, url) = s.enable("ci.build").await;
        let response = s
            .client
            .post(&url)
            .header("x-ci", "runner-7")
            .json(&json!({"status": "ok", "name": "inlet", "environment": "staging"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let event_id = response.json::<Value>().await.unwrap()["data"]["event_id"]
            .as_str()
            .unwrap()
            .to_owned();

        let xs = ended(&s, &format!("event={event_id}"), 1).await;
        assert_eq!(xs[0]["status"], "succeeded", "{}", xs[0]);
        assert_eq!(xs[0]["rule"], "ci.on_build");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "built inlet at runner-7");
        let detail = execution(&s, xs[0]["id"].as_str().unwrap()).await;
        let attempts = detail["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 1);
        assert_eq!(attempts[0]["exit_code"], 0);
        assert_eq!(attempts[0]["status"], "succeeded");

        let event = processed_event(&s, &event_id).await;
        let rules = event["rules"].as_array().unwrap();
        let verdict = |r: &str| rules.iter().find(|v| v["rule"] == r).cloned().unwrap();
        assert_eq!(verdict("ci.on_build")["outcome"], "matched");
        assert_eq!(verdict("ci.on_build")["execution_id"], xs[0]["id"]);
        let not = verdict("ci.on_prod");
        assert_eq!(not["outcome"], "not_matched", "{not}");
        assert!(
            not["reason"].as_str().unwrap().contains("payload.environment == 'production'"),
            "{not}"
        );
        assert!(not["execution_id"].is_null());
        assert!(executions(&s, "rule=ci.on_prod").await.is_empty());
        s
    })
    .await;
}

type Arrivals = Arc<Mutex<Vec<Instant>>>;
type Requests = Arc<Mutex<Vec<String>>>;

/// A local HTTP server answering with the statuses given in turn (the last one
/// repeated); returns its URL and the arrival times.
async fn http_target(statuses: Vec<u16>) -> (String, Arrivals) {
    let (url, arrivals, _) = http_target_capturing(statuses).await;
    (url, arrivals)
}

/// Like [`http_target`], also keeping each request as text.
async fn http_target_capturing(statuses: Vec<u16>) -> (String, Arrivals, Requests) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let requests: Requests = Arc::new(Mutex::new(Vec::new()));
    let seen = arrivals.clone();
    let kept = requests.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            let status = {
                let mut seen = seen.lock().unwrap();
                seen.push(Instant::now());
                statuses[(seen.len() - 1).min(statuses.len() - 1)]
            };
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then the body by Content-Length.
                loop {
                    let n = stream.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                        let len: usize = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse().unwrap_or(0));
                        while buf.len() < end + 4 + len {
                            let n = stream.read(&mut chunk).await.unwrap_or(0);
                            if n == 0 {
                                break;
                            }
                            buf.extend_from_slice(&chunk[..n]);
                        }
                        break;
                    }
                }
                kept.lock().unwrap().push(String::from_utf8_lossy(&buf).into_owned());
                let body = format!("answer {status}");
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    (url, arrivals, requests)
}

#[tokio::test]
async fn http_action_is_retried_with_growing_delays_then_succeeds_or_ends_dead() {
    each_backend(|s| async move {
        trigger(&s, "shop.order").await;
        let (flaky_url, flaky) = http_target(vec![500, 503, 200]).await;
        let (broken_url, broken) = http_target(vec![500]).await;
        let retry = json!({"max_attempts": 3, "initial_backoff_seconds": 0.4, "max_backoff_seconds": 5});
        for (name, url) in [("flaky", &flaky_url), ("broken", &broken_url)] {
            create(
                &s,
                "/api/v1/actions",
                json!({"ref": format!("shop.{name}"), "runner": {"type": "http", "method": "POST", "url": url,
                    "body": "{\"order\": \"{{ params.order }}\"}"}, "retry": retry}),
            )
            .await;
            create(
                &s,
                "/api/v1/rules",
                json!({"ref": format!("shop.to_{name}"), "trigger": "shop.order", "action": format!("shop.{name}"),
                    "parameters": {"order": "{{ payload.id }}"}}),
            )
            .await;
        }
        emit(&s, "shop.order", json!({"id": "o-1"})).await;

        let ok = ended(&s, "rule=shop.to_flaky", 1).await;
        assert_eq!(ok[0]["status"], "succeeded", "{}", ok[0]);
        let detail = execution(&s, ok[0]["id"].as_str().unwrap()).await;
        let attempts = detail["attempts"].as_array().unwrap();
        let statuses: Vec<&Value> = attempts.iter().map(|a| &a["http_status"]).collect();
        assert_eq!(statuses, [&json!(500), &json!(503), &json!(200)]);
        assert_eq!(detail["attempt"], 3);
        let times = flaky.lock().unwrap().clone();
        assert_eq!(times.len(), 3);
        let (d1, d2) = (times[1] - times[0], times[2] - times[1]);
        // Equal jitter: the first wait is in [0.2, 0.4) s, the second in [0.4, 0.8) s.
        // Compared with the windows, not with each other: a loaded machine may
        // add to either wait, never take from it.
        assert!(d1 >= Duration::from_millis(190), "first wait {d1:?}");
        assert!(d2 >= Duration::from_millis(390), "waits must grow: {d1:?} then {d2:?}");

        let dead = ended(&s, "rule=shop.to_broken", 1).await;
        assert_eq!(dead[0]["status"], "dead", "{}", dead[0]);
        assert_eq!(dead[0]["attempt"], 3);
        assert_eq!(broken.lock().unwrap().len(), 3);
        assert_eq!(dead[0]["result"]["http_status"], 500);

        // A dead execution can be retried by hand: a new round of attempts.
        let retried = s
            .request(
                Method::POST,
                &format!("/api/v1/executions/{}/retry", dead[0]["id"].as_str().unwrap()),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(retried.status(), 200);
        let again = ended(&s, "rule=shop.to_broken", 1).await;
        assert_eq!(again[0]["attempt"], 6);
        s
    })
    .await;
}

#[tokio::test]
async fn concurrency_one_never_overlaps_runs() {
    each_backend(|s| async move {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        trigger(&s, "q.job").await;
        create(
            &s,
            "/api/v1/actions",
            json!({"ref": "q.serial", "concurrency": 1, "runner": {"type": "command",
                "argv": sh(&format!("echo start >> {0}; sleep 0.2; echo end >> {0}", log.display()))}}),
        )
        .await;
        create(
            &s,
            "/api/v1/rules",
            json!({"ref": "q.all", "trigger": "q.job", "action": "q.serial"}),
        )
        .await;
        for i in 0..4 {
            emit(&s, "q.job", json!({"i": i})).await;
        }
        let xs = ended(&s, "action=q.serial", 4).await;
        assert!(xs.iter().all(|x| x["status"] == "succeeded"));
        let lines = std::fs::read_to_string(&log).unwrap();
        let expected = "start\nend\n".repeat(4);
        assert_eq!(lines, expected, "runs overlapped");
        s
    })
    .await;
}

#[tokio::test]
async fn debounce_turns_a_burst_into_one_execution_with_the_last_event() {
    each_backend(|s| async move {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        trigger(&s, "repo.push").await;
        create(
            &s,
            "/api/v1/actions",
            json!({"ref": "repo.build", "runner": {"type": "command",
                "argv": ["/bin/sh", "-c", "echo \"$1\" >> \"$2\"", "sh", "{{ params.n }}", out.display().to_string()]}}),
        )
        .await;
        create(
            &s,
            "/api/v1/rules",
            json!({"ref": "repo.debounced", "trigger": "repo.push", "action": "repo.build",
                "parameters": {"n": "{{ payload.n }}"}, "debounce_seconds": 1, "debounce_key": "{{ payload.repo }}"}),
        )
        .await;
        let mut last = String::new();
        for n in 0..20 {
            last = emit(&s, "repo.push", json!({"n": n, "repo": "a/b"})).await;
        }
        let xs = ended(&s, "rule=repo.debounced", 1).await;
        assert_eq!(xs[0]["status"], "succeeded");
        assert_eq!(xs[0]["event_id"], last.as_str());
        assert_eq!(xs[0]["params"]["n"], 19);
        // Nothing else runs afterwards.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(executions(&s, "rule=repo.debounced").await.len(), 1);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "19\n");
        s
    })
    .await;
}

#[tokio::test]
async fn a_crash_during_a_run_is_recovered_after_restart() {
    each_backend(|s| async move {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let started = dir.path().join("started");
        trigger(&s, "ops.task").await;
        create(
            &s,
            "/api/v1/actions",
            json!({"ref": "ops.slow", "runner": {"type": "command",
                "argv": sh(&format!("echo x >> {}; sleep 1; echo done > {}", started.display(), out.display()))}}),
        )
        .await;
        create(
            &s,
            "/api/v1/rules",
            json!({"ref": "ops.run", "trigger": "ops.task", "action": "ops.slow"}),
        )
        .await;
        emit(&s, "ops.task", json!({})).await;
        eventually(Duration::from_secs(20), "the command to start", || async {
            started.exists().then_some(())
        })
        .await;
        let s = s
            .crash_and_restart_with(|url| async move {
                // An event committed but not evaluated when the process died.
                let store = inlet_store::Store::open(&url).await.unwrap();
                store
                    .insert_event(&inlet_store::NewEvent {
                        id: uuid::Uuid::now_v7().to_string(),
                        trigger_ref: "ops.task".into(),
                        payload: "{}".into(),
                        metadata: "{}".into(),
                        source: "api".into(),
                        delivery_id: None,
                        created_at: inlet_core::clock::now_micros(),
                    })
                    .await
                    .unwrap();
                store.close().await;
            })
            .await;
        assert!(!out.exists(), "the command was killed with the server");
        let xs = ended(&s, "rule=ops.run", 2).await;
        assert!(xs.iter().all(|x| x["status"] == "succeeded"), "{xs:?}");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "done\n");
        // Newest first: the second is the one that was running at the crash.
        let detail = execution(&s, xs[1]["id"].as_str().unwrap()).await;
        let statuses: Vec<&str> = detail["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["lost", "succeeded"]);
        s
    })
    .await;
}

#[tokio::test]
async fn replays_create_new_executions() {
    each_backend(|s| async move {
        trigger(&s, "gh.push").await;
        create(
            &s,
            "/api/v1/actions",
            json!({"ref": "gh.echo", "runner": {"type": "command", "argv": ["/bin/echo", "{{ params.ref }}"]}}),
        )
        .await;
        create(
            &s,
            "/api/v1/rules",
            json!({"ref": "gh.on_push", "trigger": "gh.push", "action": "gh.echo",
                "parameters": {"ref": "{{ payload.ref }}"}}),
        )
        .await;
        let (_, url) = s.enable("gh.push").await;
        let sent = s.send(&url, "application/json", r#"{"ref": "refs/heads/main"}"#).await;
        assert_eq!(sent.status(), 200);
        let event_id = sent.json::<Value>().await.unwrap()["data"]["event_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let first = ended(&s, &format!("event={event_id}"), 1).await;
        assert_eq!(first[0]["output"], "refs/heads/main\n");

        // Replay of the stored event: a new execution, source replay.
        let replay = s
            .request(Method::POST, &format!("/api/v1/events/{event_id}/replay"))
            .send()
            .await
            .unwrap();
        assert_eq!(replay.status(), 200);
        let body: Value = replay.json().await.unwrap();
        assert_eq!(body["data"]["executions"].as_array().unwrap().len(), 1);
        let xs = ended(&s, &format!("event={event_id}"), 2).await;
        assert!(xs.iter().any(|x| x["source"] == "replay" && x["status"] == "succeeded"));

        // Replay of the logged request: a new event, source replay, with who replayed it.
        let log = s.log("gh.push").await;
        let log_id = log[0]["id"].as_str().unwrap();
        let replay = s
            .request(Method::POST, &format!("/api/v1/webhook-log/{log_id}/replay"))
            .send()
            .await
            .unwrap();
        assert_eq!(replay.status(), 200);
        let body: Value = replay.json().await.unwrap();
        let new_event = body["data"]["event_id"].as_str().unwrap().to_owned();
        assert_ne!(new_event, event_id);
        let event = s.get_json(&format!("/api/v1/events/{new_event}")).await["data"].clone();
        assert_eq!(event["source"], "replay");
        assert_eq!(event["payload"]["ref"], "refs/heads/main");
        assert!(!event["metadata"]["replayed_by"].as_str().unwrap().is_empty());
        let xs = ended(&s, &format!("event={new_event}"), 1).await;
        assert_eq!(xs[0]["status"], "succeeded");
        let log = s.log("gh.push").await;
        assert!(log.iter().any(|l| {
            l["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("replay of {log_id}"))
        }));
        s
    })
    .await;
}

#[tokio::test]
async fn execution_log_follow_streams_lines_live() {
    each_backend(|s| async move {
        trigger(&s, "ci.job").await;
        create(
            &s,
            "/api/v1/actions",
            json!({"ref": "ci.talk", "runner": {"type": "command",
                "argv": sh("for i in 1 2 3; do echo line$i; sleep 0.3; done; echo oops >&2")}}),
        )
        .await;
        create(
            &s,
            "/api/v1/rules",
            json!({"ref": "ci.talk_rule", "trigger": "ci.job", "action": "ci.talk"}),
        )
        .await;
        emit(&s, "ci.job", json!({})).await;
        let id = eventually(Duration::from_secs(20), "the execution", || async {
            executions(&s, "rule=ci.talk_rule")
                .await
                .first()
                .map(|x| x["id"].as_str().unwrap().to_owned())
        })
        .await;
        let response = s
            .request(Method::GET, &format!("/api/v1/executions/{id}/log?follow=true"))
            .send()
            .await
            .unwrap();
        assert_event_stream(&response);
        let mut stream = response.bytes_stream();
        let mut text = String::new();
        let mut first_line_at = None;
        let read = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(chunk) = stream.next().await {
                text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
                if first_line_at.is_none() && text.contains("line1") {
                    first_line_at = Some(Instant::now());
                }
                if text.contains("event: end") {
                    break;
                }
            }
        })
        .await;
        assert!(read.is_ok(), "no end event: {text}");
        let lines: Vec<String> = text
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .filter_map(|d| serde_json::from_str::<Value>(d).ok())
            .filter_map(|v| v["line"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(lines, ["line1", "line2", "line3", "oops"], "{text}");
        assert!(text.contains(r#""status":"succeeded""#), "{text}");

        // Without follow: the stored lines.
        let log = s.get_json(&format!("/api/v1/executions/{id}/log")).await;
        assert_eq!(log["data"]["lines"].as_array().unwrap().len(), 4);
        s
    })
    .await;
}

#[tokio::test]
async fn running_and_queued_executions_can_be_cancelled() {
    each_backend(|s| async move {
        trigger(&s, "c.go").await;
        create(
            &s,
            "/api/v1/actions",
            json!({"ref": "c.sleep", "concurrency": 1, "runner": {"type": "command", "argv": ["/bin/sleep", "30"]}}),
        )
        .await;
        create(
            &s,
            "/api/v1/rules",
            json!({"ref": "c.rule", "trigger": "c.go", "action": "c.sleep"}),
        )
        .await;
        emit(&s, "c.go", json!({})).await;
        emit(&s, "c.go", json!({})).await;
        let (running, queued) = eventually(Duration::from_secs(20), "one running, one queued", || async {
            let xs = executions(&s, "rule=c.rule").await;
            let find = |st: &str| {
                xs.iter()
                    .find(|x| x["status"] == st)
                    .map(|x| x["id"].as_str().unwrap().to_owned())
            };
            find("running").zip(find("queued"))
        })
        .await;
        for id in [&queued, &running] {
            let r = s
                .request(Method::POST, &format!("/api/v1/executions/{id}/cancel"))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        let xs = ended(&s, "rule=c.rule", 2).await;
        assert!(xs.iter().all(|x| x["status"] == "cancelled"), "{xs:?}");
        let r = s
            .request(Method::POST, &format!("/api/v1/executions/{running}/cancel"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 409);
        s
    })
    .await;
}

#[tokio::test]
async fn rules_and_actions_api_refuses_bad_expressions_with_their_position() {
    each_backend(|s| async move {
        trigger(&s, "x.y").await;
        let bad = s
            .post_json(
                "/api/v1/actions",
                json!({"ref": "x.bad", "runner": {"type": "command", "argv": ["/bin/echo", "{{ params.a | nope }}"]}}),
            )
            .await;
        assert_eq!(bad.status(), 400);
        let body: Value = bad.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_expression");
        assert_eq!(body["error"]["field"], "runner.argv[1]");
        create(
            &s,
            "/api/v1/actions",
            json!({"ref": "x.ok", "runner": {"type": "command", "argv": ["/bin/true"]}}),
        )
        .await;
        let bad = s
            .post_json(
                "/api/v1/rules",
                json!({"ref": "x.r", "trigger": "x.y", "action": "x.ok", "condition": "payload.a ==\n  == 1"}),
            )
            .await;
        assert_eq!(bad.status(), 400);
        let body: Value = bad.json().await.unwrap();
        assert_eq!(body["error"]["field"], "condition", "{body}");
        assert_eq!(body["error"]["line"], 2, "{body}");
        assert!(body["error"]["column"].is_number(), "{body}");
        let missing = s
            .post_json(
                "/api/v1/rules",
                json!({"ref": "x.r", "trigger": "x.y", "action": "x.none"}),
            )
            .await;
        assert_eq!(missing.status(), 400);

        let rule = create(
            &s,
            "/api/v1/rules",
            json!({"ref": "x.r", "trigger": "x.y", "action": "x.ok"}),
        )
        .await;
        assert_eq!(rule["enabled"], true);
        let put = s
            .request(Method::PUT, "/api/v1/rules/x.r")
            .json(&json!({"trigger": "x.y", "action": "x.ok", "enabled": false}))
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), 200);
        assert_eq!(s.get_json("/api/v1/rules/x.r").await["data"]["enabled"], false);
        let listed = s.get_json("/api/v1/rules?trigger=x.y").await;
        assert_eq!(listed["data"].as_array().unwrap().len(), 1);
        let deleted = s.request(Method::DELETE, "/api/v1/rules/x.r").send().await.unwrap();
        assert_eq!(deleted.status(), 204);
        let deleted = s.request(Method::DELETE, "/api/v1/actions/x.ok").send().await.unwrap();
        assert_eq!(deleted.status(), 204);

        // The shipped example pack loaded its action and rule.
        let example = s.get_json("/api/v1/rules/myapp.on_prod_deploy").await;
        assert_eq!(example["data"]["action"], "myapp.announce_deploy");
        s
    })
    .await;
}

#[tokio::test]
async fn graceful_stop_lets_a_running_command_finish() {
    each_backend(|s| async move {
        let dir = tempfile::tempdir().unwrap();
        let started = dir.path().join("started");
        trigger(&s, "g.go").await;
        create(
            &s,
            "/api/v1/actions",
            json!({"ref": "g.slow", "runner": {"type": "command",
                "argv": sh(&format!("touch {}; sleep 0.7; echo finished", started.display()))}}),
        )
        .await;
        create(
            &s,
            "/api/v1/rules",
            json!({"ref": "g.rule", "trigger": "g.go", "action": "g.slow"}),
        )
        .await;
        let event_id = emit(&s, "g.go", json!({})).await;
        eventually(Duration::from_secs(20), "the command to start", || async {
            started.exists().then_some(())
        })
        .await;
        let url = s.cfg.database_url();
        let backend = s.backend.clone();
        let cfg = s.cfg.clone();
        s.stop().await;
        let store = inlet_store::Store::open(&url).await.unwrap();
        let xs = store
            .list_executions(&inlet_store::ExecutionFilter {
                event_id: Some(event_id),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(xs.len(), 1);
        assert_eq!(xs[0].status, "succeeded");
        assert_eq!(xs[0].output.as_deref(), Some("finished\n"));
        store.close().await;
        TestServer::start_with(&backend, cfg, None).await
    })
    .await;
}

#[tokio::test]
async fn pack_actions_and_rules_load_idempotently_and_broken_files_are_reported() {
    let scratch = tempfile::tempdir().unwrap();
    for (backend, url) in inlet_store::test_support::database_urls(scratch.path()).await {
        eprintln!("-- backend {backend}");
        let packs = tempfile::tempdir().unwrap();
        let pack = packs.path().join("demo");
        for sub in ["triggers", "actions", "rules"] {
            std::fs::create_dir_all(pack.join(sub)).unwrap();
        }
        std::fs::write(pack.join("pack.yaml"), "name: demo\ndescription: d\nversion: 1.0.0\n").unwrap();
        std::fs::write(pack.join("triggers/t.yaml"), "name: t\nref: demo.t\ntype: webhook\n").unwrap();
        std::fs::write(
            pack.join("actions/ok.yaml"),
            "ref: demo.ok\nrunner:\n  type: command\n  argv: [\"/bin/echo\", \"{{ params.x }}\"]\n",
        )
        .unwrap();
        std::fs::write(
            pack.join("actions/typo.yaml"),
            "ref: demo.typo\nrunner:\n  type: command\n  argv: [\"/bin/true\"]\ntimeout_secs: 5\n",
        )
        .unwrap();
        std::fs::write(
            pack.join("rules/bad.yaml"),
            "ref: demo.bad\ntrigger: demo.t\naction: demo.ok\ncondition: \"payload.x ==\"\n",
        )
        .unwrap();
        std::fs::write(
            pack.join("rules/good.yaml"),
            "ref: demo.good\ntrigger: demo.t\naction: demo.ok\nparameters:\n  x: \"{{ payload.x }}\"\n",
        )
        .unwrap();
        let store = inlet_store::Store::open(&url).await.unwrap();
        for _ in 0..2 {
            let report =
                inlet_server::packs::load_packs(packs.path(), &store, &inlet_core::seal::MasterKey::generate().1)
                    .await
                    .unwrap();
            assert_eq!((report.actions_seen, report.rules_seen), (1, 1), "{:?}", report.errors);
            assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
            let typo = report.errors.iter().find(|e| e.path.ends_with("typo.yaml")).unwrap();
            assert_eq!(typo.line, Some(5), "{typo}");
            let bad = report.errors.iter().find(|e| e.path.ends_with("bad.yaml")).unwrap();
            assert!(bad.to_string().contains("condition"), "{bad}");
        }
        assert!(store.get_rule("demo.good").await.unwrap().is_some());
        assert!(store.get_rule("demo.bad").await.unwrap().is_none());
        assert_eq!(store.list_actions().await.unwrap().len(), 1);
        store.close().await;
    }
}

#[tokio::test]
async fn http_forward_sends_the_original_body_and_chosen_headers() {
    each_backend(|s| async move {
        trigger(&s, "fw.in").await;
        let (url, _, requests) = http_target_capturing(vec![204]).await;
        create(
            &s,
            "/api/v1/actions",
            json!({"ref": "fw.out", "runner": {"type": "http", "url": url, "forward": true,
                "forward_headers": ["content-type", "x-origin"], "headers": {"x-added": "{{ params.tag }}"}}}),
        )
        .await;
        create(
            &s,
            "/api/v1/rules",
            json!({"ref": "fw.rule", "trigger": "fw.in", "action": "fw.out", "parameters": {"tag": "t-{{ payload.n }}"}}),
        )
        .await;
        let (_, hook) = s.enable("fw.in").await;
        let raw = "{ \"n\" : 7 }";
        let sent = s
            .client
            .post(&hook)
            .header("content-type", "application/json")
            .header("x-origin", "ci")
            .header("x-other", "not forwarded")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(sent.status(), 200);
        let xs = ended(&s, "rule=fw.rule", 1).await;
        assert_eq!(xs[0]["status"], "succeeded", "{}", xs[0]);
        assert_eq!(xs[0]["result"]["http_status"], 204);
        let request = requests.lock().unwrap()[0].to_ascii_lowercase();
        assert!(request.ends_with(&raw.to_ascii_lowercase()), "{request}");
        assert!(request.contains("x-origin: ci"), "{request}");
        assert!(request.contains("x-added: t-7"), "{request}");
        assert!(!request.contains("x-other"), "{request}");
        s
    })
    .await;
}

#[tokio::test]
async fn signed_http_actions_keep_their_secret_sealed_and_sign_verifiably() {
    use inlet_core::verify::{Scheme, SignedRequest, VerificationConfig};
    each_backend(|s| async move {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        trigger(&s, "sig.in").await;
        let (url, _, requests) = http_target_capturing(vec![200]).await;
        create(
            &s,
            "/api/v1/actions",
            json!({"ref": "sig.out", "runner": {"type": "http", "method": "POST", "url": url,
                "body": "{\"n\": {{ payload.n }}}", "sign": {"secret": secret}}}),
        )
        .await;
        create(
            &s,
            "/api/v1/rules",
            json!({"ref": "sig.rule", "trigger": "sig.in", "action": "sig.out"}),
        )
        .await;
        let stored = s.store().get_action("sig.out").await.unwrap().unwrap();
        assert!(
            !stored.spec.contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "sealed at rest"
        );
        let shown = s.get_json("/api/v1/actions/sig.out").await;
        assert!(
            !shown.to_string().contains("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
            "masked when shown"
        );

        let (_, hook) = s.enable("sig.in").await;
        assert_eq!(s.send(&hook, "application/json", r#"{"n": 5}"#).await.status(), 200);
        let xs = ended(&s, "rule=sig.rule", 1).await;
        assert_eq!(xs[0]["status"], "succeeded", "{}", xs[0]);

        // The receiving side verifies the request with the Standard Webhooks scheme.
        let request = requests.lock().unwrap()[0].clone();
        let (head, body) = request.split_once("\r\n\r\n").unwrap();
        let headers: Vec<(String, String)> = head
            .lines()
            .skip(1)
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let verifier = VerificationConfig::new(Scheme::StandardWebhooks, vec![secret.into()])
            .compile()
            .unwrap();
        let signed = SignedRequest {
            method: "POST",
            url: &url,
            headers: &headers,
            query: &[],
            body: body.as_bytes(),
        };
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        verifier.verify(&signed, now).expect("the signature verifies");
        assert_eq!(body, r#"{"n": 5}"#);
        s
    })
    .await;
}
