//! Bearer-token check for every management route.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use inlet_core::keys::digest;

/// Tokens are looked up by their SHA-256 digest, so comparing digests in the
/// database leaks nothing usable about the token itself.
pub async fn require_token(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let Some(token) = presented.filter(|t| !t.is_empty()) else {
        return ApiError::Unauthorized.into_response();
    };
    match state.store.find_token(&digest(token)).await {
        Ok(Some(token)) => {
            // Handlers that record who did something (replays) read the token's name.
            request.extensions_mut().insert(token);
            next.run(request).await
        }
        Ok(None) => ApiError::Unauthorized.into_response(),
        Err(err) => ApiError::from(err).into_response(),
    }
}
