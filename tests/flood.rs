//! Keeping the door open under a connection flood: slow-loris headers and
//! trickled bodies, from one address (3,000 connections: the per-peer cap
//! holds them) and from 200 addresses (10 each: shedding must), while a
//! legitimate sender posts an event every 200 ms on a fresh connection.
//! Every legitimate event is answered 202 within a second and delivered,
//! `/readyz` on the admin port answers 200 throughout, memory stays bounded.
//!
//! The flood is `hookrelay-bench flood` (loopback only, bounded in
//! connections and time), the same driver whose numbers BENCHMARKS.md
//! reports.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const SLACK: &str = "/slack/services/T000/B000/secret-token";

async fn flood(daemon: &Daemon, attack: &str, sources: usize, per_source: usize) -> Value {
    let args: Vec<String> = [
        "flood",
        "--target",
        &daemon.addr.to_string(),
        "--admin",
        &daemon.admin.to_string(),
        "--attack",
        attack,
        "--sources",
        &sources.to_string(),
        "--per-source",
        &per_source.to_string(),
        "--rate",
        "600",
        "--duration-secs",
        "6",
        "--pid",
        &daemon.child.id().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_hookrelay-bench"))
            .args(&args)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "flood driver failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn check(what: &str, r: &Value) {
    let sent = r["legit_sent"].as_u64().unwrap();
    assert!(sent >= 20, "{what}: only {sent} legitimate events: {r}");
    assert_eq!(r["legit_accepted"], r["legit_sent"], "{what}: {r}");
    let p99 = r["legit_p99_ms"].as_f64().unwrap();
    assert!(p99 < 1000.0, "{what}: legitimate p99 {p99} ms: {r}");
    assert_eq!(r["readyz_failed"], 0, "{what}: /readyz failed: {r}");
    // A debug build; the release daemon's figures are in BENCHMARKS.md.
    let rss = r["peak_rss_kib"].as_u64().unwrap();
    assert!(rss < 256 * 1024, "{what}: peak RSS {rss} KiB: {r}");
    assert!(
        r["attack_connected"].as_u64().unwrap() >= 500,
        "{what}: the attack did not get going: {r}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_flood_does_not_lock_senders_out() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &fake,
        dir.path(),
        "[[routes]]\nname = \"r\"\nto = [\"slack\"]\n",
    );
    let daemon = Daemon::spawn(&config).await;
    let mut accepted = 0;
    for attack in ["headers", "body"] {
        // (a) One address, 3,000 connections: the per-peer cap holds it.
        let r = flood(&daemon, attack, 1, 3000).await;
        check(&format!("{attack} from one address"), &r);
        accepted += r["legit_accepted"].as_u64().unwrap() as usize;
        let m = daemon.metrics().await;
        assert!(
            metric(
                &m,
                "hookrelay_connections_refused_total",
                &["reason=\"per_ip_cap\""]
            ) > 0.0,
            "{m}"
        );
        // (b) 200 addresses, 10 each: under the per-peer cap, over the
        // listener's; the least progress is shed.
        let shed_before = metric(&m, "hookrelay_connections_shed_total", &[]);
        let r = flood(&daemon, attack, 200, 10).await;
        check(&format!("{attack} from 200 addresses"), &r);
        accepted += r["legit_accepted"].as_u64().unwrap() as usize;
        let m = daemon.metrics().await;
        assert!(
            metric(&m, "hookrelay_connections_shed_total", &[]) > shed_before,
            "{m}"
        );
    }
    // None lost: every accepted event reaches the chat service (their
    // messages look alike: the fake alert API serves one alert).
    fake.wait_for(SLACK, accepted, Duration::from_secs(60))
        .await;
    let logs = daemon.logs();
    assert!(
        logs.contains("the listener may be under a connection flood") && logs.contains("top_peer"),
        "no warning naming the peer"
    );
}

/// Bad connections, each closed by a deadline and counted, none costing a
/// legitimate sender anything: a half-open connection that sends nothing,
/// one byte every few seconds, headers then a trickled body, pipelined
/// garbage after a valid request, an idle keep-alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_broken_connections_are_closed_by_deadlines() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), "");
    // Short deadlines for the test: headers, body and idle 1 s each.
    edit_config(
        &config,
        "[server]\nlisten = \"127.0.0.1:0\"\n",
        "[server]\nlisten = \"127.0.0.1:0\"\nheader_read_timeout = \"1s\"\nrequest_timeout = \"1s\"\nidle_timeout = \"1s\"\n",
    );
    let daemon = Daemon::spawn(&config).await;
    let connect = || tokio::net::TcpStream::connect(daemon.addr);
    let head = format!(
        "POST /hooks/{HOOK_ID} HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
    );
    // Reads until the server closes; returns what it said.
    async fn until_closed(s: &mut tokio::net::TcpStream) -> String {
        let mut all = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return String::from_utf8_lossy(&all).into_owned(),
                Ok(Ok(n)) => all.extend_from_slice(&buf[..n]),
                Err(_) => panic!(
                    "not closed within 10 s; got {:?}",
                    String::from_utf8_lossy(&all)
                ),
            }
        }
    }
    let t0 = std::time::Instant::now();
    // Half-open: connects, sends nothing.
    let mut silent = connect().await.unwrap();
    // One byte at a time: never finishes its head.
    let mut trickle = connect().await.unwrap();
    let trickler = {
        let head = head.clone();
        tokio::spawn(async move {
            for b in head.bytes() {
                if trickle.write_all(&[b]).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            until_closed(&mut trickle).await
        })
    };
    // Headers, then a body that never completes.
    let mut body = connect().await.unwrap();
    body.write_all(format!("{head}Content-Length: 65536\r\n\r\n{{").as_bytes())
        .await
        .unwrap();
    // A valid request, then garbage on the same connection.
    let mut garbage = connect().await.unwrap();
    let event = unique_event(1, ALERT_UUID);
    garbage
        .write_all(
            format!(
                "{head}Content-Length: {}\r\n\r\n{event}\x00\x01GARBAGE \r\n\r\n",
                event.len()
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    // An idle keep-alive after one good request.
    let mut idle = connect().await.unwrap();
    let event2 = unique_event(2, ALERT_UUID);
    idle.write_all(format!("{head}Content-Length: {}\r\n\r\n{event2}", event2.len()).as_bytes())
        .await
        .unwrap();

    assert_eq!(until_closed(&mut silent).await, "");
    let said = trickler.await.unwrap();
    assert!(
        said.is_empty() || said.starts_with("HTTP/1.1 408"),
        "{said}"
    );
    let said = until_closed(&mut body).await;
    assert!(said.starts_with("HTTP/1.1 408"), "{said}");
    let said = until_closed(&mut garbage).await;
    assert!(said.starts_with("HTTP/1.1 202"), "{said}");
    assert!(said.contains("HTTP/1.1 400"), "the garbage: {said}");
    let said = until_closed(&mut idle).await;
    assert!(said.starts_with("HTTP/1.1 202"), "{said}");
    assert!(t0.elapsed() < Duration::from_secs(10));
    // Meanwhile, a legitimate sender was never kept waiting.
    assert_eq!(daemon.post_unique(3).await, 202);
    let m = daemon.metrics().await;
    for reason in ["header_timeout", "idle_timeout"] {
        assert!(
            metric(
                &m,
                "hookrelay_connections_timed_out_total",
                &[&format!("reason=\"{reason}\"")]
            ) >= 1.0,
            "{reason}: {m}"
        );
    }
    // The garbage after a valid request, and the body that never came.
    assert!(
        metric(
            &m,
            "hookrelay_connections_failed_total",
            &["reason=\"malformed\""]
        ) >= 1.0,
        "{m}"
    );
    assert!(
        metric(
            &m,
            "hookrelay_events_received_total",
            &["result=\"timeout\""]
        ) >= 1.0,
        "{m}"
    );
}
