//! Running it like a service: reload on SIGHUP, systemd notifications,
//! readiness, metrics that move with traffic.

mod common;

use common::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const SLACK: &str = "/slack/services/T000/B000/secret-token";
const TO_SLACK: &str = "[[routes]]\nname = \"r\"\nto = [\"slack\"]\n";
const TO_TEAMS: &str = "[[routes]]\nname = \"r\"\nto = [\"teams\"]\n";

async fn wait_log(daemon: &Daemon, needle: &str) {
    let deadline = std::time::Instant::now() + WAIT;
    while !daemon.logs().contains(needle) {
        assert!(
            std::time::Instant::now() < deadline,
            "no {needle:?} in:\n{}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_switches_routes_in_place_and_keeps_queued_work() {
    let fake = Fake::start().await;
    // Slack fails for now: deliveries queue up behind it.
    fake.always(SLACK, Reply::status(503, "down"));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), TO_SLACK);
    let daemon = Daemon::spawn(&config).await;
    let pid = daemon.child.id();
    for n in 0..5 {
        assert_eq!(daemon.post_unique(n).await, 202);
    }
    fake.wait_for("/slack", 5, WAIT).await;

    // New routes: Slack stays a destination, new events go to Teams too.
    write_config(
        &fake,
        dir.path(),
        "[[routes]]\nname = \"r\"\nto = [\"teams\", \"slack\"]\n",
    );
    daemon.signal(libc::SIGHUP);
    wait_log(&daemon, "Configuration reloaded.").await;
    assert_eq!(daemon.post_unique(5).await, 202);
    fake.wait_for("/teams", 1, WAIT).await;
    assert_eq!(daemon.child.id(), pid);

    // The queued Slack deliveries survived the reload.
    fake.clear_always(SLACK);
    let got = fake.wait_distinct("/slack", 6, WAIT).await;
    assert!(
        got.iter()
            .filter(|r| r.headers.get("content-type").is_some())
            .count()
            >= 6
    );

    // A broken file is rejected, naming the key; the old routes keep serving.
    edit_config(
        &config,
        "to = [\"teams\", \"slack\"]",
        "to = [\"teams\", \"nowhere\"]",
    );
    daemon.signal(libc::SIGHUP);
    wait_log(&daemon, "Configuration reload rejected").await;
    assert!(
        daemon
            .logs()
            .contains("routes[0].to: no destination named \\\"nowhere\\\""),
        "{}",
        daemon.logs()
    );
    assert_eq!(daemon.post_unique(6).await, 202);
    fake.wait_for("/teams", 2, WAIT).await;
    fake.wait_distinct("/slack", 7, WAIT).await;
    let metrics = daemon.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "hookrelay_config_reloads_total",
            &["result=\"ok\""]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "hookrelay_config_reloads_total",
            &["result=\"error\""]
        ),
        1.0
    );
}

#[tokio::test]
async fn removing_a_destination_dead_letters_its_queue_with_a_reason() {
    let fake = Fake::start().await;
    fake.always(SLACK, Reply::status(503, "down"));
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_app_in(&fake, TO_SLACK, dir.clone()).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    fake.wait_for("/slack", 1, WAIT).await;

    let text = config_text(&fake, &dir.path().join("spool.db"), TO_TEAMS).replace(
        "[destinations.slack]\nkind = \"slack\"\n",
        "[destinations.gone]\nkind = \"slack\"\n",
    );
    let new = hookrelay::config::load_str(&text, &HashMap::new()).unwrap();
    app.reloader.send(Ok(new).into()).unwrap();
    let config = write_config(&fake, dir.path(), TO_SLACK);
    let deadline = tokio::time::Instant::now() + WAIT;
    let out = loop {
        let (_, out, _) = cli(&["dead-letters", "list", "--config", config.to_str().unwrap()]);
        if !out.is_empty() {
            break out;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing was dead-lettered"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        out.contains("destination \"slack\" is no longer in the configuration"),
        "{out}"
    );
    // The next event follows the new routes.
    assert_eq!(app.post(unique_event(9, ALERT_UUID)).await.0, 202);
    fake.wait_for("/teams", 1, WAIT).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_gets_ready_status_and_stopping() {
    use std::os::unix::net::UnixDatagram;
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let config = write_config(&fake, dir.path(), TO_SLACK);
    let sock = socket_path.to_str().unwrap().to_owned();
    let mut daemon = tokio::task::spawn_blocking(move || {
        Daemon::start_with_env(&config, &[("NOTIFY_SOCKET", &sock)])
    })
    .await
    .unwrap();
    let received = tokio::task::spawn_blocking(move || {
        let mut all = String::new();
        let mut buf = vec![0u8; 4096];
        while !all.contains("READY=1") {
            let n = socket.recv(&mut buf).expect("no READY=1 from the daemon");
            all.push_str(&String::from_utf8_lossy(&buf[..n]));
            all.push('\n');
        }
        (all, socket)
    })
    .await
    .unwrap();
    assert!(received.0.contains("STATUS=listening on"), "{}", received.0);
    let socket = received.1;
    daemon.signal(libc::SIGTERM);
    let (all, status) = tokio::task::spawn_blocking(move || {
        let mut all = String::new();
        let mut buf = vec![0u8; 4096];
        while !all.contains("STOPPING=1") {
            let n = socket
                .recv(&mut buf)
                .expect("no STOPPING=1 from the daemon");
            all.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        (all, daemon.child.wait().unwrap())
    })
    .await
    .unwrap();
    assert!(all.contains("STOPPING=1"));
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn readyz_turns_503_while_draining() {
    let fake = Fake::start().await;
    fake.always(
        SLACK,
        Reply::status(200, "ok").delay(Duration::from_millis(1500)),
    );
    let app = spawn_app(&fake, TO_SLACK).await;
    let ready = |c: reqwest::Client, admin: std::net::SocketAddr| async move {
        c.get(format!("http://{admin}/readyz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(ready(app.client.clone(), app.admin).await, 200);
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    fake.wait_started("/slack", 1, WAIT).await;
    app.begin_stop();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let s = ready(app.client.clone(), app.admin).await;
        if s == 503 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "readyz stayed {s}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    app.stop().await;
    // The in-flight delivery finished during the drain.
    assert_eq!(fake.received("/slack").len(), 1);
}

#[tokio::test]
async fn metrics_move_with_traffic() {
    let fake = Fake::start().await;
    fake.script(SLACK, [Reply::status(500, "rollup_error")]);
    let app = spawn_app(&fake, TO_SLACK).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    assert_eq!(app.post("{").await.0, 400);
    fake.wait_for("/slack", 2, WAIT).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let m = loop {
        let m = app.metrics().await;
        if metric(&m, "hookrelay_deliveries_total", &["outcome=\"delivered\""]) == 1.0 {
            break m;
        }
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let soc = "hook=\"soc\"";
    assert_eq!(
        metric(
            &m,
            "hookrelay_events_received_total",
            &[soc, "result=\"accepted\""]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "hookrelay_events_received_total",
            &[soc, "result=\"duplicate\""]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "hookrelay_events_received_total",
            &[soc, "result=\"bad_request\""]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "hookrelay_deliveries_total",
            &["destination=\"slack\"", "outcome=\"retry\""]
        ),
        1.0
    );
    assert_eq!(
        metric(&m, "hookrelay_enrich_requests_total", &["outcome=\"ok\""]),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "hookrelay_delivery_latency_seconds_count",
            &["destination=\"slack\""]
        ),
        1.0
    );
    // Labels are config names and fixed words: no ids, no URLs.
    assert!(!m.contains("ALEY4fqz8moo") && !m.contains("127.0.0.1") && !m.contains(ALERT_UUID));
    app.stop().await;
}

#[tokio::test]
async fn silence_and_recovery_notices_once_per_silence_across_a_restart() {
    let fake = Fake::start().await;
    let quiet = "7e57a11e-0000-4000-8000-000000000001";
    let routes = format!(
        r#"
[hooks.quiet]
id = "{quiet}"
origin = "sekoia"
expect_within = "300ms"
[[routes]]
name = "intake-health"
hooks = ["quiet"]
to = ["teams"]
[routes.when]
type = ["hookrelay.silence", "hookrelay.recovered"]
[[routes]]
name = "rest"
to = ["slack"]
"#
    );
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_app_in(&fake, &routes, dir.clone()).await;
    let got = fake.wait_for("/teams", 1, WAIT).await;
    let card = got[0].json();
    let title = card["attachments"][0]["content"]["body"][1]["text"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        title.starts_with("Hook quiet has received no events for"),
        "{title}"
    );
    app.stop().await;

    // After a restart the silence is remembered: an event brings the
    // recovery notice, and no second silence notice came before it.
    let app = spawn_app_in(&fake, &routes, dir.clone()).await;
    let r = app
        .client
        .post(format!("http://{}/hooks/{quiet}", app.addr))
        .header("content-type", "application/json")
        .body(fixture("event-alert-created.json"))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    assert_eq!(status, 202, "{}", r.text().await.unwrap());
    fake.wait_for("/slack", 1, WAIT).await;
    let got = fake.wait_for("/teams", 2, WAIT).await;
    let titles: Vec<String> = got
        .iter()
        .map(|r| {
            r.json()["attachments"][0]["content"]["body"][1]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(titles.len(), 2, "{titles:?}");
    assert!(
        titles[1].starts_with("Hook quiet is receiving events again after"),
        "{titles:?}"
    );
    // The default hook has no expect_within: never announced.
    assert!(titles.iter().all(|t| !t.contains("soc")), "{titles:?}");
    // Then silent again: one new notice.
    let got = fake.wait_for("/teams", 3, WAIT).await;
    assert!(
        got[2].json()["attachments"][0]["content"]["body"][1]["text"]
            .as_str()
            .unwrap()
            .starts_with("Hook quiet has received no events")
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_recompiles_templates_and_keeps_the_old_one_when_the_new_is_broken() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("card.json");
    std::fs::write(&template, r#"{"text": {{ "v1 " ~ message.headline }}}"#).unwrap();
    let path = "/slack/services/T9/B9/templated";
    let config = write_config(
        &fake,
        dir.path(),
        &format!(
            "[destinations.t]\nkind = \"slack\"\nurl = \"{}\"\ntemplate = \"card.json\"\n[[routes]]\nname = \"t\"\nto = [\"t\"]\n",
            fake.url(path)
        ),
    );
    let daemon = Daemon::spawn(&config).await;
    let text = |r: &Received| r.json()["text"].as_str().unwrap().to_owned();
    assert_eq!(daemon.post_unique(0).await, 202);
    let got = fake.wait_for(path, 1, WAIT).await;
    assert_eq!(text(&got[0]), "v1 Suspicious PowerShell download cradle");

    // A new version of the file is picked up by a reload.
    std::fs::write(&template, r#"{"text": {{ "v2 " ~ message.headline }}}"#).unwrap();
    daemon.signal(libc::SIGHUP);
    wait_log(&daemon, "Configuration reloaded.").await;
    assert_eq!(daemon.post_unique(1).await, 202);
    let got = fake.wait_for(path, 2, WAIT).await;
    assert_eq!(text(&got[1]), "v2 Suspicious PowerShell download cradle");

    // A broken one is rejected with its file and line; v2 keeps serving.
    std::fs::write(&template, "{\"text\": {% if %}}").unwrap();
    daemon.signal(libc::SIGHUP);
    wait_log(&daemon, "Configuration reload rejected").await;
    assert!(
        daemon
            .logs()
            .contains("destinations.t.template: card.json:1: syntax error"),
        "{}",
        daemon.logs()
    );
    assert_eq!(daemon.post_unique(2).await, 202);
    let got = fake.wait_for(path, 3, WAIT).await;
    assert_eq!(text(&got[2]), "v2 Suspicious PowerShell download cradle");
}

/// A reload that changes a destination while 50 of its messages are in
/// flight (a chat service that takes 2 s) and 30 more are queued: every
/// event reaches the chat service exactly once, and the queued ones go out
/// under the new settings (`rate`). A broken config sent mid-flight is
/// refused and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_never_sends_an_in_flight_message_twice() {
    const IN_FLIGHT: usize = 50;
    const QUEUED: usize = 30;
    let fake = Fake::start().await;
    fake.always(
        SLACK,
        Reply::status(200, "ok").delay(Duration::from_secs(2)),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), TO_SLACK);
    edit_config(
        &config,
        "kind = \"slack\"\n",
        "kind = \"slack\"\nconcurrency = 50\n",
    );
    let daemon = Daemon::spawn(&config).await;
    for n in 0..IN_FLIGHT + QUEUED {
        assert_eq!(daemon.post_unique(n).await, 202);
    }
    fake.wait_started(SLACK, IN_FLIGHT, WAIT).await;

    // New pacing for the destination: its worker is replaced while the
    // first 50 are still on the wire.
    edit_config(
        &config,
        "concurrency = 50\n",
        "concurrency = 50\nrate = \"10/s\"\n",
    );
    let reloaded_at = std::time::Instant::now();
    daemon.signal(libc::SIGHUP);
    wait_log(&daemon, "Configuration reloaded.").await;
    // A broken file mid-flight: refused, the running config keeps serving.
    edit_config(&config, "rate = \"10/s\"", "rate = \"often\"");
    daemon.signal(libc::SIGHUP);
    wait_log(&daemon, "Configuration reload rejected").await;

    let got = fake
        .wait_distinct(SLACK, IN_FLIGHT + QUEUED, Duration::from_secs(60))
        .await;
    // Every outcome committed, nothing else pending: then count what the
    // chat service saw (a second send would have started at the reload).
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let m = daemon.metrics().await;
        let delivered = metric(
            &m,
            "hookrelay_deliveries_total",
            &["destination=\"slack\"", "outcome=\"delivered\""],
        );
        if delivered >= (IN_FLIGHT + QUEUED) as f64 {
            assert_eq!(delivered, (IN_FLIGHT + QUEUED) as f64, "{m}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{m}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = fake.received(SLACK);
    assert_eq!(
        all.len(),
        IN_FLIGHT + QUEUED,
        "some messages were sent twice: {} requests for {} events",
        all.len(),
        IN_FLIGHT + QUEUED
    );
    let bodies: std::collections::HashSet<_> = got.iter().map(|r| r.body.clone()).collect();
    assert_eq!(bodies.len(), IN_FLIGHT + QUEUED);

    // The queued 30 went out after the in-flight 50 were answered, at no
    // more than 10 in any second (each answered 2 s after it was sent).
    let mut answered: Vec<std::time::Instant> = all.iter().map(|r| r.at).collect();
    answered.sort();
    let queued = &answered[IN_FLIGHT..];
    assert!(queued[0] > reloaded_at + Duration::from_secs(2));
    for w in queued.windows(11) {
        assert!(
            w[10] - w[0] >= Duration::from_millis(900),
            "11 messages within {:?}: the new rate was not applied",
            w[10] - w[0]
        );
    }
}

/// `hookrelay reload` (the unit's ExecReload): SIGHUP, then the daemon's
/// verdict: exit 0 once applied, 1 when it rejected the file; a pid that
/// would signal a process group or everyone is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hookrelay_reload_reports_the_daemons_verdict() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), TO_SLACK);
    // A fixed admin port, so `reload` finds it in the file.
    let admin = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    edit_config(
        &config,
        "[admin]\nlisten = \"127.0.0.1:0\"",
        &format!("[admin]\nlisten = \"{admin}\""),
    );
    let daemon = Daemon::spawn(&config).await;
    let pid = daemon.child.id().to_string();
    let reload = |pid: String| {
        let c = config.clone();
        tokio::task::spawn_blocking(move || {
            cli(&[
                "reload",
                "--config",
                c.to_str().unwrap(),
                &format!("--pid={pid}"),
            ])
        })
    };
    let (code, out, err) = reload(pid.clone()).await.unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("configuration reloaded"), "{out}");
    edit_config(&config, "to = [\"slack\"]", "to = [\"nowhere\"]");
    let (code, _, err) = reload(pid.clone()).await.unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("rejected the configuration"), "{err}");
    for bad in ["0", "-1"] {
        let (code, _, err) = reload(bad.into()).await.unwrap();
        assert_eq!(code, 1, "{bad}");
        assert!(err.contains("not a daemon's process id"), "{err}");
    }
    // Still serving with the previous configuration.
    assert_eq!(daemon.post_unique(1).await, 202);
    fake.wait_for("/slack", 1, WAIT).await;
}
