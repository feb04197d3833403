//! Nothing from outside can stall the relay: a webhook field or an alert
//! the API dates oddly is a display problem, never a panic that leaves the
//! event `received` for ever; a failure inside the relay while processing
//! one event ends that event (with the reason), never the pipeline; a
//! stuffed signature header costs one MAC; weak secrets are refused.
//!
//! These drive the built binary (its logs are what an operator reads) and
//! the CLI over its spool.

mod common;

use common::*;
use serde_json::Value;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const WAIT: Duration = Duration::from_secs(30);
const TEAMS: &str = "/teams/workflows/secret-token";

/// A created event about [`ALERT_UUID`] whose `metadata.created_at` has a
/// two-byte character across byte 19 (it once panicked routing).
fn poison_event() -> String {
    let mut v = fixture_json("event-alert-created.json");
    v["metadata"]["created_at"] = "2022-01-14T15:06:5é".into();
    v.to_string()
}

/// The alert as an origin may answer it: created after year 9999 (it once
/// panicked formatting the time).
fn far_future_alert() -> Value {
    let mut a = fixture_json("alert-full.json");
    a["created_at"] = 253_402_300_800u64.into();
    a
}

fn panicked(logs: &str) -> bool {
    logs.contains("panicked") || logs.contains("RUST_BACKTRACE")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poisoned_time_is_delivered_without_a_panic_also_after_a_restart() {
    let fake = Fake::start().await;
    fake.set_alert(ALERT_UUID, far_future_alert());
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &fake,
        dir.path(),
        "[[routes]]\nname = \"all\"\nto = [\"teams\"]\n",
    );
    let daemon = Daemon::spawn(&config).await;
    let client = reqwest::Client::new();
    let posted = client
        .post(daemon.hook_url())
        .header("content-type", "application/json")
        .body(poison_event())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);
    let got = fake.wait_for(TEAMS, 1, WAIT).await;
    let card = String::from_utf8_lossy(&got[0].body).into_owned();
    assert!(
        card.contains("Suspicious PowerShell download cradle"),
        "delivered with the alert's details: {card}"
    );
    assert!(!panicked(&daemon.logs()), "{}", daemon.logs());

    // The second time the event is about to be routed, the relay dies
    // (the alert API is slow, so the event is still `received`); the next
    // start routes it, again without a panic.
    const SECOND: &str = "5696845f-9ecf-4431-9f0f-48ee0ee20002";
    let api = format!("/api/v1/sic/alerts/{SECOND}");
    let mut v = fixture_json("event-alert-created.json");
    v["metadata"]["created_at"] = "2022-01-14T15:06:5é".into();
    v["attributes"]["uuid"] = SECOND.into();
    fake.set_alert(SECOND, far_future_alert());
    fake.always(
        &api,
        Reply::status(200, &far_future_alert().to_string()).delay(Duration::from_secs(60)),
    );
    let posted = client
        .post(daemon.hook_url())
        .header("content-type", "application/json")
        .body(v.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 202);
    fake.wait_started(&api, 1, WAIT).await;
    let mut daemon = daemon;
    daemon.kill9();
    fake.clear_always(&api);
    let daemon = Daemon::spawn(&config).await;
    let got = fake.wait_for(TEAMS, 2, WAIT).await;
    assert_eq!(got.len(), 2);
    assert!(!panicked(&daemon.logs()), "{}", daemon.logs());
    let (code, out, _) = cli(&["events", "list", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert!(!out.contains("received"), "nothing stuck: {out}");
}

/// Polls `events show ID` until `want` is in it.
async fn wait_show(config: &std::path::Path, id: &str, want: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let (_, out, _) = cli(&["events", "show", id, "--config", config.to_str().unwrap()]);
        if out.contains(want) {
            return out;
        }
        assert!(Instant::now() < deadline, "{want:?} never in:\n{out}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn panic_event() -> String {
    let mut v = fixture_json("event-alert-created.json");
    v["attributes"]["short_id"] = "PANICTEST".into();
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_while_routing_ends_that_event_only_and_never_again_after_a_restart() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &fake,
        dir.path(),
        "[[routes]]\nname = \"all\"\nto = [\"teams\"]\n",
    );
    let env = [("TEST_HOOKRELAY_PANIC", "event")];
    let start = |config: std::path::PathBuf| {
        tokio::task::spawn_blocking(move || Daemon::start_with_env(&config, &env))
    };
    let mut daemon = start(config.clone()).await.unwrap();
    let client = reqwest::Client::new();
    for body in [panic_event(), unique_event(1, ALERT_UUID)] {
        let r = client
            .post(daemon.hook_url())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    // The pipeline goes on: the next event is delivered.
    fake.wait_for(TEAMS, 1, WAIT).await;
    let shown = wait_show(&config, "1", "processing failed").await;
    assert!(
        shown.contains("internal error: test failpoint: event"),
        "{shown}"
    );
    assert!(!shown.contains("not yet routed"), "{shown}");
    let metrics = daemon.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "hookrelay_processing_failures_total",
            &["stage=\"event\""]
        ),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        daemon.logs().matches("test failpoint").count(),
        2,
        "the panic and its error line, once"
    );

    // A restart does not fail on it again: it is no longer `received`.
    daemon.kill9();
    let daemon = start(config.clone()).await.unwrap();
    let r = client
        .post(daemon.hook_url())
        .header("content-type", "application/json")
        .body(unique_event(2, ALERT_UUID))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    fake.wait_for(TEAMS, 2, WAIT).await;
    assert!(
        !daemon.logs().contains("test failpoint"),
        "{}",
        daemon.logs()
    );
    assert_eq!(fake.received(TEAMS).len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_while_rendering_is_a_replayable_dead_letter() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &fake,
        dir.path(),
        "[[routes]]\nname = \"all\"\nto = [\"teams\"]\n",
    );
    let env = [("TEST_HOOKRELAY_PANIC", "render")];
    let cfg = config.clone();
    let daemon = tokio::task::spawn_blocking(move || Daemon::start_with_env(&cfg, &env))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    for body in [panic_event(), unique_event(1, ALERT_UUID)] {
        let r = client
            .post(daemon.hook_url())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    fake.wait_for(TEAMS, 1, WAIT).await;
    let deadline = Instant::now() + WAIT;
    let listed = loop {
        let (_, out, _) = cli(&["dead-letters", "list", "--config", config.to_str().unwrap()]);
        if out.contains("PANICTEST") {
            break out;
        }
        assert!(Instant::now() < deadline, "no dead letter: {out}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        listed.contains("cannot render: internal error: test failpoint: render"),
        "{listed}"
    );
    drop(daemon);

    // Replayed by a relay without the fault (an upgrade, say): rendered
    // again and delivered.
    let (code, out, err) = cli(&[
        "dead-letters",
        "replay",
        "--all",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let _daemon = Daemon::spawn(&config).await;
    let got = fake.wait_for(TEAMS, 2, WAIT).await;
    assert_eq!(
        got.len(),
        2,
        "the other event's message, then the replayed one"
    );
    let (_, out, _) = cli(&["dead-letters", "list", "--config", config.to_str().unwrap()]);
    assert!(!out.contains("PANICTEST"), "{out}");
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

const KEY: &str = "whsec_c2VjcmV0LWtleS1udW1iZXItdHdvLWZvci1ob29rcmVsYXk=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuffed_signature_header_is_refused_at_once() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), ROUTE_ALL);
    edit_config(
        &config,
        "origin = \"sekoia\"\n[destinations.teams]",
        &format!("origin = \"sekoia\"\nsecret = \"{KEY}\"\n[destinations.teams]"),
    );
    let daemon = Daemon::spawn(&config).await;
    let client = reqwest::Client::new();
    // A 64 KB body and 90,000 empty candidates (a 360 KB header): the
    // old check computed the HMAC of the body 90,000 times (5.8 s of a
    // core in a release build, minutes in a debug one).
    let body = {
        let mut v = fixture_json("event-alert-created.json");
        v["padding"] = "x".repeat(60_000).into();
        v.to_string()
    };
    let stuffed = "v1, ".repeat(90_000);
    let started = Instant::now();
    let r = client
        .post(daemon.hook_url())
        .header("content-type", "application/json")
        .header("webhook-id", "msg_stuffed")
        .header("webhook-timestamp", now().to_string())
        .header("webhook-signature", stuffed)
        .body(body.clone())
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // Generous for a loaded CI machine; the point is "not one MAC per
    // candidate" (BENCHMARKS.md has the measured refusal times).
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused after {:?}",
        started.elapsed()
    );

    // A real signature among a few candidates still passes.
    let ts = now();
    let good =
        hookrelay::ingress::auth::standard_webhooks_sign(KEY, "msg_good", ts, body.as_bytes())
            .unwrap();
    let r = client
        .post(daemon.hook_url())
        .header("content-type", "application/json")
        .header("webhook-id", "msg_good")
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", format!("v1,AAAA v1,bm9wZQ== {good}"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
}

#[test]
fn weak_hook_secrets_are_refused_by_check_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let fake_url = "http://127.0.0.1:9";
    let config = |hook_extra: &str| {
        format!(
            r#"
[store]
path = "{db}"
[origins.sekoia]
kind = "sekoia"
base_url = "{fake_url}"
api_key = "k"
[hooks.soc]
id = "{HOOK_ID}"
origin = "sekoia"
{hook_extra}
[destinations.teams]
kind = "teams"
url = "{fake_url}/teams"
[[routes]]
name = "all"
to = ["teams"]
"#,
            db = dir.path().join("spool.db").display()
        )
    };
    let cases = [
        (
            "secret = \"whsec_\"",
            "hooks.soc.secret",
            "0 bytes is too short",
        ),
        (
            "secret = \"whsec_AAAA\"",
            "hooks.soc.secret",
            "3 bytes is too short",
        ),
        (
            "secret = \"\"\nsignature = \"github-sha256\"",
            "hooks.soc.secret",
            "must not be empty",
        ),
    ];
    for (extra, key, words) in cases {
        let path = dir.path().join("hookrelay.toml");
        std::fs::write(&path, config(extra)).unwrap();
        let (code, out, err) = cli(&["check", "--config", path.to_str().unwrap()]);
        assert_eq!(code, 1, "{extra}: {out}{err}");
        assert!(
            err.lines().any(|l| l.contains(key) && l.contains(words)),
            "{extra}: {err}"
        );
        assert!(
            !err.contains("whsec_AAAA"),
            "the value is never printed: {err}"
        );
    }
    // 24 bytes is enough.
    let path = dir.path().join("hookrelay.toml");
    std::fs::write(
        &path,
        config("secret = \"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\""),
    )
    .unwrap();
    let (code, out, err) = cli(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
}
