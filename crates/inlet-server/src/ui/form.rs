//! Request context for UI handlers: the session, the in-process API client,
//! one-shot flash messages, and forms checked against the session's CSRF token.

use super::UiCtx;
use super::api::{Api, Reply};
use super::session::{self, FLASH_COOKIE, Session};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use http_body_util::BodyExt;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::sync::Arc;

/// Form bodies larger than this are refused (payloads for the test tool fit).
const MAX_FORM_BYTES: usize = 2 * 1024 * 1024;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Flash {
    /// `ok` or `error`.
    pub kind: String,
    pub text: String,
}

impl Flash {
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            kind: "ok".into(),
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            kind: "error".into(),
            text: text.into(),
        }
    }
}

/// A signed-in request.
pub struct Ui {
    pub ctx: Arc<UiCtx>,
    pub session: Session,
    pub api: Api,
    pub secure: bool,
    pub flash: Option<Flash>,
    pub peer: Option<SocketAddr>,
    /// Path and query of this request, to come back to.
    pub here: String,
}

impl Ui {
    /// Redirects (303) to `to`, showing `flash` there once.
    pub fn redirect(&self, to: &str, flash: Flash) -> Response {
        let mut response = Redirect::to(to).into_response();
        let value = B64.encode(serde_json::to_vec(&flash).expect("flash serializes"));
        response.headers_mut().append(
            SET_COOKIE,
            session::set_cookie(FLASH_COOKIE, &value, Some(60), self.secure),
        );
        response
    }

    /// What a page does when the API refused it: signed-out users go to the
    /// sign-in page, anything else is shown as an error page.
    pub fn failed(&self, reply: &Reply) -> Response {
        if reply.unauthorized() {
            return session::to_signin(&self.here, self.secure);
        }
        super::view::error_page(self, reply.status, &reply.error_message())
    }

    /// After a form's API call: back to `to` with the API's message.
    pub fn after(&self, reply: &Reply, to: &str, success: impl Into<String>) -> Response {
        if reply.unauthorized() {
            return session::to_signin("/", self.secure);
        }
        if reply.ok() {
            self.redirect(to, Flash::ok(success))
        } else {
            self.redirect(to, Flash::error(reply.error_message()))
        }
    }
}

fn read_flash(headers: &HeaderMap) -> Option<Flash> {
    let raw = session::cookie_value(headers, FLASH_COOKIE)?;
    serde_json::from_slice(&B64.decode(raw).ok()?).ok()
}

impl<S: Send + Sync> FromRequestParts<S> for Ui {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let session = Session::from_request_parts(parts, state).await?;
        let ctx = parts
            .extensions
            .get::<Arc<UiCtx>>()
            .cloned()
            .expect("UI context layer is installed");
        Ok(Ui {
            api: Api::new(ctx.clone(), &session.token),
            secure: session::secure_request(&ctx, &parts.headers),
            flash: read_flash(&parts.headers),
            peer: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0),
            here: parts
                .uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".into()),
            session,
            ctx,
        })
    }
}

/// A form post from a signed-in user whose `_csrf` field matched the session.
pub struct UiForm {
    pub ui: Ui,
    pub fields: Vec<(String, String)>,
}

impl UiForm {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The trimmed value, empty when absent.
    pub fn text(&self, name: &str) -> &str {
        self.get(name).map(str::trim).unwrap_or("")
    }

    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

pub fn parse_form(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes).into_owned().collect()
}

pub async fn read_body(body: axum::body::Body) -> Result<bytes::Bytes, Response> {
    match http_body_util::Limited::new(body, MAX_FORM_BYTES).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(_) => Err((StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response()),
    }
}

impl<S: Send + Sync> FromRequest<S> for UiForm {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = request.into_parts();
        let ui = Ui::from_request_parts(&mut parts, state).await?;
        let fields = parse_form(&read_body(body).await?);
        let presented = fields
            .iter()
            .find(|(k, _)| k == "_csrf")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
        if !ui.session.csrf_ok(presented) {
            return Err(super::view::error_page(
                &ui,
                StatusCode::FORBIDDEN,
                "This form has expired or did not come from this site. Reload the page and try again.",
            ));
        }
        Ok(UiForm { ui, fields })
    }
}
