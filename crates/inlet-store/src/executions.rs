//! Executions: evaluation records, execution rows, claiming with leases,
//! attempts, cancel and retry.

use crate::writer::Claim;
use crate::{EventRow, NewEvent, Store, StoreError, on_pool, on_writer, sql};
use inlet_core::clock::now_micros;
use serde::Serialize;
use sqlx::{Postgres, Transaction};
use std::collections::{HashMap, HashSet};

/// Statuses an execution can be in.
pub mod status {
    pub const QUEUED: &str = "queued";
    pub const RUNNING: &str = "running";
    pub const SUCCEEDED: &str = "succeeded";
    pub const FAILED: &str = "failed";
    pub const RETRYING: &str = "retrying";
    pub const DEAD: &str = "dead";
    pub const CANCELLED: &str = "cancelled";
    pub const ALL: &[&str] = &[QUEUED, RUNNING, SUCCEEDED, FAILED, RETRYING, DEAD, CANCELLED];

    pub fn is_terminal(status: &str) -> bool {
        matches!(status, SUCCEEDED | FAILED | DEAD | CANCELLED)
    }
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct ExecutionRow {
    pub id: String,
    pub action_ref: String,
    pub rule_ref: Option<String>,
    pub event_id: Option<String>,
    pub source: String,
    pub status: String,
    pub attempt: i64,
    pub max_attempts: i64,
    pub params: String,
    pub debounce_key: Option<String>,
    pub next_run_at: i64,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<i64>,
    pub cancel_requested: bool,
    pub result: Option<String>,
    pub output: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
}

#[derive(Debug, Clone)]
pub struct NewExecution {
    pub id: String,
    pub action_ref: String,
    pub rule_ref: Option<String>,
    pub event_id: Option<String>,
    /// `event` (a rule matched), `replay`, `api`.
    pub source: String,
    pub max_attempts: i64,
    /// Rendered parameters (JSON).
    pub params: String,
    /// Set for a debouncing rule: the burst this execution gathers.
    pub debounce_key: Option<String>,
    pub next_run_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct AttemptRow {
    pub execution_id: String,
    pub attempt: i64,
    pub worker: String,
    /// running | succeeded | failed | cancelled | lost
    pub status: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub exit_code: Option<i64>,
    pub http_status: Option<i64>,
    pub summary: String,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
}

#[derive(Debug, Clone, sqlx::FromRow, Serialize)]
pub struct EvaluationRow {
    pub event_id: String,
    pub rule_ref: String,
    /// matched | not_matched | error
    pub outcome: String,
    pub reason: String,
    pub execution_id: Option<String>,
    pub created_at: i64,
}

/// The verdict of one rule on one event, and the execution it makes.
#[derive(Debug, Clone)]
pub struct NewEvaluation {
    pub rule_ref: String,
    pub outcome: String,
    pub reason: String,
    pub execution: Option<NewExecution>,
}

/// An event evaluated against every enabled rule of its trigger.
#[derive(Debug, Clone)]
pub struct EventEvaluation {
    pub event_id: String,
    pub evaluations: Vec<NewEvaluation>,
}

/// A claimed execution with its event (read in the claim's transaction, so
/// the worker need not read it again).
#[derive(Debug, Clone)]
pub struct ClaimedExecution {
    pub row: ExecutionRow,
    /// None when the execution has no event, or its event no longer exists.
    pub event: Option<EventRow>,
}

/// What one committed evaluation made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedExecution {
    pub id: String,
    pub next_run_at: i64,
}

#[derive(Debug, Clone, Default)]
pub struct ExecutionFilter {
    pub action_ref: Option<String>,
    pub rule_ref: Option<String>,
    pub event_id: Option<String>,
    pub status: Option<String>,
    pub before_id: Option<String>,
    pub limit: i64,
}

/// The end of an attempt, as the worker reports it.
#[derive(Debug, Clone)]
pub struct AttemptEnd {
    pub execution_id: String,
    pub owner: String,
    pub attempt: i64,
    /// The attempt row's status: succeeded | failed | cancelled.
    pub attempt_status: String,
    pub exit_code: Option<i64>,
    pub http_status: Option<i64>,
    pub summary: String,
    pub stdout: String,
    pub stderr: String,
    pub stdout_truncated: bool,
    pub stderr_truncated: bool,
    /// The execution's next status: succeeded | failed | retrying | dead | cancelled.
    pub status: String,
    /// For `retrying`: when to run again.
    pub next_run_at: Option<i64>,
    /// Result summary (JSON) kept on the execution.
    pub result: String,
}

impl AttemptEnd {
    /// What the execution keeps of the output: stdout, then stderr.
    pub(crate) fn output(&self) -> String {
        if self.stderr.is_empty() {
            self.stdout.clone()
        } else {
            format!("{}{}", self.stdout, self.stderr)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelResult {
    /// It had not started: it is cancelled.
    Cancelled,
    /// It is running: its worker was asked to stop it.
    Requested,
    /// It has already ended.
    AlreadyEnded,
}

macro_rules! select_executions {
    ($tail:literal) => {
        concat!(
            "SELECT id, action_ref, rule_ref, event_id, source, status, attempt, max_attempts, params, \
             debounce_key, next_run_at, lease_owner, lease_expires_at, cancel_requested, result, output, \
             created_at, started_at, finished_at, updated_at FROM executions ",
            $tail
        )
    };
}

pub(crate) const RETURNING_EXECUTION: &str = " RETURNING id, action_ref, rule_ref, event_id, source, status, attempt, \
     max_attempts, params, debounce_key, next_run_at, lease_owner, lease_expires_at, cancel_requested, result, \
     output, created_at, started_at, finished_at, updated_at";

/// Due work, as (condition, order, index) of each index walk that finds it,
/// in the order claims try them: running under a lease that expired (its
/// worker is gone), then waiting and its time has come, oldest first. SQLite
/// is told the index: without statistics it prefers a scan and a sort of every
/// waiting execution. `now` is the placeholder of the time in each statement.
fn due_work(now: &str) -> [(String, &'static str, &'static str); 2] {
    [
        (
            format!("e.status = 'running' AND e.lease_expires_at < {now}"),
            "e.lease_expires_at, e.id",
            "executions_lease",
        ),
        (
            format!("e.status IN ('queued', 'retrying') AND e.next_run_at <= {now}"),
            "e.next_run_at, e.id",
            "executions_waiting",
        ),
    ]
}

/// Claims under a lease until `$2`, at `$3`, for the owner `owner` names.
fn claim_set(owner: &str) -> String {
    format!(
        "UPDATE executions SET status = 'running', lease_owner = {owner}, lease_expires_at = $2, \
         attempt = attempt + 1, started_at = COALESCE(started_at, $3), updated_at = $3 "
    )
}

/// Inserts one execution (`$1..$10`, created at `$11`).
pub(crate) const INSERT_EXECUTION: &str = "INSERT INTO executions (id, action_ref, rule_ref, event_id, source, status, \
     max_attempts, params, debounce_key, next_run_at, created_at, updated_at) \
     VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $10, $10)";

macro_rules! bind_execution {
    ($query:expr, $x:expr, $now:expr) => {
        $query
            .bind(&$x.id)
            .bind(&$x.action_ref)
            .bind(&$x.rule_ref)
            .bind(&$x.event_id)
            .bind(&$x.source)
            .bind($x.max_attempts)
            .bind(&$x.params)
            .bind(&$x.debounce_key)
            .bind($x.next_run_at)
            .bind($now)
    };
}

/// The claim statements (see `due_work`): `$1` owner, `$2` lease end, `$3` now. On
/// SQLite one `UPDATE ... WHERE id = (SELECT ...)` claims one execution, and the
/// single writer serialises claims, so the concurrency count is exact.
pub(crate) fn sqlite_claim_sql() -> [String; 2] {
    due_work("$3").map(|(due, order, index)| {
        format!(
            "{} WHERE id = (SELECT e.id FROM executions e INDEXED BY {index} LEFT JOIN actions a ON a.ref = e.action_ref \
             WHERE {due} AND (a.concurrency IS NULL OR a.concurrency > (SELECT COUNT(*) FROM executions r \
             WHERE r.action_ref = e.action_ref AND r.status = 'running' AND r.lease_expires_at >= $3)) \
             ORDER BY {order} LIMIT 1){RETURNING_EXECUTION}",
            claim_set("$1")
        )
    })
}

/// Claims on PostgreSQL: `$1` executions and `$4` their owners, as arrays.
static CLAIM_ALL_IN_POSTGRES: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "{} FROM UNNEST($1::TEXT[], $4::TEXT[]) AS u(claimed_id, claimed_owner) WHERE id = u.claimed_id\
         {RETURNING_EXECUTION}",
        claim_set("u.claimed_owner")
    )
});

// One statement text per table whatever the batch's size (columns as arrays),
// so PostgreSQL parses and plans each once per connection.
const INSERT_EVALUATIONS: &str = "INSERT INTO rule_evaluations (event_id, rule_ref, outcome, reason, execution_id, \
     created_at) SELECT u.*, $6 FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[]) \
     AS u(event_id, rule_ref, outcome, reason, execution_id) \
     ON CONFLICT (event_id, rule_ref) DO NOTHING RETURNING event_id, rule_ref";

/// Executions without a debounce key, queued.
const INSERT_EXECUTIONS: &str = "INSERT INTO executions (id, action_ref, rule_ref, event_id, source, status, \
     max_attempts, params, next_run_at, created_at, updated_at) \
     SELECT u.id, u.action_ref, u.rule_ref, u.event_id, u.source, 'queued', u.max_attempts, u.params, u.next_run_at, \
     $9, $9 FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[], $7::TEXT[], \
     $8::BIGINT[]) AS u(id, action_ref, rule_ref, event_id, source, max_attempts, params, next_run_at)";

/// Due executions for PostgreSQL claims (see `due_work`), locked for this
/// transaction (other nodes skip them): `$1` how many, `$2` now.
static POSTGRES_CANDIDATES: std::sync::LazyLock<[String; 2]> = std::sync::LazyLock::new(|| {
    due_work("$2").map(|(due, order, _)| {
        format!(
            "SELECT e.id, e.action_ref, a.concurrency FROM executions e \
             LEFT JOIN actions a ON a.ref = e.action_ref WHERE {due} \
             ORDER BY {order} LIMIT $1 FOR UPDATE OF e SKIP LOCKED"
        )
    })
});

/// Candidates locked beyond one per owner, for those skipped because their
/// action is at its concurrency limit.
const SPARE_CANDIDATES: usize = 32;

/// Claims on PostgreSQL, inside the writer's transaction: one candidate query
/// per kind of due work for the whole batch, and a per-action advisory lock
/// around the concurrency check.
pub(crate) async fn claim_in_postgres(
    tx: &mut Transaction<'_, Postgres>,
    claim: &Claim,
) -> Result<Vec<ClaimedExecution>, StoreError> {
    let wanted = (claim.owners.len() + SPARE_CANDIDATES) as i64;
    let mut candidates: Vec<(String, String, Option<i64>)> = Vec::new();
    for sql in POSTGRES_CANDIDATES.iter() {
        candidates.extend(
            sqlx::query_as::<_, (String, String, Option<i64>)>(sqlx::AssertSqlSafe(sql.as_str()))
                .bind(wanted)
                .bind(claim.now)
                .fetch_all(&mut **tx)
                .await?,
        );
    }
    // Which candidate goes to which owner; actions with a concurrency limit
    // count what runs plus what this batch has already picked.
    let mut picked: Vec<(String, &str)> = Vec::with_capacity(claim.owners.len());
    let mut picked_per_action: HashMap<String, i64> = HashMap::new();
    for (id, action_ref, concurrency) in candidates {
        let Some(owner) = claim.owners.get(picked.len()) else {
            break;
        };
        if let Some(limit) = concurrency {
            sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind(&action_ref)
                .execute(&mut **tx)
                .await?;
            let (running,): (i64,) = sqlx::query_as(
                "SELECT COUNT(*) FROM executions WHERE action_ref = $1 AND status = 'running' \
                     AND lease_expires_at >= $2 AND id <> $3",
            )
            .bind(&action_ref)
            .bind(claim.now)
            .bind(&id)
            .fetch_one(&mut **tx)
            .await?;
            let picked_before = picked_per_action.entry(action_ref).or_default();
            if running + *picked_before >= limit {
                continue;
            }
            *picked_before += 1;
        }
        picked.push((id, owner));
    }
    if picked.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<&str> = picked.iter().map(|(id, _)| id.as_str()).collect();
    // These two are planned at every claim (not kept prepared): a plan that
    // a connection kept from its first claims, made while the tables were
    // small, scans them whole once they have grown (2 ms instead of 0.5 ms a
    // claim in the benchmark), and nothing makes PostgreSQL plan it again.
    let mut rows: HashMap<String, ExecutionRow> = sqlx::query_as::<_, ExecutionRow>(CLAIM_ALL_IN_POSTGRES.as_str())
        .persistent(false)
        .bind(&ids)
        .bind(claim.lease_until)
        .bind(claim.now)
        .bind(picked.iter().map(|(_, owner)| *owner).collect::<Vec<&str>>())
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|row| (row.id.clone(), row))
        .collect();
    // In the owners' order.
    let claimed: Vec<ExecutionRow> = picked.iter().filter_map(|(id, _)| rows.remove(id)).collect();
    sqlx::query(sql::LOSE_RUNNING_ATTEMPTS)
        .persistent(false)
        .bind(&ids)
        .bind(claim.now)
        .execute(&mut **tx)
        .await?;
    sqlx::query(sql::BEGIN_ATTEMPTS)
        .bind(claimed.iter().map(|row| row.id.as_str()).collect::<Vec<&str>>())
        .bind(claimed.iter().map(|row| row.attempt).collect::<Vec<i64>>())
        .bind(
            claimed
                .iter()
                .map(|row| row.lease_owner.as_deref())
                .collect::<Vec<Option<&str>>>(),
        )
        .bind(claim.now)
        .execute(&mut **tx)
        .await?;
    let event_ids: Vec<&str> = claimed.iter().filter_map(|row| row.event_id.as_deref()).collect();
    // Several executions may share an event.
    let events: HashMap<String, EventRow> = if event_ids.is_empty() {
        Default::default()
    } else {
        sqlx::query_as::<_, EventRow>(crate::events::select_events!("WHERE id = ANY($1)"))
            .bind(&event_ids)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .map(|event| (event.id.clone(), event))
            .collect()
    };
    Ok(claimed
        .into_iter()
        .map(|row| {
            let event = row.event_id.as_ref().and_then(|id| events.get(id).cloned());
            ClaimedExecution { row, event }
        })
        .collect())
}

/// Evaluations on PostgreSQL, inside the writer's transaction, with a few
/// multi-row statements whatever the batch's size: the evaluation records (a
/// pair already recorded was evaluated before and makes nothing again), the
/// executions of new matches, the events' processed flag.
pub(crate) async fn evaluate_in_postgres(
    tx: &mut Transaction<'_, Postgres>,
    batch: &[EventEvaluation],
) -> Result<Vec<CreatedExecution>, StoreError> {
    let now = now_micros();
    let pairs: Vec<(&str, &NewEvaluation)> = batch
        .iter()
        .flat_map(|event| event.evaluations.iter().map(move |ev| (event.event_id.as_str(), ev)))
        .collect();
    let recorded: HashSet<(String, String)> = if pairs.is_empty() {
        HashSet::new()
    } else {
        // A debounced execution's id is only known once its burst is found.
        fn execution_id(ev: &NewEvaluation) -> Option<&str> {
            ev.execution
                .as_ref()
                .filter(|x| x.debounce_key.is_none())
                .map(|x| x.id.as_str())
        }
        sqlx::query_as::<_, (String, String)>(INSERT_EVALUATIONS)
            .bind(pairs.iter().map(|(event_id, _)| *event_id).collect::<Vec<&str>>())
            .bind(pairs.iter().map(|(_, ev)| ev.rule_ref.as_str()).collect::<Vec<&str>>())
            .bind(pairs.iter().map(|(_, ev)| ev.outcome.as_str()).collect::<Vec<&str>>())
            .bind(pairs.iter().map(|(_, ev)| ev.reason.as_str()).collect::<Vec<&str>>())
            .bind(
                pairs
                    .iter()
                    .map(|(_, ev)| execution_id(ev))
                    .collect::<Vec<Option<&str>>>(),
            )
            .bind(now)
            .fetch_all(&mut **tx)
            .await?
            .into_iter()
            .collect()
    };
    // Evaluated already (another node, or before a crash): nothing more.
    let new_matches: Vec<(&str, &NewExecution)> = pairs
        .iter()
        .filter_map(|(event_id, ev)| Some((*event_id, ev.execution.as_ref()?, &ev.rule_ref)))
        .filter(|(event_id, _, rule_ref)| recorded.contains(&((*event_id).to_owned(), (*rule_ref).clone())))
        .map(|(event_id, x, _)| (event_id, x))
        .collect();
    let mut created = Vec::with_capacity(new_matches.len());
    let (debounced, plain): (Vec<_>, Vec<_>) = new_matches.into_iter().partition(|(_, x)| x.debounce_key.is_some());
    if !plain.is_empty() {
        let text = |f: fn(&NewExecution) -> &str| plain.iter().map(|(_, x)| f(x)).collect::<Vec<&str>>();
        let maybe = |f: fn(&NewExecution) -> Option<&str>| plain.iter().map(|(_, x)| f(x)).collect::<Vec<_>>();
        let number = |f: fn(&NewExecution) -> i64| plain.iter().map(|(_, x)| f(x)).collect::<Vec<i64>>();
        sqlx::query(INSERT_EXECUTIONS)
            .bind(text(|x| &x.id))
            .bind(text(|x| &x.action_ref))
            .bind(maybe(|x| x.rule_ref.as_deref()))
            .bind(maybe(|x| x.event_id.as_deref()))
            .bind(text(|x| &x.source))
            .bind(number(|x| x.max_attempts))
            .bind(text(|x| &x.params))
            .bind(number(|x| x.next_run_at))
            .bind(now)
            .execute(&mut **tx)
            .await?;
        created.extend(plain.iter().map(|(_, x)| CreatedExecution {
            id: x.id.clone(),
            next_run_at: x.next_run_at,
        }));
    }
    for (event_id, x) in debounced {
        // Debounce: the queued execution of this burst takes the newer
        // event and waits the quiet period again.
        let upsert = format!("{INSERT_EXECUTION}{}", sql::DEBOUNCE_ON_CONFLICT);
        let (id,): (String,) = bind_execution!(sqlx::query_as(sqlx::AssertSqlSafe(upsert)), x, now)
            .fetch_one(&mut **tx)
            .await?;
        sqlx::query(sql::SET_EVALUATION_EXECUTION)
            .bind(&id)
            .bind(event_id)
            .bind(&x.rule_ref)
            .execute(&mut **tx)
            .await?;
        created.push(CreatedExecution {
            id,
            next_run_at: x.next_run_at,
        });
    }
    sqlx::query("UPDATE events SET processed = TRUE WHERE id = ANY($1)")
        .bind(batch.iter().map(|event| event.event_id.as_str()).collect::<Vec<&str>>())
        .execute(&mut **tx)
        .await?;
    Ok(created)
}

impl Store {
    /// Events not yet evaluated, oldest first.
    pub async fn unprocessed_events(&self, limit: i64) -> Result<Vec<EventRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT id, trigger_ref, payload, metadata, source, delivery_id, processed, created_at FROM events \
                 WHERE processed = FALSE ORDER BY id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await
        })?)
    }

    /// Creates an execution outside rule evaluation (replays).
    pub async fn insert_execution(&self, x: &NewExecution) -> Result<(), StoreError> {
        let now = now_micros();
        on_writer!(self, |pool| {
            bind_execution!(sqlx::query(INSERT_EXECUTION), x, now)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })?;
        Ok(())
    }

    /// Stores an event that did not come through the receiver (API, replay).
    pub async fn insert_event(&self, e: &NewEvent) -> Result<(), StoreError> {
        on_writer!(self, |pool| {
            sqlx::query(concat!(
                "INSERT INTO events (id, trigger_ref, payload, metadata, source, delivery_id, created_at, processed) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, ",
                crate::events::no_enabled_rule!(),
                "$2))"
            ))
            .bind(&e.id)
            .bind(&e.trigger_ref)
            .bind(&e.payload)
            .bind(&e.metadata)
            .bind(&e.source)
            .bind(&e.delivery_id)
            .bind(e.created_at)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(StoreError::from_insert)?;
        Ok(())
    }

    pub async fn evaluations_for_event(&self, event_id: &str) -> Result<Vec<EvaluationRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT event_id, rule_ref, outcome, reason, execution_id, created_at FROM rule_evaluations \
                 WHERE event_id = $1 ORDER BY rule_ref",
            )
            .bind(event_id)
            .fetch_all(pool)
            .await
        })?)
    }

    /// The raw body and stored headers of the accepted request behind an event:
    /// the log row with the event's id, or one logged before rows took their
    /// event's id (found through `request_log_event`).
    pub async fn original_request(&self, event_id: &str) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        use crate::request_log::select_log;
        let row: Option<crate::request_log::StoredLogRow> = on_pool!(self, |pool| {
            sqlx::query_as(concat!(
                select_log!("WHERE r.id = $1 AND r.event_id = $1 AND r.outcome = 'accepted' "),
                "UNION ALL ",
                select_log!("WHERE r.event_id = $1 AND r.event_id <> r.id AND r.outcome = 'accepted' "),
                "LIMIT 1"
            ))
            .bind(event_id)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.map(|row| {
            let log = crate::RequestLogRow::from(row);
            (log.body, log.headers)
        }))
    }

    /// Claims one due execution for `owner`; see [`Store::claim_executions`].
    pub async fn claim_execution(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
    ) -> Result<Option<ExecutionRow>, StoreError> {
        Ok(self
            .claim_executions(&[owner], now, lease_until)
            .await?
            .pop()
            .map(|claimed| claimed.row))
    }

    /// Extends a lease still held by `owner`. None: the lease is lost (expired
    /// and taken by another worker, or the execution ended); otherwise whether a
    /// cancel was requested.
    pub async fn renew_lease(&self, id: &str, owner: &str, lease_until: i64) -> Result<Option<bool>, StoreError> {
        Ok(on_writer!(self, |pool| {
            sqlx::query_as::<_, (bool,)>(
                "UPDATE executions SET lease_expires_at = $3 WHERE id = $1 AND lease_owner = $2 \
                 AND status = 'running' RETURNING cancel_requested",
            )
            .bind(id)
            .bind(owner)
            .bind(lease_until)
            .fetch_optional(pool)
            .await
        })?
        .map(|(c,)| c))
    }

    pub async fn get_execution(&self, id: &str) -> Result<Option<ExecutionRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(select_executions!("WHERE id = $1"))
                .bind(id)
                .fetch_optional(pool)
                .await
        })?)
    }

    /// Newest first.
    pub async fn list_executions(&self, f: &ExecutionFilter) -> Result<Vec<ExecutionRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(select_executions!(
                "WHERE ($1 IS NULL OR action_ref = $1) AND ($2 IS NULL OR rule_ref = $2) \
                 AND ($3 IS NULL OR event_id = $3) AND ($4 IS NULL OR status = $4) AND ($5 IS NULL OR id < $5) \
                 ORDER BY id DESC LIMIT $6"
            ))
            .bind(&f.action_ref)
            .bind(&f.rule_ref)
            .bind(&f.event_id)
            .bind(&f.status)
            .bind(&f.before_id)
            .bind(f.limit)
            .fetch_all(pool)
            .await
        })?)
    }

    pub async fn list_attempts(&self, execution_id: &str) -> Result<Vec<AttemptRow>, StoreError> {
        Ok(on_pool!(self, |pool| {
            sqlx::query_as(
                "SELECT execution_id, attempt, worker, status, started_at, finished_at, exit_code, http_status, \
                 summary, stdout, stderr, stdout_truncated, stderr_truncated FROM execution_attempts \
                 WHERE execution_id = $1 ORDER BY attempt",
            )
            .bind(execution_id)
            .fetch_all(pool)
            .await
        })?)
    }

    /// Cancels an execution that has not started, or asks the worker running it
    /// to stop.
    pub async fn cancel_execution(&self, id: &str) -> Result<CancelResult, StoreError> {
        let now = now_micros();
        let done = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE executions SET status = 'cancelled', finished_at = $2, updated_at = $2, \
                 result = '{\"summary\": \"cancelled before it ran\"}' \
                 WHERE id = $1 AND status IN ('queued', 'retrying')",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        if done == 1 {
            return Ok(CancelResult::Cancelled);
        }
        let done = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE executions SET cancel_requested = TRUE, updated_at = $2 WHERE id = $1 AND status = 'running'",
            )
            .bind(id)
            .bind(now)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        if done == 1 {
            return Ok(CancelResult::Requested);
        }
        match self.get_execution(id).await? {
            None => Err(StoreError::NotFound),
            Some(_) => Ok(CancelResult::AlreadyEnded),
        }
    }

    /// Runs an ended execution again (up to `more_attempts` more attempts).
    /// False when it has not ended.
    pub async fn retry_execution(&self, id: &str, more_attempts: i64) -> Result<bool, StoreError> {
        let now = now_micros();
        let done = on_writer!(self, |pool| {
            sqlx::query(
                "UPDATE executions SET status = 'queued', next_run_at = $2, max_attempts = attempt + $3, \
                 cancel_requested = FALSE, finished_at = NULL, debounce_key = NULL, updated_at = $2 \
                 WHERE id = $1 AND status IN ('succeeded', 'failed', 'dead', 'cancelled')",
            )
            .bind(id)
            .bind(now)
            .bind(more_attempts)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })?;
        if done == 1 {
            return Ok(true);
        }
        match self.get_execution(id).await? {
            None => Err(StoreError::NotFound),
            Some(_) => Ok(false),
        }
    }
}
