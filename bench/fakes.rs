//! The alert API and the chat services a trial's relay talks to, on
//! loopback in the harness's process: the API answers every alert at
//! once (or after `--api-delay-ms`), the chat services record the first
//! arrival of each event per destination and count duplicates.

use crate::args::TrialArgs;
use crate::common::{alert_json, index_of};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What the fake chat services saw.
pub struct Upstream {
    pub api_delay: Duration,
    pub chat_delay: Duration,
    /// First arrival per (destination, event index), in µs since `start`.
    pub first: Mutex<Vec<Vec<Option<u64>>>>,
    pub duplicates: AtomicUsize,
    pub delivered: AtomicUsize,
    pub unparsed: AtomicUsize,
    pub api_calls: AtomicUsize,
    pub last_progress: AtomicU64,
    pub start: Instant,
}

async fn api(
    State(u): State<Arc<Upstream>>,
    Path(uuid): Path<String>,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    u.api_calls.fetch_add(1, Ordering::Relaxed);
    if !u.api_delay.is_zero() {
        tokio::time::sleep(u.api_delay).await;
    }
    let i = index_of(&uuid).unwrap_or(usize::MAX);
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        alert_json(i),
    )
}

async fn chat(
    State(u): State<Arc<Upstream>>,
    Path(dest): Path<usize>,
    body: Bytes,
) -> (StatusCode, &'static str) {
    if !u.chat_delay.is_zero() {
        tokio::time::sleep(u.chat_delay).await;
    }
    let now = u.start.elapsed().as_micros() as u64;
    let text = String::from_utf8_lossy(&body);
    let index = text.find("bench-").and_then(|p| {
        let rest = &text[p + 6..];
        rest[..rest.find("-end")?].parse::<usize>().ok()
    });
    match index {
        Some(i) => {
            let mut first = u.first.lock().unwrap();
            match first.get_mut(dest).and_then(|d| d.get_mut(i)) {
                Some(slot @ None) => {
                    *slot = Some(now);
                    u.delivered.fetch_add(1, Ordering::Relaxed);
                }
                Some(Some(_)) => {
                    u.duplicates.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    u.unparsed.fetch_add(1, Ordering::Relaxed);
                }
            }
            u.last_progress.store(now, Ordering::Relaxed);
        }
        None => {
            u.unparsed.fetch_add(1, Ordering::Relaxed);
        }
    }
    // Teams Workflows answers 202 with an empty body.
    (StatusCode::ACCEPTED, "")
}

pub async fn start_upstream(
    args: &TrialArgs,
    start: Instant,
) -> anyhow::Result<(Arc<Upstream>, SocketAddr)> {
    let u = Arc::new(Upstream {
        api_delay: Duration::from_millis(args.api_delay_ms),
        chat_delay: Duration::from_millis(args.chat_delay_ms),
        first: Mutex::new(vec![vec![None; args.count]; args.destinations]),
        duplicates: AtomicUsize::new(0),
        delivered: AtomicUsize::new(0),
        unparsed: AtomicUsize::new(0),
        api_calls: AtomicUsize::new(0),
        last_progress: AtomicU64::new(0),
        start,
    });
    let router = Router::new()
        .route("/api/v1/sic/alerts/{uuid}", get(api))
        .route("/chat/{dest}", post(chat))
        .with_state(u.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok((u, addr))
}
