//! The request log: every request that reached a known key, newest first,
//! with new rows streamed live (SSE); one request in full; resubmit.

use super::api::{Api, query, seg};
use super::form::{Ui, UiForm};
use super::view::{Nav, csrf, duration_us, outcome_badge, page, pretty, text, time_abs};
use axum::extract::{Path, Query};
use axum::http::HeaderMap;
use axum::response::Response;
use axum::response::sse::{Event, KeepAlive, Sse};
use base64::Engine;
use futures_util::stream::{self, Stream};
use inlet_core::clock::{now_micros, parse_rfc3339};
use inlet_core::outcome::Outcome;
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;
use std::convert::Infallible;
use std::time::Duration;

const PAGE: usize = 50;
const POLL: Duration = Duration::from_secs(1);
const RANGES: [(&str, &str, i64); 4] = [
    ("1h", "Last hour", 3600),
    ("24h", "Last 24 hours", 86_400),
    ("7d", "Last 7 days", 7 * 86_400),
    ("all", "Everything kept", 0),
];

#[derive(Deserialize, Default)]
pub struct LogQuery {
    #[serde(default)]
    trigger: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    range: String,
    #[serde(default)]
    cursor: String,
    /// For the stream: the newest id the page already shows.
    #[serde(default)]
    after: String,
}

impl LogQuery {
    fn range_seconds(&self) -> i64 {
        RANGES
            .iter()
            .find(|(k, _, _)| *k == self.range)
            .map(|r| r.2)
            .unwrap_or(7 * 86_400)
    }

    fn api_path(&self, cursor: &str, limit: usize) -> String {
        let limit = limit.to_string();
        format!(
            "/api/v1/webhook-log{}",
            query(&[
                ("trigger", &self.trigger),
                ("outcome", &self.outcome),
                ("cursor", cursor),
                ("limit", &limit),
            ])
        )
    }
}

pub fn row(r: &Value) -> Markup {
    let id = r["id"].as_str().unwrap_or("");
    html! {
        tr data-id=(id) {
            td data-label="Time (UTC)" { a href={ "/log/" (seg(id)) } { (time_abs(&r["received_at"])) } }
            td data-label="Trigger" { code { (text(&r["trigger"])) } }
            td data-label="Source IP" { (text(&r["source_ip"])) }
            td data-label="Method" { (text(&r["method"])) }
            td data-label="Outcome" { (outcome_badge(r["outcome"].as_str().unwrap_or(""))) }
            td.num data-label="Status" { (text(&r["status_code"])) }
            td.num data-label="Duration" { (duration_us(&r["processing_us"])) }
        }
    }
}

pub async fn list(ui: Ui, Query(q): Query<LogQuery>) -> Response {
    let reply = ui.api.get(&q.api_path(&q.cursor, PAGE)).await;
    if !reply.ok() {
        return ui.failed(&reply);
    }
    let triggers = ui.api.get("/api/v1/triggers").await;
    let span = q.range_seconds();
    let since = (span > 0).then(|| now_micros() - span * 1_000_000);
    let all: Vec<Value> = reply.data().as_array().cloned().unwrap_or_default();
    let rows: Vec<&Value> = all
        .iter()
        .filter(|r| match (since, r["received_at"].as_str().and_then(parse_rfc3339)) {
            (Some(since), Some(at)) => at >= since,
            _ => true,
        })
        .collect();
    let next = reply.body["next_cursor"]
        .as_str()
        .filter(|_| rows.len() == all.len())
        .map(str::to_owned);
    // Live rows only make sense on the first page.
    let newest = all.first().and_then(|r| r["id"].as_str()).unwrap_or("");
    let stream = q.cursor.is_empty().then(|| {
        format!(
            "/log/stream{}",
            query(&[("trigger", &q.trigger), ("outcome", &q.outcome), ("after", newest)])
        )
    });
    let range = if q.range.is_empty() { "7d" } else { q.range.as_str() };
    page(
        &ui,
        "Request log",
        Nav::Log,
        html! {
            h1 { "Request log" }
            form.filters method="get" action="/log" {
                div {
                    label for="f-trigger" { "Trigger" }
                    select #f-trigger name="trigger" {
                        option value="" { "All triggers" }
                        @for t in triggers.data().as_array().map(Vec::as_slice).unwrap_or(&[]) {
                            @let r = t["ref"].as_str().unwrap_or("");
                            option value=(r) selected[r == q.trigger] { (r) }
                        }
                    }
                }
                div {
                    label for="f-outcome" { "Outcome" }
                    select #f-outcome name="outcome" {
                        option value="" { "Any outcome" }
                        @for o in Outcome::ALL {
                            option value=(o.as_str()) selected[o.as_str() == q.outcome] { (o.as_str().replace('_', " ")) }
                        }
                    }
                }
                div {
                    label for="f-range" { "Time range" }
                    select #f-range name="range" {
                        @for (k, label, _) in RANGES { option value=(k) selected[k == range] { (label) } }
                    }
                }
                button type="submit" { "Filter" }
            }
            p.live.muted #live-status aria-live="polite" data-stream=[stream.as_deref()] {
                @if stream.is_some() { "New requests appear here as they arrive (with JavaScript on), or " a href=(ui.here) { "reload" } "." }
            }
            div.table-wrap {
                table #log .stack {
                    thead { tr {
                        th scope="col" { "Time (UTC)" } th scope="col" { "Trigger" } th scope="col" { "Source IP" }
                        th scope="col" { "Method" } th scope="col" { "Outcome" } th scope="col" class="num" { "Status" } th scope="col" class="num" { "Duration" }
                    } }
                    tbody { @for r in &rows { (row(r)) } }
                }
            }
            @if rows.is_empty() { p.muted #log-empty { "No requests in this range yet." } }
            @if let Some(cursor) = next {
                p { a href={ "/log" (query(&[("trigger", &q.trigger), ("outcome", &q.outcome), ("range", range), ("cursor", &cursor)])) } { "Older requests →" } }
            }
        },
    )
}

/// Rows newer than `after`, oldest first; `None` when the API refused (signed out).
async fn newer(api: &Api, q: &LogQuery, after: &str) -> Option<Vec<Value>> {
    let mut found = Vec::new();
    let mut cursor = String::new();
    // A few pages at most per poll; a burst larger than that shows on reload.
    for _ in 0..5 {
        let reply = api.get(&q.api_path(&cursor, 100)).await;
        if !reply.ok() {
            return None;
        }
        let page = reply.data().as_array().cloned().unwrap_or_default();
        let mut reached = false;
        for r in page {
            if r["id"].as_str().is_some_and(|id| id > after) {
                found.push(r);
            } else {
                reached = true;
                break;
            }
        }
        match reply.body["next_cursor"].as_str() {
            Some(next) if !reached && !after.is_empty() => cursor = next.to_owned(),
            _ => break,
        }
    }
    found.reverse();
    Some(found)
}

/// Server-sent events: each new request-log row as an HTML `<tr>`, polled
/// through the API every second.
pub async fn stream(
    ui: Ui,
    headers: HeaderMap,
    Query(q): Query<LogQuery>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    // A reconnecting EventSource says which row it saw last.
    let last_seen = headers.get("last-event-id").and_then(|v| v.to_str().ok()).unwrap_or("");
    let after = q.after.as_str().max(last_seen).to_owned();
    let stopping = ui.ctx.stopping.clone();
    let events = stream::unfold(
        (ui.api, q, after, Vec::<Value>::new(), stopping),
        |(api, q, mut after, mut pending, mut stopping)| async move {
            loop {
                if let Some(r) = pending.pop() {
                    let html = row(&r).into_string().replace('\r', " ");
                    let event = Event::default()
                        .event("row")
                        .id(r["id"].as_str().unwrap_or(""))
                        .data(html);
                    return Some((Ok(event), (api, q, after, pending, stopping)));
                }
                if *stopping.borrow() {
                    return None;
                }
                tokio::select! {
                    _ = tokio::time::sleep(POLL) => {}
                    _ = stopping.changed() => return None,
                }
                let mut rows = newer(&api, &q, &after).await?;
                if let Some(last) = rows.last().and_then(|r| r["id"].as_str()) {
                    after = last.to_owned();
                }
                // Popped from the end: reverse so the oldest goes first.
                rows.reverse();
                pending = rows;
            }
        },
    );
    Sse::new(events).keep_alive(KeepAlive::default())
}

fn kv_table(caption: &str, value: &Value) -> Markup {
    let entries: Vec<(String, String)> = match value.as_object() {
        Some(map) => map.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        None => Vec::new(),
    };
    html! {
        @if entries.is_empty() {
            p.muted { "No " (caption.to_lowercase()) "." }
        } @else {
            div.table-wrap {
                table.kv-table {
                    caption.sr-only { (caption) }
                    thead { tr { th scope="col" { "Name" } th scope="col" { "Value" } } }
                    tbody { @for (k, v) in &entries { tr { th scope="row" { code { (k) } } td.break { (v) } } } }
                }
            }
        }
    }
}

fn body_view(d: &Value) -> Markup {
    let truncated = d["body_truncated"].as_bool() == Some(true);
    html! {
        @if let Some(body) = d["body"].as_str() {
            @if body.is_empty() {
                p.muted { "Empty body." }
            } @else {
                @match serde_json::from_str::<Value>(body) {
                    Ok(json) => { pre.json #body { (pretty(&json)) } }
                    Err(_) => { pre #body { (body) } }
                }
            }
        } @else if let Some(b64) = d["body_base64"].as_str() {
            @let len = base64::engine::general_purpose::STANDARD.decode(b64).map(|b| b.len()).unwrap_or(0);
            p { "Binary body, " (len) " bytes, shown as base64:" }
            pre #body { (b64) }
        }
        @if truncated { p.warn { "The body was longer than the log keeps; only its beginning is shown." } }
    }
}

pub async fn detail(ui: Ui, Path(id): Path<String>) -> Response {
    let reply = ui.api.get(&format!("/api/v1/webhook-log/{}", seg(&id))).await;
    if !reply.ok() {
        return ui.failed(&reply);
    }
    let d = reply.data();
    let headers = &d["headers"];
    let user_agent = headers
        .as_object()
        .and_then(|h| h.iter().find(|(k, _)| k.eq_ignore_ascii_case("user-agent")))
        .map(|(_, v)| text(v))
        .unwrap_or_else(|| "—".into());
    let event_id = d["event_id"].as_str().unwrap_or("");
    let (event, executions) = if event_id.is_empty() {
        (None, None)
    } else {
        let event_path = format!("/api/v1/events/{}", seg(event_id));
        let executions_path = format!("/api/v1/executions{}", query(&[("event", event_id)]));
        let (e, x) = futures_util::join!(ui.api.get(&event_path), ui.api.get(&executions_path));
        (Some(e), Some(x))
    };
    let id_seg = seg(d["id"].as_str().unwrap_or(&id));
    page(
        &ui,
        "Request",
        Nav::Log,
        html! {
            p.crumbs { a href="/log" { "Request log" } " / " code { (text(&d["id"])) } }
            div.card-head {
                h1 { (text(&d["method"])) " request " (outcome_badge(d["outcome"].as_str().unwrap_or(""))) }
                form method="post" action={ "/log/" (id_seg) "/replay" } {
                    (csrf(&ui))
                    button.primary #resubmit type="submit" { "Resubmit" }
                }
            }
            section.card aria-labelledby="summary-h" {
                h2 #summary-h { "Summary" }
                dl.kv {
                    dt { "Received" } dd { (time_abs(&d["received_at"])) " UTC" }
                    dt { "Trigger" } dd { @if let Some(t) = d["trigger"].as_str() { a href={ "/triggers/" (seg(t)) } { code { (t) } } } @else { "—" } }
                    dt { "Method" } dd { (text(&d["method"])) }
                    dt { "Path" } dd.break { code { (text(&d["path"])) } }
                    dt { "Key prefix" } dd { code { (text(&d["key_prefix"])) } }
                    dt { "Source IP" } dd #source-ip { (text(&d["source_ip"])) }
                    dt { "User agent" } dd.break { (user_agent) }
                    dt { "Outcome" } dd #outcome { (outcome_badge(d["outcome"].as_str().unwrap_or(""))) " " (text(&d["status_code"])) }
                    dt { "Reason" } dd { @if d["message"].as_str().is_some_and(|m| !m.is_empty()) { (text(&d["message"])) } @else { span.muted { "—" } } }
                    dt { "Processing time" } dd { (duration_us(&d["processing_us"])) }
                    dt { "Event" } dd { @if event_id.is_empty() { span.muted { "none" } } @else { code #event-id { (event_id) } } }
                }
            }
            section.card aria-labelledby="query-h" { h2 #query-h { "Query parameters" } (kv_table("Query parameters", &d["query"])) }
            section.card aria-labelledby="headers-h" {
                h2 #headers-h { "Headers" }
                p.small.muted { "Credentials (authorization, cookies, tokens, secrets) are redacted before storage." }
                (kv_table("Headers", headers))
            }
            section.card aria-labelledby="body-h" { h2 #body-h { "Payload" } (body_view(d)) }
            @if let Some(event) = &event {
                (event_section(&ui, event, executions.as_ref()))
            }
        },
    )
}

fn event_section(ui: &Ui, event: &super::api::Reply, executions: Option<&super::api::Reply>) -> Markup {
    let e = event.data();
    let known = [
        "id",
        "trigger",
        "source",
        "delivery_id",
        "payload",
        "metadata",
        "processed",
        "created_at",
    ];
    let extra: Vec<(&String, &Value)> = e
        .as_object()
        .map(|m| m.iter().filter(|(k, _)| !known.contains(&k.as_str())).collect())
        .unwrap_or_default();
    html! {
        section.card aria-labelledby="event-h" {
            div.card-head {
                h2 #event-h { "Event" }
                @if let Some(id) = e["id"].as_str() {
                    form method="post" action={ "/events/" (seg(id)) "/replay" } {
                        (csrf(ui))
                        input type="hidden" name="back" value=(ui.here);
                        button type="submit" { "Re-run rules" }
                    }
                }
            }
            @if !event.ok() {
                p.muted { (event.error_message()) }
            } @else {
                dl.kv {
                    dt { "Id" } dd { code { (text(&e["id"])) } }
                    dt { "Source" } dd { (text(&e["source"])) }
                    dt { "Delivery id" } dd { (text(&e["delivery_id"])) }
                    dt { "Created" } dd { (time_abs(&e["created_at"])) " UTC" }
                    dt { "Processed" } dd { (if e["processed"].as_bool() == Some(true) { "yes" } else { "not yet" }) }
                }
                details { summary { "Event payload" } pre.json { (pretty(&e["payload"])) } }
                h3 { "Rules" }
                @if extra.is_empty() {
                    p.muted { "This server does not report rule evaluations yet." }
                } @else {
                    @for (k, v) in extra { h4 { (k.replace('_', " ")) } pre.json { (pretty(v)) } }
                }
            }
            h3 { "Executions" }
            @match executions {
                Some(x) => { (super::automation::executions_table(x)) }
                None => { p.muted { "None." } }
            }
        }
    }
}

pub async fn replay(Path(id): Path<String>, form: UiForm) -> Response {
    let reply = form
        .ui
        .api
        .post(&format!("/api/v1/webhook-log/{}/replay", seg(&id)), None)
        .await;
    let to = format!("/log/{}", seg(&id));
    if reply.route_missing() {
        return form.ui.redirect(
            &to,
            super::form::Flash::error("Resubmitting is not available in this version of Inlet (no replay API yet)."),
        );
    }
    let message = match reply.data()["event_id"].as_str() {
        Some(event) => format!("Resubmitted: new event {event}."),
        None => "Resubmitted as a new event.".to_owned(),
    };
    form.ui.after(&reply, &to, message)
}

pub async fn replay_event(Path(id): Path<String>, form: UiForm) -> Response {
    let reply = form
        .ui
        .api
        .post(&format!("/api/v1/events/{}/replay", seg(&id)), None)
        .await;
    let to = super::session::safe_next(Some(form.text("back")));
    if reply.route_missing() {
        return form.ui.redirect(
            &to,
            super::form::Flash::error(
                "Re-running rules is not available in this version of Inlet (no replay API yet).",
            ),
        );
    }
    form.ui.after(&reply, &to, "Rules evaluated again for this event.")
}
