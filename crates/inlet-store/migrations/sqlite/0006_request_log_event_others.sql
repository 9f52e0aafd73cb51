-- An accepted request's log row now has its event's id, so the event's
-- original request is found by the row's own key. The index keeps only rows
-- that name another row's event: duplicates, and rows logged before this.
-- Each accepted request then writes one index entry less.
DROP INDEX request_log_event;
CREATE INDEX request_log_event ON request_log(event_id) WHERE event_id IS NOT NULL AND event_id <> id;
