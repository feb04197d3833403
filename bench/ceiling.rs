//! `hookrelay-bench ceiling`: the smallest relay that does the job, as a
//! mark of what this machine can do at all (and, with `--spool`, what the
//! least durable relay can do).

use crate::common::HOOK_ID;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::Arc;

/// The ceiling relay: accept, answer 202, fetch the alert, post one fixed
/// message to each chat URL. Nothing is retried. With `spool`, the durable
/// ceiling: each event is inserted into a SQLite file (WAL, fsync per group
/// commit, one writer thread) before the 202 and marked done after its
/// posts — the least any relay that never loses an accepted event must do.
pub async fn ceiling(
    port: u16,
    api: String,
    chat: Vec<String>,
    spool: Option<PathBuf>,
) -> anyhow::Result<()> {
    #[derive(Clone)]
    struct C {
        http: reqwest::Client,
        api: Arc<String>,
        chat: Arc<Vec<String>>,
        spool: Option<MiniSpool>,
    }
    async fn hook(State(c): State<C>, body: Bytes) -> (StatusCode, &'static str) {
        let Ok(v) = serde_json::from_slice::<Value>(&body) else {
            return (StatusCode::BAD_REQUEST, "{}");
        };
        let uuid = v["attributes"]["uuid"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let id = match &c.spool {
            Some(spool) => match spool.call(MiniOp::Insert(body.to_vec())).await {
                Some(id) => Some(id),
                None => return (StatusCode::SERVICE_UNAVAILABLE, "{}"),
            },
            None => None,
        };
        tokio::spawn(async move {
            let Ok(r) = c
                .http
                .get(format!("{}/v1/sic/alerts/{uuid}?stix=false", c.api))
                .send()
                .await
            else {
                return;
            };
            let Ok(alert) = r.json::<Value>().await else {
                return;
            };
            let msg = json!({"text": format!("New alert: {}", alert["title"].as_str().unwrap_or_default())}).to_string();
            for url in c.chat.iter() {
                let _ = c
                    .http
                    .post(url)
                    .header("content-type", "application/json")
                    .body(msg.clone())
                    .send()
                    .await;
            }
            if let (Some(spool), Some(id)) = (&c.spool, id) {
                spool.call(MiniOp::Done(id)).await;
            }
        });
        (StatusCode::ACCEPTED, "{}")
    }
    let c = C {
        http: reqwest::Client::new(),
        api: Arc::new(api),
        chat: Arc::new(chat),
        spool: spool.map(|p| MiniSpool::open(&p)).transpose()?,
    };
    let router = Router::new()
        .route(&format!("/hooks/{HOOK_ID}"), post(hook))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(c);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    axum::serve(listener, router).await?;
    Ok(())
}

enum MiniOp {
    Insert(Vec<u8>),
    Done(i64),
}

/// The durable ceiling's spool: one writer thread, group commit.
#[derive(Clone)]
struct MiniSpool {
    tx: std::sync::mpsc::Sender<(MiniOp, tokio::sync::oneshot::Sender<i64>)>,
}

impl MiniSpool {
    fn open(path: &std::path::Path) -> anyhow::Result<MiniSpool> {
        let mut conn = rusqlite::Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;
             CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, received_at INTEGER NOT NULL,
                 body BLOB NOT NULL, done INTEGER NOT NULL DEFAULT 0);",
        )?;
        let (tx, rx) = std::sync::mpsc::channel::<(MiniOp, tokio::sync::oneshot::Sender<i64>)>();
        std::thread::spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                batch.extend(rx.try_iter().take(511));
                let Ok(t) = conn.transaction() else { return };
                let mut replies = Vec::with_capacity(batch.len());
                for (op, reply) in batch {
                    let id = match op {
                        MiniOp::Insert(body) => t
                            .prepare_cached(
                                "INSERT INTO events (received_at, body) VALUES (?1, ?2)",
                            )
                            .and_then(|mut s| s.insert(rusqlite::params![0, body])),
                        MiniOp::Done(id) => t
                            .prepare_cached("UPDATE events SET done = 1 WHERE id = ?1")
                            .and_then(|mut s| s.execute([id]))
                            .map(|_| id),
                    };
                    replies.push((reply, id.unwrap_or(-1)));
                }
                if t.commit().is_err() {
                    return;
                }
                for (reply, id) in replies {
                    let _ = reply.send(id);
                }
            }
        });
        Ok(MiniSpool { tx })
    }

    /// The row id once committed; `None` if the spool failed.
    async fn call(&self, op: MiniOp) -> Option<i64> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.tx.send((op, reply)).ok()?;
        rx.await.ok().filter(|id| *id >= 0)
    }
}
