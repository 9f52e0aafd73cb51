use crate::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

pub fn limit(requested: Option<i64>) -> Result<i64, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {n}"
        ))),
    }
}

/// `{"data": [...], "next_cursor": id-or-null}`: the cursor is the id of the
/// last item when the page is full.
pub fn page<T: serde::Serialize>(items: Vec<T>, limit: i64, last_id: Option<String>) -> axum::Json<serde_json::Value> {
    let next = if items.len() as i64 == limit { last_id } else { None };
    axum::Json(serde_json::json!({"data": items, "next_cursor": next}))
}
