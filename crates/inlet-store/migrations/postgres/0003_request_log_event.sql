-- The engine finds an event's original request (for forwarding and replay) by
-- its event id; without an index that is a scan of the whole request log.
CREATE INDEX request_log_event ON request_log(event_id) WHERE event_id IS NOT NULL;
