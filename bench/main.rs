//! `hookrelay-bench`: the benchmark harness.
//!
//! One `trial` plays the alert API and the chat services on loopback, starts
//! the relay under test as a child process (pinned with `taskset` to its own
//! core), drives Sekoia v2 events at its hook URL with a given count and
//! concurrency, and prints one JSON line: accepted/s, accept latency
//! p50/p99, delivered/s, end-to-end latency p50/p99 (webhook sent → chat
//! service received), lost and duplicated deliveries, the relay's peak RSS.
//!
//! Systems: `hookrelay` (the real daemon, durable spool with sync=full),
//! `hookrelay-normal` (sync=normal), `hookrelay-tmpfs` (the spool on a
//! RAM disk: the same path with durability taken out), `reference` (the FastAPI handler users
//! run today) and `ceiling` (`hookrelay-bench ceiling`: a minimal in-memory
//! relay — no durability, no retries, one fixed message — that marks what
//! this machine can do at all).
//!
//! `report` turns the JSON lines into the tables of BENCHMARKS.md.
//! `scripts/bench.sh` runs the whole matrix.

mod backlog;
mod console;
mod flood;
mod storm;

use anyhow::{bail, Context};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use clap::{Parser, Subcommand};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const HOOK_ID: &str = "67a7472b-b43c-415d-b1ce-c135fb1dfb0e";

#[derive(Parser)]
#[command(
    name = "hookrelay-bench",
    about = "Benchmark harness for hookrelay and its peers"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one trial against one system and print a JSON line.
    Trial(TrialArgs),
    /// The ceiling: a minimal in-memory relay (no durability, no retries).
    Ceiling {
        #[arg(long)]
        port: u16,
        /// Alert API base URL.
        #[arg(long)]
        api: String,
        /// Chat webhook URLs, each gets every event.
        #[arg(long, num_args = 1..)]
        chat: Vec<String>,
        /// The durable ceiling: store each event in this SQLite file
        /// (group commit, fsync) before answering, mark it done after.
        #[arg(long)]
        spool: Option<PathBuf>,
    },
    /// Print the Markdown tables for a results file (JSON lines).
    Report { results: PathBuf },
    /// A connection flood against a running daemon, with a legitimate
    /// sender measured meanwhile (JSON line).
    Flood(flood::FloodArgs),
    /// The web console's pages over a spool of many events (JSON line).
    Console(console::ConsoleArgs),
    /// The chat service down while many events arrive, then a restart with
    /// that backlog (JSON line).
    Backlog(backlog::BacklogArgs),
    /// An alert storm against one rate-limited, digesting Teams
    /// destination whose service answers 429 now and then (JSON line).
    Storm(storm::StormArgs),
}

#[derive(clap::Args, Clone)]
struct TrialArgs {
    /// hookrelay | hookrelay-normal | hookrelay-tmpfs | hookrelay-pg | reference | ceiling | ceiling-durable
    #[arg(long)]
    system: String,
    /// hookrelay-pg: how many replicas share the database (senders go
    /// round-robin over them).
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// hookrelay-pg: a PostgreSQL server URL (an existing database, e.g.
    /// `postgres`); each trial creates and drops its own database there.
    #[arg(long)]
    pg_url: Option<String>,
    #[arg(long, default_value_t = 2000)]
    count: usize,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Chat destinations per event.
    #[arg(long, default_value_t = 1)]
    destinations: usize,
    /// Alert API latency.
    #[arg(long, default_value_t = 0)]
    api_delay_ms: u64,
    /// Chat service latency.
    #[arg(long, default_value_t = 0)]
    chat_delay_ms: u64,
    /// Core for the relay under test (the harness should run on another).
    #[arg(long, default_value = "0")]
    relay_cpu: String,
    /// The hookrelay binary.
    #[arg(long, default_value = "target/release/hookrelay")]
    hookrelay: PathBuf,
    /// The reference handler's directory (main.py) and its Python venv.
    #[arg(long, default_value = "../shared/peers/sekoia-fastapi-sample")]
    reference_dir: PathBuf,
    #[arg(long, default_value = "target/bench-venv")]
    venv: PathBuf,
    /// Give up waiting for deliveries after this many seconds without progress.
    #[arg(long, default_value_t = 15)]
    stall_secs: u64,
    /// Requests in flight per destination in hookrelay's config (default:
    /// 32, or 256 when the chat service is slow).
    #[arg(long)]
    dest_concurrency: Option<usize>,
    /// Label for the scenario in reports.
    #[arg(long, default_value = "")]
    label: String,
    /// hookrelay-pg: the PostgreSQL server's postmaster PID, to report
    /// the server's CPU per event (its backends included).
    #[arg(long)]
    server_pid: Option<u32>,
}

/// What the fake chat services saw.
struct Upstream {
    api_delay: Duration,
    chat_delay: Duration,
    /// First arrival per (destination, event index), in µs since `start`.
    first: Mutex<Vec<Vec<Option<u64>>>>,
    duplicates: AtomicUsize,
    delivered: AtomicUsize,
    unparsed: AtomicUsize,
    api_calls: AtomicUsize,
    last_progress: AtomicU64,
    start: Instant,
}

fn alert_uuid(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

fn index_of(uuid: &str) -> Option<usize> {
    uuid.strip_prefix("00000000-0000-4000-8000-")?.parse().ok()
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

/// The alert the fake API answers for event `i`.
fn alert_json(i: usize) -> String {
    json!({
        "uuid": alert_uuid(i), "short_id": format!("AL{i:010}"), "title": format!("bench-{i}-end"),
        "urgency": {"value": 63, "display": "Major"}, "status": {"name": "Pending"},
        "rule": {"name": "Benchmark rule"}, "entity": {"name": "Bench"},
        "alert_type": {"category": "intrusions", "value": "system-compromise"},
        "created_at": 1642172817, "source": "10.1.2.3", "target": "srv-01",
    })
    .to_string()
}

/// The fake alert API alone (no chat service); stops when the handle is dropped.
async fn start_api() -> anyhow::Result<(tokio::task::JoinHandle<()>, SocketAddr)> {
    let router = Router::new().route(
        "/api/v1/sic/alerts/{uuid}",
        get(|Path(uuid): Path<String>| async move {
            (
                [("content-type", "application/json")],
                alert_json(index_of(&uuid).unwrap_or(usize::MAX)),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    Ok((task, addr))
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

async fn start_upstream(
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

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Starts the system under test; returns the child, its hook URL and the
/// RAM directory to remove after the trial (hookrelay-tmpfs).
/// The relay's processes (several for hookrelay-pg replicas), their hook
/// URLs, and the RAM disk to keep alive while they run.
type Relay = (
    Vec<std::process::Child>,
    Vec<String>,
    Option<tempfile::TempDir>,
);

/// Starts the system under test; `database` is the PostgreSQL URL for
/// hookrelay-pg.
fn start_relay(
    args: &TrialArgs,
    upstream: SocketAddr,
    dir: &std::path::Path,
    database: Option<&str>,
) -> anyhow::Result<Relay> {
    if args.system == "hookrelay-pg" {
        let database = database.context("hookrelay-pg needs --pg-url")?;
        let mut children = Vec::new();
        let mut urls = Vec::new();
        for r in 0..args.replicas.max(1) {
            let port = free_port()?;
            let path = dir.join(format!("replica{r}.toml"));
            let store = format!("[store]\nkind = \"postgres\"\nurl = \"{database}\"\n");
            std::fs::write(&path, hookrelay_config(args, upstream, port, &store))?;
            let child = std::process::Command::new("taskset")
                .args(["-c", &args.relay_cpu])
                .arg(&args.hookrelay)
                .args(["run", "--config"])
                .arg(&path)
                .env("RUST_LOG", "warn")
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .context("starting a replica (is taskset installed?)")?;
            children.push(child);
            urls.push(format!("http://127.0.0.1:{port}/hooks/{HOOK_ID}"));
        }
        return Ok((children, urls, None));
    }
    let mut ram_dir = None;
    let port = free_port()?;
    let up = format!("http://{upstream}");
    let mut cmd = std::process::Command::new("taskset");
    cmd.args(["-c", &args.relay_cpu]);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    match args.system.as_str() {
        "hookrelay" | "hookrelay-normal" | "hookrelay-tmpfs" => {
            let sync = if args.system == "hookrelay" {
                "full"
            } else {
                "normal"
            };
            // The same daemon with its spool in RAM (tmpfs): what the path
            // costs without durability, to isolate what the disk costs.
            let spool_dir = if args.system == "hookrelay-tmpfs" {
                let shm = tempfile::tempdir_in("/dev/shm")?;
                let path = shm.path().to_path_buf();
                ram_dir = Some(shm);
                path
            } else {
                dir.to_path_buf()
            };
            let store = format!(
                "[store]\npath = \"{}\"\nsync = \"{sync}\"\n",
                spool_dir.join("spool.db").display()
            );
            let config = hookrelay_config(args, upstream, port, &store);
            let path = dir.join("hookrelay.toml");
            std::fs::write(&path, config)?;
            cmd.arg(&args.hookrelay)
                .args(["run", "--config"])
                .arg(&path)
                .env("RUST_LOG", "warn");
        }
        "reference" => {
            if args.destinations != 1 {
                bail!("the reference handler supports one destination");
            }
            let uvicorn = args.venv.join("bin/uvicorn");
            if !uvicorn.exists() || !args.reference_dir.join("main.py").exists() {
                bail!(
                    "reference handler not available ({} / {})",
                    uvicorn.display(),
                    args.reference_dir.display()
                );
            }
            cmd.arg(uvicorn)
                .args([
                    "main:app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--log-level",
                    "warning",
                    "--app-dir",
                ])
                .arg(&args.reference_dir)
                .env("APIKEY", "bench")
                .env("API_URL", format!("{up}/api"))
                .env("TEAMS_WEBHOOK_URL", format!("{up}/chat/0"));
        }
        "ceiling" | "ceiling-durable" => {
            let me = std::env::current_exe()?;
            cmd.arg(me);
            if args.system == "ceiling-durable" {
                cmd.arg("ceiling")
                    .arg("--spool")
                    .arg(dir.join("ceiling.db"));
            } else {
                cmd.arg("ceiling");
            }
            cmd.args([
                "--port",
                &port.to_string(),
                "--api",
                &format!("{up}/api"),
                "--chat",
            ]);
            for d in 0..args.destinations {
                cmd.arg(format!("{up}/chat/{d}"));
            }
        }
        other => bail!("unknown system {other:?}"),
    }
    let child = cmd
        .spawn()
        .context("starting the relay (is taskset installed?)")?;
    Ok((
        vec![child],
        vec![format!("http://127.0.0.1:{port}/hooks/{HOOK_ID}")],
        ram_dir,
    ))
}

/// hookrelay's config for a trial, with the given `[store]` section.
fn hookrelay_config(args: &TrialArgs, upstream: SocketAddr, port: u16, store: &str) -> String {
    let up = format!("http://{upstream}");
    let dests: Vec<String> = (0..args.destinations).map(|d| format!("d{d}")).collect();
    let mut config = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
[admin]
listen = "127.0.0.1:0"
{store}
[delivery]
concurrency = {concurrency}
[origins.sekoia]
kind = "sekoia"
base_url = "{up}/api"
api_key = "bench"
concurrency = 256
[hooks.soc]
id = "{HOOK_ID}"
origin = "sekoia"
[[routes]]
name = "all"
to = {dests:?}
"#,
        // Enough requests in flight to cover the chat service's latency.
        concurrency =
            args.dest_concurrency
                .unwrap_or(if args.chat_delay_ms > 0 { 256 } else { 32 }),
    );
    for (d, name) in dests.iter().enumerate() {
        config.push_str(&format!(
            "[destinations.{name}]\nkind = \"teams\"\nurl = \"{up}/chat/{d}\"\n"
        ));
    }
    config
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// A process's CPU time so far, in µs: its own (user + system), and with
/// `children` that of its waited-for children too (`/proc/PID/stat`).
fn cpu_us(pid: u32, children: bool) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is
    // field 3, so field n is at index n - 3.
    let fields: Vec<u64> = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let own = fields.get(10)? + fields.get(11)?;
    let reaped = if children {
        fields.get(12)? + fields.get(13)?
    } else {
        0
    };
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Some((own + reaped) * 1_000_000 / ticks)
}

/// CPU time of a process and all its children, live or exited (a
/// PostgreSQL server: the postmaster and its backends), in µs.
fn tree_cpu_us(pid: u32) -> u64 {
    let mut total = cpu_us(pid, true).unwrap_or(0);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return total;
    };
    for entry in dir.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let parent = std::fs::read_to_string(format!("/proc/{child}/stat"))
            .ok()
            .and_then(|s| {
                let rest = s.rsplit_once(')')?.1.to_owned();
                rest.split_whitespace().nth(1)?.parse::<u32>().ok()
            });
        if parent == Some(pid) {
            total += cpu_us(child, false).unwrap_or(0);
        }
    }
    total
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn event_body(i: usize) -> String {
    json!({
        "type": "alert", "action": "created",
        "attributes": {"uuid": alert_uuid(i), "short_id": format!("AL{i:010}")},
        "metadata": {"version": 2, "created_at": "2022-01-14T15:06:57.398005+00:00",
                     "community_uuid": "d6cea089-0f36-46c4-a10a-0e4c2e20fb10",
                     "avatar_uuid": null, "user_uuid": null, "permissions": []}
    })
    .to_string()
}

async fn trial(args: TrialArgs) -> anyhow::Result<Value> {
    let start = Instant::now();
    let (upstream, up_addr) = start_upstream(&args, start).await?;
    let dir = tempfile::tempdir()?;
    let database = match (&args.system[..], &args.pg_url) {
        ("hookrelay-pg", Some(server)) => Some(PgDatabase::create(server).await?),
        ("hookrelay-pg", None) => bail!("hookrelay-pg needs --pg-url"),
        _ => None,
    };
    let (mut children, urls, _ram_dir) = start_relay(
        &args,
        up_addr,
        dir.path(),
        database.as_ref().map(|d| d.url.as_str()),
    )?;
    let pids: Vec<u32> = children.iter().map(|c| c.id()).collect();
    let server_cpu_before = args.server_pid.map(tree_cpu_us);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;

    // Wait for every process to listen.
    let ready_deadline = Instant::now() + Duration::from_secs(30);
    for (child, url) in children.iter_mut().zip(&urls) {
        loop {
            let probe = client
                .get(url.replace(&format!("/hooks/{HOOK_ID}"), "/healthz"))
                .send()
                .await;
            if probe.is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!("{} exited during start: {status}", args.system);
            }
            if Instant::now() > ready_deadline {
                let _ = child.kill();
                bail!("{} did not start", args.system);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let urls = Arc::new(urls);

    let sent_at: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.count).map(|_| AtomicU64::new(0)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let accept_lat: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::with_capacity(args.count)));
    let rejected: Arc<AtomicUsize> = Arc::new(AtomicUsize::new(0));
    let t0 = start.elapsed();
    let mut senders = Vec::new();
    for _ in 0..args.concurrency {
        let (client, urls, next, sent_at, accept_lat, rejected) = (
            client.clone(),
            urls.clone(),
            next.clone(),
            sent_at.clone(),
            accept_lat.clone(),
            rejected.clone(),
        );
        let count = args.count;
        senders.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let body = event_body(i);
                let before = start.elapsed();
                sent_at[i].store(before.as_micros() as u64, Ordering::Relaxed);
                // Round-robin over the replicas (one URL otherwise).
                let ok = match client
                    .post(&urls[i % urls.len()])
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) => r.status().is_success(),
                    Err(_) => false,
                };
                lat.push((start.elapsed() - before).as_micros() as u64);
                if !ok {
                    rejected.fetch_add(1, Ordering::Relaxed);
                }
            }
            accept_lat.lock().unwrap().extend(lat);
        }));
    }
    for s in senders {
        s.await?;
    }
    let accept_secs = (start.elapsed() - t0).as_secs_f64();

    // Wait for deliveries until done or stalled (no progress for stall_secs).
    let expected = args.count * args.destinations;
    let sent_done = start.elapsed();
    loop {
        if upstream.delivered.load(Ordering::Relaxed) >= expected {
            break;
        }
        let last =
            Duration::from_micros(upstream.last_progress.load(Ordering::Relaxed)).max(sent_done);
        if start.elapsed().saturating_sub(last) > Duration::from_secs(args.stall_secs) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Replicas: the sum of their peaks.
    let rss: Option<u64> = pids.iter().map(|p| peak_rss_kib(*p)).sum();
    let relay_cpu: Option<u64> = pids.iter().map(|p| cpu_us(*p, false)).sum();
    for child in &mut children {
        let _ = child.kill();
        let _ = child.wait();
    }
    // The server's backends for the relay exit once it is gone; give the
    // postmaster a moment to reap them (their time moves to its children's).
    let server_cpu = match (args.server_pid, server_cpu_before) {
        (Some(pid), Some(before)) => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Some(tree_cpu_us(pid).saturating_sub(before))
        }
        _ => None,
    };
    let per_event = |us: Option<u64>| us.map(|us| us as f64 / args.count.max(1) as f64);
    if let Some(db) = database {
        db.drop_it().await;
    }

    let first = upstream.first.lock().unwrap();
    let mut e2e = Vec::with_capacity(expected);
    let mut last_delivery = 0u64;
    for dest in first.iter() {
        for (i, t) in dest.iter().enumerate() {
            if let Some(t) = t {
                e2e.push(t.saturating_sub(sent_at[i].load(Ordering::Relaxed)));
                last_delivery = last_delivery.max(*t);
            }
        }
    }
    e2e.sort_unstable();
    let mut acc = accept_lat.lock().unwrap().clone();
    acc.sort_unstable();
    let delivered = upstream.delivered.load(Ordering::Relaxed);
    let deliver_secs = (Duration::from_micros(last_delivery).saturating_sub(t0)).as_secs_f64();
    let lost = expected - delivered;
    let duplicates = upstream.duplicates.load(Ordering::Relaxed);
    let system = if args.system == "hookrelay-pg" {
        format!("hookrelay-pg ×{}", args.replicas.max(1))
    } else {
        args.system.clone()
    };
    Ok(json!({
        "system": system, "label": args.label, "count": args.count, "concurrency": args.concurrency,
        "destinations": args.destinations, "api_delay_ms": args.api_delay_ms, "chat_delay_ms": args.chat_delay_ms,
        "accepted_per_s": (args.count - rejected.load(Ordering::Relaxed)) as f64 / accept_secs,
        "accept_p50_ms": percentile(&acc, 0.5), "accept_p99_ms": percentile(&acc, 0.99),
        "delivered_per_s": if deliver_secs > 0.0 { delivered as f64 / deliver_secs } else { 0.0 },
        "e2e_p50_ms": percentile(&e2e, 0.5), "e2e_p99_ms": percentile(&e2e, 0.99),
        "rejected": rejected.load(Ordering::Relaxed), "lost": lost, "duplicates": duplicates,
        "unparsed": upstream.unparsed.load(Ordering::Relaxed), "api_calls": upstream.api_calls.load(Ordering::Relaxed),
        "peak_rss_mib": rss.map(|k| k as f64 / 1024.0),
        "relay_cpu_us_per_event": per_event(relay_cpu),
        "server_cpu_us_per_event": per_event(server_cpu),
        "ok": lost == 0 && duplicates == 0 && rejected.load(Ordering::Relaxed) == 0,
    }))
}

/// A database of its own for one hookrelay-pg trial, on the server at
/// `--pg-url`.
struct PgDatabase {
    server: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create(server: &str) -> anyhow::Result<PgDatabase> {
        let name = format!("hookrelay_bench_{}", std::process::id());
        let admin = Self::connect(server).await?;
        // Two statements: neither may run inside a transaction block.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await?;
        let mut url = url::Url::parse(server).context("--pg-url")?;
        url.set_path(&format!("/{name}"));
        Ok(PgDatabase {
            server: server.to_owned(),
            url: url.to_string(),
            name,
        })
    }

    async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .context("connecting to --pg-url")?;
        tokio::spawn(conn);
        Ok(client)
    }

    async fn drop_it(self) {
        if let Ok(admin) = Self::connect(&self.server).await {
            let _ = admin
                .batch_execute(&format!(
                    "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                    self.name
                ))
                .await;
        }
    }
}

/// The ceiling relay: accept, answer 202, fetch the alert, post one fixed
/// message to each chat URL. Nothing is retried. With `spool`, the durable
/// ceiling: each event is inserted into a SQLite file (WAL, fsync per group
/// commit, one writer thread) before the 202 and marked done after its
/// posts — the least any relay that never loses an accepted event must do.
async fn ceiling(
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

fn median(mut v: Vec<f64>) -> f64 {
    v.retain(|x| x.is_finite());
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn report(path: &std::path::Path) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let rows: Vec<Value> = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    // Scenario → system → samples.
    let mut groups: BTreeMap<String, BTreeMap<String, Vec<&Value>>> = BTreeMap::new();
    for r in &rows {
        let scenario = format!(
            "{} events, c={}, {} dest, api {} ms, chat {} ms",
            r["count"], r["concurrency"], r["destinations"], r["api_delay_ms"], r["chat_delay_ms"]
        );
        let system = r["system"].as_str().unwrap_or("?");
        let system = match r["label"].as_str() {
            Some(label) if !label.is_empty() => format!("{system} ({label})"),
            _ => system.to_owned(),
        };
        groups
            .entry(scenario)
            .or_default()
            .entry(system)
            .or_default()
            .push(r);
    }
    println!("| scenario | system | runs | accepted/s | accept p50 / p99 ms | delivered/s | e2e p50 / p99 ms | lost | dup | peak RSS MiB | CPU µs/event relay / database |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for (scenario, systems) in &groups {
        for (system, samples) in systems {
            let m = |k: &str| median(samples.iter().filter_map(|s| s[k].as_f64()).collect());
            let sum = |k: &str| samples.iter().filter_map(|s| s[k].as_u64()).sum::<u64>();
            let cpu = |k: &str| {
                let v: Vec<f64> = samples.iter().filter_map(|s| s[k].as_f64()).collect();
                if v.is_empty() {
                    "–".to_owned()
                } else {
                    format!("{:.0}", median(v))
                }
            };
            println!(
                "| {scenario} | {system} | {} | {:.0} | {:.2} / {:.2} | {:.0} | {:.1} / {:.1} | {} | {} | {:.1} | {} / {} |",
                samples.len(), m("accepted_per_s"), m("accept_p50_ms"), m("accept_p99_ms"), m("delivered_per_s"),
                m("e2e_p50_ms"), m("e2e_p99_ms"), sum("lost"), sum("duplicates"), m("peak_rss_mib"),
                cpu("relay_cpu_us_per_event"), cpu("server_cpu_us_per_event")
            );
        }
    }
    println!("\nEvery sample (delivered/s):\n");
    for (scenario, systems) in &groups {
        for (system, samples) in systems {
            let v: Vec<String> = samples
                .iter()
                .map(|s| format!("{:.0}", s["delivered_per_s"].as_f64().unwrap_or(0.0)))
                .collect();
            println!("- {scenario} — {system}: {}", v.join(", "));
        }
    }
    let failed = rows.iter().filter(|r| r["ok"] != Value::Bool(true)).count();
    if failed > 0 {
        println!(
            "\n**{failed} run(s) lost, duplicated or had deliveries refused — marked failed.**"
        );
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Trial(args) => {
            let result = rt.block_on(trial(args))?;
            println!("{result}");
            if result["ok"] != Value::Bool(true) {
                eprintln!(
                    "FAILED: lost={} duplicates={} rejected={}",
                    result["lost"], result["duplicates"], result["rejected"]
                );
                std::process::exit(3);
            }
            Ok(())
        }
        Command::Ceiling {
            port,
            api,
            chat,
            spool,
        } => rt.block_on(ceiling(port, api, chat, spool)),
        Command::Report { results } => report(&results),
        Command::Flood(args) => {
            let result = rt.block_on(flood::flood(args))?;
            println!("{result}");
            Ok(())
        }
        Command::Console(args) => {
            let result = rt.block_on(console::console(args))?;
            println!("{result}");
            Ok(())
        }
        Command::Backlog(args) => {
            let result = rt.block_on(backlog::backlog(args))?;
            println!("{result}");
            Ok(())
        }
        Command::Storm(args) => {
            let result = rt.block_on(storm::storm(args))?;
            println!("{result}");
            Ok(())
        }
    }
}
