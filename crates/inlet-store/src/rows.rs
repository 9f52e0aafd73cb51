//! Rows as both backends return them. Times are Unix microseconds, JSON is text.

use serde::Serialize;

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct TriggerRow {
    #[sqlx(rename = "ref")]
    #[serde(rename = "ref")]
    pub trigger_ref: String,
    pub pack: String,
    pub label: String,
    pub description: String,
    pub payload_schema: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewTrigger {
    pub trigger_ref: String,
    pub pack: String,
    pub label: String,
    pub description: String,
    pub payload_schema: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookRow {
    pub trigger_ref: String,
    pub enabled: bool,
    pub settings: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyRow {
    pub id: String,
    pub trigger_ref: String,
    pub key_sealed: Vec<u8>,
    pub prefix: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct NewKey {
    pub id: String,
    pub key_hash: Vec<u8>,
    pub key_sealed: Vec<u8>,
    pub prefix: String,
}

/// What the receiver needs to know about a key, in one lookup.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ReceiverTarget {
    pub key_id: String,
    pub trigger_ref: String,
    pub prefix: String,
    pub expires_at: Option<i64>,
    pub enabled: bool,
    pub settings: String,
    pub payload_schema: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: String,
    pub trigger_ref: String,
    pub payload: String,
    pub metadata: String,
    pub source: String,
    pub delivery_id: Option<String>,
    pub processed: bool,
    pub created_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    pub trigger_ref: String,
    pub payload: String,
    pub metadata: String,
    pub source: String,
    pub delivery_id: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RequestLogRow {
    pub id: String,
    pub trigger_ref: Option<String>,
    pub key_prefix: Option<String>,
    pub received_at: i64,
    pub source_ip: String,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: String,
    pub body: Vec<u8>,
    pub body_truncated: bool,
    pub outcome: String,
    pub status_code: i64,
    pub message: String,
    pub processing_us: i64,
    pub event_id: Option<String>,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}
