-- An accepted request's body is usually byte for byte its event's payload:
-- such a log row keeps no copy (an empty body and this flag) and is read
-- joined with its event, so each request writes its body once. Events are
-- never deleted before their log rows (only the request log is purged).
ALTER TABLE request_log ADD COLUMN body_in_event BOOLEAN NOT NULL DEFAULT FALSE;
