//! The receiver's security checks end to end, on both backends: settings,
//! signatures, timestamps, IP allowlists behind proxies, rate limits, dedup,
//! handshakes, key probing and slow clients.

mod common;

use common::{TestServer, each_backend};
use hmac::{Hmac, KeyInit, Mac};
use inlet_server::Config;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SECRET: &str = "It's a Secret to Everybody";

fn hmac_hex(secret: &str, data: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(data);
    hex::encode(mac.finalize().into_bytes())
}

fn now() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

async fn patch(s: &TestServer, trigger: &str, body: Value) -> reqwest::Response {
    s.request(Method::PATCH, &format!("/api/v1/triggers/{trigger}/webhooks"))
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn settings(s: &TestServer, trigger: &str) -> Value {
    s.get_json(&format!("/api/v1/triggers/{trigger}/webhooks")).await["data"]["settings"].clone()
}

async fn github_post(
    s: &TestServer,
    url: &str,
    body: &str,
    signature: Option<String>,
    delivery: &str,
) -> reqwest::Response {
    let mut request = s
        .client
        .post(url)
        .header("content-type", "application/json")
        .header("x-github-delivery", delivery)
        .body(body.to_owned());
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    request.send().await.unwrap()
}

async fn error_code(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"].as_str().unwrap_or("").to_owned(),
        body["error"]["message"].as_str().unwrap_or("").to_owned(),
    )
}

#[tokio::test]
async fn settings_are_validated_masked_and_take_effect_at_once() {
    each_backend(|s| async move {
        s.enable("github.push").await;
        let response = patch(
            &s,
            "github.push",
            json!({
                "verification": {"scheme": "github", "secrets": [SECRET]},
                "ip_allowlist": ["192.30.252.0/22", "2001:db8::/32", "127.0.0.1"],
                "rate_limit": {"requests": 100, "window_seconds": 60},
                "max_payload_bytes": 2048,
                "dedup": true,
                "methods": ["post"]
            }),
        )
        .await;
        assert_eq!(response.status(), 200);
        let shown = settings(&s, "github.push").await;
        assert_eq!(shown["verification"]["scheme"], "github");
        assert_eq!(
            shown["ip_allowlist"],
            json!(["192.30.252.0/22", "2001:db8::/32", "127.0.0.1/32"])
        );
        assert_eq!(shown["rate_limit"], json!({"requests": 100, "window_seconds": 60}));
        assert_eq!(shown["methods"], json!(["POST"]));
        let secret_shown = shown["verification"]["secrets"][0].as_str().unwrap();
        assert!(
            !secret_shown.contains(SECRET) && secret_shown.ends_with("body"),
            "{secret_shown}"
        );

        let bad = [
            (json!({"verification": {"scheme": "nope", "secrets": ["x"]}}), "nope"),
            (json!({"ip_allowlist": ["10.0.0.300/8"]}), "ip_allowlist[0]"),
            (
                json!({"rate_limit": {"requests": 5, "window_seconds": 0}}),
                "rate_limit.window_seconds",
            ),
            (
                json!({"verification": {"scheme": "stripe", "secrets": []}}),
                "verification.secrets",
            ),
            (json!({"max_payload_bytes": 0}), "max_payload_bytes"),
            (json!({"methods": ["BREW"]}), "BREW"),
            (json!({"colour": "blue"}), "colour"),
        ];
        for (body, named) in bad {
            let (status, code, message) = error_code(patch(&s, "github.push", body.clone()).await).await;
            assert_eq!((status, code.as_str()), (400, "bad_request"), "{body}");
            assert!(message.contains(named), "{body}: {message}");
        }
        assert_eq!(
            settings(&s, "github.push").await,
            shown,
            "refused changes change nothing"
        );

        // Sending the masked secret back keeps it; null and [] turn checks off.
        let response = patch(
            &s,
            "github.push",
            json!({"verification": shown["verification"], "rate_limit": null, "ip_allowlist": []}),
        )
        .await;
        assert_eq!(response.status(), 200);
        let after = settings(&s, "github.push").await;
        assert_eq!(after["verification"], shown["verification"]);
        assert_eq!(after["rate_limit"], Value::Null);
        assert_eq!(after["ip_allowlist"], json!([]));
        s
    })
    .await;
}

#[tokio::test]
async fn github_signatures_are_checked_with_rotation() {
    each_backend(|s| async move {
        let (_, url) = s.enable("github.push").await;
        assert_eq!(
            patch(
                &s,
                "github.push",
                json!({"verification": {"scheme": "github", "secrets": [SECRET]}})
            )
            .await
            .status(),
            200
        );
        let body = r#"{"ref":"refs/heads/main"}"#;
        let good = format!("sha256={}", hmac_hex(SECRET, body.as_bytes()));
        assert_eq!(
            github_post(&s, &url, body, Some(good.clone()), "d1").await.status(),
            200
        );

        let (status, code, message) =
            error_code(github_post(&s, &url, r#"{"ref":"refs/heads/evil"}"#, Some(good.clone()), "d2").await).await;
        assert_eq!((status, code.as_str()), (401, "bad_signature"));
        assert!(!message.contains(&good[7..]), "never reveals a signature: {message}");
        let (status, code, message) = error_code(github_post(&s, &url, body, None, "d3").await).await;
        assert_eq!((status, code.as_str()), (401, "bad_signature"));
        assert!(
            message.to_ascii_lowercase().contains("x-hub-signature-256"),
            "{message}"
        );
        let wrong = format!("sha256={}", hmac_hex("wrong secret", body.as_bytes()));
        assert_eq!(github_post(&s, &url, body, Some(wrong), "d4").await.status(), 401);

        // Rotation: a generated second secret, shown once; both verify.
        let response = s
            .request(Method::POST, "/api/v1/triggers/github.push/webhooks/secret")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let added: Value = response.json().await.unwrap();
        let second = added["data"]["secret"].as_str().unwrap().to_owned();
        assert!(second.len() >= 32);
        let info = serde_json::to_string(&settings(&s, "github.push").await).unwrap();
        assert!(!info.contains(&second) && !info.contains(SECRET));
        let by_second = format!("sha256={}", hmac_hex(&second, body.as_bytes()));
        assert_eq!(github_post(&s, &url, body, Some(by_second), "d5").await.status(), 200);
        assert_eq!(github_post(&s, &url, body, Some(good), "d6").await.status(), 200);

        let outcomes: Vec<String> = s
            .log("github.push")
            .await
            .iter()
            .map(|l| l["outcome"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(outcomes.iter().filter(|o| *o == "bad_signature").count(), 3);
        assert_eq!(s.events("github.push").await.len(), 3);
        s
    })
    .await;
}

#[tokio::test]
async fn stale_and_future_timestamps_are_refused() {
    each_backend(|s| async move {
        let (_, url) = s.enable("stripe.payment_succeeded").await;
        let secret = "whsec_test_secret_0123456789";
        patch(
            &s,
            "stripe.payment_succeeded",
            json!({"verification": {"scheme": "stripe", "secrets": [secret]}}),
        )
        .await;
        let body = r#"{"id":"evt_1","type":"payment_intent.succeeded","data":{}}"#;
        let send = |t: i64| {
            let signature = format!("t={t},v1={}", hmac_hex(secret, format!("{t}.{body}").as_bytes()));
            s.client
                .post(&url)
                .header("content-type", "application/json")
                .header("stripe-signature", signature)
                .body(body)
                .send()
        };
        assert_eq!(send(now()).await.unwrap().status(), 200);
        let (status, code, _) = error_code(send(now() - 3600).await.unwrap()).await;
        assert_eq!((status, code.as_str()), (401, "stale_timestamp"));
        let (status, code, _) = error_code(send(now() + 3600).await.unwrap()).await;
        assert_eq!((status, code.as_str()), (401, "stale_timestamp"));
        s
    })
    .await;
}

#[tokio::test]
async fn duplicate_deliveries_make_one_event_even_when_concurrent() {
    each_backend(|s| async move {
        let (_, url) = s.enable("github.push").await;
        patch(
            &s,
            "github.push",
            json!({"verification": {"scheme": "github", "secrets": [SECRET]}}),
        )
        .await;
        let body = r#"{"ref":"refs/heads/main"}"#;
        let signature = format!("sha256={}", hmac_hex(SECRET, body.as_bytes()));
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let (client, url, signature) = (s.client.clone(), url.clone(), signature.clone());
            tasks.push(tokio::spawn(async move {
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
                    .header("x-hub-signature-256", signature)
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                response.json::<Value>().await.unwrap()["data"].clone()
            }));
        }
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        assert_eq!(answers.iter().filter(|a| a["duplicate"] == false).count(), 1);
        assert!(answers.iter().all(|a| a["event_id"] == answers[0]["event_id"]));
        assert_eq!(s.events("github.push").await.len(), 1);
        let log = s.log("github.push").await;
        assert_eq!(log.iter().filter(|l| l["outcome"] == "duplicate").count(), 11);

        // With dedup off the same delivery makes new events.
        patch(&s, "github.push", json!({"dedup": false})).await;
        assert_eq!(
            github_post(&s, &url, body, Some(signature), "72d3162e-cc78-11e3-81ab-4c9367dc0958")
                .await
                .status(),
            200
        );
        assert_eq!(s.events("github.push").await.len(), 2);
        s
    })
    .await;
}

#[tokio::test]
async fn ip_allowlist_uses_the_socket_address_and_ignores_spoofed_headers() {
    each_backend(|s| async move {
        let (_, url) = s.enable("github.push").await;
        patch(
            &s,
            "github.push",
            json!({"ip_allowlist": ["10.0.0.0/8", "2001:db8::/32"]}),
        )
        .await;
        let spoofed = s
            .client
            .post(&url)
            .header("x-forwarded-for", "10.1.2.3")
            .header("forwarded", "for=10.1.2.3")
            .body("{}")
            .send()
            .await
            .unwrap();
        let (status, code, message) = error_code(spoofed).await;
        assert_eq!((status, code.as_str()), (403, "ip_denied"));
        assert!(message.contains("127.0.0.1"), "{message}");
        patch(&s, "github.push", json!({"ip_allowlist": ["127.0.0.0/8"]})).await;
        assert_eq!(s.send(&url, "application/json", "{}").await.status(), 200);
        assert_eq!(s.log("github.push").await.last().unwrap()["outcome"], "ip_denied");
        s
    })
    .await;
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        trusted_proxies: vec!["127.0.0.1/32".into()],
        ..common::test_config(dir.path())
    };
    let s = TestServer::start_with("sqlite", cfg, Some(dir)).await;
    let (_, url) = s.enable("github.push").await;
    patch(
        &s,
        "github.push",
        json!({"ip_allowlist": ["203.0.113.0/24", "2001:db8::/32"]}),
    )
    .await;
    let via = |xff: &'static str| s.client.post(&url).header("x-forwarded-for", xff).body("{}").send();
    assert_eq!(via("203.0.113.7").await.unwrap().status(), 200);
    assert_eq!(via("2001:db8::5").await.unwrap().status(), 200, "IPv6 client");
    assert_eq!(
        via("203.0.113.7, 198.51.100.1").await.unwrap().status(),
        403,
        "right-most untrusted hop counts"
    );
    assert_eq!(
        s.client.post(&url).body("{}").send().await.unwrap().status(),
        403,
        "no header: the proxy itself"
    );
    let forwarded = s
        .client
        .post(&url)
        .header("forwarded", "for=\"[2001:db8::9]:4711\"")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status(), 200);
    let events = s.events("github.push").await;
    assert_eq!(events.last().unwrap()["metadata"]["source_ip"], "203.0.113.7");
    s.stop().await;
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    each_backend(|s| async move {
        let (_, url) = s.enable("github.push").await;
        patch(
            &s,
            "github.push",
            json!({"rate_limit": {"requests": 3, "window_seconds": 60}}),
        )
        .await;
        for _ in 0..3 {
            assert_eq!(s.send(&url, "application/json", "{}").await.status(), 200);
        }
        let limited = s.send(&url, "application/json", "{}").await;
        assert_eq!(limited.status(), 429);
        let retry: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=120).contains(&retry), "{retry}");
        assert_eq!(s.log("github.push").await[0]["outcome"], "rate_limited");
        // A new setting starts a fresh window.
        patch(
            &s,
            "github.push",
            json!({"rate_limit": {"requests": 10, "window_seconds": 1}}),
        )
        .await;
        assert_eq!(s.send(&url, "application/json", "{}").await.status(), 200);
        s
    })
    .await;
}

#[tokio::test]
async fn payload_limit_and_methods_follow_the_settings() {
    each_backend(|s| async move {
        let (_, url) = s.enable("github.push").await;
        patch(
            &s,
            "github.push",
            json!({"max_payload_bytes": 100, "methods": ["POST", "PUT"]}),
        )
        .await;
        assert_eq!(
            s.send(&url, "application/json", format!("\"{}\"", "x".repeat(200)))
                .await
                .status(),
            413
        );
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..4).map(|_| Ok(vec![b' '; 64])).collect();
        let chunked = s
            .send(
                &url,
                "application/json",
                reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)),
            )
            .await;
        assert_eq!(chunked.status(), 413);
        assert_eq!(s.client.put(&url).body("{}").send().await.unwrap().status(), 200);
        assert_eq!(s.client.delete(&url).send().await.unwrap().status(), 405);
        s
    })
    .await;
}

#[tokio::test]
async fn provider_handshakes_are_answered() {
    each_backend(|s| async move {
        // Slack signs its url_verification; the challenge is echoed after verification.
        let (_, slack_url) = s.new_webhook("slack.events").await;
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        patch(&s, "slack.events", json!({"verification": {"scheme": "slack", "secrets": [secret]}})).await;
        let body = r#"{"token":"x","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}"#;
        let ts = now().to_string();
        let signature = format!("v0={}", hmac_hex(secret, format!("v0:{ts}:{body}").as_bytes()));
        let answer = s
            .client
            .post(&slack_url)
            .header("content-type", "application/json")
            .header("x-slack-request-timestamp", &ts)
            .header("x-slack-signature", signature)
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let answer: Value = answer.json().await.unwrap();
        assert_eq!(answer["challenge"], "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P");
        assert!(s.events("slack.events").await.is_empty(), "a handshake is not an event");
        let unsigned = s.send(&slack_url, "application/json", body).await;
        assert_eq!(unsigned.status(), 401);

        // Okta checks the endpoint with a GET carrying a challenge.
        let (_, okta_url) = s.new_webhook("okta.events").await;
        patch(&s, "okta.events", json!({"verification": {"scheme": "okta", "secrets": ["okta-shared-secret-value"]}})).await;
        let answer = s
            .client
            .get(&okta_url)
            .header("authorization", "okta-shared-secret-value")
            .header("x-okta-verification-challenge", "abc123")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.json::<Value>().await.unwrap(), json!({"verification": "abc123"}));
        s
    })
    .await;
}

#[tokio::test]
async fn probing_unknown_keys_is_throttled_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        unknown_key_limit_per_minute: 5,
        ..common::test_config(dir.path())
    };
    let s = TestServer::start_with("sqlite", cfg, Some(dir)).await;
    let (_, url) = s.enable("github.push").await;
    let probe = format!("{}/api/v1/webhooks/wh_{}", s.base, "Z".repeat(32));
    for _ in 0..5 {
        assert_eq!(s.send(&probe, "application/json", "{}").await.status(), 404);
    }
    let blocked = s.send(&probe, "application/json", "{}").await;
    assert_eq!(blocked.status(), 429);
    assert!(blocked.headers().contains_key("retry-after"));
    assert_eq!(
        s.send(&url, "application/json", "{}").await.status(),
        429,
        "a prober learns nothing more"
    );
    s.stop().await;
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config {
        header_timeout_seconds: 1,
        body_timeout_seconds: 1,
        ..common::test_config(dir.path())
    };
    let s = TestServer::start_with("sqlite", cfg, Some(dir)).await;
    let (key, _) = s.enable("github.push").await;
    let addr = s.base.trim_start_matches("http://").to_owned();

    // Headers that never finish.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST /api/v1/webhooks/x HTTP/1.1\r\nHost: a\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closed the slow connection");

    // A body that never finishes.
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/v1/webhooks/{key} HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert_eq!(s.log("github.push").await[0]["outcome"], "timeout");
    s.stop().await;
}
