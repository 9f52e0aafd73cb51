//! End-to-end tests of the receiver and the management API, on both backends.

mod common;

use common::each_backend;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn packs_are_loaded_at_start() {
    each_backend(|s| async move {
        let triggers = s.get_json("/api/v1/triggers").await;
        let refs: Vec<&str> = triggers["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["ref"].as_str().unwrap())
            .collect();
        for expected in ["github.push", "myapp.deployment_complete", "stripe.payment_succeeded"] {
            assert!(refs.contains(&expected), "{expected} in {refs:?}");
        }
        s
    })
    .await;
}

#[tokio::test]
async fn triggers_can_be_created_updated_and_deleted() {
    each_backend(|s| async move {
        let created = s
            .post_json(
                "/api/v1/triggers",
                json!({"ref": "ci.build", "label": "Build", "description": "d"}),
            )
            .await;
        assert_eq!(created.status(), 201);
        let body: Value = created.json().await.unwrap();
        assert_eq!(body["data"]["ref"], "ci.build");
        assert_eq!(body["data"]["pack"], "ci");

        let duplicate = s.post_json("/api/v1/triggers", json!({"ref": "ci.build"})).await;
        assert_eq!(duplicate.status(), 409);
        let malformed = s.post_json("/api/v1/triggers", json!({"ref": "Not A Ref"})).await;
        assert_eq!(malformed.status(), 400);
        let body: Value = malformed.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("invalid ref"));
        let missing = s.post_json("/api/v1/triggers", json!({"label": "x"})).await;
        assert_eq!(missing.status(), 400);

        let updated = s
            .request(Method::PUT, "/api/v1/triggers/ci.build")
            .json(&json!({"label": "Builds", "description": "all builds"}))
            .send()
            .await
            .unwrap();
        assert_eq!(updated.status(), 200);
        assert_eq!(s.get_json("/api/v1/triggers/ci.build").await["data"]["label"], "Builds");

        let deleted = s
            .request(Method::DELETE, "/api/v1/triggers/ci.build")
            .send()
            .await
            .unwrap();
        assert_eq!(deleted.status(), 204);
        let gone = s
            .request(Method::GET, "/api/v1/triggers/ci.build")
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), 404);
        s
    })
    .await;
}

#[tokio::test]
async fn a_webhook_creates_an_event_with_payload_and_metadata() {
    each_backend(|s| async move {
        let (key, url) = s.enable("github.push").await;
        assert!(key.starts_with("wh_") && key.len() == 35);
        assert!(url.ends_with(&format!("/api/v1/webhooks/{key}")));
        let response = s
            .client
            .post(format!("{url}?source=ci&tag=a&tag=b"))
            .header("content-type", "application/json")
            .header("user-agent", "GitHub-Hookshot/abc")
            .header("authorization", "Bearer do-not-store-me")
            .header("x-github-event", "push")
            .body(r#"{"ref":"refs/heads/main","commits":[1,2]}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let event_id = body["data"]["event_id"].as_str().unwrap().to_owned();
        assert_eq!(body["data"]["duplicate"], false);

        let event = s.get_json(&format!("/api/v1/events/{event_id}")).await["data"].clone();
        assert_eq!(event["trigger"], "github.push");
        assert_eq!(event["payload"], json!({"ref": "refs/heads/main", "commits": [1, 2]}));
        let meta = &event["metadata"];
        assert_eq!(meta["source"], "webhook");
        assert_eq!(meta["key_prefix"], &key[..8]);
        assert_eq!(meta["source_ip"], "127.0.0.1");
        assert_eq!(meta["user_agent"], "GitHub-Hookshot/abc");
        assert_eq!(meta["headers"]["x-github-event"], "push");
        assert_eq!(meta["headers"]["authorization"], "[redacted]");
        assert_eq!(meta["query"], json!({"source": "ci", "tag": ["a", "b"]}));
        assert!(meta["received_at"].as_str().unwrap().ends_with('Z'));
        let stored = serde_json::to_string(&event).unwrap();
        assert!(!stored.contains(&key), "the key never reaches stored metadata");
        assert!(!stored.contains("do-not-store-me"));

        let log = s.log("github.push").await;
        assert_eq!(log.len(), 1);
        assert_eq!(log[0]["outcome"], "accepted");
        assert_eq!(log[0]["status_code"], 200);
        assert_eq!(log[0]["event_id"], event_id.as_str());
        let detail = s
            .get_json(&format!("/api/v1/webhook-log/{}", log[0]["id"].as_str().unwrap()))
            .await["data"]
            .clone();
        assert_eq!(detail["body"], r#"{"ref":"refs/heads/main","commits":[1,2]}"#);
        assert!(!serde_json::to_string(&detail).unwrap().contains(&key));

        let info = s.get_json("/api/v1/triggers/github.push/webhooks").await["data"].clone();
        assert_eq!(info["enabled"], true);
        assert_eq!(info["webhook_key"], key.as_str());
        assert_eq!(info["total_events"], 1);
        assert!(info["last_used_at"].is_string());
        assert!(info["created_at"].is_string());
        s
    })
    .await;
}

#[tokio::test]
async fn forms_and_other_content_types_become_payloads() {
    each_backend(|s| async move {
        let (_, url) = s.new_webhook("test.forms").await;
        let form = s
            .send(&url, "application/x-www-form-urlencoded", "a=1&b=two+words&a=3")
            .await;
        assert_eq!(form.status(), 200);
        let text = s.send(&url, "text/plain", "plain words").await;
        assert_eq!(text.status(), 200);
        let events = s.events("test.forms").await;
        assert_eq!(
            events[0]["payload"],
            json!({"content_type": "text/plain", "body": "plain words"})
        );
        assert_eq!(events[1]["payload"], json!({"a": ["1", "3"], "b": "two words"}));
        s
    })
    .await;
}

#[tokio::test]
async fn disable_answers_403_and_re_enable_restores_the_same_url() {
    each_backend(|s| async move {
        let (key, url) = s.enable("myapp.deployment_complete").await;
        let off = s
            .request(
                Method::POST,
                "/api/v1/triggers/myapp.deployment_complete/webhooks/disable",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(off.status(), 200);
        let deployment = r#"{"version":"1.2.3","environment":"staging"}"#;
        let refused = s.send(&url, "application/json", deployment).await;
        assert_eq!(refused.status(), 403);
        let body: Value = refused.json().await.unwrap();
        assert_eq!(body["error"]["code"], "disabled");
        assert!(s.events("myapp.deployment_complete").await.is_empty());
        assert_eq!(s.log("myapp.deployment_complete").await[0]["outcome"], "disabled");

        let (key_again, url_again) = s.enable("myapp.deployment_complete").await;
        assert_eq!((key_again, url_again.clone()), (key, url));
        assert_eq!(s.send(&url_again, "application/json", deployment).await.status(), 200);
        s
    })
    .await;
}

#[tokio::test]
async fn regenerate_revokes_the_old_key_or_keeps_it_for_a_grace_period() {
    each_backend(|s| async move {
        let (_, first) = s.enable("github.push").await;
        let response = s
            .request(Method::POST, "/api/v1/triggers/github.push/webhooks/regenerate")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"]["previous_key_revoked"], true);
        let second = body["data"]["webhook_url"].as_str().unwrap().to_owned();
        assert_ne!(first, second);
        assert_eq!(s.send(&first, "application/json", "{}").await.status(), 404);
        assert_eq!(s.send(&second, "application/json", "{}").await.status(), 200);

        let response = s
            .post_json(
                "/api/v1/triggers/github.push/webhooks/regenerate",
                json!({"grace_seconds": 2}),
            )
            .await;
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["data"]["previous_key_revoked"], false);
        assert!(body["data"]["previous_key_expires_at"].is_string());
        let third = body["data"]["webhook_url"].as_str().unwrap().to_owned();
        assert_eq!(
            s.send(&second, "application/json", "{}").await.status(),
            200,
            "old key in grace"
        );
        assert_eq!(s.send(&third, "application/json", "{}").await.status(), 200);
        tokio::time::sleep(Duration::from_millis(2200)).await;
        assert_eq!(
            s.send(&second, "application/json", "{}").await.status(),
            404,
            "grace is over"
        );
        assert_eq!(s.send(&third, "application/json", "{}").await.status(), 200);

        let bad = s
            .post_json(
                "/api/v1/triggers/github.push/webhooks/regenerate",
                json!({"grace_seconds": -1}),
            )
            .await;
        assert_eq!(bad.status(), 400);
        s
    })
    .await;
}

#[tokio::test]
async fn unknown_keys_are_404_and_create_nothing() {
    each_backend(|s| async move {
        s.enable("github.push").await;
        for key in ["wh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "wh_short", "nonsense"] {
            let response = s
                .send(&format!("{}/api/v1/webhooks/{key}", s.base), "application/json", "{}")
                .await;
            assert_eq!(response.status(), 404, "{key}");
        }
        assert!(s.events("github.push").await.is_empty());
        assert!(s.log("github.push").await.is_empty());
        s
    })
    .await;
}

#[tokio::test]
async fn oversized_and_malformed_bodies_leave_a_log_row_but_no_event() {
    each_backend(|s| async move {
        let (_, url) = s.enable("github.push").await;
        let big = vec![b'x'; 1024 * 1024 + 1];
        let declared = s.send(&url, "application/json", big.clone()).await;
        assert_eq!(declared.status(), 413);

        // No Content-Length: the limit must be enforced while streaming.
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..20).map(|_| Ok(vec![b' '; 64 * 1024])).collect();
        let stream = futures_util::stream::iter(chunks);
        let chunked = s
            .send(&url, "application/json", reqwest::Body::wrap_stream(stream))
            .await;
        assert_eq!(chunked.status(), 413);

        let malformed = s.send(&url, "application/json", "{not json").await;
        assert_eq!(malformed.status(), 400);
        let body: Value = malformed.json().await.unwrap();
        assert_eq!(body["error"]["code"], "invalid_payload");
        // Stored as received, but still read as a whole: a number no JSON
        // value can hold is refused like any other malformed body.
        let out_of_range = s.send(&url, "application/json", r#"{"n":[1e999]}"#).await;
        assert_eq!(out_of_range.status(), 400);

        assert!(s.events("github.push").await.is_empty());
        let outcomes: Vec<String> = s
            .log("github.push")
            .await
            .iter()
            .map(|l| l["outcome"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(
            outcomes,
            ["invalid_payload", "invalid_payload", "too_large", "too_large"]
        );

        let exactly_limit = format!("{{\"a\":\"{}\"}}", "y".repeat(1024 * 1024 - 8));
        assert_eq!(s.send(&url, "application/json", exactly_limit).await.status(), 200);
        s
    })
    .await;
}

#[tokio::test]
async fn other_methods_are_refused_with_405() {
    each_backend(|s| async move {
        let (_, url) = s.enable("github.push").await;
        let response = s.client.put(&url).body("{}").send().await.unwrap();
        assert_eq!(response.status(), 405);
        assert_eq!(s.log("github.push").await[0]["outcome"], "method_not_allowed");
        s
    })
    .await;
}

#[tokio::test]
async fn every_management_route_needs_a_token() {
    each_backend(|s| async move {
        let routes = [
            (Method::GET, "/api/v1/triggers"),
            (Method::POST, "/api/v1/triggers"),
            (Method::GET, "/api/v1/triggers/github.push"),
            (Method::PUT, "/api/v1/triggers/github.push"),
            (Method::DELETE, "/api/v1/triggers/github.push"),
            (Method::GET, "/api/v1/triggers/github.push/webhooks"),
            (Method::POST, "/api/v1/triggers/github.push/webhooks/enable"),
            (Method::POST, "/api/v1/triggers/github.push/webhooks/disable"),
            (Method::POST, "/api/v1/triggers/github.push/webhooks/regenerate"),
            (Method::GET, "/api/v1/events"),
            (Method::GET, "/api/v1/events/x"),
            (Method::GET, "/api/v1/webhook-log"),
            (Method::GET, "/api/v1/webhook-log/x"),
        ];
        for (method, path) in routes {
            let url = format!("{}{path}", s.base);
            let none = s.client.request(method.clone(), &url).send().await.unwrap();
            assert_eq!(none.status(), 401, "{method} {path} without a token");
            let wrong = s
                .client
                .request(method.clone(), &url)
                .bearer_auth("inlet_wrong")
                .send()
                .await
                .unwrap();
            assert_eq!(wrong.status(), 401, "{method} {path} with a wrong token");
        }
        assert_eq!(
            s.client
                .get(format!("{}/healthz", s.base))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        assert_eq!(
            s.client
                .get(format!("{}/readyz", s.base))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        s
    })
    .await;
}

#[tokio::test]
async fn events_are_listed_newest_first_with_a_cursor() {
    each_backend(|s| async move {
        let (_, url) = s.enable("github.push").await;
        let (_, other) = s.enable("myapp.deployment_complete").await;
        for i in 0..5 {
            assert_eq!(
                s.send(&url, "application/json", format!(r#"{{"n":{i}}}"#))
                    .await
                    .status(),
                200
            );
        }
        let deployment = r#"{"version":"1","environment":"production"}"#;
        assert_eq!(s.send(&other, "application/json", deployment).await.status(), 200);
        let first = s.get_json("/api/v1/events?trigger=github.push&limit=2").await;
        let ns: Vec<i64> = first["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["payload"]["n"].as_i64().unwrap())
            .collect();
        assert_eq!(ns, [4, 3]);
        let cursor = first["next_cursor"].as_str().unwrap();
        let second = s
            .get_json(&format!("/api/v1/events?trigger=github.push&limit=2&cursor={cursor}"))
            .await;
        let ns: Vec<i64> = second["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["payload"]["n"].as_i64().unwrap())
            .collect();
        assert_eq!(ns, [2, 1]);
        assert_eq!(s.get_json("/api/v1/events").await["data"].as_array().unwrap().len(), 6);
        let bad = s.request(Method::GET, "/api/v1/events?limit=0").send().await.unwrap();
        assert_eq!(bad.status(), 400);
        s
    })
    .await;
}

#[tokio::test]
async fn concurrent_webhooks_are_all_stored() {
    each_backend(|s| async move {
        let (_, url) = s.enable("github.push").await;
        let mut tasks = Vec::new();
        for i in 0..64 {
            let client = s.client.clone();
            let url = url.clone();
            tasks.push(tokio::spawn(async move {
                client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(format!(r#"{{"i":{i}}}"#))
                    .send()
                    .await
                    .unwrap()
                    .status()
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), 200);
        }
        assert_eq!(s.events("github.push").await.len(), 64);
        assert_eq!(s.log("github.push").await.len(), 64);
        s
    })
    .await;
}

#[tokio::test]
async fn the_public_listener_serves_only_webhooks() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = inlet_server::Config {
        public_listen: Some("127.0.0.1:0".parse().unwrap()),
        public_url: Some("https://hooks.example.com/".into()),
        ..common::test_config(dir.path())
    };
    let listeners = inlet_server::Listeners::bind(&cfg).await.unwrap();
    let public = listeners.public_addr().unwrap();
    let s = common::TestServer::start_on("sqlite", cfg, listeners, Some(dir)).await;
    let (key, url) = s.enable("github.push").await;
    assert_eq!(
        url,
        format!("https://hooks.example.com/api/v1/webhooks/{key}"),
        "INLET_PUBLIC_URL is the base"
    );
    let public_url = format!("http://{public}/api/v1/webhooks/{key}");
    assert_eq!(s.send(&public_url, "application/json", "{}").await.status(), 200);
    let management = s
        .client
        .get(format!("http://{public}/api/v1/triggers"))
        .bearer_auth(common::TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(
        management.status(),
        404,
        "the management API is not on the public listener"
    );
    assert_eq!(
        s.client
            .get(format!("http://{public}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    s.stop().await;
}

#[tokio::test]
async fn a_broken_pack_file_is_reported_and_the_rest_loads() {
    let packs = tempfile::tempdir().unwrap();
    let pack = packs.path().join("shop");
    std::fs::create_dir_all(pack.join("triggers")).unwrap();
    std::fs::write(pack.join("pack.yaml"), "name: shop\ndescription: a shop\n").unwrap();
    std::fs::write(
        pack.join("triggers/order.yaml"),
        "name: order\nref: shop.order\ntype: webhook\n",
    )
    .unwrap();
    std::fs::write(pack.join("triggers/broken.yaml"), "name: broken\nref: [unclosed\n").unwrap();
    let broken_pack = packs.path().join("nopack");
    std::fs::create_dir_all(&broken_pack).unwrap();
    std::fs::write(broken_pack.join("pack.yaml"), "description: no name\n").unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    let store = inlet_store::Store::open(&inlet_store::test_support::sqlite_url(store_dir.path()))
        .await
        .unwrap();
    let report = inlet_server::packs::load_packs(packs.path(), &store, &inlet_core::seal::MasterKey::generate().1)
        .await
        .unwrap();
    assert_eq!((report.packs, report.triggers_created), (1, 1));
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    let broken = report.errors.iter().find(|e| e.path.ends_with("broken.yaml")).unwrap();
    assert_eq!(broken.line, Some(2), "{broken}");
    assert!(report.errors.iter().any(|e| e.path.ends_with("nopack/pack.yaml")));
    // Loading again is idempotent.
    let again = inlet_server::packs::load_packs(packs.path(), &store, &inlet_core::seal::MasterKey::generate().1)
        .await
        .unwrap();
    assert_eq!((again.triggers_created, again.triggers_seen), (0, 1));
    assert!(store.get_trigger("shop.order").await.unwrap().is_some());
    store.close().await;
}

#[tokio::test]
async fn payloads_are_checked_against_the_trigger_schema() {
    each_backend(|s| async move {
        let (_, url) = s.enable("myapp.deployment_complete").await;
        let bad = s
            .send(&url, "application/json", r#"{"version":"1","environment":"moon"}"#)
            .await;
        assert_eq!(bad.status(), 422);
        let body: Value = bad.json().await.unwrap();
        assert_eq!(body["error"]["code"], "schema_mismatch");
        assert!(
            body["error"]["message"].as_str().unwrap().contains("/environment"),
            "{body}"
        );
        let missing = s
            .send(&url, "application/json", r#"{"environment":"production"}"#)
            .await;
        assert_eq!(missing.status(), 422);
        assert!(s.events("myapp.deployment_complete").await.is_empty());
        let log = s.log("myapp.deployment_complete").await;
        assert_eq!(log[0]["outcome"], "schema_mismatch");
        assert_eq!(log[0]["status_code"], 422);

        let refused = s
            .post_json(
                "/api/v1/triggers",
                json!({"ref": "x.y", "payload_schema": {"type": "nonsense"}}),
            )
            .await;
        assert_eq!(refused.status(), 400);
        s
    })
    .await;
}

#[tokio::test]
async fn a_mapping_shapes_the_event_while_the_log_keeps_the_body() {
    each_backend(|s| async move {
        let (_, url) = s.enable("github.push").await;
        let patched = s
            .request(Method::PATCH, "/api/v1/triggers/github.push/webhooks")
            .json(&json!({"mapping": {"jsonpath": {"commit_sha": "$.head_commit.id", "branch": "$.ref", "none": "$.missing"}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status(), 200);
        let body = r#"{"ref":"refs/heads/main","head_commit":{"id":"abc123"},"big":[1,2,3]}"#;
        assert_eq!(s.send(&url, "application/json", body).await.status(), 200);
        let event = &s.events("github.push").await[0];
        assert_eq!(event["payload"], json!({"commit_sha": "abc123", "branch": "refs/heads/main", "none": null}));
        let log = s.log("github.push").await;
        let detail = s.get_json(&format!("/api/v1/webhook-log/{}", log[0]["id"].as_str().unwrap())).await;
        assert_eq!(detail["data"]["body"], body);
        // A replay of the logged request goes through the same mapping.
        let replayed = s
            .request(Method::POST, &format!("/api/v1/webhook-log/{}/replay", log[0]["id"].as_str().unwrap()))
            .send()
            .await
            .unwrap();
        assert_eq!(replayed.status(), 200);
        let event = &s.events("github.push").await[0];
        assert_eq!(event["source"], "replay");
        assert_eq!(event["payload"]["commit_sha"], "abc123");

        s.request(Method::PATCH, "/api/v1/triggers/github.push/webhooks")
            .json(&json!({"mapping": {"template": "{\"branch\": {{ payload.ref | tojson }}, \"event\": {{ headers['x-github-event'] | tojson }}}"}}))
            .send()
            .await
            .unwrap();
        let sent = s.client.post(&url).header("x-github-event", "push").body(body).send().await.unwrap();
        assert_eq!(sent.status(), 200);
        assert_eq!(s.events("github.push").await[0]["payload"], json!({"branch": "refs/heads/main", "event": "push"}));

        let bad = s
            .request(Method::PATCH, "/api/v1/triggers/github.push/webhooks")
            .json(&json!({"mapping": {"jsonpath": {"x": "not a path"}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        s
    })
    .await;
}
