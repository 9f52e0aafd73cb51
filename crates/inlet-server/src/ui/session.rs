//! Browser sessions. The cookie holds the user's API token sealed with the
//! master key (XChaCha20-Poly1305), so any node sharing the master key can
//! read it and nothing is kept server-side. Inside the sealed value is also a
//! random CSRF token that every form must echo back.

use super::UiCtx;
use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use inlet_core::clock::now_micros;
use rand::RngExt;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use subtle::ConstantTimeEq;

pub const SESSION_COOKIE: &str = "inlet_session";
/// Double-submit cookie protecting the sign-in form, before any session exists.
pub const SIGNIN_CSRF_COOKIE: &str = "inlet_signin_csrf";
pub const FLASH_COOKIE: &str = "inlet_flash";
/// Sessions end after this long even while the token stays valid.
const SESSION_MICROS: i64 = 12 * 3600 * 1_000_000;

#[derive(Serialize, Deserialize)]
struct Sealed {
    /// The API token.
    t: String,
    /// CSRF token for forms.
    c: String,
    /// Expiry, Unix microseconds.
    e: i64,
}

/// A signed-in user: the API token the UI acts with, and the session's CSRF token.
#[derive(Clone)]
pub struct Session {
    pub token: String,
    pub csrf: String,
}

impl Session {
    pub fn csrf_ok(&self, presented: &str) -> bool {
        constant_time_eq(&self.csrf, presented)
    }
}

pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

pub fn random_token() -> String {
    let mut bytes = [0u8; 24];
    rand::rng().fill(&mut bytes[..]);
    B64.encode(bytes)
}

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether cookies must carry `Secure`: the UI is reached over TLS, as the
/// configured public URL or a TLS-terminating proxy says.
pub fn secure_request(ctx: &UiCtx, headers: &HeaderMap) -> bool {
    ctx.state.public_base_url.starts_with("https://")
        || headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, path `/`.
pub fn set_cookie(name: &str, value: &str, max_age: Option<i64>, secure: bool) -> HeaderValue {
    let mut cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if secure {
        cookie.push_str("; Secure");
    }
    HeaderValue::from_str(&cookie).expect("cookie values are base64url")
}

pub fn clear_cookie(name: &str, secure: bool) -> HeaderValue {
    set_cookie(name, "", Some(0), secure)
}

/// Seals a new session for `token`; returns the cookie value.
pub fn seal(ctx: &UiCtx, token: &str) -> String {
    let sealed = Sealed {
        t: token.to_owned(),
        c: random_token(),
        e: now_micros() + SESSION_MICROS,
    };
    let json = serde_json::to_vec(&sealed).expect("session serializes");
    B64.encode(ctx.state.master_key.seal(&json))
}

fn open(ctx: &UiCtx, cookie: &str) -> Option<Session> {
    let bytes = B64.decode(cookie).ok()?;
    let plain = ctx.state.master_key.open(&bytes).ok()?;
    let sealed: Sealed = serde_json::from_slice(&plain).ok()?;
    (sealed.e > now_micros()).then_some(Session {
        token: sealed.t,
        csrf: sealed.c,
    })
}

pub fn from_headers(ctx: &UiCtx, headers: &HeaderMap) -> Option<Session> {
    open(ctx, cookie_value(headers, SESSION_COOKIE)?)
}

/// Sends the browser to the sign-in page, returning to `next` afterwards.
pub fn to_signin(next: &str, secure: bool) -> Response {
    let target = if next.is_empty() || next == "/" {
        "/signin".to_owned()
    } else {
        let encoded: String = form_urlencoded::byte_serialize(next.as_bytes()).collect();
        format!("/signin?next={encoded}")
    };
    let mut response = Redirect::to(&target).into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, clear_cookie(SESSION_COOKIE, secure));
    response
}

/// Only local paths are followed after sign-in (no open redirect).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_owned(),
        _ => "/triggers".to_owned(),
    }
}

fn ctx_of(parts: &Parts) -> Arc<UiCtx> {
    parts
        .extensions
        .get::<Arc<UiCtx>>()
        .cloned()
        .expect("UI context layer is installed")
}

impl<S: Send + Sync> FromRequestParts<S> for Session {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ctx = ctx_of(parts);
        match from_headers(&ctx, &parts.headers) {
            Some(session) => Ok(session),
            None => {
                let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
                // Only pages are worth returning to; after a form post go home.
                let next = if parts.method == axum::http::Method::GET {
                    next
                } else {
                    "/"
                };
                Err(to_signin(next, secure_request(&ctx, &parts.headers)))
            }
        }
    }
}

impl<S: Send + Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(from_headers(&ctx_of(parts), &parts.headers))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_local_only() {
        assert_eq!(safe_next(Some("/log?x=1")), "/log?x=1");
        assert_eq!(safe_next(Some("//evil.example")), "/triggers");
        assert_eq!(safe_next(Some("https://evil.example")), "/triggers");
        assert_eq!(safe_next(Some("/\\evil.example")), "/triggers");
        assert_eq!(safe_next(None), "/triggers");
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_static("a=1; inlet_session=abc; b=2"));
        assert_eq!(cookie_value(&headers, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie_value(&headers, "c"), None);
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
