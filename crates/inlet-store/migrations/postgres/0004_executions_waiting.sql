-- Claims look for due work in two index walks: expired leases by
-- (status, lease_expires_at), and waiting executions by time in this partial
-- index, which holds only the waiting ones. The (status, next_run_at) index
-- it replaces made the claim sort every due execution for each claim.
DROP INDEX executions_due;
CREATE INDEX executions_waiting ON executions(next_run_at, id) WHERE status IN ('queued', 'retrying');
