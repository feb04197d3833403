//! Silences like `amtool silence`: added, listed and expired from the
//! command line while the daemon runs (or not), effective within a second
//! without a reload, cluster-wide on PostgreSQL. A silenced event is
//! stored, enriched and recorded as silenced by its silence; nothing is
//! sent.

mod common;

use common::pg::{self, use_postgres};
use common::*;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

async fn cli_off(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&args)
    })
    .await
    .unwrap()
}

fn args(list: &[&str], config: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.push("--config".into());
    v.push(config.display().to_string());
    v
}

#[tokio::test]
async fn a_silence_holds_matching_events_until_it_is_expired() {
    let fake = Fake::start().await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let config = write_config(&fake, dir.path(), ROUTE_ALL);
    let app = spawn_app_in(&fake, ROUTE_ALL, dir.clone()).await;

    let (code, out, err) = cli_off(args(
        &[
            "silences",
            "add",
            "--when",
            r#"rule = ["PowerShell Download From URL"], entity = ["Headquarters"]"#,
            "--for",
            "2h",
            "--comment",
            "tuning the rule",
            "--author",
            "alice",
        ],
        &config,
    ))
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("silence 1 added until "), "{out}");

    // Matching: stored and recorded, nothing sent.
    let (status, body) = app.post(unique_event(1, ALERT_UUID)).await;
    assert_eq!(status, 202);
    let id = body["id"].as_str().unwrap().to_owned();
    wait_metric(
        &app,
        "hookrelay_deliveries_total",
        &["outcome=\"silenced\""],
        4.0,
        WAIT,
    )
    .await;
    assert!(fake.received("/teams").is_empty() && fake.received("/slack").is_empty());
    let (code, out, _) = cli_off(args(&["events", "show", &id], &config)).await;
    assert_eq!(code, 0);
    assert!(out.contains("→ teams (route all): muted"), "{out}");
    assert!(
        out.contains("silenced by silence 1 (tuning the rule; by alice; until "),
        "{out}"
    );
    let (_, listed, _) = cli_off(args(&["silences", "list"], &config)).await;
    assert!(listed.starts_with("1\tactive\tuntil "), "{listed}");
    assert!(
        listed.contains("alice\ttuning the rule\trule = [\"PowerShell Download From URL\"]"),
        "{listed}"
    );

    // Expired from the command line: within a second events flow again.
    let (code, out, err) = cli_off(args(&["silences", "expire", "1"], &config)).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "silence 1 expired (effective within a second)\n");
    let started = Instant::now();
    let mut n = 2;
    'flowing: loop {
        app.post(unique_event(n, ALERT_UUID)).await;
        n += 1;
        let poll_until = Instant::now() + Duration::from_millis(300);
        while Instant::now() < poll_until {
            if !fake.received("/teams").is_empty() {
                break 'flowing;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the expiry did not take effect"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let (_, listed, _) = cli_off(args(&["silences", "list"], &config)).await;
    assert!(listed.starts_with("1\texpired\t"), "{listed}");
    let (code, _, err) = cli_off(args(&["silences", "expire", "1"], &config)).await;
    assert_eq!(code, 1);
    assert!(err.contains("no active silence 1"), "{err}");
    app.stop().await;
}

#[tokio::test]
async fn bad_matchers_are_refused_by_name_and_nothing_is_stored() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), ROUTE_ALL);
    for (when, want) in [
        (r#"rulez = ["x"]"#, "--when: rulez: unknown field `rulez`"),
        (r#"rule = "not a list""#, "--when: rule: invalid type"),
        (
            r#"rule = ["x""#,
            "--when: not a TOML inline table's contents",
        ),
        ("", "--when: name at least one condition"),
        (
            "urgency_min = \"high\"",
            "--when: urgency_min: invalid type",
        ),
    ] {
        let (code, _, err) = cli_off(args(
            &[
                "silences",
                "add",
                "--when",
                when,
                "--for",
                "1h",
                "--comment",
                "x",
            ],
            &config,
        ))
        .await;
        assert_eq!(code, 1, "{when}");
        assert!(err.contains(want), "{when}: {err}");
    }
    let (code, _, err) = cli_off(args(
        &[
            "silences",
            "add",
            "--when",
            "rule = [\"x\"]",
            "--for",
            "soon",
            "--comment",
            "x",
        ],
        &config,
    ))
    .await;
    assert_eq!(code, 2, "{err}");
    let (_, listed, _) = cli_off(args(&["silences", "list"], &config)).await;
    assert_eq!(listed, "", "nothing stored");
}

#[tokio::test]
async fn a_silence_holds_on_every_replica() {
    let Some(server) = pg::server() else {
        return;
    };
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), ROUTE_ALL);
    use_postgres(&config, &server.database().await, "15s");
    let replicas = [Daemon::spawn(&config).await, Daemon::spawn(&config).await];
    let (code, _, err) = cli_off(args(
        &[
            "silences",
            "add",
            "--when",
            "type = [\"alert\"]",
            "--for",
            "1h",
            "--comment",
            "maintenance",
        ],
        &config,
    ))
    .await;
    assert_eq!(code, 0, "{err}");
    // Both replicas hold matching events (each reads the spool's silences
    // at most a second old).
    for (i, r) in replicas.iter().enumerate() {
        assert_eq!(r.post_unique(10 + i).await, 202);
    }
    let start = Instant::now();
    loop {
        let silenced: f64 = {
            let mut total = 0.0;
            for r in &replicas {
                total += metric(
                    &r.metrics().await,
                    "hookrelay_deliveries_total",
                    &["outcome=\"silenced\""],
                );
            }
            total
        };
        if silenced >= 8.0 {
            break;
        }
        assert!(start.elapsed() < WAIT, "silenced: {silenced}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(fake.received("/teams").is_empty(), "nothing sent");
}
