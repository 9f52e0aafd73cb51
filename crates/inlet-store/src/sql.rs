//! Statements the sqlx paths and the SQLite writer thread share (`$n`
//! placeholders, which both drivers bind by number).

/// Marks earlier attempts still running as lost (`$2` now), of the executions
/// `$which` selects.
macro_rules! lose_running_attempts {
    ($which:literal) => {
        concat!(
            "UPDATE execution_attempts SET status = 'lost', finished_at = $2, \
             summary = 'the worker stopped (crash or shutdown) before the attempt ended; its lease expired' \
             WHERE status = 'running' AND ",
            $which
        )
    };
}

/// `$1` execution.
pub(crate) const LOSE_RUNNING_ATTEMPT: &str = lose_running_attempts!("execution_id = $1");
/// `$1` executions (an array; PostgreSQL).
pub(crate) const LOSE_RUNNING_ATTEMPTS: &str = lose_running_attempts!("execution_id = ANY($1)");

/// Records claimed attempts as running, from `$rows`: (execution, attempt, worker), started at `$4`.
macro_rules! begin_attempts {
    ($rows:literal) => {
        concat!(
            "INSERT INTO execution_attempts (execution_id, attempt, worker, status, started_at, summary, stdout, \
             stderr, stdout_truncated, stderr_truncated) SELECT *, 'running', $4, '', '', '', FALSE, FALSE FROM ",
            $rows,
            // SQLite reads `ON` after a plain `FROM` as a join's: the `WHERE` ends the select.
            " WHERE TRUE ON CONFLICT (execution_id, attempt) DO NOTHING"
        )
    };
}

/// One attempt: `$1` execution, `$2` attempt, `$3` worker.
pub(crate) const BEGIN_ATTEMPT: &str = begin_attempts!("(SELECT $1, $2, $3) AS a");
/// Attempts as arrays (PostgreSQL).
pub(crate) const BEGIN_ATTEMPTS: &str = begin_attempts!("UNNEST($1::TEXT[], $2::BIGINT[], $3::TEXT[])");

pub(crate) const END_ATTEMPT: &str = "UPDATE execution_attempts SET status = $3, finished_at = $4, exit_code = $5, \
     http_status = $6, summary = $7, stdout = $8, stderr = $9, stdout_truncated = $10, stderr_truncated = $11 \
     WHERE execution_id = $1 AND attempt = $2 AND status = 'running'";

pub(crate) const END_EXECUTION: &str = "UPDATE executions SET status = $3, next_run_at = COALESCE($4, next_run_at), \
     lease_owner = NULL, lease_expires_at = NULL, result = $5, output = $6, updated_at = $7, \
     finished_at = CASE WHEN $8 THEN $7 ELSE NULL END \
     WHERE id = $1 AND lease_owner = $2 AND status = 'running'";

pub(crate) const SET_EVALUATION_EXECUTION: &str =
    "UPDATE rule_evaluations SET execution_id = $1 WHERE event_id = $2 AND rule_ref = $3";

/// The debounced form of `INSERT_EXECUTION`: the queued execution of the
/// burst takes the newer event and waits the quiet period again.
pub(crate) const DEBOUNCE_ON_CONFLICT: &str = " ON CONFLICT (rule_ref, debounce_key) \
     WHERE debounce_key IS NOT NULL AND status = 'queued' \
     DO UPDATE SET event_id = excluded.event_id, params = excluded.params, \
     next_run_at = excluded.next_run_at, updated_at = excluded.updated_at RETURNING id";

pub(crate) const EXISTING_DELIVERY: &str = "SELECT id FROM events WHERE trigger_ref = $1 AND delivery_id = $2";

pub(crate) const INSERT_EVALUATION: &str = "INSERT INTO rule_evaluations (event_id, rule_ref, outcome, reason, \
     execution_id, created_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id, rule_ref) DO NOTHING";
