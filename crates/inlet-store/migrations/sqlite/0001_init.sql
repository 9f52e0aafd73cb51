-- Times are microseconds since the Unix epoch; JSON is stored as text.
CREATE TABLE triggers (
    ref            TEXT PRIMARY KEY,
    pack           TEXT NOT NULL,
    label          TEXT NOT NULL,
    description    TEXT NOT NULL DEFAULT '',
    payload_schema TEXT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

CREATE TABLE webhook_settings (
    trigger_ref TEXT PRIMARY KEY REFERENCES triggers(ref) ON DELETE CASCADE,
    enabled     BOOLEAN NOT NULL,
    settings    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE webhook_keys (
    id           TEXT PRIMARY KEY,
    trigger_ref  TEXT NOT NULL REFERENCES triggers(ref) ON DELETE CASCADE,
    key_hash     BLOB NOT NULL UNIQUE,
    key_sealed   BLOB NOT NULL,
    prefix       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT,
    revoked_at   BIGINT,
    last_used_at BIGINT
);
CREATE INDEX webhook_keys_trigger ON webhook_keys(trigger_ref);

CREATE TABLE events (
    id          TEXT PRIMARY KEY,
    trigger_ref TEXT NOT NULL,
    payload     TEXT NOT NULL,
    metadata    TEXT NOT NULL,
    source      TEXT NOT NULL,
    delivery_id TEXT,
    processed   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX events_delivery ON events(trigger_ref, delivery_id) WHERE delivery_id IS NOT NULL;
CREATE INDEX events_trigger ON events(trigger_ref, id);

CREATE TABLE request_log (
    id             TEXT PRIMARY KEY,
    trigger_ref    TEXT,
    key_prefix     TEXT,
    received_at    BIGINT NOT NULL,
    source_ip      TEXT NOT NULL,
    method         TEXT NOT NULL,
    path           TEXT NOT NULL,
    query          TEXT NOT NULL,
    headers        TEXT NOT NULL,
    body           BLOB NOT NULL,
    body_truncated BOOLEAN NOT NULL,
    outcome        TEXT NOT NULL,
    status_code    BIGINT NOT NULL,
    message        TEXT NOT NULL,
    processing_us  BIGINT NOT NULL,
    event_id       TEXT
);
CREATE INDEX request_log_trigger ON request_log(trigger_ref, id);
CREATE INDEX request_log_received ON request_log(received_at);

CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    token_hash   BLOB NOT NULL UNIQUE,
    prefix       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
