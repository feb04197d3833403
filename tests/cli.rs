//! The command line as an operator uses it: check, preview, send-test,
//! events, health, help and exit codes — and no secret in any output.

mod common;

use common::*;
use std::process::Command;

fn run_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(bin());
    cmd.args(args).env_remove("HOOKRELAY_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn example() -> String {
    format!("{}/config/hookrelay.toml", env!("CARGO_MANIFEST_DIR"))
}

const TEAMS_URL: &str = "https://example.webhook.office.com/workflows/SECRET-TEAMS-TOKEN";

/// The credential files the systemd unit loads for the example config, as
/// the README installs them.
fn example_credentials() -> tempfile::TempDir {
    let creds = tempfile::tempdir().unwrap();
    for (name, value) in [
        ("sekoia-api-key", "SECRET-API-KEY"),
        ("teams-url", TEAMS_URL),
        (
            "slack-url",
            "https://hooks.slack.com/services/T0/B0/SECRET-SLACK\n",
        ),
    ] {
        std::fs::write(creds.path().join(name), value).unwrap();
    }
    creds
}

#[test]
fn the_example_config_passes_check() {
    let creds = example_credentials();
    let (code, out, err) = run_env(
        &["check", "--config", &example()],
        &[("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap())],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("OK (1 origins, 1 hooks, 2 destinations, 6 routes)"),
        "{out}"
    );
    for secret in ["SECRET-API-KEY", "SECRET-TEAMS-TOKEN", "SECRET-SLACK"] {
        assert!(!out.contains(secret) && !err.contains(secret));
    }
    // Outside the service, without the variable: the message says how.
    let (code, _, err) = run_env(&["check", "--config", &example()], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("CREDENTIALS_DIRECTORY=/etc/hookrelay/credentials hookrelay check"),
        "{err}"
    );
}

/// Output piped into a reader that has gone away (`hookrelay events list |
/// head -1`): the command ends quietly, with no panic on stderr.
#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let creds = example_credentials();
    let mut child = Command::new(bin())
        .args(["check", "--config", &example()])
        .env_remove("HOOKRELAY_CONFIG")
        .env("CREDENTIALS_DIRECTORY", creds.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The reader goes away before the command prints.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(out.status.code(), Some(0), "{err}");
}

#[test]
fn check_reports_every_error_with_its_key_and_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[server]
listen = "0.0.0.0:8080"
max_body_byte = 10
[origins.sekoia]
kind = "sekoia"
base_url = "https://api.sekoia.io"
api_key = "${MISSING_KEY}"
[hooks.soc]
id = "67a7472b-b43c-415d-b1ce-c135fb1dfb0e"
origin = "sekoya"
[destinations.chat]
kind = "slack"
url = "ftp://files.example.org/SECRET-IN-URL"
[destinations.t]
kind = "teams"
url = "${TEAMS_URL}"
[[routes]]
name = "r"
to = ["chat", "nowhere"]
"#,
    )
    .unwrap();
    let (code, out, err) = run_env(
        &["check", "--config", path.to_str().unwrap()],
        &[("TEAMS_URL", TEAMS_URL)],
    );
    assert_eq!(code, 1, "{out}");
    assert!(
        err.contains("server.max_body_byte") || err.contains("max_body_byte"),
        "{err}"
    );
    assert!(
        err.contains("origins.sekoia.api_key: environment variable MISSING_KEY is not set"),
        "{err}"
    );
    // The second pass (references) runs once the schema is fixed.
    assert!(
        !err.contains("SECRET-TEAMS-TOKEN") && !err.contains("SECRET-IN-URL"),
        "{err}"
    );

    let fixed = std::fs::read_to_string(&path)
        .unwrap()
        .replace("max_body_byte = 10\n", "");
    std::fs::write(&path, fixed).unwrap();
    let (code, _, err) = run_env(
        &["check", "--config", path.to_str().unwrap()],
        &[("TEAMS_URL", TEAMS_URL), ("MISSING_KEY", "k")],
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("hooks.soc.origin: no origin named \"sekoya\""),
        "{err}"
    );
    assert!(
        err.contains("destinations.chat.url: URL scheme must be http or https"),
        "{err}"
    );
    assert!(
        err.contains("routes[0].to: no destination named \"nowhere\""),
        "{err}"
    );
    assert!(
        !err.contains("SECRET-IN-URL") && !err.contains("SECRET-TEAMS-TOKEN"),
        "{err}"
    );

    // `run` refuses the same file, naming the key, and starts nothing.
    let (code, _, err) = run_env(
        &["run", "--config", path.to_str().unwrap()],
        &[("TEAMS_URL", TEAMS_URL), ("MISSING_KEY", "k")],
    );
    assert_eq!(code, 1);
    assert!(err.contains("routes[0].to"), "{err}");

    let (code, _, err) = run_env(&["check", "--config", "/nonexistent/hookrelay.toml"], &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot read config file /nonexistent/hookrelay.toml"),
        "{err}"
    );
}

#[test]
fn help_everywhere_and_usage_errors_exit_2() {
    for args in [
        vec!["--help"],
        vec!["run", "--help"],
        vec!["check", "--help"],
        vec!["demo", "--help"],
        vec!["preview", "--help"],
        vec!["send-test", "--help"],
        vec!["dead-letters", "list", "--help"],
        vec!["dead-letters", "replay", "--help"],
        vec!["events", "list", "--help"],
        vec!["events", "show", "--help"],
        vec!["health", "--help"],
        vec!["migrate", "--help"],
    ] {
        let (code, out, _) = run_env(&args, &[]);
        assert_eq!(code, 0, "{args:?}");
        assert!(out.contains("Usage"), "{args:?}: {out}");
    }
    assert_eq!(run_env(&["frobnicate"], &[]).0, 2);
    assert_eq!(run_env(&["check", "--bogus"], &[]).0, 2);
    let (code, out, _) = run_env(&["--version"], &[]);
    assert_eq!(code, 0);
    assert!(out.starts_with("hookrelay "), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_prints_each_destination_request_and_sends_nothing() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), ROUTE_ALL);
    let event = format!(
        "{}/tests/fixtures/event-alert-created.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let alert = format!(
        "{}/tests/fixtures/alert-hostile.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        cli(&[
            "preview",
            "--config",
            config.to_str().unwrap(),
            "--event",
            &event,
            "--alert",
            &alert,
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("routing (hook soc):\n  matched all: no conditions: matches every event\n"),
        "{out}"
    );
    for header in [
        "=== teams (teams)",
        "=== legacy (teams-legacy)",
        "=== slack (slack)",
        "=== mattermost (mattermost)",
    ] {
        assert!(out.contains(header), "{out}");
    }
    assert!(
        out.contains(&format!("POST http://{}/…", fake.addr)),
        "{out}"
    );
    assert!(!out.contains("secret-token"), "webhook URL leaked:\n{out}");
    assert!(out.contains("\"contentUrl\": null"));
    assert!(fake.received("/").is_empty(), "preview sent something");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_test_reports_the_outcome() {
    let fake = Fake::start().await;
    fake.always(
        "/mattermost/hooks/secret-token",
        Reply::status(404, "channel_not_found"),
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), ROUTE_ALL)
        .to_str()
        .unwrap()
        .to_owned();
    let c = config.clone();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        cli(&["send-test", "--config", &c, "--destination", "teams"])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("delivered to teams") && out.contains("HTTP 202"),
        "{out}"
    );
    assert!(!out.contains("secret-token"));
    let body = fake.received("/teams")[0].json();
    assert_eq!(
        body["attachments"][0]["content"]["body"][1]["text"],
        "hookrelay test message"
    );

    let c = config.clone();
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        cli(&["send-test", "--config", &c, "--destination", "mattermost"])
    })
    .await
    .unwrap();
    assert_eq!(code, 1);
    assert!(
        err.contains("channel_not_found") && !err.contains("secret-token"),
        "{err}"
    );

    let (code, _, err) = tokio::task::spawn_blocking(move || {
        cli(&["send-test", "--config", &config, "--destination", "nope"])
    })
    .await
    .unwrap();
    assert_eq!(code, 1);
    assert!(err.contains("no destination named \"nope\""), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_history_and_health() {
    let fake = Fake::start().await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let config = write_config(
        &fake,
        dir.path(),
        "[[routes]]\nname = \"s\"\nto = [\"slack\"]\n",
    )
    .to_str()
    .unwrap()
    .to_owned();
    let app = spawn_app_in(
        &fake,
        "[[routes]]\nname = \"s\"\nto = [\"slack\"]\n",
        dir.clone(),
    )
    .await;
    let (_, body) = app.post(fixture("event-alert-created.json")).await;
    let id = body["id"].as_str().unwrap().to_owned();
    fake.wait_for("/slack", 1, std::time::Duration::from_secs(20))
        .await;

    let c = config.clone();
    let health = format!("http://{}/healthz", app.admin);
    let (list, show, up) = tokio::task::spawn_blocking(move || {
        // The delivered state is committed right after the chat service answers.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let list = loop {
            let l = cli(&["events", "list", "--config", &c]);
            if l.1.contains("\tdelivered") || std::time::Instant::now() > deadline {
                break l;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        (
            list,
            cli(&["events", "show", &id, "--config", &c]),
            cli(&["health", "--url", &health]),
        )
    })
    .await
    .unwrap();
    assert_eq!(list.0, 0, "{}", list.2);
    let line = list.1.lines().next().unwrap();
    let fields: Vec<&str> = line.split('\t').collect();
    assert_eq!(
        fields[2..],
        ["soc", "alert/created", "ALEY4fqz8moo", "delivered"],
        "{line}"
    );
    assert_eq!(show.0, 0, "{}", show.2);
    assert!(show.1.contains("enrichment: ok"), "{}", show.1);
    assert!(show.1.contains("routes: s\n"), "{}", show.1);
    assert!(
        show.1
            .contains("matched s: no conditions: matches every event"),
        "every route's verdict: {}",
        show.1
    );
    assert!(show.1.contains("from: 127.0.0.1"), "{}", show.1);
    // The alert as the API answered it is kept for the history.
    assert!(
        show.1.contains("alert: {") && show.1.contains("\"short_id\": \"ALEY4fqz8moo\""),
        "{}",
        show.1
    );
    assert!(
        show.1.contains("→ slack (route s): delivered"),
        "{}",
        show.1
    );
    assert!(show.1.contains("HTTP 200"), "{}", show.1);
    assert_eq!(up.0, 0, "{}", up.2);
    app.stop().await;
    let (code, _, _) =
        tokio::task::spawn_blocking(|| cli(&["health", "--url", "http://127.0.0.1:1/healthz"]))
            .await
            .unwrap();
    assert_eq!(code, 1);
}
