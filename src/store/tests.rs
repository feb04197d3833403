use super::*;
use crate::config::StoreConfig;

fn config(dir: &tempfile::TempDir, max_pending: u64) -> StoreConfig {
    StoreConfig {
        path: dir.path().join("spool.db"),
        max_pending,
        ..StoreConfig::default()
    }
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
            })
            .collect(),
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
                .unrouted_after(0, 10, true)
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
        sync: crate::config::SyncMode::Normal,
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
