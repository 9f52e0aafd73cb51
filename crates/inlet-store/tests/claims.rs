//! Engine storage: evaluation records, debounce, claiming with leases and
//! concurrency limits, on SQLite and (when available) PostgreSQL.

use inlet_store::test_support::each_backend;
use inlet_store::*;

async fn action(store: &Store, r: &str, concurrency: Option<i64>) {
    store
        .create_action(&NewAction {
            action_ref: r.into(),
            pack: "t".into(),
            runner: "command".into(),
            concurrency,
            spec: "{}".into(),
        })
        .await
        .unwrap();
}

async fn rule(store: &Store, r: &str, enabled: bool) {
    store
        .create_rule(&NewRule {
            rule_ref: r.into(),
            pack: "t".into(),
            trigger_ref: "t.trig".into(),
            action_ref: "t.a".into(),
            enabled,
            spec: "{}".into(),
        })
        .await
        .unwrap();
}

fn execution(id: &str, action_ref: &str, next_run_at: i64) -> NewExecution {
    NewExecution {
        id: id.into(),
        action_ref: action_ref.into(),
        rule_ref: Some("t.rule".into()),
        event_id: None,
        source: "event".into(),
        max_attempts: 3,
        params: "{}".into(),
        debounce_key: None,
        next_run_at,
    }
}

fn end(id: &str, owner: &str, attempt: i64, status: &str) -> AttemptEnd {
    AttemptEnd {
        execution_id: id.into(),
        owner: owner.into(),
        attempt,
        attempt_status: "succeeded".into(),
        exit_code: Some(0),
        http_status: None,
        summary: "ok".into(),
        stdout: "out\n".into(),
        stderr: String::new(),
        stdout_truncated: false,
        stderr_truncated: false,
        status: status.into(),
        next_run_at: None,
        result: "{}".into(),
    }
}

const S: i64 = 1_000_000;

#[tokio::test]
async fn claims_are_leased_and_expired_leases_are_reclaimed() {
    each_backend(|store| async move {
        action(&store, "t.a", None).await;
        let now = 1_000 * S;
        store
            .insert_execution(&execution("x1", "t.a", now + 5 * S))
            .await
            .unwrap();
        // Not due yet.
        assert!(store.claim_execution("w1", now, now + 10 * S).await.unwrap().is_none());
        let claimed = store
            .claim_execution("w1", now + 5 * S, now + 15 * S)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (claimed.id.as_str(), claimed.status.as_str(), claimed.attempt),
            ("x1", "running", 1)
        );
        // Leased: nobody else gets it.
        assert!(
            store
                .claim_execution("w2", now + 6 * S, now + 16 * S)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(store.renew_lease("x1", "w1", now + 20 * S).await.unwrap(), Some(false));
        assert!(
            store
                .claim_execution("w2", now + 16 * S, now + 26 * S)
                .await
                .unwrap()
                .is_none()
        );
        // The lease expires: another worker takes it over, as attempt 2.
        let again = store
            .claim_execution("w2", now + 21 * S, now + 31 * S)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((again.attempt, again.lease_owner.as_deref()), (2, Some("w2")));
        // The first worker has lost it: no renewal, and its result is not recorded.
        assert_eq!(store.renew_lease("x1", "w1", now + 30 * S).await.unwrap(), None);
        assert!(!store.end_attempt(end("x1", "w1", 1, "succeeded")).await.unwrap());
        assert!(store.end_attempt(end("x1", "w2", 2, "succeeded")).await.unwrap());
        let row = store.get_execution("x1").await.unwrap().unwrap();
        assert_eq!(row.status, "succeeded");
        assert!(row.lease_owner.is_none() && row.finished_at.is_some());
        let attempts = store.list_attempts("x1").await.unwrap();
        let statuses: Vec<&str> = attempts.iter().map(|a| a.status.as_str()).collect();
        assert_eq!(statuses, ["lost", "succeeded"]);
        // Ended: nothing to claim; a retry makes it due again with more attempts.
        assert!(
            store
                .claim_execution("w3", now + 100 * S, now + 110 * S)
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.retry_execution("x1", 3).await.unwrap());
        let row = store.get_execution("x1").await.unwrap().unwrap();
        assert_eq!((row.status.as_str(), row.max_attempts), ("queued", 5));
    })
    .await;
}

#[tokio::test]
async fn concurrency_limits_claims_per_action() {
    each_backend(|store| async move {
        action(&store, "t.one", Some(1)).await;
        action(&store, "t.free", None).await;
        let now = inlet_core::clock::now_micros();
        for i in 0..3 {
            store
                .insert_execution(&execution(&format!("one{i}"), "t.one", now))
                .await
                .unwrap();
        }
        store
            .insert_execution(&execution("free", "t.free", now + 1))
            .await
            .unwrap();
        let first = store
            .claim_execution("w", now + 2, now + 60 * S)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first.id, "one0");
        // t.one is at its limit: the next claim skips to the other action.
        let second = store
            .claim_execution("w", now + 2, now + 60 * S)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.id, "free");
        assert!(
            store
                .claim_execution("w", now + 2, now + 60 * S)
                .await
                .unwrap()
                .is_none()
        );
        assert!(store.end_attempt(end("one0", "w", 1, "succeeded")).await.unwrap());
        let third = store
            .claim_execution("w", now + 3, now + 60 * S)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(third.id, "one1");
    })
    .await;
}

#[tokio::test]
async fn one_batch_of_claims_respects_concurrency_and_records_running_attempts() {
    each_backend(|store| async move {
        action(&store, "t.one", Some(1)).await;
        action(&store, "t.free", None).await;
        let now = inlet_core::clock::now_micros();
        for (id, action_ref) in [
            ("one0", "t.one"),
            ("one1", "t.one"),
            ("free0", "t.free"),
            ("free1", "t.free"),
        ] {
            store.insert_execution(&execution(id, action_ref, now)).await.unwrap();
        }
        let rows: Vec<ExecutionRow> = store
            .claim_executions(&["a", "b", "c", "d", "e"], now + 1, now + 60 * S)
            .await
            .unwrap()
            .into_iter()
            .map(|claimed| claimed.row)
            .collect();
        let claimed: Vec<(&str, &str)> = rows
            .iter()
            .map(|r| (r.id.as_str(), r.lease_owner.as_deref().unwrap()))
            .collect();
        assert_eq!(claimed, [("free0", "a"), ("free1", "b"), ("one0", "c")]);
        for row in &rows {
            let attempts = store.list_attempts(&row.id).await.unwrap();
            assert_eq!(attempts.len(), 1);
            assert_eq!(
                (attempts[0].status.as_str(), attempts[0].worker.as_str()),
                ("running", row.lease_owner.as_deref().unwrap())
            );
        }
        assert!(
            store
                .claim_executions(&["f"], now + 2, now + 60 * S)
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

#[tokio::test]
async fn parallel_claims_never_hand_out_one_execution_twice() {
    each_backend(|store| async move {
        action(&store, "t.p", None).await;
        action(&store, "t.limited", Some(2)).await;
        let now = inlet_core::clock::now_micros();
        for i in 0..10 {
            store
                .insert_execution(&execution(&format!("p{i}"), "t.p", now))
                .await
                .unwrap();
            store
                .insert_execution(&execution(&format!("l{i}"), "t.limited", now))
                .await
                .unwrap();
        }
        let mut tasks = Vec::new();
        for w in 0..16 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(row) = store
                    .claim_execution(&format!("w{w}"), now + 1, now + 60 * S)
                    .await
                    .unwrap()
                {
                    got.push(row.id);
                }
                got
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let unique: std::collections::HashSet<_> = all.iter().collect();
        assert_eq!(unique.len(), all.len(), "an execution was claimed twice: {all:?}");
        assert_eq!(all.iter().filter(|id| id.starts_with('p')).count(), 10);
        assert_eq!(all.iter().filter(|id| id.starts_with('l')).count(), 2, "{all:?}");
    })
    .await;
}

fn new_event(id: &str) -> NewEvent {
    NewEvent {
        id: id.into(),
        trigger_ref: "t.trig".into(),
        payload: "{}".into(),
        metadata: "{}".into(),
        source: "api".into(),
        delivery_id: None,
        created_at: 1,
    }
}

fn matched(event_id: &str, exec_id: &str, debounce_key: Option<&str>, next_run_at: i64) -> EventEvaluation {
    let mut x = execution(exec_id, "t.a", next_run_at);
    x.event_id = Some(event_id.into());
    x.debounce_key = debounce_key.map(str::to_owned);
    EventEvaluation {
        event_id: event_id.into(),
        evaluations: vec![
            NewEvaluation {
                rule_ref: "t.rule".into(),
                outcome: "matched".into(),
                reason: "condition is true".into(),
                execution: Some(x),
            },
            NewEvaluation {
                rule_ref: "t.other".into(),
                outcome: "not_matched".into(),
                reason: "false".into(),
                execution: None,
            },
        ],
    }
}

#[tokio::test]
async fn ends_recorded_together_each_learn_whether_their_owner_held_the_lease() {
    each_backend(|store| async move {
        action(&store, "t.a", None).await;
        for id in ["x1", "x2", "x3"] {
            store.insert_execution(&execution(id, "t.a", 5)).await.unwrap();
        }
        let claimed = store.claim_executions(&["w1", "w2", "w3"], 10, 60 * S).await.unwrap();
        assert_eq!(claimed.len(), 3);
        let mut failed = end("x3", "w3", 1, "failed");
        failed.attempt_status = "failed".into();
        let (first, stranger, third) = tokio::join!(
            store.end_attempt(end("x1", "w1", 1, "succeeded")),
            store.end_attempt(end("x2", "w9", 1, "succeeded")),
            store.end_attempt(failed),
        );
        assert_eq!((first.unwrap(), stranger.unwrap(), third.unwrap()), (true, false, true));
        for (id, status) in [("x1", "succeeded"), ("x2", "running"), ("x3", "failed")] {
            assert_eq!(store.get_execution(id).await.unwrap().unwrap().status, status, "{id}");
        }
        let attempts = store.list_attempts("x3").await.unwrap();
        assert_eq!(attempts[0].status, "failed");
        assert_eq!(attempts[0].stdout, "out\n");
    })
    .await;
}

#[tokio::test]
async fn claims_hand_over_the_event_of_each_execution() {
    each_backend(|store| async move {
        action(&store, "t.a", None).await;
        let mut event = new_event("e1");
        event.payload = r#"{"n":1}"#.into();
        event.metadata = r#"{"headers":{}}"#.into();
        store.insert_event(&event).await.unwrap();
        store
            .commit_evaluations(vec![matched("e1", "with_event", None, 5)])
            .await
            .unwrap();
        // Several executions may share an event.
        let mut same_event = execution("same_event", "t.a", 6);
        same_event.event_id = Some("e1".into());
        store.insert_execution(&same_event).await.unwrap();
        store
            .insert_execution(&execution("without_event", "t.a", 7))
            .await
            .unwrap();
        let claimed = store.claim_executions(&["a", "b", "c", "d"], 10, 60 * S).await.unwrap();
        // (execution, its event's id, payload and metadata)
        type Handed<'a> = (&'a str, Option<(&'a str, &'a str, &'a str)>);
        let handed: Vec<Handed> = claimed
            .iter()
            .map(|c| {
                let event = c
                    .event
                    .as_ref()
                    .map(|e| (e.id.as_str(), e.payload.as_str(), e.metadata.as_str()));
                (c.row.id.as_str(), event)
            })
            .collect();
        assert_eq!(
            handed,
            [
                ("with_event", Some(("e1", r#"{"n":1}"#, r#"{"headers":{}}"#))),
                ("same_event", Some(("e1", r#"{"n":1}"#, r#"{"headers":{}}"#))),
                ("without_event", None)
            ]
        );
    })
    .await;
}

#[tokio::test]
async fn each_event_is_evaluated_once_per_rule() {
    each_backend(|store| async move {
        action(&store, "t.a", None).await;
        rule(&store, "t.rule", true).await;
        store.insert_event(&new_event("e1")).await.unwrap();
        assert_eq!(store.unprocessed_events(10).await.unwrap().len(), 1);
        let created = store
            .commit_evaluations(vec![matched("e1", "x1", None, 5)])
            .await
            .unwrap();
        assert_eq!(created.len(), 1);
        assert!(store.unprocessed_events(10).await.unwrap().is_empty());
        // Evaluating again (another node, a crash before the flag) makes nothing new.
        let again = store
            .commit_evaluations(vec![matched("e1", "x2", None, 5)])
            .await
            .unwrap();
        assert!(again.is_empty());
        assert!(store.get_execution("x2").await.unwrap().is_none());
        let verdicts = store.evaluations_for_event("e1").await.unwrap();
        assert_eq!(verdicts.len(), 2);
        assert_eq!(verdicts[1].execution_id.as_deref(), Some("x1"));
        assert_eq!(verdicts[0].outcome, "not_matched");
    })
    .await;
}

#[tokio::test]
async fn an_event_without_an_enabled_rule_is_stored_processed() {
    each_backend(|store| async move {
        action(&store, "t.a", None).await;
        store.insert_event(&new_event("e1")).await.unwrap();
        rule(&store, "t.off", false).await;
        store.insert_event(&new_event("e2")).await.unwrap();
        assert!(store.unprocessed_events(10).await.unwrap().is_empty());
        rule(&store, "t.on", true).await;
        store.insert_event(&new_event("e3")).await.unwrap();
        let waiting: Vec<String> = store
            .unprocessed_events(10)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(waiting, ["e3"]);
        for id in ["e1", "e2"] {
            assert!(store.get_event(id).await.unwrap().unwrap().processed, "{id}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_debounced_burst_gathers_in_one_queued_execution() {
    each_backend(|store| async move {
        action(&store, "t.a", None).await;
        for i in 0..3 {
            store.insert_event(&new_event(&format!("e{i}"))).await.unwrap();
        }
        let c0 = store
            .commit_evaluations(vec![matched("e0", "x0", Some("k"), 100)])
            .await
            .unwrap();
        let c1 = store
            .commit_evaluations(vec![matched("e1", "x1", Some("k"), 200)])
            .await
            .unwrap();
        assert_eq!(c0[0].id, "x0");
        assert_eq!(c1[0].id, "x0", "the burst's execution takes the newer event");
        let row = store.get_execution("x0").await.unwrap().unwrap();
        assert_eq!((row.event_id.as_deref(), row.next_run_at), (Some("e1"), 200));
        assert!(store.get_execution("x1").await.unwrap().is_none());
        // Once it runs, the next event starts a new burst.
        store.claim_execution("w", 300, 10_000).await.unwrap().unwrap();
        let c2 = store
            .commit_evaluations(vec![matched("e2", "x2", Some("k"), 400)])
            .await
            .unwrap();
        assert_eq!(c2[0].id, "x2");
    })
    .await;
}
