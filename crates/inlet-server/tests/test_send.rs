//! `POST /api/v1/triggers/{ref}/webhooks/test`: the test tool's request, signed on the server
//! with the trigger's verification scheme and sent through the receiver.

mod common;

use common::{TestServer, each_backend};
use reqwest::Method;
use serde_json::{Value, json};

async fn set_verification(s: &TestServer, trigger_ref: &str, verification: Value) {
    let response = s
        .request(Method::PATCH, &format!("/api/v1/triggers/{trigger_ref}/webhooks"))
        .json(&json!({ "verification": verification }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

/// Calls the test route; returns its HTTP status and `data`.
async fn send_test(s: &TestServer, trigger_ref: &str, payload: Value) -> (u16, Value) {
    let response = s
        .post_json(
            &format!("/api/v1/triggers/{trigger_ref}/webhooks/test"),
            json!({ "payload": payload }),
        )
        .await;
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body)
}

/// The route answers 200, signed, and the receiver accepted the payload as an event.
async fn assert_accepted(s: &TestServer, trigger_ref: &str, payload: Value) {
    let before = s.events(trigger_ref).await.len();
    let (status, body) = send_test(s, trigger_ref, payload.clone()).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["signed"], true, "{body}");
    assert_eq!(data["status"], 200, "{body}");
    assert!(data["body"]["data"]["event_id"].is_string(), "{body}");
    assert!(data.get("note").is_none(), "{body}");
    let events = s.events(trigger_ref).await;
    assert_eq!(events.len(), before + 1, "{events:?}");
}

#[tokio::test]
async fn github_stripe_and_slack_test_requests_are_signed() {
    each_backend(|s| async move {
        s.enable("github.push").await;
        set_verification(
            &s,
            "github.push",
            json!({"scheme": "github", "secrets": ["It's a Secret to Everybody", "old-secret"]}),
        )
        .await;
        assert_accepted(&s, "github.push", json!({"ref": "refs/heads/main", "commits": []})).await;

        s.enable("stripe.payment_succeeded").await;
        set_verification(
            &s,
            "stripe.payment_succeeded",
            json!({"scheme": "stripe", "secrets": ["whsec_test_secret_0123456789"]}),
        )
        .await;
        assert_accepted(
            &s,
            "stripe.payment_succeeded",
            json!({"id": "evt_test_1", "type": "payment_intent.succeeded", "data": {"object": {"amount": 100}}}),
        )
        .await;

        let created = s.post_json("/api/v1/triggers", json!({"ref": "slack.events"})).await;
        assert_eq!(created.status(), 201);
        s.enable("slack.events").await;
        set_verification(
            &s,
            "slack.events",
            json!({"scheme": "slack", "secrets": ["8f742231b10e8888abcd99yyyzzz85a5"]}),
        )
        .await;
        assert_accepted(
            &s,
            "slack.events",
            json!({"type": "event_callback", "event": {"type": "message"}}),
        )
        .await;
        s
    })
    .await;
}

#[tokio::test]
async fn unverified_triggers_are_sent_unsigned_and_accepted() {
    each_backend(|s| async move {
        s.enable("github.push").await;
        let (status, body) = send_test(&s, "github.push", json!({"hello": "world"})).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["data"]["signed"], false);
        assert_eq!(body["data"]["status"], 200, "{body}");
        assert!(body["data"]["body"]["data"]["event_id"].is_string(), "{body}");
        s
    })
    .await;
}

#[tokio::test]
async fn discord_cannot_be_signed_and_is_refused() {
    each_backend(|s| async move {
        s.enable("github.push").await;
        set_verification(
            &s,
            "github.push",
            json!({
                "scheme": "discord",
                "public_key": "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8",
            }),
        )
        .await;
        let (status, body) = send_test(&s, "github.push", json!({"type": 2})).await;
        assert_eq!(status, 200, "{body}");
        let data = &body["data"];
        assert_eq!(data["signed"], false, "{body}");
        assert_eq!(data["status"], 401, "{body}");
        let note = data["note"].as_str().unwrap();
        assert!(note.contains("discord") && note.contains("private key"), "{note}");
        assert!(s.events("github.push").await.is_empty());
        s
    })
    .await;
}

#[tokio::test]
async fn webhook_must_be_enabled() {
    each_backend(|s| async move {
        let (status, body) = send_test(&s, "github.push", json!({})).await;
        assert_eq!(status, 404, "{body}");
        s.enable("github.push").await;
        let disabled = s
            .request(Method::POST, "/api/v1/triggers/github.push/webhooks/disable")
            .send()
            .await
            .unwrap();
        assert_eq!(disabled.status(), 200);
        let (status, _) = send_test(&s, "github.push", json!({})).await;
        assert_eq!(status, 404);
        let (status, _) = send_test(&s, "no.such", json!({})).await;
        assert_eq!(status, 404);
        let bad = s
            .post_json("/api/v1/triggers/github.push/webhooks/test", json!({"nope": 1}))
            .await;
        assert_eq!(bad.status(), 400);
        s
    })
    .await;
}
