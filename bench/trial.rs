//! `hookrelay-bench trial`: one system under test, one scenario, one JSON
//! line. The fake alert API and chat services (`fakes`) run in this
//! process; the relay runs as a child pinned to its own core (`relay`).

use crate::args::TrialArgs;
use crate::common::{cpu_us, peak_rss_kib, percentile, tree_cpu_us, HOOK_ID};
use crate::fakes::{start_upstream, Upstream};
use crate::pg::PgDatabase;
use crate::relay::{start_relay, Relay};
use anyhow::bail;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Runs one trial and returns its JSON line.
pub async fn trial(args: TrialArgs) -> anyhow::Result<Value> {
    let start = Instant::now();
    let (upstream, up_addr) = start_upstream(&args, start).await?;
    let dir = tempfile::tempdir()?;
    let database = match (&args.system[..], &args.pg.pg_url) {
        ("hookrelay-pg", Some(server)) => Some(PgDatabase::create(server).await?),
        ("hookrelay-pg", None) => bail!("hookrelay-pg needs --pg-url"),
        _ => None,
    };
    let mut relay = start_relay(
        &args,
        up_addr,
        dir.path(),
        database.as_ref().map(|d| d.url.as_str()),
    )?;
    let pids: Vec<u32> = relay.children.iter().map(|c| c.id()).collect();
    let server_cpu_before = args.pg.server_pid.map(tree_cpu_us);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    wait_listening(&client, &mut relay, &args.system).await?;

    let t0 = start.elapsed();
    let sent = send_all(&args, &client, Arc::new(relay.urls.clone()), start).await?;
    let accept_secs = (start.elapsed() - t0).as_secs_f64();
    wait_delivered(&args, &upstream, start).await;

    // Replicas: the sum of their peaks.
    let rss: Option<u64> = pids.iter().map(|p| peak_rss_kib(*p)).sum();
    let relay_cpu: Option<u64> = pids.iter().map(|p| cpu_us(*p, false)).sum();
    for child in &mut relay.children {
        let _ = child.kill();
        let _ = child.wait();
    }
    // The server's backends for the relay exit once it is gone; give the
    // postmaster a moment to reap them (their time moves to its children's).
    let server_cpu = match (args.pg.server_pid, server_cpu_before) {
        (Some(pid), Some(before)) => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            Some(tree_cpu_us(pid).saturating_sub(before))
        }
        _ => None,
    };
    if let Some(db) = database {
        db.drop_it().await;
    }
    let measured = Measured {
        t0,
        accept_secs,
        sent,
        relay_cpu,
        server_cpu,
        rss,
    };
    Ok(summarize(&args, &upstream, &measured))
}

/// Waits until every process of the relay answers `/healthz`.
async fn wait_listening(
    client: &reqwest::Client,
    relay: &mut Relay,
    system: &str,
) -> anyhow::Result<()> {
    let ready_deadline = Instant::now() + Duration::from_secs(30);
    for (child, url) in relay.children.iter_mut().zip(&relay.urls) {
        loop {
            let probe = client
                .get(url.replace(&format!("/hooks/{HOOK_ID}"), "/healthz"))
                .send()
                .await;
            if probe.is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                bail!("{system} exited during start: {status}");
            }
            if Instant::now() > ready_deadline {
                let _ = child.kill();
                bail!("{system} did not start");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// What the senders saw.
struct Sent {
    /// When each event was sent, in µs since the trial's start.
    sent_at: Arc<Vec<AtomicU64>>,
    /// Accept latencies in µs, sorted.
    accept_lat: Vec<u64>,
    rejected: usize,
}

/// Posts every event with `concurrency` senders, as fast as they are
/// answered, round-robin over the relay's URLs.
async fn send_all(
    args: &TrialArgs,
    client: &reqwest::Client,
    urls: Arc<Vec<String>>,
    start: Instant,
) -> anyhow::Result<Sent> {
    let sent_at: Arc<Vec<AtomicU64>> =
        Arc::new((0..args.count).map(|_| AtomicU64::new(0)).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let accept_lat: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(Vec::with_capacity(args.count)));
    let rejected: Arc<AtomicUsize> = Arc::new(AtomicUsize::new(0));
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
                let body = crate::common::event_body(i);
                let before = start.elapsed();
                sent_at[i].store(before.as_micros() as u64, Ordering::Relaxed);
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
    let mut accept_lat = accept_lat.lock().unwrap().clone();
    accept_lat.sort_unstable();
    Ok(Sent {
        sent_at,
        accept_lat,
        rejected: rejected.load(Ordering::Relaxed),
    })
}

/// Waits for deliveries until all have arrived or none has for
/// `stall_secs`.
async fn wait_delivered(args: &TrialArgs, upstream: &Upstream, start: Instant) {
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
}

/// What a trial measured besides the fake services' records.
struct Measured {
    /// When the first event was sent, since the trial's start.
    t0: Duration,
    accept_secs: f64,
    sent: Sent,
    relay_cpu: Option<u64>,
    server_cpu: Option<u64>,
    /// Peak RSS in KiB (the sum over replicas).
    rss: Option<u64>,
}

/// The trial's JSON line.
fn summarize(args: &TrialArgs, upstream: &Upstream, m: &Measured) -> Value {
    let expected = args.count * args.destinations;
    let first = upstream.first.lock().unwrap();
    let mut e2e = Vec::with_capacity(expected);
    let mut last_delivery = 0u64;
    for dest in first.iter() {
        for (i, t) in dest.iter().enumerate() {
            if let Some(t) = t {
                e2e.push(t.saturating_sub(m.sent.sent_at[i].load(Ordering::Relaxed)));
                last_delivery = last_delivery.max(*t);
            }
        }
    }
    e2e.sort_unstable();
    let acc = &m.sent.accept_lat;
    let rejected = m.sent.rejected;
    let per_event = |us: Option<u64>| us.map(|us| us as f64 / args.count.max(1) as f64);
    let delivered = upstream.delivered.load(Ordering::Relaxed);
    let deliver_secs = (Duration::from_micros(last_delivery).saturating_sub(m.t0)).as_secs_f64();
    let lost = expected - delivered;
    let duplicates = upstream.duplicates.load(Ordering::Relaxed);
    let system = if args.system == "hookrelay-pg" {
        format!("hookrelay-pg ×{}", args.pg.replicas.max(1))
    } else {
        args.system.clone()
    };
    json!({
        "system": system, "label": args.label, "count": args.count, "concurrency": args.concurrency,
        "destinations": args.destinations, "api_delay_ms": args.api_delay_ms, "chat_delay_ms": args.chat_delay_ms,
        "accepted_per_s": (args.count - rejected) as f64 / m.accept_secs,
        "accept_p50_ms": percentile(acc, 0.5), "accept_p99_ms": percentile(acc, 0.99),
        "delivered_per_s": if deliver_secs > 0.0 { delivered as f64 / deliver_secs } else { 0.0 },
        "e2e_p50_ms": percentile(&e2e, 0.5), "e2e_p99_ms": percentile(&e2e, 0.99),
        "rejected": rejected, "lost": lost, "duplicates": duplicates,
        "unparsed": upstream.unparsed.load(Ordering::Relaxed), "api_calls": upstream.api_calls.load(Ordering::Relaxed),
        "peak_rss_mib": m.rss.map(|k| k as f64 / 1024.0),
        "relay_cpu_us_per_event": per_event(m.relay_cpu),
        "server_cpu_us_per_event": per_event(m.server_cpu),
        "ok": lost == 0 && duplicates == 0 && rejected == 0,
    })
}
