//! The web UI: HTTP-level checks of sessions, CSRF and escaping; the stats
//! API behind the trigger page; and browser tests in headless Chromium
//! against a real server.

mod browser;
mod common;

use browser::Browser;
use common::{TOKEN, TestServer, assert_event_stream, each_backend};
use reqwest::redirect::Policy;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use std::path::PathBuf;

// ---------------------------------------------------------------- HTTP level

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

/// A real server on SQLite (the UI only talks to the API, which is tested on both backends).
async fn server() -> TestServer {
    inlet_engine::runner::install_crypto_provider();
    TestServer::start("sqlite", None).await
}

fn no_redirects() -> Client {
    inlet_engine::runner::install_crypto_provider();
    Client::builder().redirect(Policy::none()).build().unwrap()
}

fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

fn cookie_pair(set_cookie: &[String], name: &str) -> Option<String> {
    set_cookie
        .iter()
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(|c| c.split(';').next().unwrap().to_owned())
}

fn csrf_in(html: &str) -> String {
    let start = html.find("name=\"_csrf\" value=\"").expect("a CSRF field") + 20;
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// Signs in over plain HTTP; returns the session cookie and its CSRF token.
async fn http_sign_in(s: &TestServer) -> (String, String) {
    let client = no_redirects();
    let signin_page = client.get(format!("{}/signin", s.base)).send().await.unwrap();
    let pre = cookie_pair(&set_cookies(&signin_page), "inlet_signin_csrf").unwrap();
    let csrf = csrf_in(&signin_page.text().await.unwrap());
    let done = client
        .post(format!("{}/signin", s.base))
        .header("cookie", &pre)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("_csrf", csrf.as_str()),
            ("token", TOKEN),
            ("next", "/triggers"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let cookies = set_cookies(&done);
    let session = cookies.iter().find(|c| c.starts_with("inlet_session=")).unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(session.contains(flag), "{flag} in {session}");
    }
    assert!(!session.contains("Secure"), "plain http: no Secure flag");
    let cookie = cookie_pair(&cookies, "inlet_session").unwrap();
    let page = client
        .get(format!("{}/triggers", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    (cookie, csrf_in(&page.text().await.unwrap()))
}

#[tokio::test]
async fn pages_need_a_session_and_forms_need_the_csrf_token() {
    let s = server().await;
    let client = no_redirects();
    let page = client.get(format!("{}/triggers", s.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert_eq!(page.headers()["location"], "/signin?next=%2Ftriggers");

    // A wrong token is refused with a message; so is a missing CSRF cookie.
    let signin_page = client.get(format!("{}/signin", s.base)).send().await.unwrap();
    let pre = cookie_pair(&set_cookies(&signin_page), "inlet_signin_csrf").unwrap();
    let csrf = csrf_in(&signin_page.text().await.unwrap());
    let wrong = client
        .post(format!("{}/signin", s.base))
        .header("cookie", &pre)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[
            ("_csrf", csrf.as_str()),
            ("token", "inlet_wrong_token_00000000000000"),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.unwrap().contains("not valid"));
    let forged = client
        .post(format!("{}/signin", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("_csrf", csrf.as_str()), ("token", TOKEN)]))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);

    let (cookie, csrf) = http_sign_in(&s).await;
    // The session cookie is sealed: the token is not in it.
    assert!(!cookie.contains(TOKEN));
    let enable = format!("{}/triggers/github.push/enable", s.base);
    let without = client
        .post(&enable)
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("_csrf", "nope")]))
        .send()
        .await
        .unwrap();
    assert_eq!(without.status(), StatusCode::FORBIDDEN);
    let info = s.get_json("/api/v1/triggers/github.push/webhooks").await;
    assert_eq!(info["data"]["enabled"], false, "a forged form changes nothing");
    let with = client
        .post(&enable)
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("_csrf", csrf.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), StatusCode::SEE_OTHER);
    let info = s.get_json("/api/v1/triggers/github.push/webhooks").await;
    assert_eq!(info["data"]["enabled"], true);

    // Signing out clears the cookie.
    let out = client
        .post(format!("{}/signout", s.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("_csrf", csrf.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        set_cookies(&out)
            .iter()
            .any(|c| c.starts_with("inlet_session=;") && c.contains("Max-Age=0"))
    );
    s.stop().await;
}

#[tokio::test]
async fn pages_escape_what_they_show() {
    let s = server().await;
    let created = s
        .post_json(
            "/api/v1/triggers",
            json!({"ref": "evil.trigger", "label": "<script>alert(1)</script>", "description": "\"><img src=x onerror=alert(2)>"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let (cookie, _) = http_sign_in(&s).await;
    for path in ["/triggers", "/triggers/evil.trigger"] {
        let html = no_redirects()
            .get(format!("{}{path}", s.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!html.contains("<script>alert"), "{path}");
        assert!(!html.contains("<img src=x"), "{path}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{path}");
    }
    // A path segment cannot reach another API route.
    let sneaky = no_redirects()
        .get(format!("{}/triggers/github.push%2Fwebhooks", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(sneaky.status(), StatusCode::BAD_REQUEST);
    s.stop().await;
}

#[tokio::test]
async fn stats_count_requests_per_hour_by_outcome() {
    inlet_engine::runner::install_crypto_provider();
    each_backend(|s| async move {
        let none = s.get_json("/api/v1/triggers/github.push/webhooks/stats").await;
        assert_eq!(none["data"]["received"], 0);
        assert_eq!(none["data"]["last_request_at"], Value::Null);
        assert_eq!(none["data"]["hourly"].as_array().unwrap().len(), 168);

        let (_, url) = s.enable("github.push").await;
        for body in ["{\"a\":1}", "{\"a\":2}", "{not json"] {
            s.send(&url, "application/json", body).await;
        }
        let stats = s.get_json("/api/v1/triggers/github.push/webhooks/stats").await;
        let d = &stats["data"];
        assert_eq!(d["received"], 3);
        assert_eq!(d["accepted"], 2);
        assert_eq!(d["rejected"], 1);
        assert_eq!(d["rejected_by_reason"]["invalid_payload"], 1);
        assert_eq!(d["bucket_seconds"], 3600);
        assert!(d["last_request_at"].is_string());
        assert!(d["webhook_created_at"].is_string());
        let hourly = d["hourly"].as_array().unwrap();
        assert_eq!(hourly.len(), 168);
        let now = hourly.last().unwrap();
        assert_eq!(now["total"], 3);
        assert_eq!(now["counts"]["accepted"], 2);

        let day = s.get_json("/api/v1/triggers/github.push/webhooks/stats?hours=24").await;
        assert_eq!(day["data"]["hourly"].as_array().unwrap().len(), 24);
        let bad = s
            .request(
                reqwest::Method::GET,
                "/api/v1/triggers/github.push/webhooks/stats?hours=0",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        let unknown = s
            .request(reqwest::Method::GET, "/api/v1/triggers/no.such/webhooks/stats")
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404);
        let anonymous = reqwest::get(format!("{}/api/v1/triggers/github.push/webhooks/stats", s.base))
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401);
        s
    })
    .await;
}

// ---------------------------------------------------------------- browser

/// Screenshots shown in the README.
/// The README's screenshots: rewritten in docs/ only when
/// `INLET_UPDATE_SCREENSHOTS=1`, so an ordinary test run leaves the tree clean.
fn screenshots() -> PathBuf {
    if std::env::var("INLET_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots")
    } else {
        more_screenshots()
    }
}

/// Further screenshots, for looking at, not committed.
fn more_screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
}

async fn browser_sign_in(b: &Browser, s: &TestServer) {
    b.goto(&format!("{}/triggers", s.base)).await;
    b.wait_js("return location.pathname === '/signin';").await;
    b.type_into("#token", TOKEN).await;
    b.click("form[action='/signin'] button[type=submit]").await;
    b.wait_js("return location.pathname === '/triggers' && !!document.querySelector('#triggers');")
        .await;
}

/// Enables the trigger's webhook through its page; returns its full URL as shown.
async fn browser_enable(b: &Browser, s: &TestServer, trigger_ref: &str) -> String {
    b.goto(&format!("{}/triggers/{trigger_ref}", s.base)).await;
    assert_eq!(b.text("#toggle-webhook").await, "Enable webhook");
    b.click("#toggle-webhook").await;
    b.wait_text("Webhook enabled.").await;
    assert_eq!(b.text("#webhook-state").await, "Enabled");
    webhook_url_from_page(b).await
}

/// Reads the URL the way a user does: Show key, then the field's value.
async fn webhook_url_from_page(b: &Browser) -> String {
    let masked = b.prop("#webhook-url", "value").await.as_str().unwrap().to_owned();
    assert!(masked.contains('•'), "the key is hidden at first: {masked}");
    b.click("#toggle-key").await;
    let url = b.prop("#webhook-url", "value").await.as_str().unwrap().to_owned();
    assert!(url.contains("/api/v1/webhooks/wh_"), "{url}");
    assert_eq!(b.text("#toggle-key").await, "Hide key");
    assert!(b.text("#key-warning").await.contains(
        "Keep this key secret. Anyone with this key can trigger events. If compromised, regenerate immediately."
    ));
    url
}

#[tokio::test]
async fn browser_manages_a_webhook_and_watches_requests_arrive() {
    let Some(b) = Browser::start().await else { return };
    let s = server().await;
    browser_sign_in(&b, &s).await;
    assert!(b.text("#triggers").await.contains("github.push"));
    // The search box filters as typed (and, without scripts, on submit).
    b.type_into("#q", "stripe").await;
    b.wait_js("return [...document.querySelectorAll('#triggers tbody tr')].filter(r => !r.hidden).length === 1;")
        .await;

    // Enable the webhook and read its URL from the page.
    let url = browser_enable(&b, &s, "github.push").await;
    let (api_key, api_url) = {
        let info = s.get_json("/api/v1/triggers/github.push/webhooks").await;
        (
            info["data"]["webhook_key"].as_str().unwrap().to_owned(),
            info["data"]["webhook_url"].as_str().unwrap().to_owned(),
        )
    };
    assert_eq!(url, api_url);
    assert!(url.ends_with(&api_key));

    // The request log, live: a request sent now shows up without a reload.
    b.goto(&format!("{}/log", s.base)).await;
    b.wait_js("return document.querySelector('#live-status').classList.contains('on');")
        .await;
    b.js("window.__notReloaded = true; return true;").await;
    let sent = s
        .send(
            &url,
            "application/json",
            r#"{"ref":"refs/heads/main","pusher":{"name":"ada"}}"#,
        )
        .await;
    assert_eq!(sent.status(), 200);
    b.wait_js("return document.querySelectorAll('#log tbody tr').length === 1;")
        .await;
    assert_eq!(b.js("return window.__notReloaded === true;").await, true, "no reload");
    let row = b.text("#log tbody tr").await;
    assert!(
        row.contains("github.push") && row.contains("accepted") && row.contains("200"),
        "{row}"
    );

    // More traffic, for the screenshots: another accepted request and a rejected one.
    s.send(&url, "application/json", r#"{"ref":"refs/heads/dev"}"#).await;
    let bad = s.send(&url, "application/json", "{not json").await;
    assert_eq!(bad.status(), 400);
    b.wait_js("return document.querySelectorAll('#log tbody tr').length === 3;")
        .await;
    assert!(b.text("#log tbody tr").await.contains("invalid payload"));
    b.js("document.querySelectorAll('tr.new').forEach(function (r) { r.classList.remove('new'); }); return true;")
        .await;
    b.screenshot(1440, &screenshots().join("request-log.png")).await;

    // Filters: only the rejected one.
    b.goto(&format!("{}/log?outcome=invalid_payload", s.base)).await;
    b.wait_js("return document.querySelectorAll('#log tbody tr').length === 1;")
        .await;

    // The detail of the first request.
    b.goto(&format!("{}/log", s.base)).await;
    b.click("#log tbody tr:last-child a").await;
    b.wait_js("return location.pathname.startsWith('/log/') && !!document.querySelector('#outcome');")
        .await;
    assert!(b.text("#outcome").await.contains("accepted"));
    assert_eq!(b.text("#source-ip").await, "127.0.0.1");
    let body = b.text("#body").await;
    assert!(
        body.contains("\"pusher\": {") && body.contains("\"name\": \"ada\""),
        "pretty JSON: {body}"
    );
    assert!(!b.text("#event-id").await.is_empty());
    assert!(b.text("main").await.contains("content-type"), "headers are listed");
    b.screenshot(1440, &more_screenshots().join("request-detail.png")).await;

    // Resubmitting stores the request again as a new event.
    b.click("#resubmit").await;
    b.wait_flash("Resubmitted").await;

    // The trigger page: statistics and chart, then the screenshot.
    b.goto(&format!("{}/triggers/github.push", s.base)).await;
    // A resubmission is logged as a request of its own.
    assert_eq!(b.text("#stat-received").await, "4");
    assert!(
        b.js("return document.querySelectorAll('figure.chart rect').length > 0;")
            .await
            == true
    );
    b.screenshot(1440, &screenshots().join("trigger-detail.png")).await;

    // Usable at 375 px: nothing wider than the screen.
    for path in ["/triggers", "/triggers/github.push", "/log"] {
        b.goto(&format!("{}{path}", s.base)).await;
        b.set_size(375, 800).await;
        let fits = b
            .js("return document.documentElement.scrollWidth <= window.innerWidth + 1;")
            .await;
        assert_eq!(fits, true, "{path} fits 375 px");
    }
    b.screenshot(375, &more_screenshots().join("request-log-mobile.png"))
        .await;
    b.goto(&format!("{}/triggers/github.push", s.base)).await;
    b.screenshot(375, &screenshots().join("trigger-detail-mobile.png"))
        .await;
    b.set_size(1440, 1000).await;

    b.goto(&format!("{}/triggers", s.base)).await;
    let list = b.text("#triggers").await;
    assert!(
        list.contains("just now") || list.contains("seconds ago"),
        "last request, relatively: {list}"
    );
    b.screenshot(1440, &more_screenshots().join("triggers.png")).await;

    // Regenerate through the confirmation: the old URL stops working.
    b.goto(&format!("{}/triggers/github.push", s.base)).await;
    b.click("#regenerate summary").await;
    assert!(b.text("#regenerate").await.contains("The current URL stops working"));
    b.click("#confirm-regenerate").await;
    b.wait_text("New key generated. The old URL no longer works.").await;
    let new_url = webhook_url_from_page(&b).await;
    assert_ne!(new_url, url);
    assert_eq!(s.send(&url, "application/json", "{}").await.status(), 404);
    assert_eq!(s.send(&new_url, "application/json", "{}").await.status(), 200);

    // The test tool sends through the receiver and shows the result.
    b.type_into("#test-payload", r#"{"from": "the test tool"}"#).await;
    b.click("#send-test").await;
    b.wait_js("return !!document.querySelector('#test-result');").await;
    let result = b.text("#test-result").await;
    assert!(
        result.contains("200") && result.contains("accepted") && result.contains("event_id"),
        "{result}"
    );
    b.click("#test-result a").await;
    b.wait_js("return location.pathname.startsWith('/log/');").await;
    assert!(b.text("#body").await.contains("the test tool"));
    assert!(
        b.text("main").await.contains("Inlet-UI-test-tool"),
        "the test tool's user agent"
    );
    b.goto(&format!("{}/triggers/github.push", s.base)).await;
    let events = s.events("github.push").await;
    assert!(events.iter().any(|e| e["payload"]["from"] == "the test tool"));

    // Turning the webhook off through the toggle makes it refuse requests.
    b.click("#toggle-webhook").await;
    b.wait_text("Webhook disabled").await;
    assert_eq!(s.send(&new_url, "application/json", "{}").await.status(), 403);

    // An address range is checked as it is typed, and saved.
    b.type_into("#cidr", "not-an-ip").await;
    assert_eq!(
        b.js("return document.querySelector('#cidr').validity.valid;").await,
        false,
        "validated as typed"
    );
    assert!(b.text("#cidr-msg").await.contains("Not an IP address"));
    b.type_into("#cidr", "10.0.0.0/8").await;
    b.click("#add-cidr").await;
    b.wait_flash("Settings saved").await;

    // Sign out.
    b.click("form.signout button").await;
    b.wait_js("return location.pathname === '/signin';").await;
    b.goto(&format!("{}/triggers", s.base)).await;
    b.wait_js("return location.pathname === '/signin';").await;

    b.quit().await;
    s.stop().await;
}

#[tokio::test]
async fn browser_without_javascript_can_still_do_everything() {
    let Some(b) = Browser::start_without_js().await else {
        return;
    };
    let s = server().await;
    browser_sign_in(&b, &s).await;
    // WebDriver's own scripts still run; the page's do not.
    b.goto(&format!("{}/triggers/github.push", s.base)).await;
    b.click("#toggle-webhook").await;
    b.wait_text("Webhook enabled.").await;
    // No script: the toggle button stays hidden and the key is behind a disclosure.
    assert_eq!(b.js("return document.querySelector('#toggle-key').hidden;").await, true);
    b.click("details.reveal summary").await;
    let url = b.text("#webhook-url-full").await;
    let info = s.get_json("/api/v1/triggers/github.push/webhooks").await;
    assert_eq!(url, info["data"]["webhook_url"].as_str().unwrap());
    assert_eq!(s.send(&url, "application/json", "{}").await.status(), 200);
    // The log shows it after a reload, and the regenerate confirmation works.
    b.goto(&format!("{}/log", s.base)).await;
    assert!(b.text("#log tbody tr").await.contains("accepted"));
    b.goto(&format!("{}/triggers/github.push", s.base)).await;
    b.click("#regenerate summary").await;
    b.click("#confirm-regenerate").await;
    b.wait_text("New key generated.").await;
    assert_eq!(s.send(&url, "application/json", "{}").await.status(), 404);
    b.quit().await;
    s.stop().await;
}

#[tokio::test]

async fn browser_resubmits_a_logged_request() {
    let Some(b) = Browser::start().await else { return };
    let s = server().await;
    browser_sign_in(&b, &s).await;
    let url = browser_enable(&b, &s, "github.push").await;
    assert_eq!(s.send(&url, "application/json", r#"{"n": 1}"#).await.status(), 200);
    b.goto(&format!("{}/log", s.base)).await;
    b.click("#log tbody tr a").await;
    b.click("#resubmit").await;
    b.wait_text("Resubmitted").await;
    let events = s.events("github.push").await;
    assert_eq!(events.len(), 2, "the resubmission is a new event");
    assert!(events.iter().any(|e| e["source"] == "replay"));
    b.quit().await;
    s.stop().await;
}

#[tokio::test]

async fn browser_ip_allowlist_rejects_other_addresses() {
    let Some(b) = Browser::start().await else { return };
    let s = server().await;
    browser_sign_in(&b, &s).await;
    let url = browser_enable(&b, &s, "github.push").await;
    b.type_into("#cidr", "192.0.2.0/24").await;
    b.click("#add-cidr").await;
    b.wait_text("Settings saved").await;
    assert!(b.text("#allowlist").await.contains("192.0.2.0/24"));
    // The test sends from 127.0.0.1, which is not in the list.
    assert_eq!(s.send(&url, "application/json", "{}").await.status(), 403);
    b.goto(&format!("{}/log", s.base)).await;
    assert!(b.text("#log tbody tr").await.contains("ip denied"));
    // Removing the entry lets requests in again.
    b.goto(&format!("{}/triggers/github.push", s.base)).await;
    b.click("#allowlist button").await;
    b.wait_text("Settings saved").await;
    assert_eq!(s.send(&url, "application/json", "{}").await.status(), 200);
    b.quit().await;
    s.stop().await;
}

#[tokio::test]
async fn the_log_stream_sends_new_rows_and_ends_when_the_server_stops() {
    use futures_util::StreamExt;
    let s = server().await;
    let (_, url) = s.enable("github.push").await;
    let (cookie, _) = http_sign_in(&s).await;
    let response = no_redirects()
        .get(format!("{}/log/stream?trigger=github.push", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_event_stream(&response);
    let mut body = response.bytes_stream();
    assert_eq!(s.send(&url, "application/json", r#"{"x":"<b>"}"#).await.status(), 200);
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !seen.contains("</tr>") {
        let chunk = tokio::time::timeout_at(deadline, body.next())
            .await
            .expect("a row within 10 s")
            .expect("stream open")
            .unwrap();
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: row") && seen.contains("accepted"), "{seen}");
    // An open stream does not hold up shutdown.
    tokio::time::timeout(std::time::Duration::from_secs(10), s.stop())
        .await
        .expect("the server stops promptly with a live stream open");
}

#[tokio::test]
async fn rules_actions_and_executions_pages_show_the_engine_and_retry_works() {
    let s = server().await;
    let (cookie, csrf) = http_sign_in(&s).await;
    let created = s
        .post_json(
            "/api/v1/actions",
            serde_json::json!({"ref": "ui.echo", "runner": {"type": "command", "argv": ["/bin/echo", "hello {{ params.who }}"]},
                "retry": {"max_attempts": 1}}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created = s
        .post_json(
            "/api/v1/rules",
            serde_json::json!({"ref": "ui.on_push", "trigger": "github.push", "action": "ui.echo",
                "parameters": {"who": "{{ payload.who }}"}}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let (_, url) = s.enable("github.push").await;
    assert_eq!(
        s.send(&url, "application/json", r#"{"who": "ui-test"}"#).await.status(),
        200
    );
    let mut id = String::new();
    for _ in 0..100 {
        let list = s.get_json("/api/v1/executions?rule=ui.on_push").await;
        if let Some(x) = list["data"].as_array().and_then(|xs| xs.first())
            && x["status"] == "succeeded"
        {
            id = x["id"].as_str().unwrap().to_owned();
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(!id.is_empty(), "the execution succeeded");

    let client = no_redirects();
    let page = |path: String| {
        let client = client.clone();
        let cookie = cookie.clone();
        let base = s.base.clone();
        async move {
            let response = client
                .get(format!("{base}{path}"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "{path}");
            response.text().await.unwrap()
        }
    };
    assert!(page("/rules".into()).await.contains("ui.on_push"));
    assert!(page("/rules/ui.on_push".into()).await.contains("ui.echo"));
    assert!(page("/actions".into()).await.contains("ui.echo"));
    assert!(page("/actions/ui.echo".into()).await.contains("/bin/echo"));
    assert!(page("/executions".into()).await.contains("succeeded"));
    let detail = page(format!("/executions/{id}")).await;
    assert!(detail.contains("hello ui-test"), "the output is shown");

    let retried = client
        .post(format!("{}/executions/{id}/retry", s.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(&[("_csrf", csrf.as_str())]))
        .send()
        .await
        .unwrap();
    assert_eq!(retried.status(), StatusCode::SEE_OTHER);
    let mut attempts = 0;
    for _ in 0..100 {
        let x = s.get_json(&format!("/api/v1/executions/{id}")).await;
        attempts = x["data"]["attempts"].as_array().map_or(0, Vec::len);
        if attempts >= 2 && x["data"]["status"] == "succeeded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(attempts, 2, "the retry ran the execution again");
    s.stop().await;
}
