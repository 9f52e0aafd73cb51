//! Rules, actions and executions: read from the engine's API when this
//! server has it, and "not available" otherwise.

use super::api::{Reply, query, seg};
use super::form::{Flash, Ui, UiForm};
use super::view::{Nav, csrf, not_available, page, pretty, text, time_abs};
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;
use serde_json::Value;

fn status_badge(status: &str) -> Markup {
    let class = match status {
        "succeeded" => "ok",
        "failed" | "dead" => "bad",
        _ => "neutral",
    };
    html! { span class={ "badge " (class) } { (status) } }
}

/// Executions as a table; also used on the request and trigger pages.
pub fn executions_table(reply: &Reply) -> Markup {
    if reply.route_missing() {
        return not_available("Executions");
    }
    if !reply.ok() {
        return html! { p.muted { (reply.error_message()) } };
    }
    let rows = reply.data().as_array().cloned().unwrap_or_default();
    html! {
        @if rows.is_empty() {
            p.muted { "No executions." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr {
                        th scope="col" { "Execution" } th scope="col" { "Action" } th scope="col" { "Rule" }
                        th scope="col" { "Status" } th scope="col" class="num" { "Attempt" } th scope="col" { "Created (UTC)" }
                    } }
                    tbody {
                        @for x in &rows {
                            @let id = x["id"].as_str().unwrap_or("");
                            tr {
                                td { a href={ "/executions/" (seg(id)) } { code { (id.get(..13).unwrap_or(id)) "…" } } }
                                td { (text(&x["action"])) }
                                td { (text(&x["rule"])) }
                                td { (status_badge(x["status"].as_str().unwrap_or(""))) }
                                td.num { (text(&x["attempt"])) }
                                td { (time_abs(&x["created_at"])) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn listing(ui: &Ui, reply: &Reply, title: &str, nav: Nav, body: impl FnOnce(&[Value]) -> Markup) -> Response {
    if reply.unauthorized() {
        return ui.failed(reply);
    }
    let content = if reply.route_missing() {
        not_available(title)
    } else if !reply.ok() {
        html! { p.error-text { (reply.error_message()) } }
    } else {
        let rows = reply.data().as_array().cloned().unwrap_or_default();
        if rows.is_empty() {
            html! { p.muted { "None yet." } }
        } else {
            body(&rows)
        }
    };
    page(ui, title, nav, html! { h1 { (title) } (content) })
}

pub async fn rules(ui: Ui) -> Response {
    let reply = ui.api.get("/api/v1/rules").await;
    listing(&ui, &reply, "Rules", Nav::Rules, |rows| {
        html! {
            div.table-wrap { table {
                thead { tr { th scope="col" { "Rule" } th scope="col" { "Trigger" } th scope="col" { "Condition" } th scope="col" { "Action" } th scope="col" { "Enabled" } } }
                tbody { @for r in rows {
                    @let rr = r["ref"].as_str().unwrap_or("");
                    tr {
                        td { a href={ "/rules/" (seg(rr)) } { code { (rr) } } }
                        td { code { (text(&r["trigger"])) } }
                        td { code { (r["condition"].as_str().filter(|c| !c.is_empty()).unwrap_or("always")) } }
                        td { code { (text(&r["action"])) } }
                        td { (if r["enabled"].as_bool() == Some(false) { "no" } else { "yes" }) }
                    }
                } }
            } }
        }
    })
}

pub async fn actions(ui: Ui) -> Response {
    let reply = ui.api.get("/api/v1/actions").await;
    listing(&ui, &reply, "Actions", Nav::Actions, |rows| {
        html! {
            div.table-wrap { table {
                thead { tr { th scope="col" { "Action" } th scope="col" { "Runner" } th scope="col" class="num" { "Timeout (s)" } th scope="col" class="num" { "Max attempts" } } }
                tbody { @for a in rows {
                    @let ar = a["ref"].as_str().unwrap_or("");
                    tr {
                        td { a href={ "/actions/" (seg(ar)) } { code { (ar) } } }
                        td { (text(&a["runner"]["type"])) }
                        td.num { (text(&a["timeout_seconds"])) }
                        td.num { (text(&a["retry"]["max_attempts"])) }
                    }
                } }
            } }
        }
    })
}

#[derive(Deserialize)]
pub struct ExecutionsQuery {
    #[serde(default)]
    status: String,
}

pub async fn executions(ui: Ui, Query(q): Query<ExecutionsQuery>) -> Response {
    let reply = ui
        .api
        .get(&format!("/api/v1/executions{}", query(&[("status", &q.status)])))
        .await;
    if reply.unauthorized() {
        return ui.failed(&reply);
    }
    let statuses = [
        "queued",
        "running",
        "succeeded",
        "failed",
        "retrying",
        "dead",
        "cancelled",
    ];
    page(
        &ui,
        "Executions",
        Nav::Executions,
        html! {
            h1 { "Executions" }
            @if !reply.route_missing() {
                form.filters method="get" action="/executions" {
                    div {
                        label for="x-status" { "Status" }
                        select #x-status name="status" {
                            option value="" { "Any status" }
                            @for s in statuses { option value=(s) selected[s == q.status] { (s) } }
                        }
                    }
                    button type="submit" { "Filter" }
                }
            }
            (executions_table(&reply))
        },
    )
}

fn detail_page(ui: &Ui, reply: &Reply, kind: &str, nav: Nav, list: &str) -> Response {
    if reply.route_missing() {
        return page(ui, kind, nav, html! { h1 { (kind) } (not_available(kind)) });
    }
    if !reply.ok() {
        return ui.failed(reply);
    }
    let d = reply.data();
    page(
        ui,
        kind,
        nav,
        html! {
            p.crumbs { a href=(list) { (kind) "s" } " / " code { (text(&d["ref"])) } }
            h1 { code { (text(&d["ref"])) } }
            pre.json { (pretty(d)) }
        },
    )
}

pub async fn rule(ui: Ui, Path(r): Path<String>) -> Response {
    let reply = ui.api.get(&format!("/api/v1/rules/{}", seg(&r))).await;
    detail_page(&ui, &reply, "Rule", Nav::Rules, "/rules")
}

pub async fn action(ui: Ui, Path(r): Path<String>) -> Response {
    let reply = ui.api.get(&format!("/api/v1/actions/{}", seg(&r))).await;
    detail_page(&ui, &reply, "Action", Nav::Actions, "/actions")
}

pub async fn execution(ui: Ui, Path(id): Path<String>) -> Response {
    let idp = seg(&id);
    let (detail_path, log_path) = (
        format!("/api/v1/executions/{idp}"),
        format!("/api/v1/executions/{idp}/log"),
    );
    let (reply, log) = futures_util::join!(ui.api.get(&detail_path), ui.api.get(&log_path));
    if reply.route_missing() {
        return page(
            &ui,
            "Execution",
            Nav::Executions,
            html! { h1 { "Execution" } (not_available("Executions")) },
        );
    }
    if !reply.ok() {
        return ui.failed(&reply);
    }
    let x = reply.data();
    let status = x["status"].as_str().unwrap_or("");
    let live = matches!(status, "queued" | "running" | "retrying");
    let log_text = match &log.body["data"] {
        Value::String(s) => s.clone(),
        Value::Array(lines) => lines.iter().map(text).collect::<Vec<_>>().join("\n"),
        Value::Null => String::new(),
        other => pretty(other),
    };
    page(
        &ui,
        "Execution",
        Nav::Executions,
        html! {
            p.crumbs { a href="/executions" { "Executions" } " / " code { (id) } }
            div.card-head {
                h1 { "Execution " (status_badge(status)) }
                div.buttons {
                    @for (verb, label) in [("retry", "Retry"), ("cancel", "Cancel")] {
                        form method="post" action={ "/executions/" (idp) "/" (verb) } {
                            (csrf(&ui))
                            button type="submit" data-confirm=[(verb == "cancel").then_some("Cancel this execution?")] { (label) }
                        }
                    }
                }
            }
            section.card {
                dl.kv {
                    dt { "Action" } dd { code { (text(&x["action"])) } }
                    dt { "Rule" } dd { code { (text(&x["rule"])) } }
                    dt { "Event" } dd { code { (text(&x["event"])) } }
                    dt { "Attempt" } dd { (text(&x["attempt"])) }
                    dt { "Created" } dd { (time_abs(&x["created_at"])) " UTC" }
                }
            }
            section.card aria-labelledby="xlog-h" {
                h2 #xlog-h { "Log" }
                pre #execution-log data-stream=[live.then(|| format!("/executions/{idp}/log/stream"))] aria-live="polite" { (log_text) }
            }
            section.card { h2 { "Details" } pre.json { (pretty(x)) } }
        },
    )
}

/// Proxies the API's live log (SSE) for the signed-in user, since a browser's
/// EventSource cannot send a bearer token.
pub async fn execution_log_stream(ui: Ui, Path(id): Path<String>) -> Response {
    let response = ui
        .api
        .raw(
            Method::GET,
            &format!("/api/v1/executions/{}/log?follow=true", seg(&id)),
            None,
        )
        .await;
    let is_sse = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream"));
    if response.status().is_success() && is_sse {
        response
    } else {
        (StatusCode::NO_CONTENT, "").into_response()
    }
}

pub async fn execution_command(Path((id, verb)): Path<(String, String)>, form: UiForm) -> Response {
    let to = format!("/executions/{}", seg(&id));
    if !matches!(verb.as_str(), "retry" | "cancel") {
        return form.ui.redirect(&to, Flash::error("Unknown command."));
    }
    let reply = form
        .ui
        .api
        .post(&format!("/api/v1/executions/{}/{verb}", seg(&id)), None)
        .await;
    if reply.route_missing() {
        return form.ui.redirect(
            &to,
            Flash::error(format!("{verb} is not available in this version of Inlet.")),
        );
    }
    let done = if verb == "retry" {
        "Execution queued again."
    } else {
        "Execution cancelled."
    };
    form.ui.after(&reply, &to, done)
}
