//! What every scenario shares: the hook id, the events the harness sends
//! and the alerts its fake API answers, free ports, percentiles, and what
//! `/proc` says about a process (peak RSS, CPU time). A leaf module: it
//! imports nothing from the others.

use axum::extract::Path;
use axum::routing::get;
use axum::Router;
use serde_json::json;
use std::net::SocketAddr;

/// The hook every scenario posts to (`/hooks/{HOOK_ID}`).
pub const HOOK_ID: &str = "67a7472b-b43c-415d-b1ce-c135fb1dfb0e";

pub fn alert_uuid(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

pub fn index_of(uuid: &str) -> Option<usize> {
    uuid.strip_prefix("00000000-0000-4000-8000-")?.parse().ok()
}

/// The alert the fake API answers for event `i`.
pub fn alert_json(i: usize) -> String {
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
pub async fn start_api() -> anyhow::Result<(tokio::task::JoinHandle<()>, SocketAddr)> {
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

pub fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

pub fn peak_rss_kib(pid: u32) -> Option<u64> {
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
pub fn cpu_us(pid: u32, children: bool) -> Option<u64> {
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
pub fn tree_cpu_us(pid: u32) -> u64 {
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

pub fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

pub fn event_body(i: usize) -> String {
    json!({
        "type": "alert", "action": "created",
        "attributes": {"uuid": alert_uuid(i), "short_id": format!("AL{i:010}")},
        "metadata": {"version": 2, "created_at": "2022-01-14T15:06:57.398005+00:00",
                     "community_uuid": "d6cea089-0f36-46c4-a10a-0e4c2e20fb10",
                     "avatar_uuid": null, "user_uuid": null, "permissions": []}
    })
    .to_string()
}
