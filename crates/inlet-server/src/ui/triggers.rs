//! Triggers: the list, and one trigger's webhook — toggle, URL and key,
//! rotation, statistics, settings and a test tool.

use super::api::{Reply, query, seg};
use super::chart;
use super::form::{Flash, Ui, UiForm};
use super::view::{self, Nav, csrf, outcome_badge, page, pretty, text, time_abs, time_ago};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Query};
use axum::http::{Method, Request, header};
use axum::response::Response;
use futures_util::future::join_all;
use http_body_util::BodyExt;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use tower::ServiceExt;

pub const KEY_WARNING: &str =
    "Keep this key secret. Anyone with this key can trigger events. If compromised, regenerate immediately.";

/// Verification presets offered in the settings form (issue 3).
const SCHEMES: [&str; 22] = [
    "github",
    "stripe",
    "slack",
    "shopify",
    "standard-webhooks",
    "gitlab",
    "bitbucket",
    "gitea",
    "twilio",
    "paddle",
    "linear",
    "twitch",
    "zoom",
    "pagerduty",
    "square",
    "hubspot",
    "mailgun",
    "discord",
    "sendgrid",
    "okta",
    "hmac",
    "token",
];

const METHODS: [&str; 5] = ["POST", "PUT", "PATCH", "GET", "DELETE"];

#[derive(Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
}

fn matches(trigger: &Value, q: &str) -> bool {
    if q.is_empty() {
        return true;
    }
    let q = q.to_lowercase();
    ["ref", "label", "pack", "description"]
        .iter()
        .any(|f| trigger[*f].as_str().is_some_and(|v| v.to_lowercase().contains(&q)))
}

pub async fn list(ui: Ui, Query(q): Query<ListQuery>) -> Response {
    let reply = ui.api.get("/api/v1/triggers").await;
    if !reply.ok() {
        return ui.failed(&reply);
    }
    let search = q.q.trim();
    let triggers: Vec<&Value> = reply
        .data()
        .as_array()
        .map(|a| a.iter().filter(|t| matches(t, search)).collect())
        .unwrap_or_default();
    // Each trigger's webhook and last day's stats, concurrently.
    let details = join_all(triggers.iter().map(|t| {
        let r = seg(t["ref"].as_str().unwrap_or(""));
        let api = &ui.api;
        async move {
            let webhook = api.get(&format!("/api/v1/triggers/{r}/webhooks")).await;
            let stats = api.get(&format!("/api/v1/triggers/{r}/webhooks/stats?hours=24")).await;
            (webhook, stats)
        }
    }))
    .await;
    page(
        &ui,
        "Triggers",
        Nav::Triggers,
        html! {
            h1 { "Triggers" }
            form.search method="get" action="/triggers" role="search" {
                label for="q" { "Search triggers" }
                input #q type="search" name="q" value=(search) placeholder="ref, pack, label…" data-filter="#triggers tbody tr";
                button type="submit" { "Search" }
                @if !search.is_empty() { a href="/triggers" { "Clear" } }
            }
            @if triggers.is_empty() {
                p.muted { @if search.is_empty() { "No triggers yet. Add a pack or create one through the API." } @else { "No trigger matches “" (search) "”." } }
            } @else {
                div.table-wrap {
                    table #triggers {
                        thead { tr {
                            th scope="col" { "Trigger" } th scope="col" { "Pack" } th scope="col" { "Webhook" }
                            th scope="col" class="num" { "Requests (24 h)" } th scope="col" { "Last request" }
                        } }
                        tbody {
                            @for (t, (webhook, stats)) in triggers.iter().zip(&details) {
                                @let r = t["ref"].as_str().unwrap_or("");
                                tr {
                                    td {
                                        a href={ "/triggers/" (seg(r)) } { code { (r) } }
                                        @if t["label"].as_str().is_some_and(|l| !l.is_empty()) {
                                            br; span.muted { (text(&t["label"])) }
                                        }
                                    }
                                    td { (text(&t["pack"])) }
                                    td { (webhook_state(webhook)) }
                                    td.num { (stats.data()["received"].as_i64().unwrap_or(0)) }
                                    td { (time_ago(&stats.data()["last_request_at"])) }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn webhook_state(webhook: &Reply) -> Markup {
    let data = webhook.data();
    if data["enabled"].as_bool() == Some(true) {
        html! { span.badge.ok { "on" } }
    } else if data["webhook_key"].is_string() || data["created_at"].is_string() {
        html! { span.badge.neutral { "off" } }
    } else {
        html! { span.muted { "not set up" } }
    }
}

/// What a form post wants shown once on the trigger page.
#[derive(Default)]
struct Extra {
    /// A secret generated just now; it is not shown again.
    secret: Option<String>,
    test: Option<TestResult>,
}

struct TestResult {
    payload: String,
    status: u16,
    body: Value,
    log_id: Option<String>,
    outcome: Option<String>,
    executions: Option<Reply>,
    note: Option<String>,
}

pub async fn detail(ui: Ui, Path(raw): Path<String>) -> Response {
    render_detail(&ui, &raw, Extra::default()).await
}

async fn render_detail(ui: &Ui, raw: &str, extra: Extra) -> Response {
    let r = seg(raw);
    let trigger = ui.api.get(&format!("/api/v1/triggers/{r}")).await;
    if !trigger.ok() {
        return ui.failed(&trigger);
    }
    let (webhook_path, stats_path) = (
        format!("/api/v1/triggers/{r}/webhooks"),
        format!("/api/v1/triggers/{r}/webhooks/stats"),
    );
    let (webhook, stats) = futures_util::join!(ui.api.get(&webhook_path), ui.api.get(&stats_path));
    if !webhook.ok() {
        return ui.failed(&webhook);
    }
    let t = trigger.data();
    let w = webhook.data();
    let trigger_ref = t["ref"].as_str().unwrap_or(raw).to_owned();
    let base = format!("/triggers/{}", seg(&trigger_ref));
    let label = t["label"].as_str().unwrap_or("");
    page(
        ui,
        &trigger_ref,
        Nav::Triggers,
        html! {
            p.crumbs { a href="/triggers" { "Triggers" } " / " code { (trigger_ref) } }
            h1 { (if label.is_empty() { &trigger_ref } else { label }) }
            @if let Some(d) = t["description"].as_str().filter(|d| !d.is_empty()) { p.lead { (d) } }
            (webhook_card(ui, &base, w))
            @if let Some(secret) = &extra.secret {
                section.card.once aria-labelledby="secret-h" {
                    h2 #secret-h { "New signing secret" }
                    p { "Copy it now and configure it at the sender: it is " strong { "shown only this once" } "." }
                    div.copy-row {
                        label.sr-only for="new-secret" { "New signing secret" }
                        input #new-secret type="text" readonly value=(secret);
                        button type="button" data-copy="#new-secret" { "Copy" }
                    }
                }
            }
            (stats_card(&stats))
            @if w["created_at"].is_string() {
                (test_card(ui, &base, w, extra.test.as_ref()))
                (settings_card(ui, &base, &w["settings"]))
            }
        },
    )
}

fn webhook_card(ui: &Ui, base: &str, w: &Value) -> Markup {
    let enabled = w["enabled"].as_bool() == Some(true);
    let set_up = w["created_at"].is_string();
    let url = w["webhook_url"].as_str().unwrap_or("");
    let key = w["webhook_key"].as_str().unwrap_or("");
    let masked = if key.len() > 7 && url.ends_with(key) {
        format!("{}{}{}", &url[..url.len() - key.len()], &key[..7], "•".repeat(24))
    } else {
        url.to_owned()
    };
    html! {
        section.card aria-labelledby="webhook-h" {
            div.card-head {
                h2 #webhook-h { "Webhook" }
                form method="post" action={ (base) (if enabled { "/disable" } else { "/enable" }) } {
                    (csrf(ui))
                    @if enabled {
                        span.badge.ok #webhook-state { "Enabled" }
                        button #toggle-webhook type="submit" { "Disable webhook" }
                    } @else {
                        span.badge.neutral #webhook-state { (if set_up { "Disabled" } else { "Not set up" }) }
                        button.primary #toggle-webhook type="submit" { "Enable webhook" }
                    }
                }
            }
            @if !set_up {
                p { "Enable the webhook to get a secret URL that external systems can POST to." }
            } @else if !url.is_empty() {
                @if !enabled { p.warn { "Requests to this URL are refused (403) while the webhook is disabled. Enabling it again restores the same URL." } }
                div.field {
                    label for="webhook-url" { "Webhook URL" }
                    div.copy-row {
                        input #webhook-url type="text" readonly value=(masked) data-masked=(masked) data-full=(url) aria-describedby="key-warning";
                        button type="button" data-copy-value=(url) { "Copy" }
                        button type="button" #toggle-key data-reveal="#webhook-url" aria-pressed="false" hidden { "Show key" }
                    }
                    details.reveal.nojs {
                        summary { "Show key" }
                        p { code #webhook-url-full { (url) } }
                    }
                    p.warn #key-warning { (KEY_WARNING) }
                }
                @if let Some(prev) = w["previous_keys"].as_array().filter(|p| !p.is_empty()) {
                    p { "Previous keys still accepted during their grace period:" }
                    ul { @for k in prev { li { code { (text(&k["prefix"])) "…" } " until " (time_abs(&k["expires_at"])) " UTC" } } }
                }
                details.confirm #regenerate {
                    summary { "Regenerate key…" }
                    form method="post" action={ (base) "/regenerate" } {
                        (csrf(ui))
                        p.warn { strong { "The current URL stops working" } " (immediately, or after the grace period you choose). Every sender must be updated with the new URL." }
                        label for="grace" { "Grace period for the old URL" }
                        select #grace name="grace_seconds" {
                            option value="0" selected { "None — revoke now" }
                            option value="3600" { "1 hour" }
                            option value="86400" { "24 hours" }
                            option value="604800" { "7 days" }
                        }
                        button.danger #confirm-regenerate type="submit" { "Yes, regenerate the key" }
                    }
                }
            }
        }
    }
}

fn stats_card(stats: &Reply) -> Markup {
    let s = stats.data();
    html! {
        section.card aria-labelledby="stats-h" {
            h2 #stats-h { "Statistics" span.muted.small { " · last 7 days" } }
            @if !stats.ok() {
                (view::not_available("Statistics"))
            } @else {
                dl.stats {
                    div { dt { "Requests received" } dd #stat-received { (s["received"].as_i64().unwrap_or(0)) } }
                    div { dt { "Accepted" } dd { (s["accepted"].as_i64().unwrap_or(0)) } }
                    div { dt { "Duplicates" } dd { (s["duplicate"].as_i64().unwrap_or(0)) } }
                    div { dt { "Rejected" } dd { (s["rejected"].as_i64().unwrap_or(0)) } }
                    div { dt { "Last request" } dd { (time_ago(&s["last_request_at"])) } }
                    div { dt { "Webhook created" } dd { (time_abs(&s["webhook_created_at"])) } }
                }
                @if let Some(reasons) = s["rejected_by_reason"].as_object().filter(|r| !r.is_empty()) {
                    h3 { "Rejected by reason" }
                    ul.reasons { @for (reason, n) in reasons { li { (outcome_badge(reason)) " " (n.as_i64().unwrap_or(0)) } } }
                }
                h3 { "Requests per hour" }
                (chart::hourly(s["hourly"].as_array().map(Vec::as_slice).unwrap_or(&[])))
            }
        }
    }
}

fn test_card(ui: &Ui, base: &str, w: &Value, result: Option<&TestResult>) -> Markup {
    let payload = result
        .map(|r| r.payload.clone())
        .unwrap_or_else(|| "{\n  \"hello\": \"from the Inlet test tool\"\n}".into());
    html! {
        section.card #test aria-labelledby="test-h" {
            h2 #test-h { "Send a test request" }
            p { "Sends this JSON to the webhook URL through the receiver, exactly as an external system would." }
            @if w["enabled"].as_bool() != Some(true) { p.warn { "The webhook is disabled, so the request will be refused." } }
            form method="post" action={ (base) "/test#test" } {
                (csrf(ui))
                label for="test-payload" { "JSON payload" }
                textarea #test-payload name="payload" rows="6" spellcheck="false" { (payload) }
                button.primary #send-test type="submit" { "Send test request" }
            }
            @if let Some(r) = result {
                div.result #test-result role="status" {
                    h3 { "Result" }
                    dl.kv {
                        dt { "Status" } dd { span class={ "badge " (if (200..300).contains(&r.status) { "ok" } else { "bad" }) } { (r.status) } }
                        @if let Some(outcome) = &r.outcome { dt { "Outcome" } dd { (outcome_badge(outcome)) } }
                        @if let Some(note) = &r.note { dt { "Note" } dd { (note) } }
                        @if let Some(id) = &r.log_id { dt { "Request log" } dd { a href={ "/log/" (seg(id)) } { "Open the logged request" } } }
                        @if let Some(e) = r.body["data"]["event_id"].as_str() { dt { "Event" } dd { code { (e) } } }
                    }
                    pre.json { (pretty(&r.body)) }
                    @if let Some(ex) = &r.executions {
                        h4 { "Executions" }
                        (super::automation::executions_table(ex))
                    }
                }
            }
        }
    }
}

fn settings_card(ui: &Ui, base: &str, s: &Value) -> Markup {
    let v = &s["verification"];
    let scheme = v["scheme"].as_str().unwrap_or("");
    let secrets = v["secrets"].as_array().cloned().unwrap_or_default();
    let allowlist = s["ip_allowlist"].as_array().cloned().unwrap_or_default();
    let rl = &s["rate_limit"];
    let methods: Vec<&str> = s["methods"]
        .as_array()
        .map(|m| m.iter().filter_map(Value::as_str).collect())
        .unwrap_or_else(|| vec!["POST"]);
    let action = format!("{base}/settings#settings");
    let num = |x: &Value| x.as_i64().map(|n| n.to_string()).unwrap_or_default();
    html! {
        section.card #settings aria-labelledby="settings-h" {
            h2 #settings-h { "Configuration" }
            div.grid {
                form.panel method="post" action=(action) {
                    (csrf(ui))
                    input type="hidden" name="section" value="verification";
                    h3 { "Signature verification" }
                    label for="scheme" { "Scheme" }
                    select #scheme name="scheme" {
                        option value="" selected[scheme.is_empty()] { "None — accept unsigned requests" }
                        @for p in SCHEMES { option value=(p) selected[scheme == p] { (p) } }
                    }
                    @if !secrets.is_empty() {
                        p.small { "Current secrets: " @for (i, sec) in secrets.iter().enumerate() { @if i > 0 { ", " } code { (text(sec)) } } }
                    }
                    label for="secret" { "Secret" }
                    input #secret type="password" name="secret" autocomplete="off" aria-describedby="secret-help";
                    p.small.muted #secret-help { "Replaces the current secrets; leave empty to keep them." }
                    label for="tolerance" { "Timestamp tolerance (seconds)" }
                    input #tolerance type="number" name="tolerance_seconds" min="1" value=(num(&v["tolerance_seconds"])) placeholder="300";
                    details {
                        summary { "Custom HMAC or token options" }
                        label for="v-header" { "Header" }
                        input #v-header type="text" name="header" value=(v["header"].as_str().unwrap_or(""));
                        label for="v-algorithm" { "Algorithm (hmac)" }
                        select #v-algorithm name="algorithm" {
                            @for a in ["", "sha256", "sha1", "sha512"] { option value=(a) selected[v["algorithm"].as_str().unwrap_or("") == a] { (if a.is_empty() { "default" } else { a }) } }
                        }
                        label for="v-encoding" { "Encoding (hmac)" }
                        select #v-encoding name="encoding" {
                            @for e in ["", "hex", "base64"] { option value=(e) selected[v["encoding"].as_str().unwrap_or("") == e] { (if e.is_empty() { "default" } else { e }) } }
                        }
                        label for="v-prefix" { "Signature prefix (hmac)" }
                        input #v-prefix type="text" name="prefix" value=(v["prefix"].as_str().unwrap_or("")) placeholder="sha256=";
                        label for="v-query" { "Query parameter (token)" }
                        input #v-query type="text" name="query_param" value=(v["query_param"].as_str().unwrap_or(""));
                    }
                    button type="submit" { "Save verification" }
                }
                form.panel method="post" action={ (base) "/secret#settings" } {
                    (csrf(ui))
                    h3 { "Generate a secret" }
                    p.small { "Adds a strong random secret to the verification secrets (the old ones keep working until you remove them) and shows it once." }
                    button type="submit" #generate-secret { "Generate secret" }
                }
                div.panel {
                    h3 { "IP allowlist" }
                    @if allowlist.is_empty() {
                        p.small.muted #allowlist-empty { "Empty: requests from any address are accepted." }
                    } @else {
                        ul.cidrs #allowlist {
                            @for c in &allowlist {
                                li {
                                    code { (text(c)) }
                                    form.inline method="post" action=(action) {
                                        (csrf(ui))
                                        input type="hidden" name="section" value="ip_remove";
                                        input type="hidden" name="cidr" value=(text(c));
                                        button.link type="submit" aria-label={ "Remove " (text(c)) } { "Remove" }
                                    }
                                }
                            }
                        }
                    }
                    form method="post" action=(action) {
                        (csrf(ui))
                        input type="hidden" name="section" value="ip_add";
                        label for="cidr" { "Add address or CIDR" }
                        div.copy-row {
                            input #cidr type="text" name="cidr" required placeholder="192.30.252.0/22 or 2001:db8::/32" spellcheck="false" autocomplete="off" data-validate="cidr" aria-describedby="cidr-msg";
                            button type="submit" #add-cidr { "Add" }
                        }
                        p.small.field-msg #cidr-msg aria-live="polite" {}
                    }
                }
                form.panel method="post" action=(action) {
                    (csrf(ui))
                    input type="hidden" name="section" value="rate_limit";
                    h3 { "Rate limit" }
                    p.small.muted { "Leave both empty for no limit." }
                    label for="rl-requests" { "Requests" }
                    input #rl-requests type="number" name="requests" min="1" value=(num(&rl["requests"]));
                    label for="rl-window" { "Per window of (seconds)" }
                    input #rl-window type="number" name="window_seconds" min="1" value=(num(&rl["window_seconds"]));
                    button type="submit" { "Save rate limit" }
                }
                form.panel method="post" action=(action) {
                    (csrf(ui))
                    input type="hidden" name="section" value="limits";
                    h3 { "Requests accepted" }
                    label for="max-bytes" { "Payload size limit (bytes)" }
                    input #max-bytes type="number" name="max_payload_bytes" min="1" value=(num(&s["max_payload_bytes"]));
                    fieldset {
                        legend { "Methods" }
                        @for m in METHODS {
                            label.check { input type="checkbox" name="methods" value=(m) checked[methods.contains(&m)]; (m) }
                        }
                    }
                    label.check { input type="checkbox" name="dedup" value="on" checked[s["dedup"].as_bool() == Some(true)]; "Drop duplicate deliveries (same delivery id)" }
                    button type="submit" { "Save" }
                }
                form.panel method="post" action=(action) {
                    (csrf(ui))
                    input type="hidden" name="section" value="mapping";
                    h3 { "Payload mapping" }
                    label for="mapping" { "Mapping (JSON; empty passes the payload through)" }
                    textarea #mapping name="mapping" rows="4" spellcheck="false" placeholder="{\"jsonpath\": {\"branch\": \"$.ref\"}}" {
                        @if !s["mapping"].is_null() { (pretty(&s["mapping"])) }
                    }
                    button type="submit" { "Save mapping" }
                }
            }
        }
    }
}

fn back(raw: &str) -> String {
    format!("/triggers/{}", seg(raw))
}

pub async fn enable(Path(raw): Path<String>, form: UiForm) -> Response {
    let reply = form
        .ui
        .api
        .post(&format!("/api/v1/triggers/{}/webhooks/enable", seg(&raw)), None)
        .await;
    form.ui.after(&reply, &back(&raw), "Webhook enabled.")
}

pub async fn disable(Path(raw): Path<String>, form: UiForm) -> Response {
    let reply = form
        .ui
        .api
        .post(&format!("/api/v1/triggers/{}/webhooks/disable", seg(&raw)), None)
        .await;
    form.ui.after(
        &reply,
        &back(&raw),
        "Webhook disabled: requests are refused until you enable it again.",
    )
}

pub async fn regenerate(Path(raw): Path<String>, form: UiForm) -> Response {
    let grace: u64 = match form.text("grace_seconds") {
        "" => 0,
        g => match g.parse() {
            Ok(n) => n,
            Err(_) => {
                return form.ui.redirect(
                    &back(&raw),
                    Flash::error("The grace period must be a number of seconds."),
                );
            }
        },
    };
    let reply = form
        .ui
        .api
        .post(
            &format!("/api/v1/triggers/{}/webhooks/regenerate", seg(&raw)),
            Some(&json!({"grace_seconds": grace})),
        )
        .await;
    let message = if grace == 0 {
        "New key generated. The old URL no longer works.".to_owned()
    } else {
        format!(
            "New key generated. The old URL keeps working until {} UTC.",
            view::abs_time(reply.data()["previous_key_expires_at"].as_str().unwrap_or(""))
        )
    };
    form.ui.after(&reply, &back(&raw), message)
}

/// Builds the PATCH body for one settings form; `Err` is a message for the user.
fn settings_patch(form: &UiForm, current: &Value) -> Result<Value, String> {
    let int = |name: &str, label: &str| -> Result<Option<u64>, String> {
        match form.text(name) {
            "" => Ok(None),
            v => v
                .parse::<u64>()
                .map(Some)
                .map_err(|_| format!("{label} must be a whole number, got {v:?}")),
        }
    };
    let allowlist = || -> Vec<String> {
        current["ip_allowlist"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default()
    };
    Ok(match form.text("section") {
        "verification" => {
            let scheme = form.text("scheme");
            if scheme.is_empty() {
                json!({"verification": null})
            } else {
                let mut v = Map::new();
                v.insert("scheme".into(), json!(scheme));
                if !form.text("secret").is_empty() {
                    v.insert("secrets".into(), json!([form.text("secret")]));
                }
                if let Some(t) = int("tolerance_seconds", "The tolerance")? {
                    v.insert("tolerance_seconds".into(), json!(t));
                }
                for field in ["header", "algorithm", "encoding", "prefix", "query_param"] {
                    if !form.text(field).is_empty() {
                        v.insert(field.into(), json!(form.text(field)));
                    }
                }
                json!({"verification": v})
            }
        }
        "ip_add" => {
            let cidr = form.text("cidr");
            if cidr.is_empty() {
                return Err("Enter an address or CIDR to add.".into());
            }
            let mut list = allowlist();
            if !list.iter().any(|c| c == cidr) {
                list.push(cidr.to_owned());
            }
            json!({"ip_allowlist": list})
        }
        "ip_remove" => {
            let cidr = form.text("cidr");
            let list: Vec<String> = allowlist().into_iter().filter(|c| c != cidr).collect();
            json!({"ip_allowlist": list})
        }
        "rate_limit" => match (int("requests", "Requests")?, int("window_seconds", "The window")?) {
            (None, None) => json!({"rate_limit": null}),
            (Some(requests), Some(window)) => json!({"rate_limit": {"requests": requests, "window_seconds": window}}),
            _ => return Err("Give both the number of requests and the window, or neither.".into()),
        },
        "limits" => {
            let mut patch = Map::new();
            if let Some(n) = int("max_payload_bytes", "The payload size limit")? {
                patch.insert("max_payload_bytes".into(), json!(n));
            }
            patch.insert("dedup".into(), json!(form.get("dedup").is_some()));
            patch.insert("methods".into(), json!(form.all("methods")));
            Value::Object(patch)
        }
        "mapping" => match form.text("mapping") {
            "" => json!({"mapping": null}),
            text => match serde_json::from_str::<Value>(text) {
                Ok(m) => json!({"mapping": m}),
                Err(e) => return Err(format!("The mapping is not valid JSON: {e}")),
            },
        },
        other => return Err(format!("Unknown settings form {other:?}.")),
    })
}

pub async fn settings(Path(raw): Path<String>, form: UiForm) -> Response {
    let path = format!("/api/v1/triggers/{}/webhooks", seg(&raw));
    let to = format!("{}#settings", back(&raw));
    let current = form.ui.api.get(&path).await;
    if !current.ok() {
        return form.ui.after(&current, &to, "");
    }
    let patch = match settings_patch(&form, &current.data()["settings"]) {
        Ok(p) => p,
        Err(message) => return form.ui.redirect(&to, Flash::error(message)),
    };
    let reply = form.ui.api.patch(&path, &patch).await;
    if reply.route_missing() {
        return form.ui.redirect(
            &to,
            Flash::error("Changing webhook settings is not available in this version of Inlet (no settings API yet)."),
        );
    }
    form.ui
        .after(&reply, &to, "Settings saved. They apply from the next request.")
}

pub async fn generate_secret(Path(raw): Path<String>, form: UiForm) -> Response {
    let reply = form
        .ui
        .api
        .post(&format!("/api/v1/triggers/{}/webhooks/secret", seg(&raw)), None)
        .await;
    let to = format!("{}#settings", back(&raw));
    if reply.route_missing() {
        return form.ui.redirect(
            &to,
            Flash::error("Generating secrets is not available in this version of Inlet (no secret API yet)."),
        );
    }
    if !reply.ok() {
        return form.ui.after(&reply, &to, "");
    }
    let secret = reply.data()["secret"]
        .as_str()
        .or_else(|| reply.data().as_str())
        .map(str::to_owned);
    // Shown in this response only: never put into a redirect or a cookie.
    render_detail(&form.ui, &raw, Extra { secret, test: None }).await
}

pub async fn send_test(Path(raw): Path<String>, form: UiForm) -> Response {
    let r = seg(&raw);
    let payload = form.get("payload").unwrap_or("").to_owned();
    let webhook = form.ui.api.get(&format!("/api/v1/triggers/{r}/webhooks")).await;
    if !webhook.ok() {
        return form.ui.failed(&webhook);
    }
    let Some(key) = webhook.data()["webhook_key"].as_str().map(str::to_owned) else {
        return form.ui.redirect(
            &back(&raw),
            Flash::error("Enable the webhook before sending a test request."),
        );
    };
    if let Err(e) = serde_json::from_str::<Value>(&payload) {
        let result = TestResult {
            payload,
            status: 0,
            body: json!({"error": format!("not sent: the payload is not valid JSON ({e})")}),
            log_id: None,
            outcome: None,
            executions: None,
            note: None,
        };
        return render_detail(
            &form.ui,
            &raw,
            Extra {
                secret: None,
                test: Some(result),
            },
        )
        .await;
    }
    let scheme = webhook.data()["settings"]["verification"]["scheme"].as_str();
    let note = scheme.map(|s| {
        format!("Sent unsigned: signing test requests with the {s} scheme is not supported yet, so expect a signature rejection.")
    });
    // Through the receiver itself, as if from the browser's address.
    let peer = form.ui.peer.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let mut request = Request::builder()
        .method(Method::POST)
        .uri(format!("/api/v1/webhooks/{}", seg(&key)))
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, "Inlet-UI-test-tool")
        .body(Body::from(payload.clone()))
        .expect("test request is well-formed");
    request.extensions_mut().insert(ConnectInfo(peer));
    let response = match form.ui.ctx.receiver.clone().oneshot(request).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = response.status().as_u16();
    let body = response
        .into_body()
        .collect()
        .await
        .ok()
        .and_then(|b| serde_json::from_slice(&b.to_bytes()).ok())
        .unwrap_or(Value::Null);
    let event_id = body["data"]["event_id"].as_str().map(str::to_owned);
    // The request-log row of this request: the newest of the trigger's.
    let log = form
        .ui
        .api
        .get(&format!(
            "/api/v1/webhook-log{}",
            query(&[("trigger", &raw), ("limit", "1")])
        ))
        .await;
    let log_id = log.data()[0]["id"].as_str().map(str::to_owned);
    let outcome = log.data()[0]["outcome"].as_str().map(str::to_owned);
    let executions = match &event_id {
        Some(e) => {
            let ex = form
                .ui
                .api
                .get(&format!("/api/v1/executions{}", query(&[("event", e)])))
                .await;
            Some(ex)
        }
        None => None,
    };
    let result = TestResult {
        payload,
        status,
        body,
        log_id,
        outcome,
        executions,
        note,
    };
    render_detail(
        &form.ui,
        &raw,
        Extra {
            secret: None,
            test: Some(result),
        },
    )
    .await
}
