//! Never lose an accepted event: crashes, restarts, flaky and rate-limiting
//! chat services, dead letters, back-pressure, graceful shutdown.

mod common;

use common::*;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
const SLACK: &str = "/slack/services/T000/B000/secret-token";
const TEAMS: &str = "/teams/workflows/secret-token";
const SLACK_ONLY: &str = "[[routes]]\nname = \"s\"\nto = [\"slack\"]\n";

async fn post_many(client: &reqwest::Client, url: &str, n: usize, alert: &str) {
    for i in 0..n {
        let r = client
            .post(url)
            .header("content-type", "application/json")
            .body(unique_event(i, alert))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 202, "event {i}");
    }
}

fn distinct(received: &[Received]) -> usize {
    received
        .iter()
        .map(|r| r.body.to_vec())
        .collect::<HashSet<_>>()
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_deliveries_pending_loses_nothing() {
    let fake = Fake::start().await;
    // A slow chat service: deliveries pile up behind it.
    fake.always(
        SLACK,
        Reply::status(200, "ok").delay(Duration::from_millis(20)),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), SLACK_ONLY);
    // One request at a time to the slow sink.
    edit_config(
        &config,
        "kind = \"slack\"",
        "kind = \"slack\"\nconcurrency = 1",
    );
    let mut daemon = Daemon::spawn(&config).await;
    let client = reqwest::Client::new();
    post_many(&client, &daemon.hook_url(), 300, ALERT_UUID).await;
    fake.wait_for("/slack", 5, WAIT).await;
    daemon.kill9();
    let before = fake.received("/slack").len();
    assert!(
        before < 300,
        "everything was delivered before the crash; the test proves nothing"
    );

    fake.clear_always(SLACK);
    let daemon = Daemon::spawn(&config).await;
    let got = fake.wait_distinct("/slack", 300, WAIT).await;
    assert_eq!(distinct(&got), 300, "an accepted event was lost");
    // Only what was in flight at the crash may come twice (concurrency 1).
    assert!(got.len() <= 302, "{} deliveries for 300 events", got.len());
    drop(daemon);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_the_alert_api_is_down_loses_nothing() {
    let fake = Fake::start().await;
    let api = format!("/api/v1/sic/alerts/{ALERT_UUID}");
    fake.always(&api, Reply::status(503, "maintenance"));
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), SLACK_ONLY);
    edit_config(
        &config,
        "enrich_deadline = \"1s\"",
        "enrich_deadline = \"10m\"",
    );
    let mut daemon = Daemon::spawn(&config).await;
    let client = reqwest::Client::new();
    post_many(&client, &daemon.hook_url(), 50, ALERT_UUID).await;
    fake.wait_for("/api/", 1, WAIT).await;
    daemon.kill9();
    assert!(fake.received("/slack").is_empty());

    fake.clear_always(&api);
    let daemon = Daemon::spawn(&config).await;
    let got = fake.wait_distinct("/slack", 50, WAIT).await;
    assert_eq!(distinct(&got), 50);
    // Delivered with the alert's details, not degraded.
    assert!(got.iter().all(
        |r| String::from_utf8_lossy(&r.body).contains("Suspicious PowerShell download cradle")
    ));
    drop(daemon);
}

#[tokio::test]
async fn server_errors_are_retried_until_delivered() {
    let fake = Fake::start().await;
    fake.script(
        SLACK,
        [
            Reply::status(503, "rollup_error"),
            Reply::status(500, "rollup_error"),
        ],
    );
    let app = spawn_app(&fake, SLACK_ONLY).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    let got = fake.wait_for("/slack", 3, WAIT).await;
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].body, got[2].body, "a retry sends the same payload");
    let m = app.metrics().await;
    assert_eq!(
        metric(&m, "hookrelay_deliveries_total", &["outcome=\"retry\""]),
        2.0
    );
    app.stop().await;
}

/// An event's routing is recorded before its deliveries go out, and the
/// worker records each outcome. A chat service answering after 2.5 s: the
/// event is recorded routed, its delivery pending, while the request is
/// still in flight; the answer is recorded when it comes, and nothing
/// sends the message a second time meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_is_pending_while_its_send_is_out_and_recorded_when_it_answers() {
    let fake = Fake::start().await;
    fake.script(
        SLACK,
        [
            Reply::status(200, "ok"),
            Reply::status(200, "ok").delay(Duration::from_millis(2500)),
        ],
    );
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = write_config(&fake, dir.path(), SLACK_ONLY);
    let config = config.to_str().unwrap().to_owned();
    let app = spawn_app_in(&fake, SLACK_ONLY, dir.clone()).await;
    let show = |id: &'static str| {
        let config = config.clone();
        async move {
            tokio::task::spawn_blocking(move || cli(&["events", "show", id, "--config", &config]))
                .await
                .unwrap()
        }
    };
    let until = |id: &'static str, want: &'static [&'static str]| async move {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let (code, out, err) = show(id).await;
            assert_eq!(code, 0, "{err}");
            if want.iter().all(|w| out.contains(w)) {
                return out;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never {want:?}:\n{out}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };

    // Answered at once: recorded delivered, with its attempt.
    assert_eq!(app.post(unique_event(1, ALERT_UUID)).await.0, 202);
    fake.wait_for(SLACK, 1, WAIT).await;
    let out = until("1", &["delivery 1 → slack (route s): delivered"]).await;
    assert!(out.contains(": HTTP 200 in "), "{out}");
    assert_eq!(out.matches("attempt at").count(), 1, "{out}");

    // Answered after 2.5 s: routed and pending while the request is out.
    assert_eq!(app.post(unique_event(2, ALERT_UUID)).await.0, 202);
    fake.wait_started(SLACK, 2, WAIT).await;
    let out = until("2", &["routes: s", "delivery 2 → slack (route s): pending"]).await;
    assert!(!out.contains("attempt at"), "{out}");
    assert_eq!(
        fake.received(SLACK).len(),
        1,
        "the slow answer is not in yet"
    );
    let out = until("2", &["delivery 2 → slack (route s): delivered"]).await;
    assert_eq!(out.matches("attempt at").count(), 1, "{out}");
    assert_eq!(fake.received(SLACK).len(), 2, "each message sent once");
    app.stop().await;
}

#[tokio::test]
async fn rate_limited_destination_is_paced_as_a_whole() {
    let fake = Fake::start().await;
    fake.script(SLACK, [Reply::status(429, "rate_limited").retry_after("1")]);
    let app = spawn_app(&fake, SLACK_ONLY).await;
    assert_eq!(app.post(unique_event(0, ALERT_UUID)).await.0, 202);
    let first = fake.wait_for("/slack", 1, WAIT).await[0].at;
    for i in 1..4 {
        assert_eq!(app.post(unique_event(i, ALERT_UUID)).await.0, 202);
    }
    let got = fake.wait_for("/slack", 5, WAIT).await;
    for r in &got[1..] {
        let after = r.at.duration_since(first);
        assert!(
            after >= Duration::from_millis(900),
            "sent {after:?} after a 429 with Retry-After: 1"
        );
    }
    assert_eq!(distinct(&got), 4);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_dead_lettered_at_once_and_replayable() {
    let fake = Fake::start().await;
    fake.always(SLACK, Reply::status(400, "invalid_payload"));
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let config = write_config(&fake, dir.path(), SLACK_ONLY);
    let config = config.to_str().unwrap().to_owned();
    let app = spawn_app_in(&fake, SLACK_ONLY, dir.clone()).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    fake.wait_for("/slack", 1, WAIT).await;

    // Listed by the CLI while the daemon runs.
    let deadline = tokio::time::Instant::now() + WAIT;
    let line = loop {
        let (code, out, err) = cli(&["dead-letters", "list", "--config", &config]);
        assert_eq!(code, 0, "{err}");
        if let Some(line) = out.lines().next() {
            break line.to_owned();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no dead letter appeared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(
        fields[1..5],
        ["slack", "alert/created", "ALEY4fqz8moo", "attempts=1"],
        "{line}"
    );
    assert!(fields[5].contains("HTTP 400: invalid_payload"), "{line}");
    // Permanent: not retried.
    assert_eq!(fake.received("/slack").len(), 1);

    fake.clear_always(SLACK);
    let (code, out, err) = cli(&["dead-letters", "replay", fields[0], "--config", &config]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("re-queued 1"), "{out}");
    let got = fake.wait_for("/slack", 2, WAIT).await;
    assert_eq!(got[0].body, got[1].body);
    let (_, out, _) = cli(&["dead-letters", "list", "--config", &config]);
    assert!(out.trim().is_empty(), "{out}");
    let (code, _, err) = cli(&["dead-letters", "replay", "999", "--config", &config]);
    assert_eq!(code, 1, "{err}");
    app.stop().await;
}

#[tokio::test]
async fn deliveries_expire_into_dead_letters_after_max_age() {
    let fake = Fake::start().await;
    fake.always(SLACK, Reply::status(503, "down"));
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_app_with(
        &fake,
        SLACK_ONLY,
        dir.clone(),
        &[("HOOKRELAY_DELIVERY__MAX_AGE", "300ms")],
    )
    .await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = app.metrics().await;
        if metric(&m, "hookrelay_deliveries_total", &["outcome=\"dead\""]) == 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never dead-lettered:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let config = write_config(&fake, dir.path(), SLACK_ONLY);
    let (_, out, _) = cli(&["dead-letters", "list", "--config", config.to_str().unwrap()]);
    assert!(
        out.contains("delivery.max_age reached") && out.contains("HTTP 503"),
        "{out}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_failing_destination_does_not_delay_a_healthy_one() {
    let fake = Fake::start().await;
    // Slack hangs for 10 s on every request, then fails.
    fake.always(
        SLACK,
        Reply::status(503, "down").delay(Duration::from_secs(10)),
    );
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let routes = "[[routes]]\nname = \"both\"\nto = [\"slack\", \"teams\"]\n";
    let app = spawn_app_with(
        &fake,
        routes,
        dir,
        &[("HOOKRELAY_SERVER__SHUTDOWN_GRACE", "100ms")],
    )
    .await;
    for i in 0..20 {
        assert_eq!(app.post(unique_event(i, ALERT_UUID)).await.0, 202);
    }
    fake.wait_for(TEAMS, 20, WAIT).await;
    // Every Teams message arrived while Slack had not answered once.
    assert!(fake.received("/slack").is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_full_spool_answers_503_with_retry_after() {
    let fake = Fake::start().await;
    fake.always(SLACK, Reply::status(503, "down"));
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_app_with(
        &fake,
        SLACK_ONLY,
        dir,
        &[("HOOKRELAY_STORE__MAX_PENDING", "3")],
    )
    .await;
    for i in 0..3 {
        assert_eq!(app.post(unique_event(i, ALERT_UUID)).await.0, 202);
    }
    let r = app
        .client
        .post(app.hook_url())
        .header("content-type", "application/json")
        .body(unique_event(3, ALERT_UUID))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);
    assert!(r.headers().contains_key("retry-after"));
    // A sender retry of an accepted event still gets its 202.
    assert_eq!(app.post(unique_event(0, ALERT_UUID)).await.0, 202);
    let m = app.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hookrelay_events_received_total",
            &["result=\"spool_full\""]
        ),
        1.0
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_deliveries_and_exits_0() {
    let fake = Fake::start().await;
    fake.always(
        SLACK,
        Reply::status(200, "ok").delay(Duration::from_millis(700)),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), SLACK_ONLY);
    let mut daemon = Daemon::spawn(&config).await;
    let client = reqwest::Client::new();
    post_many(&client, &daemon.hook_url(), 3, ALERT_UUID).await;
    // Wait until the deliveries are in flight, then stop.
    fake.wait_started("/slack", 3, WAIT).await;
    daemon.signal(libc::SIGTERM);
    let status = tokio::task::spawn_blocking(move || {
        let s = daemon.child.wait().unwrap();
        (s, daemon)
    })
    .await
    .unwrap();
    assert_eq!(status.0.code(), Some(0), "{}", status.1.logs());
    let got = fake.received("/slack");
    assert_eq!(distinct(&got), 3, "in-flight deliveries were not finished");
    let (_, out, _) = cli(&["events", "list", "--config", config.to_str().unwrap()]);
    assert_eq!(
        out.lines().filter(|l| l.ends_with("\tdelivered")).count(),
        3,
        "{out}"
    );
}

#[tokio::test]
async fn route_dedup_windows_survive_a_restart() {
    let fake = Fake::start().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let routes = "[[routes]]\nname = \"once\"\nto = [\"slack\"]\ndedup = \"1h\"\n";
    let app = spawn_app_in(&fake, routes, dir.clone()).await;
    assert_eq!(app.post(unique_event(1, ALERT_UUID)).await.0, 202);
    fake.wait_for("/slack", 1, WAIT).await;
    app.stop().await;

    // Same alert and action, another body (not a sender retry), after a restart.
    let app = spawn_app_in(&fake, routes, dir.clone()).await;
    let (status, body) = app.post(unique_event(2, ALERT_UUID)).await;
    assert_eq!(status, 202);
    // Another alert still goes through, and proves the first was processed.
    assert_eq!(
        app.post(unique_event(3, "11111111-1111-4111-8111-111111111111"))
            .await
            .0,
        202
    );
    fake.wait_for("/slack", 2, WAIT).await;
    let config = write_config(&fake, dir.path(), routes);
    let id = body["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + WAIT;
    let out = loop {
        let (_, out, _) = cli(&["events", "show", &id, "--config", config.to_str().unwrap()]);
        if out.contains("→ slack") || tokio::time::Instant::now() > deadline {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        out.contains("→ slack (route once): skipped") && out.contains("dedup window"),
        "{out}"
    );
    app.stop().await;
    assert_eq!(fake.received("/slack").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_per_minute_holds_the_excess_without_dropping_it() {
    let fake = Fake::start().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_app_with(
        &fake,
        SLACK_ONLY,
        dir.clone(),
        &[("HOOKRELAY_DESTINATIONS__SLACK__MAX_PER_MINUTE", "3")],
    )
    .await;
    for i in 0..5 {
        assert_eq!(app.post(unique_event(i, ALERT_UUID)).await.0, 202);
    }
    fake.wait_for("/slack", 3, WAIT).await;
    // The other two wait for the window, still pending in the spool.
    let config = write_config(&fake, dir.path(), SLACK_ONLY);
    let deadline = tokio::time::Instant::now() + WAIT;
    let out = loop {
        let c = config.clone();
        let (_, out, _) = tokio::task::spawn_blocking(move || {
            cli(&["events", "list", "--config", c.to_str().unwrap()])
        })
        .await
        .unwrap();
        let pending = out.lines().filter(|l| l.ends_with("\tpending")).count();
        if pending == 2 || tokio::time::Instant::now() > deadline {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(
        out.lines().filter(|l| l.ends_with("\tpending")).count(),
        2,
        "{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.ends_with("\tdelivered")).count(),
        3,
        "{out}"
    );
    assert_eq!(fake.received("/slack").len(), 3);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_max_per_minute_goes_out_as_digests_accounting_for_every_alert() {
    let fake = Fake::start().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let env = [
        ("HOOKRELAY_DESTINATIONS__SLACK__MAX_PER_MINUTE", "5"),
        ("HOOKRELAY_DESTINATIONS__SLACK__DIGEST", "true"),
        ("HOOKRELAY_DESTINATIONS__SLACK__DIGEST_INTERVAL", "300ms"),
    ];
    let app = spawn_app_with(&fake, SLACK_ONLY, dir, &env).await;
    app.post_concurrently(200, 16, |i| {
        unique_event(i, &format!("00000000-0000-4000-8000-{i:012}"))
    })
    .await;
    // Count what Slack got: single alerts, and digests saying how many they cover.
    let covered = |got: &[Received]| -> (usize, usize) {
        let mut single = 0;
        let mut digested = 0;
        for r in got {
            let text = r.json()["text"].as_str().unwrap().to_owned();
            match text.split_once(" more alert") {
                Some((n, _)) if text.contains("in the last 300ms") => {
                    digested += n.parse::<usize>().unwrap()
                }
                _ => single += 1,
            }
        }
        (single, digested)
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    let (single, digested) = loop {
        let (s, d) = covered(&fake.received("/slack"));
        if s + d >= 200 || tokio::time::Instant::now() > deadline {
            break (s, d);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(single, 5, "max_per_minute lets 5 through");
    assert_eq!(
        single + digested,
        200,
        "every alert is delivered or digested"
    );
    let messages = fake.received("/slack").len();
    assert!(messages < 30, "{messages} messages for 200 alerts");
    // A digest lists the alerts with live links hookrelay built.
    let digest = fake
        .received("/slack")
        .into_iter()
        .map(|r| r.json())
        .find(|v| v["text"].as_str().unwrap().contains("more alert"))
        .unwrap();
    let blocks = digest["attachments"][0]["blocks"].to_string();
    assert!(
        blocks.contains("<https://app.sekoia.io/operations/alerts/ALEY4fqz8moo|ALEY4fqz8moo>"),
        "{blocks}"
    );
    assert!(
        digest["text"].as_str().unwrap().contains("Major"),
        "{digest}"
    );
    app.stop().await;
}

/// An alert storm against a rate-limited, digesting destination whose
/// service answers every fifth request with 429: every alert is accounted
/// for exactly once (its own message or a digest's count), no more than
/// `max_per_minute` messages of their own go out, and nothing is sent
/// while a `Retry-After` holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_with_429s_respects_the_limit_and_the_pause_and_accounts_for_every_alert() {
    const N: usize = 120;
    let fake = Fake::start().await;
    distinct_alerts(&fake, N);
    // Sent one at a time, so the n-th request gets the n-th answer.
    let answers = (1..=60).map(|n| {
        if n % 5 == 0 {
            Reply::status(429, "rate_limited").retry_after("1")
        } else {
            Reply::status(200, "ok")
        }
    });
    fake.script(SLACK, answers);
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let env = [
        ("HOOKRELAY_DESTINATIONS__SLACK__MAX_PER_MINUTE", "5"),
        ("HOOKRELAY_DESTINATIONS__SLACK__DIGEST", "true"),
        ("HOOKRELAY_DESTINATIONS__SLACK__DIGEST_INTERVAL", "300ms"),
        ("HOOKRELAY_DESTINATIONS__SLACK__CONCURRENCY", "1"),
    ];
    let app = spawn_app_with(&fake, SLACK_ONLY, dir, &env).await;
    app.post_concurrently(N, 32, |i| {
        unique_event(i, &format!("00000000-0000-4000-8000-{i:012}"))
    })
    .await;
    // Each request with the answer it got (the script, then 200s).
    let answered = |got: Vec<Received>| -> Vec<(Received, u16)> {
        got.into_iter()
            .enumerate()
            .map(|(n, r)| (r, if (n + 1) % 5 == 0 && n < 60 { 429 } else { 200 }))
            .collect()
    };
    let tally = |got: &[(Received, u16)]| {
        let mut singles: Vec<String> = Vec::new();
        let mut digested = 0;
        for (r, _) in got.iter().filter(|(_, s)| *s == 200) {
            let text = r.json()["text"].as_str().unwrap().to_owned();
            match text.split_once(" more alert") {
                Some((n, _)) => digested += n.parse::<usize>().unwrap(),
                None => singles.push(text),
            }
        }
        (singles, digested)
    };
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (singles, digested) = tally(&answered(fake.received(SLACK)));
        if singles.len() + digested >= N || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Anything more would be a duplicate.
    tokio::time::sleep(Duration::from_millis(700)).await;
    let got = answered(fake.received(SLACK));
    let (singles, digested) = tally(&got);
    assert_eq!(singles.len() + digested, N, "every alert, once");
    let distinct: HashSet<&String> = singles.iter().collect();
    assert_eq!(distinct.len(), singles.len(), "no alert twice: {singles:?}");
    let own_messages = got
        .iter()
        .filter(|(r, _)| !r.json()["text"].as_str().unwrap().contains(" more alert"))
        .count();
    assert!(
        own_messages <= 5,
        "{own_messages} messages of their own in a minute"
    );
    // After a 429 with Retry-After: 1, nothing goes out for a second.
    for (refused, _) in got.iter().filter(|(_, s)| *s == 429) {
        let early: Vec<_> = got
            .iter()
            .filter(|(r, _)| r.at > refused.at && r.at < refused.at + Duration::from_millis(950))
            .collect();
        assert!(early.is_empty(), "{} sent during Retry-After", early.len());
    }
    assert!(got.iter().any(|(_, s)| *s == 429), "the storm met a 429");
    app.stop().await;
}

/// Alerts `00000000-0000-4000-8000-{i:012}` for i < n, each with its own
/// short id, so each alert's message is told apart.
fn distinct_alerts(fake: &Fake, n: usize) {
    for i in 0..n {
        let uuid = format!("00000000-0000-4000-8000-{i:012}");
        let mut alert = fixture_json("alert-full.json");
        alert["uuid"] = uuid.clone().into();
        alert["short_id"] = format!("ALdistinct{i:05}").into();
        fake.set_alert(&uuid, alert);
    }
}

/// A worker far behind its destination (one send at a time to a slow
/// service) while events pour in: the hand-overs it cannot take stay in
/// the spool and its scans find them; every alert goes out exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_far_behind_loses_and_doubles_nothing() {
    const N: usize = 900;
    let fake = Fake::start().await;
    distinct_alerts(&fake, N);
    fake.always(
        SLACK,
        Reply::status(200, "ok").delay(Duration::from_millis(4)),
    );
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let env = [("HOOKRELAY_DESTINATIONS__SLACK__CONCURRENCY", "1")];
    let app = spawn_app_with(&fake, SLACK_ONLY, dir, &env).await;
    app.post_concurrently(N, 32, |i| {
        unique_event(i, &format!("00000000-0000-4000-8000-{i:012}"))
    })
    .await;
    fake.wait_distinct(SLACK, N, WAIT).await;
    // Anything more would be a duplicate.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = fake.received(SLACK);
    let distinct: HashSet<_> = got.iter().map(|r| &r.body).collect();
    assert_eq!(distinct.len(), N, "every alert");
    assert_eq!(got.len(), N, "none twice");
    app.stop().await;
}
