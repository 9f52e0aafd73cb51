//! Every store test runs on SQLite and, when available, on PostgreSQL.

use inlet_core::time_id;
use inlet_store::test_support::{accepted_request, each_backend, log_row};
use inlet_store::*;

fn trigger(r: &str) -> NewTrigger {
    NewTrigger {
        trigger_ref: r.into(),
        pack: r.split('.').next().unwrap().into(),
        label: "Label".into(),
        description: "".into(),
        payload_schema: None,
    }
}

fn key(id: &str, hash: u8) -> NewKey {
    NewKey {
        id: id.into(),
        key_hash: vec![hash; 32],
        key_sealed: vec![1, 2, 3],
        prefix: "wh_abcde".into(),
    }
}

fn event(id: &str, trigger_ref: &str, delivery: Option<&str>) -> NewEvent {
    NewEvent {
        id: id.into(),
        trigger_ref: trigger_ref.into(),
        payload: r#"{"a":1}"#.into(),
        metadata: "{}".into(),
        source: "webhook".into(),
        delivery_id: delivery.map(Into::into),
        created_at: 1,
    }
}

#[tokio::test]
async fn trigger_crud_and_conflicts() {
    each_backend(|store| async move {
        store.create_trigger(&trigger("github.push")).await.unwrap();
        assert!(matches!(
            store.create_trigger(&trigger("github.push")).await,
            Err(StoreError::Conflict)
        ));
        let mut changed = trigger("github.push");
        changed.label = "Push".into();
        assert_eq!(store.update_trigger(&changed).await.unwrap().label, "Push");
        assert!(store.upsert_trigger(&trigger("stripe.paid")).await.unwrap());
        assert!(!store.upsert_trigger(&trigger("stripe.paid")).await.unwrap());
        assert_eq!(store.list_triggers().await.unwrap().len(), 2);
        store.delete_trigger("github.push").await.unwrap();
        assert!(matches!(
            store.delete_trigger("github.push").await,
            Err(StoreError::NotFound)
        ));
        assert!(store.get_trigger("github.push").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn enabling_twice_keeps_the_key_and_rotation_honours_grace() {
    each_backend(|store| async move {
        store.create_trigger(&trigger("github.push")).await.unwrap();
        let first = store.enable_webhook("github.push", "{}", &key("k1", 1)).await.unwrap();
        store.set_webhook_enabled("github.push", false).await.unwrap();
        let again = store.enable_webhook("github.push", "{}", &key("k2", 2)).await.unwrap();
        assert_eq!(first.id, again.id, "re-enabling keeps the key");
        assert!(store.receiver_target(&[2; 32]).await.unwrap().is_none());

        let now = inlet_core::clock::now_micros();
        store
            .rotate_key("github.push", &key("k3", 3), Some(now + 60_000_000))
            .await
            .unwrap();
        let old = store
            .receiver_target(&[1; 32])
            .await
            .unwrap()
            .expect("old key in grace");
        assert_eq!(old.expires_at, Some(now + 60_000_000));
        assert_eq!(store.live_keys("github.push", now).await.unwrap().len(), 2);
        store.rotate_key("github.push", &key("k4", 4), None).await.unwrap();
        assert!(store.receiver_target(&[1; 32]).await.unwrap().is_none());
        assert!(store.receiver_target(&[3; 32]).await.unwrap().is_none());
        let target = store.receiver_target(&[4; 32]).await.unwrap().unwrap();
        assert!(target.enabled);
        assert_eq!(target.trigger_ref, "github.push");
    })
    .await;
}

#[tokio::test]
async fn group_commit_records_events_and_logs() {
    each_backend(|store| async move {
        let mut tasks = Vec::new();
        for i in 0..50 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("{i:04}");
                store
                    .record_request(ReceiveRecord {
                        event: Some(event(&id, "a.b", None)),
                        log: log_row(&id, "a.b"),
                        key_id: None,
                    })
                    .await
                    .unwrap()
            }));
        }
        for task in tasks {
            let receipt = task.await.unwrap();
            assert!(!receipt.duplicate);
        }
        let events = store
            .list_events(&EventFilter {
                trigger_ref: Some("a.b".into()),
                before_id: None,
                limit: 100,
            })
            .await
            .unwrap();
        assert_eq!(events.len(), 50);
        assert_eq!(events[0].id, "0049", "newest first");
        let page = store
            .list_events(&EventFilter {
                trigger_ref: None,
                before_id: Some("0010".into()),
                limit: 5,
            })
            .await
            .unwrap();
        assert_eq!(
            page.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["0009", "0008", "0007", "0006", "0005"]
        );
        assert_eq!(
            store
                .list_request_log(&LogFilter {
                    limit: 100,
                    ..Default::default()
                })
                .await
                .unwrap()
                .len(),
            50
        );
    })
    .await;
}

#[tokio::test]
async fn received_events_wait_for_the_evaluator_only_when_their_trigger_has_an_enabled_rule() {
    each_backend(|store| async move {
        store
            .create_rule(&NewRule {
                rule_ref: "r.on".into(),
                pack: "t".into(),
                trigger_ref: "with.rule".into(),
                action_ref: "a".into(),
                enabled: true,
                spec: "{}".into(),
            })
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for (id, trigger_ref) in [("e1", "with.rule"), ("e2", "no.rule"), ("e3", "with.rule")] {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .record_request(ReceiveRecord {
                        event: Some(event(id, trigger_ref, None)),
                        log: log_row(id, trigger_ref),
                        key_id: None,
                    })
                    .await
                    .unwrap()
            }));
        }
        let awaiting: Vec<bool> = futures_util::future::join_all(tasks)
            .await
            .into_iter()
            .map(|receipt| receipt.unwrap().awaits_rules)
            .collect();
        assert_eq!(awaiting, [true, false, true]);
        for (id, processed) in [("e1", false), ("e2", true), ("e3", false)] {
            assert_eq!(store.get_event(id).await.unwrap().unwrap().processed, processed, "{id}");
        }
    })
    .await;
}

#[tokio::test]
async fn logged_bodies_read_back_whether_or_not_their_event_holds_them() {
    each_backend(|store| async move {
        // Accepted, body = payload (kept once, in the event); accepted with a
        // payload mapped from the body; a duplicate delivery; a rejection.
        let mapped = event("e2", "a.b", None);
        let mut cases = vec![
            (Some(event("e1", "a.b", Some("d1"))), log_row("l1", "a.b"), r#"{"a":1}"#),
            (Some(mapped), log_row("l2", "a.b"), r#"{"raw":true}"#),
            (Some(event("e3", "a.b", Some("d1"))), log_row("l3", "a.b"), r#"{"a":1}"#),
            (None, log_row("l4", "a.b"), "not json"),
        ];
        for (event, log, body) in &mut cases {
            log.body = body.as_bytes().to_vec();
            log.event_id = event.as_ref().map(|e| e.id.clone());
        }
        cases[3].1.outcome = "ip_denied".into();
        for (event, log, _) in cases.clone() {
            store
                .record_request(ReceiveRecord {
                    event,
                    log,
                    key_id: None,
                })
                .await
                .unwrap();
        }
        let listed = store
            .list_request_log(&LogFilter {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        let bodies: Vec<(&str, &str, &[u8])> = listed
            .iter()
            .map(|l| (l.id.as_str(), l.outcome.as_str(), l.body.as_slice()))
            .collect();
        assert_eq!(
            bodies,
            [
                ("l4", "ip_denied", &b"not json"[..]),
                ("l3", "duplicate", br#"{"a":1}"#),
                ("l2", "accepted", br#"{"raw":true}"#),
                ("l1", "accepted", br#"{"a":1}"#),
            ]
        );
        for (_, log, body) in &cases {
            let read = store.get_request_log(&log.id).await.unwrap().unwrap();
            assert_eq!(read.body, body.as_bytes(), "{}", log.id);
        }
        for (event_id, body) in [("e1", r#"{"a":1}"#), ("e2", r#"{"raw":true}"#)] {
            let (original, _) = store.original_request(event_id).await.unwrap().unwrap();
            assert_eq!(original, body.as_bytes(), "{event_id}");
        }
    })
    .await;
}

#[tokio::test]
async fn an_events_original_request_is_found_whether_or_not_its_log_row_has_the_events_id() {
    each_backend(|store| async move {
        // e1's row has e1's id (as the receiver writes them now), e2's row an
        // id of its own (as rows were written before), e3 repeats e1's
        // delivery and its row names e1.
        let cases = [
            ("e1", "e1", Some("d1"), r#"{"n":1}"#),
            ("e2", "l2", None, r#"{"n":2}"#),
            ("e3", "e3", Some("d1"), r#"{"n":3}"#),
        ];
        for (event_id, log_id, delivery, body) in cases {
            let record = accepted_request(event_id, log_id, delivery, body);
            store.record_request(record).await.unwrap();
        }
        for (event_id, body) in [("e1", r#"{"n":1}"#), ("e2", r#"{"n":2}"#)] {
            let (original, _) = store.original_request(event_id).await.unwrap().unwrap();
            assert_eq!(original, body.as_bytes(), "{event_id}");
        }
        assert!(
            store.original_request("e3").await.unwrap().is_none(),
            "e3 was never stored"
        );
    })
    .await;
}

#[tokio::test]
async fn concurrent_duplicate_deliveries_make_one_event() {
    each_backend(|store| async move {
        let mut tasks = Vec::new();
        for i in 0..20 {
            let store = store.clone();
            tasks.push(tokio::spawn(async move {
                let id = format!("e{i:03}");
                let record = accepted_request(&id, &id, Some("delivery-1"), r#"{"a":1}"#);
                store.record_request(record).await.unwrap()
            }));
        }
        let mut receipts = Vec::new();
        for task in tasks {
            receipts.push(task.await.unwrap());
        }
        assert_eq!(receipts.iter().filter(|r| !r.duplicate).count(), 1);
        let first = receipts.iter().find(|r| !r.duplicate).unwrap().event_id.clone();
        assert!(receipts.iter().all(|r| r.event_id == first));
        let logs = store
            .list_request_log(&LogFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(logs.iter().filter(|l| l.outcome == "duplicate").count(), 19);
        for log in &logs {
            assert_eq!(log.event_id, first, "{} points at the one event", log.id);
            let read = store.get_request_log(&log.id).await.unwrap().unwrap();
            assert_eq!(read.body, br#"{"a":1}"#, "{} keeps its body", log.id);
        }
    })
    .await;
}

#[tokio::test]
async fn a_received_request_marks_its_key_used() {
    each_backend(|store| async move {
        store.create_trigger(&trigger("a.b")).await.unwrap();
        let key = store.enable_webhook("a.b", "{}", &key("k1", 1)).await.unwrap();
        assert_eq!(store.webhook_usage("a.b").await.unwrap(), (0, None));
        store
            .record_request(ReceiveRecord {
                event: Some(event("e1", "a.b", None)),
                log: log_row("l1", "a.b"),
                key_id: Some(key.id),
            })
            .await
            .unwrap();
        let (events, last_used_at) = store.webhook_usage("a.b").await.unwrap();
        assert_eq!(events, 1);
        assert!(last_used_at.is_some());
    })
    .await;
}

#[tokio::test]
async fn the_postgres_writer_carries_on_when_the_server_closes_its_connection() {
    use sqlx::Connection;
    let Some(url) = inlet_store::test_support::fresh_postgres_database().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    let record = |id: &str| ReceiveRecord {
        event: Some(event(id, "a.b", None)),
        log: log_row(id, "a.b"),
        key_id: None,
    };
    store.record_request(record("e1")).await.unwrap();
    let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
    let closed: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert!(!closed.is_empty(), "the store's connections were found");
    let receipt = store
        .record_request(record("e2"))
        .await
        .expect("committed on a new connection");
    assert_eq!(receipt.event_id.as_deref(), Some("e2"));
    assert_eq!(store.webhook_usage("a.b").await.unwrap().0, 2);
    store.close().await;
}

#[tokio::test]
async fn tokens_are_found_by_digest_until_revoked() {
    each_backend(|store| async move {
        store.create_token("t1", "admin", &[9; 32], "inlet_ab").await.unwrap();
        assert_eq!(store.count_active_tokens().await.unwrap(), 1);
        assert_eq!(store.find_token(&[9; 32]).await.unwrap().unwrap().name, "admin");
        store.revoke_token("admin").await.unwrap();
        assert!(store.find_token(&[9; 32]).await.unwrap().is_none());
        assert!(matches!(store.revoke_token("nope").await, Err(StoreError::NotFound)));
    })
    .await;
}

#[tokio::test]
async fn request_log_is_purged_past_retention() {
    each_backend(|store| async move {
        let cutoff = 1_764_150_000_000_000;
        // Ten seconds and a millisecond before the cutoff, and a millisecond after it.
        let [older, old, new] = [-10_000_000, -1_000, 1_000].map(|d| (time_id::made_at(cutoff + d), cutoff + d));
        for (id, received_at) in [&old, &new, &older] {
            let mut log = log_row(id, "a.b");
            log.received_at = *received_at;
            store
                .record_request(ReceiveRecord {
                    event: None,
                    log,
                    key_id: None,
                })
                .await
                .unwrap();
        }
        let left = || async {
            let all = LogFilter {
                limit: 10,
                ..Default::default()
            };
            let rows = store.list_request_log(&all).await.unwrap();
            rows.into_iter().map(|row| row.id).collect::<Vec<_>>()
        };
        // The oldest first, as many as asked.
        assert_eq!(store.purge_request_log(cutoff, 1).await.unwrap(), 1);
        assert_eq!(left().await, [new.0.clone(), old.0]);
        assert_eq!(store.purge_request_log(cutoff, 10).await.unwrap(), 1);
        assert_eq!(store.purge_request_log(cutoff, 10).await.unwrap(), 0);
        assert_eq!(left().await, [new.0]);
    })
    .await;
}

#[tokio::test]
async fn under_unbroken_writes_the_sqlite_log_starts_over_instead_of_growing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&inlet_store::test_support::sqlite_url(dir.path()))
        .await
        .unwrap();
    let payload = "x".repeat(2_000);
    let until = std::time::Instant::now() + std::time::Duration::from_millis(2_500);
    // Writers that never pause keep a commit going at every moment, so no
    // checkpoint of the log's own thread ever finds it idle.
    let mut writers = Vec::new();
    for w in 0..16 {
        let (store, payload) = (store.clone(), payload.clone());
        writers.push(tokio::spawn(async move {
            let mut written = 0usize;
            while std::time::Instant::now() < until {
                let id = format!("{w:02}-{written:06}");
                let mut event = event(&id, "t.x", None);
                event.payload = payload.clone();
                store
                    .record_request(ReceiveRecord {
                        event: Some(event),
                        log: log_row(&id, "t.x"),
                        key_id: None,
                    })
                    .await
                    .unwrap();
                written += 1;
            }
            written
        }));
    }
    let mut events = 0;
    for writer in writers {
        events += writer.await.unwrap();
    }
    let log = std::fs::metadata(dir.path().join("inlet.db-wal")).unwrap().len() as usize;
    let payload_bytes = events * payload.len();
    store.close().await;
    assert!(events > 1_000, "only {events} events were written");
    // Every commit writes its pages to the log (about ten times the payload
    // here, in small batches): a log that never started over is far larger.
    assert!(
        log < payload_bytes,
        "the log holds {log} bytes after {payload_bytes} bytes of payload: it grew instead of starting over"
    );
}
