//! Sign in with an API token, sign out.

use super::UiCtx;
use super::api::Api;
use super::form::{Flash, UiForm, parse_form, read_body};
use super::session::{
    self, SESSION_COOKIE, SIGNIN_CSRF_COOKIE, Session, constant_time_eq, cookie_value, random_token, safe_next,
};
use super::view::shell;
use axum::Extension;
use axum::extract::{Query, Request};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use std::sync::Arc;

#[derive(Deserialize)]
pub struct SigninQuery {
    next: Option<String>,
}

fn render(ctx: &UiCtx, headers: &HeaderMap, next: &str, error: Option<&str>, status: StatusCode) -> Response {
    let secure = session::secure_request(ctx, headers);
    let csrf = random_token();
    let flash = error.map(Flash::error);
    let markup = shell(
        "Sign in",
        None,
        flash.as_ref(),
        html! {
            section.signin {
                h1 { "Sign in to Inlet" }
                p { "Use an API token: the one printed by the first " code { "inlet serve" } ", or one from " code { "inlet token create --name <you>" } "." }
                form method="post" action="/signin" {
                    input type="hidden" name="_csrf" value=(csrf);
                    input type="hidden" name="next" value=(next);
                    label for="token" { "API token" }
                    input #token type="password" name="token" required autocomplete="current-password" autofocus spellcheck="false";
                    button.primary type="submit" { "Sign in" }
                }
            }
        },
    );
    let mut response = (status, Html(markup.into_string())).into_response();
    response.headers_mut().append(
        SET_COOKIE,
        session::set_cookie(SIGNIN_CSRF_COOKIE, &csrf, Some(3600), secure),
    );
    response
}

pub async fn page(
    Extension(ctx): Extension<Arc<UiCtx>>,
    session: Option<Session>,
    headers: HeaderMap,
    Query(query): Query<SigninQuery>,
) -> Response {
    let next = safe_next(query.next.as_deref());
    if session.is_some() {
        return Redirect::to(&next).into_response();
    }
    render(&ctx, &headers, &next, None, StatusCode::OK)
}

pub async fn submit(Extension(ctx): Extension<Arc<UiCtx>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let fields = match read_body(body).await {
        Ok(bytes) => parse_form(&bytes),
        Err(response) => return response,
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    let next = safe_next(Some(field("next")));
    // Double submit: the form's value must match the cookie set with the form.
    let expected = cookie_value(&parts.headers, SIGNIN_CSRF_COOKIE).unwrap_or("");
    if expected.is_empty() || !constant_time_eq(expected, field("_csrf")) {
        return render(
            &ctx,
            &parts.headers,
            &next,
            Some("The sign-in form expired. Please try again."),
            StatusCode::FORBIDDEN,
        );
    }
    let token = field("token").trim();
    if token.is_empty() {
        return render(
            &ctx,
            &parts.headers,
            &next,
            Some("Enter an API token."),
            StatusCode::BAD_REQUEST,
        );
    }
    // The token is checked by the API itself.
    let reply = Api::new(ctx.clone(), token).get("/api/v1/triggers").await;
    if !reply.ok() {
        let message = if reply.unauthorized() {
            "That token is not valid, or it has been revoked.".to_owned()
        } else {
            reply.error_message()
        };
        return render(&ctx, &parts.headers, &next, Some(&message), StatusCode::UNAUTHORIZED);
    }
    let secure = session::secure_request(&ctx, &parts.headers);
    let mut response = Redirect::to(&next).into_response();
    let headers = response.headers_mut();
    headers.append(
        SET_COOKIE,
        session::set_cookie(SESSION_COOKIE, &session::seal(&ctx, token), None, secure),
    );
    headers.append(SET_COOKIE, session::clear_cookie(SIGNIN_CSRF_COOKIE, secure));
    response
}

pub async fn signout(form: UiForm) -> Response {
    let mut response = Redirect::to("/signin").into_response();
    response
        .headers_mut()
        .append(SET_COOKIE, session::clear_cookie(SESSION_COOKIE, form.ui.secure));
    response
}
