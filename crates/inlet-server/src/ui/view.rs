//! The page shell and small rendering helpers. Markup is built with `maud`,
//! which HTML-escapes every interpolated value; nothing here uses
//! `PreEscaped` on data.

use super::form::Ui;
use super::session::{self, FLASH_COOKIE};
use axum::http::StatusCode;
use axum::http::header::SET_COOKIE;
use axum::response::{Html, IntoResponse, Response};
use inlet_core::clock::{now_micros, parse_rfc3339};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Triggers,
    Log,
    Rules,
    Actions,
    Executions,
    None,
}

const NAV: [(Nav, &str, &str); 5] = [
    (Nav::Triggers, "/triggers", "Triggers"),
    (Nav::Log, "/log", "Request log"),
    (Nav::Rules, "/rules", "Rules"),
    (Nav::Actions, "/actions", "Actions"),
    (Nav::Executions, "/executions", "Executions"),
];

pub fn shell(title: &str, nav: Option<(Nav, &str)>, flash: Option<&super::form::Flash>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · Inlet" }
                link rel="stylesheet" href="/static/app.css";
                script src="/static/app.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/triggers" { "Inlet" }
                    @if let Some((active, csrf)) = nav {
                        nav aria-label="Main" {
                            ul {
                                @for (item, href, label) in NAV {
                                    li {
                                        a href=(href) aria-current=[(item == active).then_some("page")] { (label) }
                                    }
                                }
                            }
                        }
                        form.signout method="post" action="/signout" {
                            input type="hidden" name="_csrf" value=(csrf);
                            button.link type="submit" { "Sign out" }
                        }
                    }
                }
                main #main {
                    @if let Some(flash) = flash {
                        div class={ "flash " (flash.kind) } role=(if flash.kind == "error" { "alert" } else { "status" }) {
                            (flash.text)
                        }
                    }
                    (content)
                }
            }
        }
    }
}

/// A full page for a signed-in user; consumes the flash message.
pub fn page(ui: &Ui, title: &str, nav: Nav, content: Markup) -> Response {
    page_with_status(ui, StatusCode::OK, title, nav, content)
}

pub fn page_with_status(ui: &Ui, status: StatusCode, title: &str, nav: Nav, content: Markup) -> Response {
    let markup = shell(title, Some((nav, &ui.session.csrf)), ui.flash.as_ref(), content);
    let mut response = (status, Html(markup.into_string())).into_response();
    if ui.flash.is_some() {
        response
            .headers_mut()
            .append(SET_COOKIE, session::clear_cookie(FLASH_COOKIE, ui.secure));
    }
    response
}

pub fn error_page(ui: &Ui, status: StatusCode, message: &str) -> Response {
    let title = if status == StatusCode::NOT_FOUND {
        "Not found"
    } else {
        "Something went wrong"
    };
    page_with_status(
        ui,
        status,
        title,
        Nav::None,
        html! {
            h1 { (title) }
            p.error-text { (message) }
            p { a href="/triggers" { "Back to triggers" } }
        },
    )
}

/// A box for a feature whose API this server does not have yet.
pub fn not_available(what: &str) -> Markup {
    html! {
        div.notice role="status" {
            p { strong { (what) " not available." } " This Inlet server does not offer that API yet; the page fills in once it does." }
        }
    }
}

/// The CSRF field every form carries.
pub fn csrf(ui: &Ui) -> Markup {
    html! { input type="hidden" name="_csrf" value=(ui.session.csrf); }
}

/// "2026-11-25 17:20:05" from RFC 3339, in UTC.
pub fn abs_time(rfc3339: &str) -> String {
    let (date, rest) = rfc3339.split_once('T').unwrap_or((rfc3339, ""));
    let time: String = rest.chars().take(8).collect();
    if time.is_empty() {
        date.to_owned()
    } else {
        format!("{date} {time}")
    }
}

pub fn ago(micros_elapsed: i64) -> String {
    let secs = micros_elapsed / 1_000_000;
    let plural = |n: i64, unit: &str| format!("{n} {unit}{} ago", if n == 1 { "" } else { "s" });
    match secs {
        s if s < 5 => "just now".to_owned(),
        s if s < 60 => plural(s, "second"),
        s if s < 3600 => plural(s / 60, "minute"),
        s if s < 86_400 => plural(s / 3600, "hour"),
        s => plural(s / 86_400, "day"),
    }
}

/// `<time>` with relative text ("2 minutes ago") and the exact time as title.
pub fn time_ago(value: &Value) -> Markup {
    match value.as_str() {
        Some(text) => {
            let rel = parse_rfc3339(text)
                .map(|at| ago(now_micros() - at))
                .unwrap_or_else(|| text.to_owned());
            html! { time datetime=(text) title={ (abs_time(text)) " UTC" } { (rel) } }
        }
        None => html! { span.muted { "never" } },
    }
}

/// `<time>` with the exact UTC time.
pub fn time_abs(value: &Value) -> Markup {
    match value.as_str() {
        Some(text) => html! { time datetime=(text) { (abs_time(text)) } },
        None => html! { span.muted { "—" } },
    }
}

pub fn outcome_badge(outcome: &str) -> Markup {
    let class = match outcome {
        "accepted" => "ok",
        "duplicate" => "neutral",
        _ => "bad",
    };
    html! { span class={ "badge " (class) } { (outcome.replace('_', " ")) } }
}

pub fn duration_us(us: &Value) -> String {
    match us.as_i64() {
        Some(us) if us >= 1_000_000 => format!("{:.2} s", us as f64 / 1e6),
        Some(us) if us >= 1_000 => format!("{:.1} ms", us as f64 / 1e3),
        Some(us) => format!("{us} µs"),
        None => "—".into(),
    }
}

/// A JSON value as text: strings bare, everything else as JSON.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "—".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

pub fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        assert_eq!(ago(1_000_000), "just now");
        assert_eq!(ago(30_000_000), "30 seconds ago");
        assert_eq!(ago(120_000_000), "2 minutes ago");
        assert_eq!(ago(3_600_000_000), "1 hour ago");
        assert_eq!(ago(3 * 86_400_000_000), "3 days ago");
        assert_eq!(abs_time("2026-11-25T17:20:05.123Z"), "2026-11-25 17:20:05");
    }

    #[test]
    fn interpolated_values_are_escaped() {
        let flash = super::super::form::Flash::error("<script>alert(1)</script>");
        let page = shell("<b>t</b>", None, Some(&flash), html! { p { ("\"&<>") } }).into_string();
        assert!(!page.contains("<script>alert"));
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(page.contains("&lt;b&gt;t&lt;/b&gt;"));
        assert!(page.contains("&quot;&amp;&lt;&gt;"));
    }
}
