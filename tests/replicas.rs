//! Several replicas on one PostgreSQL database (`store.kind = "postgres"`),
//! run as the built binary against a real PostgreSQL server
//! (`common::pg`): the shared spool, takeover after a SIGKILL, cluster-wide
//! pacing and send windows, and an unreachable database.

mod common;

use common::pg::{self, use_postgres};
use common::*;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// A webhook destination (its document carries the event, so each delivery
/// can be traced to the event it came from) and a route to it.
fn webhook_route(fake: &Fake, path: &str, settings: &str) -> String {
    fake.always(path, Reply::status(200, "ok"));
    format!(
        "[destinations.wh]\nkind = \"webhook\"\nurl = \"{}\"\n{settings}\n[[routes]]\nname = \"all\"\nto = [\"wh\"]\n",
        fake.url(path)
    )
}

/// A config on a fresh database of the test server; `None` to skip.
async fn pg_config(fake: &Fake, dir: &Path, extra: &str, lease: &str) -> Option<(PathBuf, String)> {
    let server = pg::server()?;
    let url = server.database().await;
    let config = write_config(fake, dir, extra);
    use_postgres(&config, &url, lease);
    Some((config, url))
}

/// A fake upstream and a config on a fresh database (15 s lease) whose one
/// route sends everything to a webhook destination at `/wh` with
/// `settings`; `None` to skip.
struct Setup {
    fake: Fake,
    config: PathBuf,
    url: String,
    /// Bind it (not `..`): the config lives there.
    _dir: tempfile::TempDir,
}

async fn setup(settings: &str) -> Option<Setup> {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = webhook_route(&fake, "/wh", settings);
    let (config, url) = pg_config(&fake, dir.path(), &extra, "15s").await?;
    Some(Setup {
        fake,
        config,
        url,
        _dir: dir,
    })
}

/// The event a webhook delivery came from (its `metadata.created_at`, unique
/// per [`unique_event`] number).
fn event_key(r: &Received) -> String {
    r.json()["event"]["metadata"]["created_at"]
        .as_str()
        .unwrap_or("?")
        .to_owned()
}

/// Two replicas on a fresh [`setup`], sent events 0..6 alternately; `None`
/// to skip.
async fn two_replicas_after_six_events(settings: &str) -> Option<(Setup, [Daemon; 2])> {
    let setup = setup(settings).await?;
    let replicas = [
        Daemon::spawn(&setup.config).await,
        Daemon::spawn(&setup.config).await,
    ];
    for i in 0..6 {
        assert_eq!(replicas[i % 2].post_unique(i).await, 202);
    }
    Some((setup, replicas))
}

/// Posts an event; the status and the event id of a 202.
async fn post_to(url: &str, body: String) -> Option<(u16, String)> {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    Some((status, body["id"].as_str().unwrap_or("").to_owned()))
}

#[tokio::test]
async fn a_postgres_spool_relays_survives_a_restart_and_serves_the_cli() {
    let Some(Setup {
        fake,
        config,
        url,
        _dir,
    }) = setup("").await
    else {
        return;
    };
    let cfg = config.to_str().unwrap();
    let (code, out, err) = cli(&["migrate", "--config", cfg]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("PostgreSQL spool is at the latest schema"),
        "{out}"
    );
    let (code, out, _) = cli(&["check", "--config", cfg]);
    assert_eq!(code, 0);
    assert!(
        !out.contains("pw@"),
        "check must not print the database password: {out}"
    );

    let mut daemon = Daemon::spawn(&config).await;
    assert_eq!(daemon.post_unique(1).await, 202);
    let got = fake.wait_for("/wh", 1, Duration::from_secs(20)).await;
    assert_eq!(got[0].json()["event"]["attributes"]["uuid"], ALERT_UUID);
    assert_eq!(got[0].json()["enrichment"]["status"], "ok");
    // The same body again is a sender retry: same id, not delivered twice.
    assert_eq!(daemon.post_unique(1).await, 202);
    // A clean stop: the outcome the chat service's answer produced is
    // committed before the process exits (a kill could come between).
    daemon.signal(libc::SIGTERM);
    assert!(daemon.child.wait().unwrap().success());

    // Everything is in the database: the CLI reads it, a new daemon sees it.
    let (code, out, _) = cli(&["events", "list", "--config", cfg]);
    assert_eq!(code, 0);
    assert_eq!(out.lines().count(), 1, "{out}");
    assert!(out.contains("delivered"), "{out}");
    let daemon = Daemon::spawn(&config).await;
    assert_eq!(daemon.post_unique(1).await, 202);
    assert_eq!(daemon.post_unique(2).await, 202);
    fake.wait_for("/wh", 2, Duration::from_secs(20)).await;
    let client = pg::server().unwrap().client(&url).await;
    let n: i64 = client
        .query_one("SELECT COUNT(*) FROM events", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2, "the retry of event 1 was not stored again");
    assert!(
        !daemon.logs().contains("pw@"),
        "the log must not carry the URL's password"
    );
}

/// An alert whose title carries a NUL character (`\u0000`), which
/// PostgreSQL's text cannot hold: the event is still routed and delivered
/// once, and the console's title for it has U+FFFD in its place.
#[tokio::test]
async fn an_alert_title_with_a_nul_is_delivered_on_postgres() {
    let Some(Setup {
        fake,
        config,
        url,
        _dir,
    }) = setup("").await
    else {
        return;
    };
    let mut alert = fixture_json("alert-full.json");
    alert["uuid"] = ALERT_UUID.into();
    alert["title"] = "Beacon\u{0}to C2".into();
    fake.always(
        &format!("/api/v1/sic/alerts/{ALERT_UUID}"),
        Reply::status(200, &alert.to_string()),
    );
    let daemon = Daemon::spawn(&config).await;
    assert_eq!(daemon.post_unique(1).await, 202);
    let got = fake.wait_for("/wh", 1, Duration::from_secs(20)).await;
    assert_eq!(got[0].json()["alert"]["title"], "Beacon\u{0}to C2");
    let cfg = config.to_str().unwrap();
    let (code, out, _) = cli(&["events", "list", "--config", cfg]);
    assert_eq!(code, 0);
    assert!(out.contains("delivered"), "{out}");
    let client = pg::server().unwrap().client(&url).await;
    let title: String = client
        .query_one("SELECT title FROM event_facts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(title, "Beacon\u{FFFD}to C2");
}

#[tokio::test]
async fn three_replicas_deliver_every_accepted_event_when_one_is_killed() {
    const EVENTS: usize = 2_000;
    const KILL_AFTER: usize = 600;
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A chat service that takes a moment, so the killed replica has work in
    // flight and queued when it dies.
    fake.always(
        "/wh",
        Reply::status(200, "ok").delay(Duration::from_millis(40)),
    );
    let extra = format!(
        "[destinations.wh]\nkind = \"webhook\"\nurl = \"{}\"\nconcurrency = 4\n[[routes]]\nname = \"all\"\nto = [\"wh\"]\n",
        fake.url("/wh")
    );
    let Some((config, _url)) = pg_config(&fake, dir.path(), &extra, "2s").await else {
        return;
    };
    // Started together on an empty database: the migrations run once, under
    // the advisory lock, and all three serve.
    let (a, b, c) = tokio::join!(
        Daemon::spawn(&config),
        Daemon::spawn(&config),
        Daemon::spawn(&config)
    );
    let mut replicas = vec![a, b, c];
    for d in &replicas {
        let ready = reqwest::get(format!("http://{}/readyz", d.admin))
            .await
            .unwrap();
        assert_eq!(ready.status(), 200, "{}", d.logs());
    }
    let migrated = replicas
        .iter()
        .filter(|d| d.logs().contains("Applied store migration."))
        .count();
    assert_eq!(migrated, 1, "one replica applies the schema");
    let urls: Vec<String> = replicas.iter().map(|d| d.hook_url()).collect();

    // Round-robin over the live replicas, 24 senders at a time.
    let mut accepted: HashSet<String> = HashSet::new();
    // Event ids the doomed replica acknowledged.
    let mut on_killed: Vec<String> = Vec::new();
    let mut refused = 0;
    let mut killed_at = None;
    let mut n = 0;
    while n < EVENTS {
        if n >= KILL_AFTER && killed_at.is_none() {
            replicas[0].kill9();
            killed_at = Some(Instant::now());
        }
        let live: Vec<&String> = if killed_at.is_some() {
            urls[1..].iter().collect()
        } else {
            urls.iter().collect()
        };
        let batch: Vec<usize> = (n..(n + 24).min(EVENTS)).collect();
        let sends = batch.iter().map(|&i| {
            let url = live[i % live.len()].clone();
            async move {
                let answer = post_to(&url, unique_event(i, ALERT_UUID)).await;
                (i, url, answer)
            }
        });
        for (i, url, answer) in futures_join(sends).await {
            match answer {
                Some((202, id)) => {
                    if url == urls[0] {
                        on_killed.push(id);
                    }
                    let v: serde_json::Value =
                        serde_json::from_str(&unique_event(i, ALERT_UUID)).unwrap();
                    accepted.insert(v["metadata"]["created_at"].as_str().unwrap().to_owned());
                }
                _ => refused += 1,
            }
        }
        n += batch.len();
    }
    assert!(
        accepted.len() >= EVENTS - 24,
        "accepted {} of {EVENTS}",
        accepted.len()
    );

    // Every accepted event arrives, including those the killed replica had
    // accepted, queued or had in flight.
    let deadline = Instant::now() + Duration::from_secs(90);
    let (delivered, total) = loop {
        let got = fake.received("/wh");
        let keys: HashSet<String> = got.iter().map(event_key).collect();
        if accepted.is_subset(&keys) {
            break (keys, got.len());
        }
        assert!(
            Instant::now() < deadline,
            "{} accepted events never delivered (delivered {} distinct of {} requests)",
            accepted.difference(&keys).count(),
            keys.len(),
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let duplicates = total - delivered.len();
    eprintln!(
        "accepted {}, refused {refused}, delivered {} distinct in {total} requests ({duplicates} duplicates) {:?} after the kill",
        accepted.len(),
        delivered.len(),
        killed_at.unwrap().elapsed()
    );
    // Only what the killed replica had sent but not yet recorded can go
    // out twice: its in-flight window (concurrency 8 + outcomes committing).
    assert!(duplicates <= 64, "{duplicates} duplicates");
    let per_replica: HashMap<usize, usize> = replicas[1..]
        .iter()
        .enumerate()
        .map(|(i, d)| (i + 1, d.logs().matches("\"Delivered.\"").count()))
        .collect();
    assert!(
        per_replica.values().all(|n| *n > 0),
        "both survivors delivered: {per_replica:?}"
    );
    // The survivors took over work the killed replica had accepted.
    let survivors = format!("{}\n{}", replicas[1].logs(), replicas[2].logs());
    let taken_over = on_killed
        .iter()
        .filter(|id| {
            survivors
                .lines()
                .any(|l| l.contains("\"Delivered.\"") && l.contains(&format!("\"event_id\":{id},")))
        })
        .count();
    eprintln!(
        "{taken_over} of the {} events the killed replica accepted were delivered by the survivors",
        on_killed.len()
    );
    assert!(taken_over > 0, "no takeover seen");
}

/// Runs the futures concurrently and returns their outputs.
async fn futures_join<F, T>(futures: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn max_per_minute_holds_across_replicas() {
    let Some((Setup { fake, _dir, .. }, _replicas)) =
        two_replicas_after_six_events("max_per_minute = 3").await
    else {
        return;
    };
    fake.wait_for("/wh", 3, Duration::from_secs(20)).await;
    // Each replica alone would send 3; together they still send 3 a minute.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(fake.received("/wh").len(), 3);
}

#[tokio::test]
async fn a_429_pauses_every_replica() {
    let Some(Setup {
        fake, config, _dir, ..
    }) = setup("").await
    else {
        return;
    };
    fake.script("/wh", [Reply::status(429, "slow down").retry_after("3")]);
    let a = Daemon::spawn(&config).await;
    let b = Daemon::spawn(&config).await;
    assert_eq!(a.post_unique(1).await, 202);
    let first = fake.wait_for("/wh", 1, Duration::from_secs(20)).await[0].at;
    // The other replica hears of the pause at once (NOTIFY; its scans,
    // every second, would too): give the notification a moment to cross,
    // on a loaded CI machine, before that replica's own event arrives.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(b.post_unique(2).await, 202);
    let got = fake.wait_for("/wh", 3, Duration::from_secs(20)).await;
    for r in &got[1..] {
        let after = r.at.duration_since(first);
        assert!(
            after >= Duration::from_millis(2900),
            "{} was sent {after:?} after the 429 asked for 3 s\nA: {}\nB: {}",
            event_key(r),
            a.logs(),
            b.logs()
        );
    }
}

#[tokio::test]
async fn an_unreachable_database_means_503_and_not_ready_until_it_answers() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = pg::server() else { return };
    let extra = webhook_route(&fake, "/wh", "");
    let config = write_config(&fake, dir.path(), &extra);
    // A database that does not exist yet: every connection is refused.
    let name = format!("late{}", std::process::id());
    let url = server.url(&name);
    use_postgres(&config, &url, "15s");
    let daemon = Daemon::spawn(&config).await;
    let ready = format!("http://{}/readyz", daemon.admin);
    assert_eq!(reqwest::get(&ready).await.unwrap().status(), 503);
    let r = reqwest::Client::new()
        .post(daemon.hook_url())
        .header("content-type", "application/json")
        .body(unique_event(1, ALERT_UUID))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503, "never 202 for what was not stored");
    assert!(r.headers().contains_key("retry-after"));

    // The database appears: the daemon connects, migrates and serves.
    server.create(&name).await;
    let deadline = Instant::now() + Duration::from_secs(40);
    while reqwest::get(&ready).await.unwrap().status() != 200 {
        assert!(
            Instant::now() < deadline,
            "never became ready: {}",
            daemon.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(daemon.post_unique(1).await, 202);
    fake.wait_for("/wh", 1, Duration::from_secs(20)).await;

    // Connections cut mid-run: the daemon reconnects by itself.
    let admin = server.client(&server.url("postgres")).await;
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&name],
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut n = 2;
    loop {
        let status = daemon.post_unique(n).await;
        if status == 202 {
            break;
        }
        assert_eq!(status, 503, "a refused event is a 503");
        assert!(
            Instant::now() < deadline,
            "never recovered: {}",
            daemon.logs()
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fake.wait_for("/wh", 2, Duration::from_secs(20)).await;
    assert!(daemon.logs().contains("Cannot use the PostgreSQL spool"));
}

#[tokio::test]
async fn one_replica_announces_a_silence_and_its_recovery() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let quiet = "7e57a11e-0000-4000-8000-000000000002";
    let extra = format!(
        r#"
[hooks.quiet]
id = "{quiet}"
origin = "sekoia"
expect_within = "1s"
[[routes]]
name = "intake-health"
hooks = ["quiet"]
to = ["slack"]
[routes.when]
type = ["hookrelay.silence", "hookrelay.recovered"]
"#
    );
    let Some((config, _)) = pg_config(&fake, dir.path(), &extra, "15s").await else {
        return;
    };
    let a = Daemon::spawn(&config).await;
    let b = Daemon::spawn(&config).await;
    let notices = || {
        fake.received("/slack")
            .iter()
            .map(|r| r.json()["text"].as_str().unwrap_or("").to_owned())
            .collect::<Vec<_>>()
    };
    // Never heard from: one silence notice, not one per replica.
    fake.wait_for("/slack", 1, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(notices().len(), 1, "{:?}", notices());

    // Events reach replica A only; B must not think the hook is quiet.
    let url = format!("http://{}/hooks/{quiet}", a.addr);
    for n in 0..8 {
        assert_eq!(
            post_to(&url, unique_event(n, ALERT_UUID)).await.unwrap().0,
            202
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let got = notices();
    assert_eq!(got.len(), 2, "one recovery, no new silence: {got:?}");
    assert!(got[1].contains("receiving events again"), "{got:?}");
    // Quiet again: exactly one more notice.
    fake.wait_for("/slack", 3, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(notices().len(), 3, "{:?}", notices());
    drop(b);
}

#[tokio::test]
async fn one_replica_sends_each_digest() {
    let Some((Setup { fake, _dir, .. }, _replicas)) = two_replicas_after_six_events(
        "max_per_minute = 2\ndigest = true\ndigest_interval = \"1s\"",
    )
    .await
    else {
        return;
    };
    // Two alerts, then the four held ones as one digest from one replica.
    fake.wait_for("/wh", 3, Duration::from_secs(20)).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let got: Vec<serde_json::Value> = fake.received("/wh").iter().map(|r| r.json()).collect();
    let digests: Vec<&serde_json::Value> = got.iter().filter(|d| d["kind"] == "digest").collect();
    assert_eq!(got.len(), 3, "{got:#?}");
    assert_eq!(digests.len(), 1, "{got:#?}");
    assert!(
        digests[0]["message"].to_string().contains('4'),
        "the digest counts the 4 held alerts: {}",
        digests[0]["message"]
    );
}

#[tokio::test]
async fn tls_to_the_database_is_verified_against_store_ca_file() {
    let Some(Setup {
        fake,
        config,
        url,
        _dir,
    }) = setup("").await
    else {
        return;
    };
    let tls_url = url.replace("sslmode=disable", "sslmode=require");
    edit_config(&config, &url, &tls_url);

    // The server's certificate is from a private CA: not trusted by default.
    let untrusted = Daemon::spawn(&config).await;
    let ready = format!("http://{}/readyz", untrusted.admin);
    assert_eq!(reqwest::get(&ready).await.unwrap().status(), 503);
    assert_eq!(untrusted.post_unique(1).await, 503);
    let logs = untrusted.logs();
    assert!(logs.contains("Cannot use the PostgreSQL spool"), "{logs}");
    assert!(
        logs.to_lowercase().contains("certificate"),
        "the error says why: {logs}"
    );
    drop(untrusted);

    // With the CA in store.ca_file, the TLS connection is made and used.
    let ca = pg::server().unwrap().ca_file.display().to_string();
    edit_config(
        &config,
        "lease = \"15s\"",
        &format!("lease = \"15s\"\nca_file = \"{ca}\""),
    );
    let daemon = Daemon::spawn(&config).await;
    assert_eq!(daemon.post_unique(1).await, 202);
    fake.wait_for("/wh", 1, Duration::from_secs(20)).await;
    let client = pg::server().unwrap().client(&url).await;
    let tls_sessions: i64 = client
        .query_one(
            "SELECT COUNT(*) FROM pg_stat_ssl s JOIN pg_stat_activity a ON a.pid = s.pid
             WHERE s.ssl AND a.datname = current_database()",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(tls_sessions > 0, "the daemon's connections use TLS");
}

#[tokio::test]
async fn a_database_that_stops_answering_means_503_not_a_hang() {
    let Some(Setup {
        fake,
        config,
        url,
        _dir,
    }) = setup("").await
    else {
        return;
    };
    let daemon = Daemon::spawn(&config).await;
    // Another session holds the events table: inserts wait on its lock.
    let mut locker = pg::server().unwrap().client(&url).await;
    let tx = locker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = Instant::now();
    let r = reqwest::Client::new()
        .post(daemon.hook_url())
        .header("content-type", "application/json")
        .body(unique_event(1, ALERT_UUID))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // The lock goes away: the sender's retry is stored and delivered. (Had
    // the timed-out insert committed after all, the retry is recognised as
    // a duplicate and that event is routed when its claim runs out.)
    tx.rollback().await.unwrap();
    assert_eq!(daemon.post_unique(1).await, 202);
    fake.wait_for("/wh", 1, Duration::from_secs(20)).await;
}

/// The console reads the shared database: each replica's console lists
/// the events every replica accepted, and either can open any of them.
#[tokio::test]
async fn every_replicas_console_shows_the_whole_cluster() {
    let Some((setup, replicas)) = two_replicas_after_six_events("").await else {
        return;
    };
    setup.fake.wait_for("/wh", 6, Duration::from_secs(30)).await;
    // The console was off: turned on by a reload of the shared file.
    let text = std::fs::read_to_string(&setup.config).unwrap();
    std::fs::write(
        &setup.config,
        format!("{text}\n[console]\nenabled = true\n"),
    )
    .unwrap();
    for r in &replicas {
        r.signal(libc::SIGHUP);
    }
    let client = reqwest::Client::new();
    for r in &replicas {
        let url = format!("http://{}/console/events?state=delivered", r.admin);
        let deadline = Instant::now() + Duration::from_secs(20);
        let page = loop {
            let resp = client.get(&url).send().await.unwrap();
            if resp.status() == 200 {
                let page = resp.text().await.unwrap();
                if page.matches("<tr data-id=").count() == 6 {
                    break page;
                }
            }
            assert!(
                Instant::now() < deadline,
                "replica {} never listed the 6 events",
                r.admin
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let at = page.find("href=\"/console/events/").unwrap() + 22;
        let id = &page[at..at + page[at..].find('"').unwrap()];
        let event = client
            .get(format!("http://{}/console/events/{id}", r.admin))
            .send()
            .await
            .unwrap();
        assert_eq!(event.status(), 200);
        assert!(event
            .text()
            .await
            .unwrap()
            .contains("no conditions: matches every event"));
    }
}

/// A tenant created through one replica's API is served by the other
/// within a second (NOTIFY; the periodic check covers a missed one), and
/// its deletion too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_change_reaches_every_replica_within_a_second() {
    let Some(setup) = setup("").await else {
        return;
    };
    let token = "replica-api-token-0123456789abcdef";
    let key = setup._dir.path().join("secrets.key");
    std::fs::write(&key, [5u8; 32]).unwrap();
    edit_config(
        &setup.config,
        "[admin]\n",
        &format!(
            "[admin]\napi_token = \"{token}\"\nsecrets_key_file = \"{}\"\ntenant_allow_hosts = [\"127.0.0.1\"]\n",
            key.display()
        ),
    );
    let a = Daemon::spawn(&setup.config).await;
    let b = Daemon::spawn(&setup.config).await;
    let hook = "c0c0c0c0-1111-4222-8333-444444444444";
    setup.fake.always("/acme", Reply::status(200, "ok"));
    let doc = serde_json::json!({
        "origins": {"sekoia": {"kind": "sekoia", "base_url": setup.fake.url("/api"), "api_key": "k-acme"}},
        "hooks": {"soc": {"id": hook, "origin": "sekoia"}},
        "destinations": {"wh": {"kind": "webhook", "url": setup.fake.url("/acme")}},
        "routes": [{"name": "all", "to": ["wh"]}]
    });
    let client = reqwest::Client::new();
    let put = client
        .put(format!("http://{}/api/v1/tenants/acme", a.admin))
        .bearer_auth(token)
        .json(&doc)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 201);
    let changed = Instant::now();
    let on_b = format!("http://{}/hooks/{hook}", b.addr);
    let status = |url: String| async move {
        reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(unique_event(1, ALERT_UUID))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    while status(on_b.clone()).await != 202 {
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "replica b did not apply the tenant within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    setup
        .fake
        .wait_for("/acme", 1, Duration::from_secs(20))
        .await;
    let del = client
        .delete(format!("http://{}/api/v1/tenants/acme", a.admin))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let changed = Instant::now();
    while status(on_b.clone()).await != 404 {
        assert!(
            changed.elapsed() < Duration::from_secs(1),
            "replica b did not drop the tenant within a second"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Console sessions are the cluster's: a login on one replica holds on the
/// other (same password, the spool's salt), and a logout on either ends
/// the session on both (the spool's session epoch).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_console_logout_on_one_replica_ends_the_session_on_every_replica() {
    let Some(setup) = setup("").await else {
        return;
    };
    let password = "a cluster console password";
    let text = std::fs::read_to_string(&setup.config).unwrap();
    std::fs::write(
        &setup.config,
        format!("{text}\n[console]\nenabled = true\npassword = \"{password}\"\n"),
    )
    .unwrap();
    let a = Daemon::spawn(&setup.config).await;
    let b = Daemon::spawn(&setup.config).await;
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = plain
        .post(format!("http://{}/console/login", a.admin))
        .form(&[("username", "admin"), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let cookie = login.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let open = |admin: std::net::SocketAddr, path: &'static str| {
        plain
            .get(format!("http://{admin}{path}"))
            .header("cookie", &cookie)
            .send()
    };
    assert_eq!(open(a.admin, "/console/").await.unwrap().status(), 200);
    let page = open(b.admin, "/console/").await.unwrap();
    assert_eq!(page.status(), 200, "the other replica accepts it");
    let page = page.text().await.unwrap();
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    let csrf = page[at..].split('"').next().unwrap().to_owned();
    let out = plain
        .post(format!("http://{}/console/logout", b.admin))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    for r in [&a, &b] {
        assert_eq!(
            open(r.admin, "/console/").await.unwrap().status(),
            303,
            "replica {} still accepts the session",
            r.admin
        );
    }
}
