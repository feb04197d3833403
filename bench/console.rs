//! `hookrelay-bench console`: the web console's pages over a big spool.
//!
//! Fills a SQLite spool through the store's own API with `--events`
//! realistic events (a webhook body, the alert as fetched, a rendered Teams
//! card, one attempt each; 1 in 100 a dead letter), starts the release
//! daemon on it with the console on, and times each page `--requests`
//! times, one at a time over loopback. Prints one JSON line: per page, the
//! p50/p99/max in ms and the server's own reading where the page shows it.

use crate::common::{free_port, percentile, HOOK_ID};
use hookrelay::store::{Completion, NewDelivery, NewEvent, Routing, Store};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone)]
pub struct ConsoleArgs {
    /// Events in the spool.
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Requests per page.
    #[arg(long, default_value_t = 30)]
    requests: usize,
    /// The daemon.
    #[arg(long, default_value = "target/release/hookrelay")]
    hookrelay: PathBuf,
    /// The core the daemon is pinned to.
    #[arg(long, default_value = "0")]
    relay_cpu: String,
}

const ALERT: &str = include_str!("../tests/fixtures/alert-full.json");

fn body(i: usize) -> String {
    json!({
        "type": "alert", "action": if i % 5 == 0 { "updated" } else { "created" },
        "attributes": {"uuid": alert_uuid(i), "short_id": format!("AL{i:010}")},
        "metadata": {"version": 2, "created_at": "2022-01-14T15:06:57.398005+00:00",
                     "community_uuid": "d6cea089-0f36-46c4-a10a-0e4c2e20fb10"}
    })
    .to_string()
}

fn alert_uuid(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// Fills the spool: `n` events, routed to one destination, attempted once.
async fn fill(store: &Store, n: usize) -> anyhow::Result<()> {
    use sha2::Digest;
    let card = json!({"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
        "content": {"type": "AdaptiveCard", "body": [{"type": "TextBlock", "text": "x".repeat(1500)}]}}]})
    .to_string();
    let journey: hookrelay::store::Journey = serde_json::from_str(
        r#"{"enrich":{"ms":3,"cached":false},"decisions":[{"route":"all","matched":true,"reason":"no conditions: matches every event"}]}"#,
    )?;
    let chunk = 512;
    let mut i = 0;
    while i < n {
        let end = (i + chunk).min(n);
        let inserts = (i..end).map(|k| {
            let b = body(k);
            store.insert_event(NewEvent {
                hook: "soc".into(),
                sha256: sha2::Sha256::digest(b.as_bytes()).into(),
                body: b.into_bytes(),
                kind: "alert".into(),
                action: if k % 5 == 0 { "updated" } else { "created" }.into(),
                short_id: Some(format!("AL{k:010}")),
                dedup_window_ms: 0,
                message_id: None,
                alert_uuid: Some(alert_uuid(k)),
                client: Some("192.0.2.10".into()),
                auth: Some("Standard Webhooks signature verified".into()),
            })
        });
        let ids: Vec<i64> = futures_util::future::try_join_all(inserts)
            .await?
            .into_iter()
            .map(|x| x.id)
            .collect();
        let routings = ids.iter().enumerate().map(|(j, id)| {
            store.record_routing(Routing {
                event_id: *id,
                enrichment: "ok".into(),
                alert_json: Some(ALERT.to_owned()),
                routes: vec!["all".into()],
                deliveries: vec![NewDelivery {
                    route: "all".into(),
                    destination: "teams".into(),
                    payload: card.clone(),
                    failed: None,
                    muted: None,
                    dedup: None,
                    summary: None,
                    thread_key: None,
                    first: None,
                    in_flight_until: None,
                }],
                title: Some(format!("Suspicious PowerShell download cradle #{}", i + j)),
                journey: journey.clone(),
            })
        });
        let created = futures_util::future::try_join_all(routings).await?;
        let outcomes = created.into_iter().flatten().flatten().map(|d| {
            let completion = if d.event_id % 100 == 0 {
                Completion::Dead {
                    id: d.id,
                    status: Some(400),
                    error: "HTTP 400: bad card".into(),
                    duration_ms: 40,
                }
            } else {
                Completion::Delivered {
                    id: d.id,
                    status: 200,
                    duration_ms: 40,
                    thread: None,
                }
            };
            store.complete(completion)
        });
        futures_util::future::try_join_all(outcomes).await?;
        i = end;
    }
    Ok(())
}

pub async fn console(args: ConsoleArgs) -> anyhow::Result<Value> {
    let dir = tempfile::tempdir()?;
    let spool = dir.path().join("spool.db");
    let started = Instant::now();
    {
        let store = Store::open_now(
            &hookrelay::config::StoreConfig {
                path: spool.clone(),
                sync: hookrelay::config::SyncMode::Normal,
                max_pending: u64::MAX,
                ..Default::default()
            },
            Duration::from_secs(5),
        )
        .await?;
        fill(&store, args.events).await?;
    }
    let fill_s = started.elapsed().as_secs_f64();
    let spool_mb = std::fs::metadata(&spool)?.len() as f64 / 1e6;
    let (mut child, base) = start_daemon(&args, dir.path(), &spool).await?;
    let client = reqwest::Client::new();
    let n = args.events;
    let out = match time_pages(&args, &client, &base, n).await {
        Ok(out) => out,
        Err(e) => {
            let _ = child.kill();
            return Err(e);
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    if std::env::var_os("KEEP_CONSOLE_SPOOL").is_some() {
        eprintln!("kept: {}", dir.keep().display());
    }
    Ok(
        json!({"scenario": "console", "events": n, "spool_mb": spool_mb, "fill_s": fill_s,
              "requests": args.requests, "pages": Value::Object(out)}),
    )
}

/// Starts the daemon on `spool` with the console on; returns it and the
/// admin listener's base URL once `/readyz` answers 200.
async fn start_daemon(
    args: &ConsoleArgs,
    dir: &std::path::Path,
    spool: &std::path::Path,
) -> anyhow::Result<(std::process::Child, String)> {
    let (port, admin) = (free_port()?, free_port()?);
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\
         [store]\npath = \"{}\"\n[console]\nenabled = true\n\
         [origins.sekoia]\nkind = \"sekoia\"\nbase_url = \"http://127.0.0.1:9\"\napi_key = \"k\"\n\
         [hooks.soc]\nid = \"{HOOK_ID}\"\norigin = \"sekoia\"\n\
         [destinations.teams]\nkind = \"teams\"\nurl = \"http://127.0.0.1:9/teams\"\n\
         [[routes]]\nname = \"all\"\nto = [\"teams\"]\n",
        spool.display()
    );
    let path = dir.join("hookrelay.toml");
    std::fs::write(&path, config)?;
    let mut child = std::process::Command::new("taskset")
        .args(["-c", &args.relay_cpu])
        .arg(&args.hookrelay)
        .args(["run", "--config"])
        .arg(&path)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.join("daemon.log"))?)
        .spawn()?;
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{admin}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let log = std::fs::read_to_string(dir.join("daemon.log")).unwrap_or_default();
            anyhow::bail!("the daemon did not become ready:\n{log}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((child, base))
}

/// The pages timed, by name, over a spool of `n` events.
fn pages(n: usize) -> Vec<(&'static str, String)> {
    vec![
        ("events, newest", "/console/events".to_owned()),
        (
            "events, a page in the middle",
            format!("/console/events?before={}", n / 2),
        ),
        (
            "events, by short id",
            format!("/console/events?q=AL{:010}", n / 3),
        ),
        (
            "events, by title text (no match: every row read)",
            "/console/events?q=nothing%20like%20this".to_owned(),
        ),
        ("events, dead only", "/console/events?state=dead".to_owned()),
        (
            "events, delivered only",
            "/console/events?state=delivered".to_owned(),
        ),
        (
            "events, unrouted only (none: every row read)",
            "/console/events?state=unrouted".to_owned(),
        ),
        (
            "events, by action",
            "/console/events?action=updated".to_owned(),
        ),
        ("one event", format!("/console/events/{}", n / 2)),
        ("overview", "/console/".to_owned()),
        ("dead letters", "/console/dead-letters".to_owned()),
    ]
}

/// Each page `args.requests` times, one request at a time: p50, p99, max.
async fn time_pages(
    args: &ConsoleArgs,
    client: &reqwest::Client,
    base: &str,
    n: usize,
) -> anyhow::Result<serde_json::Map<String, Value>> {
    let mut out = serde_json::Map::new();
    for (name, path) in pages(n) {
        let mut took = Vec::with_capacity(args.requests);
        for _ in 0..args.requests {
            let t = Instant::now();
            let r = client.get(format!("{base}{path}")).send().await?;
            let status = r.status();
            let text = r.text().await?;
            took.push(t.elapsed().as_micros() as u64);
            if !status.is_success() {
                anyhow::bail!("{path}: HTTP {status}: {}", &text[..text.len().min(300)]);
            }
        }
        took.sort_unstable();
        out.insert(
            name.to_owned(),
            json!({"path": path, "p50_ms": percentile(&took, 0.5), "p99_ms": percentile(&took, 0.99),
                   "max_ms": took.last().map(|x| *x as f64 / 1000.0)}),
        );
    }
    Ok(out)
}
