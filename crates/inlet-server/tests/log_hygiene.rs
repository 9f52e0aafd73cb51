//! Captures everything the server logs, at every level, while it handles
//! keys, secrets and tokens, and checks that none of them appears.

mod common;

use common::each_backend;
use reqwest::Method;
use serde_json::{Value, json};
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let writer = captured.clone();
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .init();
            captured
        })
        .clone()
}

#[tokio::test]
async fn no_key_secret_or_token_reaches_the_logs() {
    let captured = capture();
    let secrets = Arc::new(Mutex::new(vec![common::TOKEN.to_owned()]));
    let seen = secrets.clone();
    each_backend(move |s| {
        let seen = seen.clone();
        async move {
            let (key, url) = s.enable("github.push").await;
            let github_secret = "log-hygiene-secret-value-0123";
            let patched = s
                .request(Method::PATCH, "/api/v1/triggers/github.push/webhooks")
                .json(&json!({"verification": {"scheme": "github", "secrets": [github_secret]}}))
                .send()
                .await
                .unwrap();
            assert_eq!(patched.status(), 200);
            let added: Value = s
                .request(Method::POST, "/api/v1/triggers/github.push/webhooks/secret")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            // Requests that fail in every way the receiver knows.
            s.send(&url, "application/json", "{}").await;
            s.client
                .post(&url)
                .header("x-hub-signature-256", "sha256=00")
                .body("{bad")
                .send()
                .await
                .unwrap();
            s.client.put(&url).body("{}").send().await.unwrap();
            let regenerated: Value = s
                .request(Method::POST, "/api/v1/triggers/github.push/webhooks/regenerate")
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            s.send(&url, "application/json", "{}").await;
            s.client
                .get(format!("{}/api/v1/triggers", s.base))
                .bearer_auth("inlet_not_a_real_token_value_x")
                .send()
                .await
                .unwrap();
            let mut seen = seen.lock().unwrap();
            seen.push(key);
            seen.push(github_secret.to_owned());
            seen.push(added["data"]["secret"].as_str().unwrap().to_owned());
            seen.push(regenerated["data"]["webhook_key"].as_str().unwrap().to_owned());
            seen.push("inlet_not_a_real_token_value_x".to_owned());
            s
        }
    })
    .await;
    let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
    assert!(
        logs.len() > 1000,
        "the capture holds the server's logs ({} bytes)",
        logs.len()
    );
    for secret in secrets.lock().unwrap().iter() {
        assert!(!logs.contains(secret.as_str()), "{secret:.12}… appears in the logs");
    }
}
