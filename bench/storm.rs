//! `hookrelay-bench storm`: an alert storm (issue #24). `--count` alerts
//! arrive as fast as the daemon takes them for one Teams destination with
//! `max_per_minute = 30` and `digest = true`, whose chat service answers
//! every fifth request with 429 and `Retry-After: 2`. Prints one JSON line:
//! how long the storm took to arrive, when the first message reached the
//! chat service, whether every alert was accounted for (a message of its
//! own or a digest's count) and when, duplicates, the busiest minute's
//! sends against the limit, requests sent while a `Retry-After` held, and
//! the daemon's peak RSS.

use crate::backlog::{send_events, start_daemon, DaemonArgs};
use crate::common::{free_port, peak_rss_kib, HOOK_ID};
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone)]
pub struct StormArgs {
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Senders posting at once.
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    #[arg(long, default_value_t = 30)]
    max_per_minute: u32,
    /// How often held alerts go out as a digest.
    #[arg(long, default_value = "10s")]
    digest_interval: String,
    /// Give up waiting for every alert to be accounted for after this long (s).
    #[arg(long, default_value_t = 180)]
    deadline_s: u64,
    #[command(flatten)]
    daemon: DaemonArgs,
}

/// What one request to the chat service was about.
#[derive(Clone, Copy)]
enum Kind {
    /// One alert's own message (the bench's event index).
    Single(usize),
    /// A digest, covering this many alerts.
    Digest(usize),
    Other,
}

struct Seen {
    /// Since the first event was sent.
    at: Duration,
    status: u16,
    kind: Kind,
}

struct Teams {
    start: Instant,
    requests: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

fn kind_of(text: &str) -> Kind {
    // A digest's headline: "N more alerts in the last 10s: …" (it also
    // names up to 20 alerts, so it is recognised first).
    if let Some(at) = text.find(" more alert") {
        let digits: String = text[..at]
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if let Ok(n) = digits.parse() {
            return Kind::Digest(n);
        }
    }
    text.find("bench-")
        .and_then(|p| {
            let rest = &text[p + 6..];
            rest[..rest.find("-end")?].parse().ok()
        })
        .map_or(Kind::Other, Kind::Single)
}

/// Teams Workflows: 202 and an empty body, except every fifth request.
async fn teams(
    State(t): State<Arc<Teams>>,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1]) {
    let n = t.requests.fetch_add(1, Ordering::Relaxed) + 1;
    let status = if n % 5 == 0 {
        StatusCode::TOO_MANY_REQUESTS
    } else {
        StatusCode::ACCEPTED
    };
    let kind = kind_of(&String::from_utf8_lossy(&body));
    t.seen.lock().unwrap().push(Seen {
        at: t.start.elapsed(),
        status: status.as_u16(),
        kind,
    });
    (status, [("retry-after", "2")])
}

/// Alerts accounted for (unique singles delivered + digests' counts), and
/// singles delivered more than once.
fn accounted(seen: &[Seen]) -> (usize, usize) {
    let mut singles = HashSet::new();
    let (mut digested, mut duplicates) = (0, 0);
    for s in seen.iter().filter(|s| s.status < 300) {
        match s.kind {
            Kind::Single(i) if !singles.insert(i) => duplicates += 1,
            Kind::Single(_) => {}
            Kind::Digest(n) => digested += n,
            Kind::Other => {}
        }
    }
    (singles.len() + digested, duplicates)
}

pub async fn storm(args: StormArgs) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let (api_task, api_addr) = crate::common::start_api().await?;
    let start = Instant::now();
    let t = Arc::new(Teams {
        start,
        requests: AtomicUsize::new(0),
        seen: Mutex::new(Vec::new()),
    });
    let router = Router::new()
        .route("/chat", post(teams))
        .with_state(t.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let chat_addr = listener.local_addr()?;
    let chat_task = tokio::spawn(async move { axum::serve(listener, router).await });
    let (port, admin) = (free_port()?, free_port()?);
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\
         [store]\npath = \"{}\"\nsync = \"full\"\n\
         [origins.sekoia]\nkind = \"sekoia\"\nbase_url = \"http://{api_addr}/api\"\napi_key = \"bench\"\n\
         [hooks.soc]\nid = \"{HOOK_ID}\"\norigin = \"sekoia\"\n\
         [destinations.teams]\nkind = \"teams\"\nurl = \"http://{chat_addr}/chat\"\n\
         max_per_minute = {}\ndigest = true\ndigest_interval = \"{}\"\n\
         [[routes]]\nname = \"all\"\nto = [\"teams\"]\n",
        dir.path().join("spool.db").display(),
        args.max_per_minute,
        args.digest_interval,
    );
    let path = dir.path().join("hookrelay.toml");
    let (mut child, client) =
        start_daemon(&path, &config, &args.daemon, admin, args.concurrency).await?;
    let url = format!("http://127.0.0.1:{port}/hooks/{HOOK_ID}");
    let storm_start = start.elapsed();
    let accepted = send_events(&client, &url, args.count, args.concurrency).await?;
    let arrived = start.elapsed() - storm_start;
    // Wait until every alert is accounted for (or the deadline).
    let deadline = Instant::now() + Duration::from_secs(args.deadline_s);
    let all_at = loop {
        let (n, _) = accounted(&t.seen.lock().unwrap());
        if n >= accepted {
            break Some(start.elapsed() - storm_start);
        }
        if Instant::now() > deadline {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // A little longer: anything sent after "all accounted" is a duplicate.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_kib = peak_rss_kib(child.id()).unwrap_or(0);
    let _ = child.kill();
    let _ = child.wait();
    chat_task.abort();
    api_task.abort();

    let seen = t.seen.lock().unwrap();
    let mut out = chat_side(&seen, storm_start);
    let own = json!({
        "scenario": "storm", "count": args.count, "concurrency": args.concurrency,
        "max_per_minute": args.max_per_minute, "digest_interval": args.digest_interval,
        "accepted": accepted, "arrived_s": arrived.as_secs_f64(),
        "all_accounted_s": all_at.map(|d| d.as_secs_f64()),
        "peak_rss_mib": rss_kib as f64 / 1024.0,
    });
    if let Value::Object(own) = own {
        out.extend(own);
    }
    Ok(Value::Object(out))
}

/// What the chat service saw: every request, the 429s, singles and
/// digests, the busiest minute, and requests sent while a `Retry-After`
/// held.
fn chat_side(seen: &[Seen], storm_start: Duration) -> serde_json::Map<String, Value> {
    let (accounted_for, duplicates) = accounted(seen);
    let since_storm = |s: &Seen| s.at.saturating_sub(storm_start).as_secs_f64();
    let first_message = seen.iter().map(since_storm).fold(f64::INFINITY, f64::min);
    let singles: Vec<f64> = seen
        .iter()
        .filter(|s| matches!(s.kind, Kind::Single(_)))
        .map(since_storm)
        .collect();
    // The busiest minute of single messages (every request counts, a 429
    // too: it was a send).
    let busiest_minute = singles
        .iter()
        .map(|&from| {
            singles
                .iter()
                .filter(|&&x| x >= from && x < from + 60.0)
                .count()
        })
        .max()
        .unwrap_or(0);
    // Requests that reached the chat service while a Retry-After held
    // (later than 50 ms after the 429, which covers requests already on
    // their way when it was answered).
    let refused: Vec<f64> = seen
        .iter()
        .filter(|s| s.status == 429)
        .map(since_storm)
        .collect();
    let during_pause = seen
        .iter()
        .map(since_storm)
        .filter(|&x| refused.iter().any(|&r| x > r + 0.05 && x < r + 2.0))
        .count();
    let digests = seen
        .iter()
        .filter(|s| s.status < 300 && matches!(s.kind, Kind::Digest(_)))
        .count();
    let digested: usize = seen
        .iter()
        .filter(|s| s.status < 300)
        .map(|s| match s.kind {
            Kind::Digest(n) => n,
            _ => 0,
        })
        .sum();
    let out = json!({
        "first_message_s": first_message,
        "requests": seen.len(), "answered_429": refused.len(),
        "singles_delivered": accounted_for - digested, "digests": digests, "digested_alerts": digested,
        "accounted_for": accounted_for, "duplicates": duplicates,
        "busiest_minute_singles": busiest_minute,
        "sent_during_retry_after": during_pause,
    });
    match out {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_told_from_a_single_alert() {
        assert!(matches!(
            kind_of(r#"{"text":"9970 more alerts in the last 10s: 9970 Major","x":"bench-3-end"}"#),
            Kind::Digest(9970)
        ));
        assert!(matches!(
            kind_of(r#"{"t":"bench-42-end"}"#),
            Kind::Single(42)
        ));
        assert!(matches!(kind_of("{}"), Kind::Other));
    }
}
