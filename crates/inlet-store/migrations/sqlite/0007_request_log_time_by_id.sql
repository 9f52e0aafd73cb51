-- Time ranges over the request log (retention, statistics) are ranges of its
-- time-ordered ids, served by the key's index and request_log_trigger: one
-- index fewer to write per request.
DROP INDEX request_log_received;
