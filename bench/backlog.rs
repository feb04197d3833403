//! `hookrelay-bench backlog`: the chat service is down while `--count`
//! events arrive (issue #24's "a backlog that stays small"). Prints one
//! JSON line: accepted/s while the backlog builds, the daemon's peak RSS,
//! the spool's bytes per queued event beside the bytes it must keep (the
//! webhook body and the alert as fetched), and after a restart with that
//! backlog: the time to READY (`/readyz` 200) and to a new event's 202.

use crate::common::{free_port, peak_rss_kib, HOOK_ID};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Clone)]
pub struct BacklogArgs {
    #[arg(long, default_value_t = 100_000)]
    count: usize,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    #[command(flatten)]
    daemon: DaemonArgs,
    /// Keep the spool in this directory (emptied first) to look at it
    /// afterwards, instead of a temporary one.
    #[arg(long)]
    keep_spool: Option<PathBuf>,
}

/// The daemon under test: which binary, pinned to which core.
#[derive(clap::Args, Clone)]
pub struct DaemonArgs {
    #[arg(long, default_value = "target/release/hookrelay")]
    hookrelay: PathBuf,
    #[arg(long, default_value = "0")]
    relay_cpu: String,
}

fn spawn_pinned(
    daemon: &DaemonArgs,
    config: &std::path::Path,
) -> anyhow::Result<std::process::Child> {
    Ok(std::process::Command::new("taskset")
        .args(["-c", &daemon.relay_cpu])
        .arg(&daemon.hookrelay)
        .args(["run", "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?)
}

/// Posts events 0..count with `concurrency` senders, as fast as they are
/// answered; returns how many got a 202.
pub(crate) async fn send_events(
    client: &reqwest::Client,
    url: &str,
    count: usize,
    concurrency: usize,
) -> anyhow::Result<usize> {
    let next = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(0));
    let mut senders = Vec::new();
    for _ in 0..concurrency {
        let (client, url, next, accepted) = (
            client.clone(),
            url.to_owned(),
            next.clone(),
            accepted.clone(),
        );
        senders.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return;
                }
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(crate::common::event_body(i))
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status() == 202) {
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for s in senders {
        s.await?;
    }
    Ok(accepted.load(Ordering::Relaxed))
}

/// Drops the daemon binary's pages from the page cache, so the run maps
/// its code as read from disk, as a deployed daemon's is: a binary just
/// written by the build showed about 0.6 MB more resident code than the
/// same one read back (BENCHMARKS.md, twelfth session).
fn evict_from_page_cache(binary: &std::path::Path) {
    use std::os::fd::AsRawFd;
    if let Ok(file) = std::fs::File::open(binary) {
        // Only clean pages can be dropped.
        let _ = file.sync_data();
        // SAFETY: advice about a file descriptor this function owns.
        unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    }
}

/// Writes `config` to `path`, starts the daemon on it, and waits until it is ready; with a client for
/// `concurrency` senders.
pub(crate) async fn start_daemon(
    path: &std::path::Path,
    config: &str,
    daemon: &DaemonArgs,
    admin: u16,
    concurrency: usize,
) -> anyhow::Result<(std::process::Child, reqwest::Client)> {
    std::fs::write(path, config)?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let child = spawn_pinned(daemon, path)?;
    ready(&client, admin, Duration::from_secs(20)).await?;
    Ok((child, client))
}

pub(crate) async fn ready(
    client: &reqwest::Client,
    admin: u16,
    deadline: Duration,
) -> anyhow::Result<Duration> {
    let start = Instant::now();
    loop {
        if client
            .get(format!("http://127.0.0.1:{admin}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
        {
            return Ok(start.elapsed());
        }
        if start.elapsed() > deadline {
            anyhow::bail!("the daemon did not become ready");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn spool_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("spool.db"))
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

pub async fn backlog(args: BacklogArgs) -> anyhow::Result<Value> {
    let temp = tempfile::tempdir()?;
    let dir = match &args.keep_spool {
        Some(keep) => {
            let _ = std::fs::remove_dir_all(keep);
            std::fs::create_dir_all(keep)?;
            keep.clone()
        }
        None => temp.path().to_path_buf(),
    };
    // The alert API answers; the chat service is a closed port.
    let (upstream, api_addr) = crate::common::start_api().await?;
    let dead = free_port()?;
    let (port, admin) = (free_port()?, free_port()?);
    let config = format!(
        "[server]\nlisten = \"127.0.0.1:{port}\"\n[admin]\nlisten = \"127.0.0.1:{admin}\"\n\
         [store]\npath = \"{}\"\nsync = \"full\"\nmax_pending = 10000000\n\
         [delivery]\nmax_age = \"7d\"\ninitial_backoff = \"10s\"\nmax_backoff = \"10m\"\n\
         [origins.sekoia]\nkind = \"sekoia\"\nbase_url = \"http://{api_addr}/api\"\napi_key = \"bench\"\nconcurrency = 256\n\
         [hooks.soc]\nid = \"{HOOK_ID}\"\norigin = \"sekoia\"\n\
         [destinations.teams]\nkind = \"teams\"\nurl = \"http://127.0.0.1:{dead}/chat\"\n\
         [[routes]]\nname = \"all\"\nto = [\"teams\"]\n",
        dir.as_path().join("spool.db").display()
    );
    let path = dir.as_path().join("hookrelay.toml");
    evict_from_page_cache(&args.daemon.hookrelay);
    let (mut child, client) =
        start_daemon(&path, &config, &args.daemon, admin, args.concurrency).await?;
    let url = format!("http://127.0.0.1:{port}/hooks/{HOOK_ID}");
    let started = Instant::now();
    let accepted = send_events(&client, &url, args.count, args.concurrency).await?;
    let took = started.elapsed();
    // Let routing catch up (enrichment and the routing commit) before
    // measuring what the spool keeps per event.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_kib = peak_rss_kib(child.id()).unwrap_or(0);
    let bytes = spool_bytes(dir.as_path());
    let must_keep = crate::common::event_body(0).len() + crate::common::alert_json(0).len();
    // Restart with that backlog.
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    child.wait()?;
    let mut child = spawn_pinned(&args.daemon, &path)?;
    let to_ready = ready(&client, admin, Duration::from_secs(60)).await?;
    let t = Instant::now();
    let first = client
        .post(&url)
        .header("content-type", "application/json")
        .body(crate::common::event_body(args.count + 1))
        .send()
        .await?
        .status()
        .as_u16();
    let first_accept = t.elapsed();
    let _ = child.kill();
    let _ = child.wait();
    upstream.abort();
    Ok(json!({
        "scenario": "backlog", "count": args.count, "concurrency": args.concurrency,
        "accepted": accepted, "accepted_per_s": accepted as f64 / took.as_secs_f64(),
        "peak_rss_mib": rss_kib as f64 / 1024.0,
        "spool_bytes_per_event": bytes as f64 / accepted.max(1) as f64,
        "must_keep_bytes_per_event": must_keep,
        "restart_ready_s": to_ready.as_secs_f64(),
        "restart_first_status": first, "restart_first_accept_s": first_accept.as_secs_f64(),
    }))
}
