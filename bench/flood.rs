//! `hookrelay-bench flood`: a connection flood against the public listener
//! (slow-loris headers or trickled bodies, from one loopback address or
//! many) while a legitimate sender posts an event every few hundred ms on
//! a fresh connection and a prober asks the admin listener's `/readyz`.
//! Prints one JSON line: the legitimate senders' latencies and statuses,
//! the probes, what the attack managed to hold, and the daemon's peak RSS.
//!
//! Loopback only (127.0.0.0/8), bounded in connections and time; used by
//! `tests/flood.rs` (the assertions) and `scripts/bench.sh` (the numbers).

use crate::common::{event_body, peak_rss_kib, percentile, HOOK_ID};
use serde_json::{json, Value};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(clap::Args, Clone)]
pub struct FloodArgs {
    /// The public listener.
    #[arg(long)]
    target: SocketAddr,
    /// The admin listener (`/readyz` is probed throughout).
    #[arg(long)]
    admin: SocketAddr,
    /// `headers` (slow-loris: a header line every --interval-ms), `body`
    /// (complete headers, then a 64 KB body one byte at a time) or `none`.
    #[arg(long, default_value = "headers")]
    attack: String,
    /// Distinct attacking addresses (127.10.x.y).
    #[arg(long, default_value_t = 1)]
    sources: usize,
    /// Connections opened from each address.
    #[arg(long, default_value_t = 3000)]
    per_source: usize,
    /// Attacking connections opened per second, all addresses together.
    #[arg(long, default_value_t = 600)]
    rate: u64,
    /// How long the attack (and the measurement) lasts.
    #[arg(long, default_value_t = 8)]
    duration_secs: u64,
    /// Between two trickled bytes or header lines on one connection.
    #[arg(long, default_value_t = 2000)]
    interval_ms: u64,
    /// A legitimate event this often, each on a new connection.
    #[arg(long, default_value_t = 200)]
    legit_every_ms: u64,
    /// The daemon's pid, for its peak RSS.
    #[arg(long)]
    pid: Option<u32>,
    #[arg(long, default_value = "")]
    label: String,
}

/// What the attack achieved.
#[derive(Default)]
struct Attack {
    attempted: AtomicUsize,
    connected: AtomicUsize,
    /// Connections the server closed while they were attacking.
    closed_by_server: AtomicUsize,
    open: AtomicUsize,
    peak_open: AtomicUsize,
}

fn source(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 10, (i / 250) as u8, (i % 250 + 1) as u8))
}

/// One attacking connection: connect from `from`, then hold the server
/// with a request that never completes, until `until` or until the
/// server closes it.
async fn attack_one(
    from: IpAddr,
    target: SocketAddr,
    kind: String,
    interval: Duration,
    until: Instant,
    stats: Arc<Attack>,
) {
    stats.attempted.fetch_add(1, Ordering::Relaxed);
    let Ok(socket) = tokio::net::TcpSocket::new_v4() else {
        return;
    };
    if socket.bind(SocketAddr::new(from, 0)).is_err() {
        return;
    }
    let connect = tokio::time::timeout(Duration::from_secs(2), socket.connect(target)).await;
    let Ok(Ok(mut stream)) = connect else {
        return;
    };
    stats.connected.fetch_add(1, Ordering::Relaxed);
    let now_open = stats.open.fetch_add(1, Ordering::Relaxed) + 1;
    stats.peak_open.fetch_max(now_open, Ordering::Relaxed);
    let head = format!(
        "POST /hooks/{HOOK_ID} HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
    );
    let first = if kind == "body" {
        format!("{head}Content-Length: 65536\r\n\r\n{{")
    } else {
        head
    };
    let mut closed = stream.write_all(first.as_bytes()).await.is_err();
    let mut buf = [0u8; 512];
    let mut n = 0u64;
    while !closed && Instant::now() < until {
        let wait =
            tokio::time::sleep(interval.min(until.saturating_duration_since(Instant::now())));
        tokio::select! {
            _ = stream.read(&mut buf) => {
                // The server closed it, or answered (a 408), then closes.
                closed = true;
            }
            _ = wait => {
                n += 1;
                let more = if kind == "body" { "1".to_owned() } else { format!("X-Slow-{n}: 1\r\n") };
                closed = stream.write_all(more.as_bytes()).await.is_err();
            }
        }
    }
    if closed {
        stats.closed_by_server.fetch_add(1, Ordering::Relaxed);
    }
    stats.open.fetch_sub(1, Ordering::Relaxed);
}

pub async fn flood(args: FloodArgs) -> anyhow::Result<Value> {
    let start = Instant::now();
    let until = start + Duration::from_secs(args.duration_secs);
    let stats = Arc::new(Attack::default());
    let interval = Duration::from_millis(args.interval_ms);

    let attacker = spawn_attack(&args, until, interval, stats.clone());
    let mut legit = legitimate_sender(&args, until).await?;
    let mut latencies = Vec::new();
    let (mut sent, mut accepted, mut ready_ok, mut ready_fail) = (0, 0, 0, 0);
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    while let Some(r) = legit.join_next().await {
        let (status, took, ready) = r?;
        sent += 1;
        *statuses.entry(status).or_default() += 1;
        if status == 202 {
            accepted += 1;
        }
        latencies.push(took);
        if ready == 200 {
            ready_ok += 1;
        } else {
            ready_fail += 1;
        }
    }
    attacker.await?;
    latencies.sort_unstable();
    Ok(json!({
        "label": args.label,
        "attack": args.attack,
        "sources": args.sources,
        "per_source": args.per_source,
        "legit_sent": sent,
        "legit_accepted": accepted,
        "legit_statuses": statuses
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect::<serde_json::Map<_, _>>(),
        "legit_p50_ms": percentile(&latencies, 0.5),
        "legit_p99_ms": percentile(&latencies, 0.99),
        "legit_max_ms": latencies.last().map_or(f64::NAN, |m| *m as f64 / 1000.0),
        "readyz_ok": ready_ok,
        "readyz_failed": ready_fail,
        "attack_attempted": stats.attempted.load(Ordering::Relaxed),
        "attack_connected": stats.connected.load(Ordering::Relaxed),
        "attack_peak_open": stats.peak_open.load(Ordering::Relaxed),
        "attack_closed_by_server": stats.closed_by_server.load(Ordering::Relaxed),
        "peak_rss_kib": args.pid.and_then(peak_rss_kib),
        "elapsed_s": start.elapsed().as_secs_f64(),
    }))
}

/// The attack: round-robin over the addresses, at `rate` per second,
/// until `until`.
fn spawn_attack(
    args: &FloodArgs,
    until: Instant,
    interval: Duration,
    stats: Arc<Attack>,
) -> tokio::task::JoinHandle<()> {
    let args = args.clone();
    tokio::spawn(async move {
        if args.attack == "none" {
            return;
        }
        let total = args.sources * args.per_source;
        let every = Duration::from_secs_f64(1.0 / args.rate.max(1) as f64);
        let mut tick = tokio::time::interval(every);
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..total {
            tick.tick().await;
            if Instant::now() >= until {
                break;
            }
            tasks.spawn(attack_one(
                source(i % args.sources),
                args.target,
                args.attack.clone(),
                interval,
                until,
                stats.clone(),
            ));
        }
        while tasks.join_next().await.is_some() {}
    })
}

/// The legitimate sender and the readiness prober: one event every
/// `legit_every_ms` and a `/readyz` after each, until `until`; each task
/// yields (hook status, hook latency in µs, readyz status).
async fn legitimate_sender(
    args: &FloodArgs,
    until: Instant,
) -> anyhow::Result<tokio::task::JoinSet<(u16, u64, u16)>> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()?;
    let hook = format!("http://{}/hooks/{HOOK_ID}", args.target);
    let readyz = format!("http://{}/readyz", args.admin);
    let mut legit = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(Duration::from_millis(args.legit_every_ms));
    // Event numbers of this run's own (a body repeated within the dedup
    // window would be a sender retry, delivered once).
    let mut i = std::process::id() as usize * 100_000;
    // Give the attack a head start of one second, so it is at full
    // strength for most of the legitimate events.
    tokio::time::sleep(Duration::from_secs(1).min(until.saturating_duration_since(Instant::now())))
        .await;
    while Instant::now() < until {
        tick.tick().await;
        i += 1;
        let (client, hook, readyz, body) =
            (client.clone(), hook.clone(), readyz.clone(), event_body(i));
        legit.spawn(async move {
            let t0 = Instant::now();
            let status = client
                .post(&hook)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            let took = t0.elapsed().as_micros() as u64;
            let ready = client
                .get(&readyz)
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            (status, took, ready)
        });
    }
    Ok(legit)
}
