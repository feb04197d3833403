//! The spool's contract, checked on both backends: the SQLite file and a
//! real PostgreSQL database (`common::pg`; skipped loudly without one).
//! Each test runs the same steps against each store; the last ones are
//! about the SQLite file itself (reopening it, a damaged file, its WAL).

mod common;

use hookrelay::config::{StoreConfig, StoreKind};
use hookrelay::secret::Secret;
use hookrelay::store::{
    now_ms, Attempted, Completion, Inserted, NewDelivery, NewEvent, Routing, Selector, Store,
    StoreError, ThreadRoot, Unrouted,
};
use std::time::Duration;

/// Each backend with a fresh, empty spool (the temp dir lives as long).
async fn backends(max_pending: u64) -> Vec<(&'static str, Store, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = StoreConfig {
        path: dir.path().join("spool.db"),
        max_pending,
        ..StoreConfig::default()
    };
    let mut out = vec![(
        "sqlite",
        Store::open_now(&sqlite, Duration::from_secs(5))
            .await
            .unwrap(),
        dir,
    )];
    if let Some(server) = common::pg::server() {
        let pg = StoreConfig {
            kind: StoreKind::Postgres,
            url: Some(Secret::new(server.database().await)),
            max_pending,
            ..StoreConfig::default()
        };
        let store = Store::open_now(&pg, Duration::from_secs(30)).await.unwrap();
        out.push(("postgres", store, tempfile::tempdir().unwrap()));
    }
    out
}

fn event(body: &str) -> NewEvent {
    use sha2::Digest;
    NewEvent {
        hook: "soc".into(),
        body: body.as_bytes().to_vec(),
        sha256: sha2::Sha256::digest(body.as_bytes()).into(),
        kind: "alert".into(),
        action: "created".into(),
        short_id: Some("ALx".into()),
        dedup_window_ms: 600_000,
        message_id: None,
        alert_uuid: None,
        client: Some("192.0.2.7".into()),
        auth: Some("Standard Webhooks signature verified".into()),
    }
}

/// A delivery's outcome: delivered, HTTP 200, in 1 ms, outside a thread.
fn delivered(id: i64) -> Completion {
    Completion::Delivered {
        id,
        status: 200,
        duration_ms: 1,
        thread: None,
    }
}

fn routing(event_id: i64, dests: &[&str], dedup: Option<(&str, i64)>) -> Routing {
    Routing {
        event_id,
        enrichment: "ok".into(),
        alert_json: Some("{}".into()),
        routes: vec!["r".into()],
        deliveries: dests
            .iter()
            .map(|d| NewDelivery {
                failed: None,
                route: "r".into(),
                destination: d.to_string(),
                payload: format!("{{\"to\":\"{d}\"}}"),
                dedup: dedup.map(|(k, w)| (k.to_owned(), w)),
                summary: None,
                thread_key: None,
                muted: None,
                first: None,
                in_flight_until: None,
            })
            .collect(),
        title: Some(format!("Title of event {event_id}")),
        journey: Default::default(),
    }
}

async fn insert(store: &Store, body: &str) -> Inserted {
    store.insert_event(event(body)).await.unwrap()
}

#[tokio::test]
async fn sender_retries_are_recognised_and_max_pending_holds() {
    for (name, store, _dir) in backends(2).await {
        let a = insert(&store, "a").await;
        let again = insert(&store, "a").await;
        assert!(
            !a.duplicate && again.duplicate && a.id == again.id,
            "{name}"
        );
        insert(&store, "b").await;
        assert!(
            matches!(
                store.insert_event(event("c")).await,
                Err(StoreError::Full(_))
            ),
            "{name}: full"
        );
        // A retry is still recognised when full.
        assert!(insert(&store, "a").await.duplicate, "{name}");
        let due = store
            .record_routing(routing(a.id, &["x"], None))
            .await
            .unwrap()
            .unwrap();
        store.complete(delivered(due[0].id)).await.unwrap();
        assert!(!insert(&store, "c").await.duplicate, "{name}: room again");
    }
}

#[tokio::test]
async fn routing_happens_once_and_outcomes_are_kept() {
    for (name, store, _dir) in backends(100).await {
        let ev = insert(&store, "a").await;
        let unrouted = insert(&store, "b").await;
        let due = store
            .record_routing(routing(ev.id, &["x", "y"], None))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(due.len(), 2, "{name}");
        assert!(due[0].id < due[1].id && due[0].destination == "x", "{name}");
        assert!(
            store
                .record_routing(routing(ev.id, &["x"], None))
                .await
                .unwrap()
                .is_none(),
            "{name}: routed twice"
        );
        assert!(
            matches!(
                store.record_routing(routing(999_999, &["x"], None)).await,
                Err(StoreError::NotFound(_))
            ),
            "{name}"
        );
        let unrouted_ids: Vec<i64> = store
            .unrouted_after(0, 10, Unrouted::Backlog)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(unrouted_ids, vec![unrouted.id], "{name}");

        // A retry comes due later; a dead letter is listed and replayed.
        store
            .complete(Completion::Retry {
                id: due[0].id,
                status: Some(503),
                error: "busy".into(),
                next_attempt_at: now_ms() + 60_000,
                duration_ms: 2,
            })
            .await
            .unwrap();
        assert!(
            store.due("x", now_ms(), 0, 10).await.unwrap().is_empty(),
            "{name}"
        );
        let later = store.due("x", now_ms() + 61_000, 0, 10).await.unwrap();
        assert_eq!(later.len(), 1, "{name}");
        assert_eq!(later[0].attempts, 1, "{name}");
        store
            .complete(Completion::Dead {
                id: due[1].id,
                status: Some(400),
                error: "invalid_payload".into(),
                duration_ms: 3,
            })
            .await
            .unwrap();
        let dead = store.dead_letters(None).await.unwrap();
        assert_eq!(dead.len(), 1, "{name}");
        assert_eq!(
            dead[0].last_error.as_deref(),
            Some("invalid_payload"),
            "{name}"
        );
        assert_eq!(dead[0].short_id.as_deref(), Some("ALx"), "{name}");
        let events = store.events_since(0, None, None).await.unwrap();
        let states: Vec<(i64, &str)> = events.iter().map(|e| (e.id, e.state.as_str())).collect();
        assert_eq!(
            states,
            vec![(unrouted.id, "received"), (ev.id, "failed")],
            "{name}"
        );
        assert_eq!(
            store.replay(Selector::Ids(vec![dead[0].id])).await.unwrap(),
            1,
            "{name}"
        );
        assert_eq!(
            store.due("y", now_ms() + 1, 0, 10).await.unwrap().len(),
            1,
            "{name}"
        );
        let detail = store.event_detail(ev.id).await.unwrap().unwrap();
        assert_eq!(detail.deliveries.len(), 2, "{name}");
        assert_eq!(detail.deliveries[0].attempts.len(), 1, "{name}");
        assert_eq!(detail.enrichment.as_deref(), Some("ok"), "{name}");
        let source = store.render_source(due[1].id).await.unwrap().unwrap();
        assert_eq!(
            (source.hook.as_str(), source.route.as_str()),
            ("soc", "r"),
            "{name}"
        );
    }
}

/// A replayed dead letter gets a fresh `max_age` but keeps its message id
/// (a Matrix transaction id, a `webhook-id`): a replay of a send whose
/// answer was lost, though it landed, must be recognised as the same
/// message by the receiver.
#[tokio::test]
async fn a_replayed_dead_letter_keeps_its_message_id() {
    use hookrelay::delivery::message_id;
    for (name, store, _dir) in backends(100).await {
        let ev = insert(&store, "m").await;
        let due = store
            .record_routing(routing(ev.id, &["mx"], None))
            .await
            .unwrap()
            .unwrap();
        let first = message_id(&due[0]);
        let from_scan = store.due("mx", now_ms() + 1, 0, 10).await.unwrap();
        assert_eq!(message_id(&from_scan[0]), first, "{name}: the scan's id");
        store
            .complete(Completion::Dead {
                id: due[0].id,
                status: Some(403),
                error: "M_FORBIDDEN".into(),
                duration_ms: 1,
            })
            .await
            .unwrap();
        // The replay happens in a later millisecond than the acceptance.
        while now_ms() <= due[0].created_at {
            std::hint::spin_loop();
        }
        assert_eq!(
            store.replay(Selector::Ids(vec![due[0].id])).await.unwrap(),
            1
        );
        let replayed = store.due("mx", now_ms() + 1, 0, 10).await.unwrap();
        assert_eq!(replayed.len(), 1, "{name}");
        assert!(
            replayed[0].created_at > due[0].created_at,
            "{name}: a replay restarts max_age"
        );
        assert_eq!(
            message_id(&replayed[0]),
            first,
            "{name}: a replay keeps the message id"
        );
    }
}

/// Deliveries the pipeline sent before recording their routing: the
/// routing stores each with its first attempt (delivered, or pending for
/// its retry), hands none of them to a worker, and still creates the
/// others as pending.
#[tokio::test]
async fn deliveries_sent_before_their_routing_are_stored_with_their_first_attempt() {
    for (name, store, _dir) in backends(100).await {
        let ev = insert(&store, "sent first").await;
        let mut r = routing(ev.id, &["x", "y", "z", "w"], None);
        r.deliveries[0].first = Some(Attempted::Delivered {
            status: 202,
            duration_ms: 4,
            thread: None,
        });
        let retry_at = now_ms() + 60_000;
        r.deliveries[1].first = Some(Attempted::Retry {
            status: Some(503),
            error: "busy".into(),
            next_attempt_at: retry_at,
            duration_ms: 5,
        });
        // Sent and not answered yet: pending, due only once its send
        // would have timed out.
        let in_flight_until = now_ms() + 30_000;
        r.deliveries[3].in_flight_until = Some(in_flight_until);
        let due = store.record_routing(r).await.unwrap().unwrap();
        let handed: Vec<&str> = due.iter().map(|d| d.destination.as_str()).collect();
        assert_eq!(handed, ["z", "w"], "{name}: the ones without an outcome");
        assert!(
            store.due("w", now_ms(), 0, 10).await.unwrap().is_empty(),
            "{name}"
        );
        assert_eq!(
            store.due("w", in_flight_until, 0, 10).await.unwrap().len(),
            1,
            "{name}: sent again if its answer is never recorded"
        );

        // The retry comes due at its time, with its attempt counted.
        assert!(
            store.due("y", now_ms(), 0, 10).await.unwrap().is_empty(),
            "{name}"
        );
        let later = store.due("y", retry_at + 1, 0, 10).await.unwrap();
        assert_eq!(later.len(), 1, "{name}");
        assert_eq!(later[0].attempts, 1, "{name}");
        assert!(
            store
                .due("x", retry_at + 1, 0, 10)
                .await
                .unwrap()
                .is_empty(),
            "{name}"
        );
        let mut depths: Vec<(String, i64)> = store
            .queue_depths()
            .await
            .unwrap()
            .into_iter()
            .map(|q| (q.destination, q.pending))
            .collect();
        depths.sort();
        assert_eq!(
            depths,
            [
                ("w".to_owned(), 1),
                ("y".to_owned(), 1),
                ("z".to_owned(), 1)
            ],
            "{name}"
        );

        // The console shows each one's history.
        let detail = store.event_detail(ev.id).await.unwrap().unwrap();
        let seen: Vec<(&str, &str, usize, Option<&str>)> = detail
            .deliveries
            .iter()
            .map(|d| {
                (
                    d.destination.as_str(),
                    d.state.as_str(),
                    d.attempts.len(),
                    d.last_error.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            [
                ("x", "delivered", 1, None),
                ("y", "pending", 1, Some("busy")),
                ("z", "pending", 0, None),
                ("w", "pending", 0, None),
            ],
            "{name}"
        );
        let x = &detail.deliveries[0];
        assert_eq!((x.attempts[0].1, x.attempts[0].3), (Some(202), 4), "{name}");
        assert_eq!(
            x.payload, "{\"to\":\"x\"}",
            "{name}: the payload sent is kept"
        );
        let y = &detail.deliveries[1];
        assert_eq!(
            (y.attempts[0].1, y.attempts[0].2.as_deref()),
            (Some(503), Some("busy")),
            "{name}"
        );

        // Its retry's outcome is recorded like any other.
        store.complete(delivered(later[0].id)).await.unwrap();
        let detail = store.event_detail(ev.id).await.unwrap().unwrap();
        assert_eq!(detail.deliveries[1].state.as_str(), "delivered", "{name}");
        assert_eq!(detail.deliveries[1].attempts.len(), 2, "{name}");
    }
}

/// A sender retrying at once, before its first attempt was answered:
/// among bodies stored at the same moment (one batch on PostgreSQL), each
/// body is stored once and every repeat answers with its id.
#[tokio::test]
async fn repeats_among_events_stored_at_once_are_recognised() {
    for (name, store, _dir) in backends(1_000).await {
        let before = insert(&store, "stored before").await;
        let bodies = [
            "a",
            "b",
            "a",
            "stored before",
            "c",
            "a",
            "b",
            "d",
            "stored before",
        ];
        let got = futures_util::future::join_all(bodies.iter().map(|b| insert(&store, b))).await;
        let mut ids = std::collections::HashMap::new();
        for (body, inserted) in bodies.iter().zip(&got) {
            assert_eq!(
                *ids.entry(*body).or_insert(inserted.id),
                inserted.id,
                "{name}: {body} stored twice"
            );
        }
        assert_eq!(ids["stored before"], before.id, "{name}");
        let fresh = got.iter().filter(|i| !i.duplicate).count();
        assert_eq!(fresh, 4, "{name}: a, b, c and d are new, the rest repeats");
        let events = store.events_since(0, None, None).await.unwrap();
        assert_eq!(events.len(), 5, "{name}");
    }
}

/// Two routings of one event at once (a lease taken over while the first
/// was in flight): one creates the deliveries, the other finds it routed.
#[tokio::test]
async fn an_event_routed_twice_at_once_is_routed_once() {
    for (name, store, _dir) in backends(1_000).await {
        let ev = insert(&store, "twice").await;
        let other = insert(&store, "other").await;
        let (a, b, c) = tokio::join!(
            store.record_routing(routing(ev.id, &["x", "y"], None)),
            store.record_routing(routing(ev.id, &["x", "y"], None)),
            store.record_routing(routing(other.id, &["x"], None)),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        assert!(a.is_some() != b.is_some(), "{name}: routed exactly once");
        let due = a.or(b).unwrap();
        assert_eq!(due.len(), 2, "{name}");
        assert!(due.iter().all(|d| d.event_id == ev.id), "{name}");
        assert_eq!(c.unwrap().unwrap().len(), 1, "{name}");
        let detail = store.event_detail(ev.id).await.unwrap().unwrap();
        assert_eq!(detail.deliveries.len(), 2, "{name}: no delivery made twice");
    }
}

/// Routings recorded at once (on PostgreSQL, in one statement): each
/// event keeps its own deliveries and first attempts, whatever
/// the others hold, and an event without deliveries is routed too.
#[tokio::test]
async fn routings_recorded_at_once_keep_each_events_deliveries() {
    for (name, store, _dir) in backends(1_000).await {
        let bodies: Vec<String> = (0..30).map(|i| format!("at once {i}")).collect();
        let events = futures_util::future::join_all(bodies.iter().map(|b| insert(&store, b))).await;
        let names = ["d0", "d1", "d2"];
        let routings = events.iter().enumerate().map(|(i, ev)| {
            let mut r = routing(ev.id, &names[..i % 4], None);
            if i % 2 == 1 {
                r.deliveries[0].first = Some(Attempted::Delivered {
                    status: 200,
                    duration_ms: 1,
                    thread: None,
                });
            }
            store.record_routing(r)
        });
        let routed = futures_util::future::join_all(routings).await;
        for (i, (ev, due)) in events.iter().zip(routed).enumerate() {
            let due = due.unwrap().expect("routed once");
            let handed: Vec<(i64, &str)> = due
                .iter()
                .map(|d| (d.event_id, d.destination.as_str()))
                .collect();
            let skip = usize::from(i % 2 == 1);
            let expected: Vec<(i64, &str)> = names[..i % 4]
                .iter()
                .skip(skip)
                .map(|d| (ev.id, *d))
                .collect();
            assert_eq!(handed, expected, "{name}: event {i}");
            let detail = store.event_detail(ev.id).await.unwrap().unwrap();
            assert!(detail.routed_at.is_some(), "{name}: event {i}");
            let mut kept: Vec<(String, usize)> = detail
                .deliveries
                .iter()
                .map(|d| (d.destination.clone(), d.attempts.len()))
                .collect();
            kept.sort();
            let expected: Vec<(String, usize)> = names[..i % 4]
                .iter()
                .enumerate()
                .map(|(k, d)| (d.to_string(), usize::from(k == 0 && skip == 1)))
                .collect();
            assert_eq!(kept, expected, "{name}: event {i}");
        }
    }
}

/// Writes made at once are committed together on PostgreSQL: one the
/// database refuses (here a check the test adds to it) must not fail, or
/// lose, the others.
#[tokio::test]
async fn a_refused_write_fails_alone_among_writes_made_at_once() {
    let Some(server) = common::pg::server() else {
        return;
    };
    let url = server.database().await;
    let config = StoreConfig {
        kind: StoreKind::Postgres,
        url: Some(Secret::new(url.clone())),
        max_pending: 1_000,
        ..StoreConfig::default()
    };
    let store = Store::open_now(&config, Duration::from_secs(30))
        .await
        .unwrap();
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute(
            "ALTER TABLE event_facts ADD CONSTRAINT refused CHECK (title IS DISTINCT FROM 'refused')",
        )
        .await
        .unwrap();

    let bodies: Vec<String> = (0..40).map(|i| format!("concurrent {i}")).collect();
    let inserted = futures_util::future::join_all(bodies.iter().map(|b| insert(&store, b))).await;
    let routings = inserted.iter().enumerate().map(|(i, ev)| {
        let mut r = routing(ev.id, &["x"], None);
        if i == 7 {
            r.title = Some("refused".into());
        }
        store.record_routing(r)
    });
    // New events arrive meanwhile: the batch the refused routing is in
    // holds inserts too, and they are retried alone with it.
    let late_bodies: Vec<String> = (0..10).map(|i| format!("late {i}")).collect();
    let (routed, late) = futures_util::future::join(
        futures_util::future::join_all(routings),
        futures_util::future::join_all(late_bodies.iter().map(|b| store.insert_event(event(b)))),
    )
    .await;
    for l in &late {
        assert!(!l.as_ref().unwrap().duplicate);
    }
    for (i, r) in routed.iter().enumerate() {
        match r {
            Ok(Some(due)) => assert_eq!(due.len(), 1, "routing {i}"),
            Err(StoreError::Unavailable(why)) if i == 7 => {
                assert!(why.contains("refused"), "{why}")
            }
            other => panic!("routing {i}: {:?}", other.as_ref().map(|_| ())),
        }
    }
    // Outcomes recorded at once, one of which the database refuses too.
    client
        .batch_execute(
            "ALTER TABLE attempts ADD CONSTRAINT refused_too CHECK (error IS DISTINCT FROM 'refused')",
        )
        .await
        .unwrap();
    let due: Vec<i64> = routed.iter().flatten().flatten().map(|d| d[0].id).collect();
    let completions = due.iter().enumerate().map(|(i, id)| {
        store.complete(if i == 3 {
            Completion::Retry {
                id: *id,
                status: Some(503),
                error: "refused".into(),
                next_attempt_at: now_ms(),
                duration_ms: 1,
            }
        } else {
            delivered(*id)
        })
    });
    for (i, done) in futures_util::future::join_all(completions)
        .await
        .into_iter()
        .enumerate()
    {
        match done {
            Err(StoreError::Unavailable(why)) if i == 3 => {
                assert!(why.contains("refused"), "{why}")
            }
            other => other.unwrap(),
        }
    }
    client
        .batch_execute("ALTER TABLE attempts DROP CONSTRAINT refused_too")
        .await
        .unwrap();
    store.complete(delivered(due[3])).await.unwrap();
    let events = store.events_since(0, None, None).await.unwrap();
    assert_eq!(events.len() - late.len(), 40, "every insert kept once");
    let delivered = events.iter().filter(|e| e.state == "delivered").count();
    assert_eq!(delivered, 39);
}

/// PostgreSQL's text cannot hold a NUL character, SQLite's can: an alert
/// whose title or status has one, a webhook's short id, a chat service's
/// error, an action's detail, a silence's comment must still be stored
/// (and not fail every attempt) on both.
#[tokio::test]
async fn a_nul_character_in_text_is_stored_on_both_backends() {
    for (name, store, _dir) in backends(100).await {
        let mut e = event("nul");
        e.short_id = Some("AL\0x".into());
        let ev = store.insert_event(e).await.unwrap();
        let mut r = routing(ev.id, &["x"], None);
        r.title = Some("a title with a \0 in it".into());
        let due = store.record_routing(r).await.unwrap().unwrap();
        store
            .complete(Completion::Retry {
                id: due[0].id,
                status: Some(400),
                error: "the service said \0".into(),
                next_attempt_at: now_ms(),
                duration_ms: 1,
            })
            .await
            .unwrap();
        let detail = store.event_detail(ev.id).await.unwrap().unwrap();
        assert_eq!(detail.deliveries[0].attempts.len(), 1, "{name}");

        // A first attempt made before its routing was recorded, whose
        // error carries one.
        let sent = insert(&store, "nul, sent first").await;
        let mut r = routing(sent.id, &["x"], None);
        r.deliveries[0].first = Some(Attempted::Dead {
            status: Some(400),
            error: "invalid \0 payload".into(),
            duration_ms: 1,
        });
        store.record_routing(r).await.unwrap().unwrap();
        let detail = store.event_detail(sent.id).await.unwrap().unwrap();
        assert_eq!(detail.deliveries[0].state.as_str(), "dead", "{name}");
        assert_eq!(detail.deliveries[0].attempts.len(), 1, "{name}");

        // An alert's status on its thread root, an action's detail, a
        // silence's comment.
        let root = ThreadRoot {
            channel: "C1".into(),
            ts: "1.2".into(),
            status: Some("Ongoing\0".into()),
            urgency: Some(40),
        };
        store.set_thread("sk", "A", root).await.unwrap();
        assert!(
            store.thread_root("sk", "A").await.unwrap().is_some(),
            "{name}"
        );
        let action = hookrelay::store::ActionRecord {
            at: now_ms(),
            alert: "A".into(),
            action: "close".into(),
            destination: "teams".into(),
            client: "slack:@a\0b".into(),
            result: "pending".into(),
            detail: Some("the API said \0".into()),
        };
        let id = store.start_action(action, None).await.unwrap().unwrap();
        store
            .finish_action(id, "failed", Some("still \0".into()))
            .await
            .unwrap();
        assert_eq!(store.actions_for("A").await.unwrap().len(), 1, "{name}");
        let silence = hookrelay::store::Silence {
            id: 0,
            created_at: now_ms(),
            ends_at: now_ms() + 60_000,
            matcher: "rule = [\"x\"]".into(),
            comment: "tuning \0".into(),
            author: "alice".into(),
            expired_at: None,
        };
        store.add_silence(silence).await.unwrap();
        assert_eq!(store.silences(None).await.unwrap().len(), 1, "{name}");
    }
}

#[tokio::test]
async fn route_dedup_windows_skip_repeats() {
    for (name, store, _dir) in backends(100).await {
        let a = insert(&store, "a").await;
        let b = insert(&store, "b").await;
        let c = insert(&store, "c").await;
        let first = store
            .record_routing(routing(a.id, &["x"], Some(("k", 60_000))))
            .await
            .unwrap()
            .unwrap();
        let second = store
            .record_routing(routing(b.id, &["x"], Some(("k", 60_000))))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((first.len(), second.len()), (1, 0), "{name}");
        let detail = store.event_detail(b.id).await.unwrap().unwrap();
        assert_eq!(detail.deliveries[0].state.as_str(), "skipped", "{name}");
        assert!(
            detail.deliveries[0]
                .last_error
                .as_deref()
                .unwrap_or("")
                .contains("dedup window"),
            "{name}"
        );
        // Another key, or a closed window, goes out.
        let third = store
            .record_routing(routing(c.id, &["x"], Some(("other", 0))))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(third.len(), 1, "{name}");
    }
}

#[tokio::test]
async fn digests_replace_held_deliveries_and_housekeeping_keeps_pending_work() {
    for (name, store, _dir) in backends(100).await {
        let mut held = Vec::new();
        for body in ["a", "b", "c"] {
            let ev = insert(&store, body).await;
            let due = store
                .record_routing(routing(ev.id, &["x"], None))
                .await
                .unwrap()
                .unwrap();
            store.hold(vec![due[0].id]).await.unwrap();
            held.push(due[0].id);
        }
        let listed: Vec<i64> = store
            .held("x", 10)
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.0)
            .collect();
        assert_eq!(listed, held, "{name}");
        let digest = store
            .digest(hookrelay::store::NewDigest {
                destination: "x".into(),
                payload: "{\"digest\":3}".into(),
                held: held.clone(),
            })
            .await
            .unwrap();
        assert!(digest.digest, "{name}");
        // One more event, still pending: housekeeping keeps it.
        let pending = insert(&store, "d").await;
        store
            .record_routing(routing(pending.id, &["x"], None))
            .await
            .unwrap();
        assert!(store.held("x", 10).await.unwrap().is_empty(), "{name}");
        store.complete(delivered(digest.id)).await.unwrap();
        // Everything is finished: a zero retention prunes it all.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let removed = store.housekeeping(Duration::ZERO).await.unwrap();
        assert_eq!(removed, 4, "{name}: three events and the digest's");
        let left: Vec<i64> = store
            .events_since(0, None, None)
            .await
            .unwrap()
            .iter()
            .map(|e| e.id)
            .collect();
        assert_eq!(left, vec![pending.id], "{name}: the pending one stays");
    }
}

#[tokio::test]
async fn silence_clocks_announce_once() {
    for (name, store, _dir) in backends(100).await {
        let t0 = now_ms();
        let start = store.clock_check("soc", t0, 1_000).await.unwrap();
        assert!(
            !start.went_silent && start.clock.last_event_at == t0,
            "{name}"
        );
        assert!(
            !store
                .clock_check("soc", t0 + 500, 1_000)
                .await
                .unwrap()
                .went_silent,
            "{name}"
        );
        let quiet = store.clock_check("soc", t0 + 1_000, 1_000).await.unwrap();
        assert!(quiet.went_silent, "{name}");
        // Announced once, whoever asks next.
        assert!(
            !store
                .clock_check("soc", t0 + 2_000, 1_000)
                .await
                .unwrap()
                .went_silent,
            "{name}"
        );
        // The first event after it ends the silence, once.
        assert_eq!(
            store.clock_seen("soc", t0 + 3_000).await.unwrap(),
            Some(t0),
            "{name}"
        );
        assert_eq!(
            store.clock_seen("soc", t0 + 3_500).await.unwrap(),
            None,
            "{name}"
        );
        // An older report changes nothing.
        assert_eq!(
            store.clock_seen("soc", t0 + 100).await.unwrap(),
            None,
            "{name}"
        );
        let now = store.clock_check("soc", t0 + 3_600, 1_000).await.unwrap();
        assert_eq!(now.clock.last_event_at, t0 + 3_500, "{name}");
    }
}

// SQLite only: the file itself.

fn config(dir: &tempfile::TempDir, max_pending: u64) -> StoreConfig {
    StoreConfig {
        path: dir.path().join("spool.db"),
        max_pending,
        ..StoreConfig::default()
    }
}

#[tokio::test]
async fn lifecycle_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, 100);
    let (ev, due) = {
        let store = Store::open(&cfg).unwrap();
        let ev = store.insert_event(event("a")).await.unwrap();
        let unrouted = store.insert_event(event("b")).await.unwrap();
        let due = store
            .record_routing(routing(ev.id, &["x", "y"], None))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(due.len(), 2);
        // Routing twice (a resumed event) creates nothing.
        assert!(store
            .record_routing(routing(ev.id, &["x"], None))
            .await
            .unwrap()
            .is_none());
        store
            .complete(Completion::Dead {
                id: due[1].id,
                status: Some(400),
                error: "invalid_payload".into(),
                duration_ms: 3,
            })
            .await
            .unwrap();
        assert_eq!(
            store
                .unrouted_after(0, 10, Unrouted::Backlog)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.0)
                .collect::<Vec<_>>(),
            vec![unrouted.id]
        );
        (ev, due)
    };
    let store = Store::open(&cfg).unwrap();
    let pending = store.due("x", now_ms() + 1, 0, 10).await.unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].id, due[0].id);
    let dead = store.dead_letters(None).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].last_error.as_deref(), Some("invalid_payload"));
    assert_eq!(
        store.replay(Selector::Ids(vec![dead[0].id])).await.unwrap(),
        1
    );
    let y = store.due("y", now_ms() + 1, 0, 10).await.unwrap();
    assert_eq!(y.len(), 1);
    let detail = store.event_detail(ev.id).await.unwrap().unwrap();
    assert_eq!(detail.deliveries.len(), 2);
    assert_eq!(detail.deliveries[1].attempts.len(), 1);
}

/// The writer recognises sender retries from its own record of recent
/// bodies; after a restart that record is read back from the file.
#[tokio::test]
async fn sender_retries_are_recognised_after_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, 100);
    let a = {
        let store = Store::open(&cfg).unwrap();
        let a = insert(&store, "a").await;
        insert(&store, "b").await;
        a
    };
    let store = Store::open(&cfg).unwrap();
    let again = insert(&store, "a").await;
    assert!(again.duplicate && again.id == a.id, "{again:?} vs {a:?}");
    assert!(!insert(&store, "c").await.duplicate);
    // The same body on another hook is another event.
    let other = store
        .insert_event(NewEvent {
            hook: "other".into(),
            ..event("a")
        })
        .await
        .unwrap();
    assert!(!other.duplicate && other.id != a.id);
    // Outside the window it is a new event too.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let late = store
        .insert_event(NewEvent {
            dedup_window_ms: 2,
            ..event("b")
        })
        .await
        .unwrap();
    assert!(!late.duplicate);
}

#[test]
fn garbage_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(&dir, 10);
    std::fs::write(&cfg.path, vec![0x42u8; 8192]).unwrap();
    let err = Store::open(&cfg).err().unwrap().to_string();
    assert!(
        err.contains("store.path") && err.contains("not a hookrelay database"),
        "{err}"
    );
    let missing = StoreConfig {
        path: dir.path().join("nope/spool.db"),
        ..StoreConfig::default()
    };
    let err = Store::open(&missing).err().unwrap().to_string();
    assert!(err.contains("does not exist"), "{err}");
}

/// Under a sustained stream of writes the WAL stays bounded: the writer's
/// own checkpoint finishes what the background thread copied, and the WAL
/// starts over (a passive checkpoint alone never catches up, and the WAL
/// grew to hundreds of MB in a benchmark).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wal_stays_bounded_under_sustained_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&StoreConfig {
        sync: hookrelay::config::SyncMode::Normal,
        ..config(&dir, 1_000_000)
    })
    .unwrap();
    let body = "x".repeat(4000);
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..64 {
        let store = store.clone();
        let body = body.clone();
        tasks.spawn(async move {
            for n in 0..200 {
                store
                    .insert_event(event(&format!("{t}-{n}-{body}")))
                    .await
                    .unwrap();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let wal = dir.path().join("spool.db-wal");
    let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    // 12,800 events of 4 KB: ~100 MB written; the WAL restarts at ~16 MB
    // and is truncated back to 64 MB at most.
    assert!(size <= 64 << 20, "WAL is {} MB", size >> 20);
}

/// `rate` and `max_per_minute` mean the same on both stores: at most N
/// sends in any window of the period (a sliding window), and a send the
/// rate refuses uses up no minute slot.
#[tokio::test]
async fn pacing_is_a_sliding_window_and_a_refusal_takes_no_slot() {
    use hookrelay::config::Rate;
    use hookrelay::coord::{Coordinator, Limits, Pace, Sending};
    let per = Duration::from_millis(400);
    let limits = Limits {
        max_per_minute: Some(4),
        rate: Some(Rate { count: 2, per }),
    };
    for (name, store, _dir) in backends(1000).await {
        let coord = Coordinator::for_store(&store);
        let pace = || coord.pace("chat", limits, Sending::Message);
        assert_eq!(pace().await.unwrap(), Pace::Go, "{name}");
        assert_eq!(pace().await.unwrap(), Pace::Go, "{name}");
        // Refused by `rate` until the first send leaves its window: the
        // whole period, not a token's share of it.
        for _ in 0..3 {
            match pace().await.unwrap() {
                Pace::Wait(w) => assert!(
                    w > per / 2 && w <= per,
                    "{name}: wait {w:?} for a 2 per {per:?} window"
                ),
                other => panic!("{name}: {other:?}"),
            }
        }
        // Once the window has passed, two more go out: the refusals took
        // none of the four minute slots.
        let mut sent = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sent < 2 {
            assert!(std::time::Instant::now() < deadline, "{name}");
            match pace().await.unwrap() {
                Pace::Go => sent += 1,
                Pace::Wait(w) => tokio::time::sleep(w).await,
                Pace::OverLimit(_) => panic!("{name}: a refused send used a minute slot"),
            }
        }
        // The fifth in the minute is over `max_per_minute`; a digest is not
        // counted against it, only against `rate`.
        assert!(
            matches!(pace().await.unwrap(), Pace::OverLimit(w) if w > Duration::from_secs(58)),
            "{name}"
        );
        let digest = coord.pace("chat", limits, Sending::Digest).await.unwrap();
        assert!(matches!(digest, Pace::Wait(_)), "{name}: {digest:?}");
        // Another destination has windows of its own.
        assert_eq!(
            coord.pace("other", limits, Sending::Message).await.unwrap(),
            Pace::Go,
            "{name}"
        );
    }
}

/// A pause after a 429 is known to every sender to that destination (and
/// only to that one), on both stores.
#[tokio::test]
async fn pauses_are_shared_and_later_ones_win() {
    use hookrelay::coord::Coordinator;
    for (name, store, _dir) in backends(1000).await {
        let coord = Coordinator::for_store(&store);
        let until = now_ms() + 60_000;
        coord.pause("chat", until).await.unwrap();
        coord.pause("chat", until - 30_000).await.unwrap();
        assert_eq!(
            coord.paused_until("chat").await.unwrap(),
            Some(until),
            "{name}"
        );
        assert_eq!(coord.paused_until("other").await.unwrap(), None, "{name}");
        coord.pause("other", now_ms() - 1).await.unwrap();
        assert_eq!(coord.paused_until("other").await.unwrap(), None, "{name}");
        // One digest turn per interval.
        let every = Duration::from_secs(60);
        assert!(coord.digest_turn("chat", every).await.unwrap(), "{name}");
        assert!(!coord.digest_turn("chat", every).await.unwrap(), "{name}");
    }
}

/// Another process holding the SQLite file's write lock past the busy
/// timeout: the caller hears why ("database is locked"), not that the
/// spool is closed.
#[tokio::test]
async fn a_write_lock_held_elsewhere_is_reported_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&config(&dir, 100)).unwrap();
    let other = rusqlite::Connection::open(dir.path().join("spool.db")).unwrap();
    other.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let err = store
        .insert_event(event("{\"locked\":1}"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Unavailable(m) if m.contains("locked")),
        "{err:?}"
    );
    other.execute_batch("ROLLBACK").unwrap();
    insert(&store, "{\"locked\":2}").await;
}

/// One conversation per alert: a delivery with a thread key is not due
/// while an earlier event about the same alert is unrouted or has a
/// delivery to the same destination pending (a retry holds its alert's
/// later messages, not other alerts'); the root is recorded and moved.
#[tokio::test]
async fn threads_go_out_in_order_per_alert_and_keep_their_root() {
    for (name, store, _dir) in backends(100).await {
        let about = |body: &str, alert: &str| NewEvent {
            alert_uuid: Some(alert.into()),
            ..event(body)
        };
        let threaded = |event_id: i64, alert: &str| Routing {
            deliveries: vec![NewDelivery {
                thread_key: Some(alert.into()),
                ..routing(event_id, &["sk"], None).deliveries.remove(0)
            }],
            ..routing(event_id, &["sk"], None)
        };
        let a1 = store.insert_event(about("a1", "A")).await.unwrap().id;
        let a2 = store.insert_event(about("a2", "A")).await.unwrap().id;
        let b1 = store.insert_event(about("b1", "B")).await.unwrap().id;
        // a2 is routed before a1 (the pipeline runs events concurrently).
        let d_a2 = store
            .record_routing(threaded(a2, "A"))
            .await
            .unwrap()
            .unwrap()[0]
            .id;
        let d_b1 = store
            .record_routing(threaded(b1, "B"))
            .await
            .unwrap()
            .unwrap()[0]
            .id;
        let due_ids = |rows: Vec<hookrelay::store::DueDelivery>| {
            rows.iter().map(|d| d.id).collect::<Vec<_>>()
        };
        assert_eq!(
            due_ids(store.due("sk", now_ms(), 0, 10).await.unwrap()),
            [d_b1],
            "{name}: a2 waits for a1's routing"
        );
        assert!(!store.thread_ready(d_a2).await.unwrap(), "{name}");
        let d_a1 = store
            .record_routing(threaded(a1, "A"))
            .await
            .unwrap()
            .unwrap()[0]
            .id;
        assert_eq!(
            due_ids(store.due("sk", now_ms(), 0, 10).await.unwrap()),
            [d_b1, d_a1],
            "{name}: a2 waits for a1's delivery"
        );
        // a1 is retried later: a2 still waits; b1 does not.
        store
            .complete(Completion::Retry {
                id: d_a1,
                status: Some(429),
                error: "x".into(),
                next_attempt_at: now_ms() + 60_000,
                duration_ms: 1,
            })
            .await
            .unwrap();
        assert_eq!(
            due_ids(store.due("sk", now_ms(), 0, 10).await.unwrap()),
            [d_b1],
            "{name}"
        );
        assert!(!store.thread_ready(d_a2).await.unwrap(), "{name}");
        assert!(store.thread_ready(d_b1).await.unwrap(), "{name}");
        store
            .complete(Completion::Delivered {
                id: d_a1,
                status: 200,
                duration_ms: 1,
                thread: Some("root 1.1 in channel C1".into()),
            })
            .await
            .unwrap();
        assert!(store.thread_ready(d_a2).await.unwrap(), "{name}");
        assert_eq!(
            due_ids(store.due("sk", now_ms(), 0, 10).await.unwrap()),
            [d_a2, d_b1],
            "{name}"
        );
        let shown = store.event_detail(a1).await.unwrap().unwrap();
        assert_eq!(
            shown.deliveries[0].thread.as_deref(),
            Some("root 1.1 in channel C1"),
            "{name}"
        );

        // The root: absent, recorded, moved.
        assert_eq!(store.thread_root("sk", "A").await.unwrap(), None, "{name}");
        let root = ThreadRoot {
            channel: "C1".into(),
            ts: "1.1".into(),
            status: Some("Pending".into()),
            urgency: Some(40),
        };
        store.set_thread("sk", "A", root.clone()).await.unwrap();
        assert_eq!(
            store.thread_root("sk", "A").await.unwrap(),
            Some(root.clone()),
            "{name}"
        );
        assert_eq!(
            store.thread_root("other", "A").await.unwrap(),
            None,
            "{name}: per destination"
        );
        let moved = ThreadRoot {
            ts: "2.2".into(),
            status: Some("Closed".into()),
            ..root
        };
        store.set_thread("sk", "A", moved.clone()).await.unwrap();
        assert_eq!(
            store.thread_root("sk", "A").await.unwrap(),
            Some(moved),
            "{name}"
        );
    }
}

/// Actions from the chat: recorded as they start, a form's nonce spent
/// once, the outcome recorded, listed per alert; silences: added, listed
/// (all, or active now), expired once.
#[tokio::test]
async fn actions_and_silences_are_kept_on_both_backends() {
    use hookrelay::store::{ActionRecord, Silence};
    for (name, store, _dir) in backends(100).await {
        let record = |action: &str| ActionRecord {
            at: now_ms(),
            alert: "5696845f-9ecf-4431-9f0f-48ee0ee2eff1".into(),
            action: action.into(),
            destination: "teams".into(),
            client: "192.0.2.7".into(),
            result: "pending".into(),
            detail: None,
        };
        let id = store
            .start_action(record("close"), Some("n1".into()))
            .await
            .unwrap();
        assert!(id.is_some(), "{name}");
        assert_eq!(
            store
                .start_action(record("close"), Some("n1".into()))
                .await
                .unwrap(),
            None,
            "{name}: a nonce is spent once"
        );
        // Chat clicks carry no nonce: each is recorded.
        assert!(
            store
                .start_action(record("acknowledge"), None)
                .await
                .unwrap()
                .is_some(),
            "{name}"
        );
        assert!(
            store
                .start_action(record("acknowledge"), None)
                .await
                .unwrap()
                .is_some(),
            "{name}"
        );
        store
            .finish_action(id.unwrap(), "refused", Some("HTTP 400: not allowed".into()))
            .await
            .unwrap();
        let listed = store
            .actions_for("5696845f-9ecf-4431-9f0f-48ee0ee2eff1")
            .await
            .unwrap();
        assert_eq!(listed.len(), 3, "{name}");
        assert_eq!(
            (listed[0].result.as_str(), listed[0].detail.as_deref()),
            ("refused", Some("HTTP 400: not allowed")),
            "{name}"
        );
        assert!(
            store.actions_for("another").await.unwrap().is_empty(),
            "{name}"
        );

        let now = now_ms();
        let silence = |ends_at: i64| Silence {
            id: 0,
            created_at: now,
            ends_at,
            matcher: "rule = [\"x\"]".into(),
            comment: "tuning".into(),
            author: "alice".into(),
            expired_at: None,
        };
        let a = store.add_silence(silence(now + 3_600_000)).await.unwrap();
        let b = store.add_silence(silence(now - 1)).await.unwrap();
        assert!(b > a, "{name}");
        let active: Vec<i64> = store
            .silences(Some(now))
            .await
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(active, [a], "{name}: an ended silence is not active");
        assert_eq!(store.silences(None).await.unwrap().len(), 2, "{name}");
        assert!(store.expire_silence(a).await.unwrap(), "{name}");
        assert!(!store.expire_silence(a).await.unwrap(), "{name}: once");
        assert!(
            !store.expire_silence(b).await.unwrap(),
            "{name}: an ended one cannot be expired"
        );
        assert!(
            store.silences(Some(now_ms())).await.unwrap().is_empty(),
            "{name}"
        );
        let all = store.silences(None).await.unwrap();
        assert!(
            all.iter().find(|s| s.id == a).unwrap().expired_at.is_some(),
            "{name}"
        );
    }
}

/// What the console reads: a filtered list paged newest first (events not
/// routed yet included), one event's journey fields, the last hour's
/// numbers, filtered dead letters; the same on both backends.
#[tokio::test]
async fn the_console_reads_filter_and_page() {
    use hookrelay::store::console::{Cursor, DeadFilter, EventFilter, ListState};
    for (name, store, _dir) in backends(1000).await {
        let mut ids = Vec::new();
        for i in 0..7 {
            let id = store
                .insert_event(event(&format!("console {i}")))
                .await
                .unwrap()
                .id;
            ids.push(id);
        }
        // A sender retry is counted on the event it repeats.
        assert!(
            store
                .insert_event(event("console 0"))
                .await
                .unwrap()
                .duplicate
        );
        // 0..5 routed: 0 and 1 delivered, 2 dead, 3 unrouted, 4 pending; 5, 6 not routed.
        for (i, id) in ids.iter().take(5).enumerate() {
            let dests: &[&str] = if i == 3 { &[] } else { &["teams"] };
            let created = store
                .record_routing(routing(*id, dests, None))
                .await
                .unwrap()
                .unwrap();
            let outcome = match i {
                0 | 1 => Some(Completion::Delivered {
                    id: created[0].id,
                    status: 200,
                    duration_ms: 5,
                    thread: None,
                }),
                2 => Some(Completion::Dead {
                    id: created[0].id,
                    status: Some(400),
                    error: "HTTP 400: bad card".into(),
                    duration_ms: 5,
                }),
                _ => None,
            };
            if let Some(c) = outcome {
                store.complete(c).await.unwrap();
            }
        }
        let page = |f: EventFilter| {
            let store = store.clone();
            async move { store.events_page(f).await.unwrap() }
        };
        let all = page(EventFilter {
            limit: 4,
            ..Default::default()
        })
        .await;
        let shown: Vec<i64> = all.rows.iter().map(|r| r.id).collect();
        assert_eq!(shown, [ids[6], ids[5], ids[4], ids[3]], "{name}");
        assert_eq!(
            all.rows.iter().map(|r| r.state).collect::<Vec<_>>(),
            ["received", "received", "pending", "unrouted"],
            "{name}"
        );
        assert_eq!((all.newer, all.older), (None, Some(ids[3])), "{name}");
        let older = page(EventFilter {
            limit: 4,
            page: Cursor::Before(ids[3]),
            ..Default::default()
        })
        .await;
        assert_eq!(
            older
                .rows
                .iter()
                .map(|r| (r.id, r.state))
                .collect::<Vec<_>>(),
            [
                (ids[2], "dead"),
                (ids[1], "delivered"),
                (ids[0], "delivered")
            ],
            "{name}"
        );
        assert_eq!((older.newer, older.older), (Some(ids[2]), None), "{name}");
        let back = page(EventFilter {
            limit: 4,
            page: Cursor::After(ids[2]),
            ..Default::default()
        })
        .await;
        assert_eq!(back.rows.len(), 4, "{name}");
        assert_eq!(back.rows[0].id, ids[6], "{name}");
        for (state, want) in [
            (ListState::Delivered, vec![ids[1], ids[0]]),
            (ListState::Dead, vec![ids[2]]),
            (ListState::Unrouted, vec![ids[3]]),
            (ListState::Pending, vec![ids[6], ids[5], ids[4]]),
            (ListState::Muted, vec![]),
        ] {
            let got: Vec<i64> = page(EventFilter {
                state: Some(state),
                limit: 50,
                ..Default::default()
            })
            .await
            .rows
            .iter()
            .map(|r| r.id)
            .collect();
            assert_eq!(got, want, "{name}: {state:?}");
        }
        // Title text (case-insensitive, wildcards literal) and short ids.
        let by_title = page(EventFilter {
            text: Some(format!("title OF EVENT {}", ids[1])),
            limit: 50,
            ..Default::default()
        })
        .await;
        assert_eq!(by_title.rows.len(), 1, "{name}");
        assert_eq!(by_title.rows[0].id, ids[1], "{name}");
        let by_short = page(EventFilter {
            text: Some("ALx".into()),
            limit: 50,
            ..Default::default()
        })
        .await;
        assert_eq!(by_short.rows.len(), 7, "{name}");
        let wild = page(EventFilter {
            text: Some("%".into()),
            limit: 50,
            ..Default::default()
        })
        .await;
        assert!(wild.rows.is_empty(), "{name}");
        let future = page(EventFilter {
            from: Some(hookrelay::store::now_ms() + 60_000),
            limit: 50,
            ..Default::default()
        })
        .await;
        assert!(future.rows.is_empty(), "{name}");
        // One event: who sent it, how, and how often.
        let d = store.event_detail(ids[0]).await.unwrap().unwrap();
        assert_eq!(d.client.as_deref(), Some("192.0.2.7"), "{name}");
        assert_eq!(d.retries, 1, "{name}");
        assert_eq!(d.deliveries[0].payload, "{\"to\":\"teams\"}", "{name}");
        // The last hour.
        let now = hookrelay::store::now_ms();
        let a = store
            .activity(
                vec!["soc".into(), "quiet".into()],
                vec!["teams".into()],
                now - 3_600_000,
                now - 86_400_000,
            )
            .await
            .unwrap();
        let quiet = a.hooks.iter().find(|h| h.hook == "quiet").unwrap();
        assert_eq!((quiet.last_at, quiet.recent), (None, 0), "{name}");
        let soc = a.hooks.iter().find(|h| h.hook == "soc").unwrap();
        assert_eq!(soc.recent, 5, "{name}: routed events in the hour");
        let teams = a
            .destinations
            .iter()
            .find(|d| d.destination == "teams")
            .unwrap();
        assert_eq!(
            (teams.delivered, teams.failed, teams.dead),
            (2, 1, 1),
            "{name}"
        );
        assert_eq!(teams.latencies.len(), 2, "{name}");
        assert_eq!(
            a.events_per_minute.iter().map(|x| x.1).sum::<i64>(),
            5,
            "{name}"
        );
        assert_eq!(
            a.deliveries_per_minute.iter().map(|x| x.1).sum::<i64>(),
            2,
            "{name}"
        );
        // Dead letters, filtered.
        let dead = store
            .dead_page(DeadFilter {
                destination: Some("teams".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(dead.len(), 1, "{name}");
        assert_eq!(dead[0].hook, "soc", "{name}");
        let none = store
            .dead_page(DeadFilter {
                hook: Some("other".into()),
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(none.is_empty(), "{name}");
    }
}

#[tokio::test]
async fn console_sessions_share_one_salt_and_a_logout_epoch() {
    for (name, store, _dir) in backends(1000).await {
        // No logout yet: epoch 0.
        assert_eq!(store.console_epoch().await.unwrap(), 0, "{name}");
        // The first salt offered is kept; later offers (another replica,
        // a restart) get it back.
        let first = store.console_salt(vec![1; 16]).await.unwrap();
        assert_eq!(first, vec![1; 16], "{name}");
        let again = store.console_salt(vec![2; 16]).await.unwrap();
        assert_eq!(again, first, "{name}");
        // Every logout moves the epoch on, and the salt stays.
        assert_eq!(store.end_console_sessions().await.unwrap(), 1, "{name}");
        assert_eq!(store.end_console_sessions().await.unwrap(), 2, "{name}");
        assert_eq!(store.console_epoch().await.unwrap(), 2, "{name}");
        assert_eq!(
            store.console_salt(vec![3; 16]).await.unwrap(),
            first,
            "{name}"
        );
    }
}
