-- Rules, actions, executions (issue 4). Times are microseconds since the Unix
-- epoch; JSON is stored as text; ids are uuid v7 strings.
CREATE TABLE actions (
    ref         TEXT PRIMARY KEY,
    pack        TEXT NOT NULL,
    runner      TEXT NOT NULL,
    concurrency BIGINT,
    spec        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE rules (
    ref         TEXT PRIMARY KEY,
    pack        TEXT NOT NULL,
    trigger_ref TEXT NOT NULL,
    action_ref  TEXT NOT NULL,
    enabled     BOOLEAN NOT NULL,
    spec        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX rules_trigger ON rules(trigger_ref);

-- One row per (event, rule): the event was evaluated against the rule exactly
-- once; outcome matched | not_matched | error, with the reason.
CREATE TABLE rule_evaluations (
    event_id     TEXT NOT NULL,
    rule_ref     TEXT NOT NULL,
    outcome      TEXT NOT NULL,
    reason       TEXT NOT NULL,
    execution_id TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (event_id, rule_ref)
);

CREATE TABLE executions (
    id               TEXT PRIMARY KEY,
    action_ref       TEXT NOT NULL,
    rule_ref         TEXT,
    event_id         TEXT,
    source           TEXT NOT NULL,
    status           TEXT NOT NULL,
    attempt          BIGINT NOT NULL DEFAULT 0,
    max_attempts     BIGINT NOT NULL,
    params           TEXT NOT NULL,
    debounce_key     TEXT,
    next_run_at      BIGINT NOT NULL,
    lease_owner      TEXT,
    lease_expires_at BIGINT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    result           TEXT,
    output           TEXT,
    created_at       BIGINT NOT NULL,
    started_at       BIGINT,
    finished_at      BIGINT,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX executions_due ON executions(status, next_run_at);
CREATE INDEX executions_lease ON executions(status, lease_expires_at);
CREATE INDEX executions_action ON executions(action_ref, status);
CREATE INDEX executions_rule ON executions(rule_ref, id);
CREATE INDEX executions_event ON executions(event_id);
-- Debounce state: at most one queued execution per (rule, burst key) gathers a burst.
CREATE UNIQUE INDEX executions_debounce ON executions(rule_ref, debounce_key)
    WHERE debounce_key IS NOT NULL AND status = 'queued';

CREATE TABLE execution_attempts (
    execution_id     TEXT NOT NULL,
    attempt          BIGINT NOT NULL,
    worker           TEXT NOT NULL,
    status           TEXT NOT NULL,
    started_at       BIGINT NOT NULL,
    finished_at      BIGINT,
    exit_code        BIGINT,
    http_status      BIGINT,
    summary          TEXT NOT NULL,
    stdout           TEXT NOT NULL,
    stderr           TEXT NOT NULL,
    stdout_truncated BOOLEAN NOT NULL,
    stderr_truncated BOOLEAN NOT NULL,
    PRIMARY KEY (execution_id, attempt)
);

CREATE INDEX events_unprocessed ON events(id) WHERE processed = FALSE;
