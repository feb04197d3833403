//! Cases and the other Sekoia.io notifications, end to end: a webhook in,
//! the case API (and its statuses, priorities and verdicts) called back,
//! the exact payload out to the chat services.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const CASE_UUID: &str = "3f1c9e2a-7b4d-4c6e-9a1f-2d3e4f5a6b7c";
const CLOSED: &str = "2e4b4b02-9d4e-4b0e-9f0b-2a3c4d5e6f70";
const CRITICAL: &str = "8e2a4b6c-2222-4b3c-8d4e-5f6071829304";

/// A reviewed golden file (src/destinations/tests/snapshots), read verbatim.
fn golden(name: &str) -> Value {
    let path = format!(
        "{}/src/destinations/tests/snapshots/hookrelay__destinations__tests__cases__{name}.snap",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let body = text.splitn(3, "---").nth(2).expect("insta header");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn a_case_created_reaches_every_kind_enriched_with_the_exact_payload() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, ROUTE_ALL).await;
    let (status, _) = app.post(fixture("event-case-created.json")).await;
    assert_eq!(status, 202);
    for (path, kind) in [
        ("/teams", "teams"),
        ("/legacy", "teams-legacy"),
        ("/slack", "slack"),
        ("/mattermost", "mattermost"),
    ] {
        let got = fake.wait_for(path, 1, WAIT).await;
        assert_eq!(
            got[0].json(),
            golden(&format!("case-created-{kind}")),
            "{path}"
        );
    }
    // The case API, as documented, with the bearer key; no alert fetched.
    let api = fake.received("/api/v1/sic/cases/");
    assert_eq!(api.len(), 1);
    assert_eq!(api[0].path, format!("/api/v1/sic/cases/{CASE_UUID}"));
    assert_eq!(
        api[0].headers["authorization"],
        format!("Bearer {API_KEY}").as_str()
    );
    assert!(fake.received("/api/v1/sic/alerts/").is_empty());
    // The case carries its names: nothing to look up.
    assert!(fake.received("/api/v1/sic/custom_").is_empty());
    app.stop().await;
}

#[tokio::test]
async fn a_case_updated_says_what_changed_with_names_looked_up_once() {
    let fake = Fake::start().await;
    fake.set_name("custom_statuses", CLOSED, "Closed");
    fake.set_name("custom_priorities", CRITICAL, "Critical");
    let app = spawn_app(&fake, ROUTE_ALL).await;
    assert_eq!(app.post(fixture("event-case-updated.json")).await.0, 202);
    fake.wait_for("/slack", 1, WAIT).await;
    // Another change (a new body: the same one would be a sender's retry).
    let mut second: Value = serde_json::from_slice(&fixture("event-case-updated.json")).unwrap();
    second["metadata"]["created_at"] = "2024-03-05T11:45:00.000000+00:00".into();
    assert_eq!(app.post(second.to_string()).await.0, 202);
    let got = fake.wait_for("/slack", 2, WAIT).await;
    for r in &got {
        let text = r.json().to_string();
        assert!(
            text.contains("status → Closed; priority → Critical; verdict → True positive"),
            "{text}"
        );
        assert!(!text.contains(CLOSED), "names, not uuids: {text}");
    }
    // Each name once: the second event found them in the cache.
    assert_eq!(
        fake.received(&format!("/api/v1/sic/custom_statuses/{CLOSED}"))
            .len(),
        1
    );
    assert_eq!(
        fake.received(&format!("/api/v1/sic/custom_priorities/{CRITICAL}"))
            .len(),
        1
    );
    // The case itself is fetched again: it changed.
    assert_eq!(fake.received("/api/v1/sic/cases/").len(), 2);
    app.stop().await;
}

#[tokio::test]
async fn alerts_added_to_a_case_are_named_with_their_title_and_urgency() {
    let fake = Fake::start().await;
    // The case does not list the alert yet: it is fetched from the alert API.
    let mut case = fixture_json("case-full.json");
    case["alerts"] = Value::Array(vec![]);
    case["number_of_alerts"] = 1.into();
    fake.set_case(CASE_UUID, case);
    let app = spawn_app(&fake, ROUTE_ALL).await;
    assert_eq!(
        app.post(fixture("event-case-alerts-updated.json")).await.0,
        202
    );
    let got = fake.wait_for("/slack", 1, WAIT).await;
    let text = got[0].json().to_string();
    assert!(text.contains("alerts added: ALEY4fqz8moo"), "{text}");
    assert!(
        text.contains("ALEY4fqz8moo — Suspicious PowerShell download cradle (Major 63)"),
        "{text}"
    );
    assert!(!text.contains("added_alerts_uuid"), "{text}");
    assert_eq!(
        fake.received("/api/v1/sic/alerts/")[0].path,
        format!("/api/v1/sic/alerts/{ALERT_UUID}")
    );
    app.stop().await;
}

#[tokio::test]
async fn a_case_the_api_cannot_return_is_still_delivered() {
    let fake = Fake::start().await;
    fake.always(
        &format!("/api/v1/sic/cases/{CASE_UUID}"),
        Reply::status(404, r#"{"message":"not found"}"#),
    );
    let app = spawn_app(&fake, ROUTE_ALL).await;
    assert_eq!(app.post(fixture("event-case-created.json")).await.0, 202);
    let got = fake.wait_for("/slack", 1, WAIT).await;
    assert_eq!(got[0].json(), golden("case-degraded-slack"));
    let m = app.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hookrelay_enrich_degraded_total",
            &["origin=\"sekoia\"", "reason=\"http_404\""]
        ),
        1.0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_case_without_a_canonical_uuid_is_refused_naming_the_field() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, ROUTE_ALL).await;
    for (body, needle) in [
        (
            r#"{"type":"case","action":"created","attributes":{"short_id":"CA42"}}"#,
            "`attributes.uuid`",
        ),
        (
            r#"{"type":"case","action":"created","attributes":{"uuid":"../../v1/admin"}}"#,
            "`attributes.uuid` must be a canonical UUID",
        ),
        (
            r#"{"type":"case-comment","action":"created","attributes":{"case_uuid":"x/../y"}}"#,
            "`attributes.case_uuid`",
        ),
    ] {
        let (status, answer) = app.post(body).await;
        assert_eq!(status, 400, "{body}");
        let error = answer.to_string();
        assert!(error.contains(needle), "{error} lacks {needle}");
    }
    assert!(fake.received("/api/v1/sic/").is_empty());
    app.stop().await;
}

#[tokio::test]
async fn unknown_types_are_delivered_plainly_and_counted_never_fetched_as_alerts() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, ROUTE_ALL).await;
    assert_eq!(app.post(fixture("event-unknown.json")).await.0, 202);
    let got = fake.wait_for("/slack", 1, WAIT).await;
    assert_eq!(got[0].json(), golden("unknown-type-slack"));
    // It carries an alert_uuid, but it is not an alert.
    assert!(fake.received("/api/v1/sic/").is_empty());
    let m = app.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hookrelay_events_unknown_type_total",
            &["type=\"countermeasure\""]
        ),
        1.0
    );
    // An intake health notification and a content proposal: their own words.
    assert_eq!(
        app.post(fixture("event-intake-no-events.json")).await.0,
        202
    );
    assert_eq!(
        app.post(fixture("event-content-proposal-created.json"))
            .await
            .0,
        202
    );
    let got = fake.wait_for("/slack", 3, WAIT).await;
    let bodies: Vec<Value> = got.iter().map(|r| r.json()).collect();
    assert!(bodies.contains(&golden("intake-health-slack")));
    assert!(bodies.contains(&golden("content-proposal-slack")));
    let m = app.metrics().await;
    assert_eq!(
        metric(&m, "hookrelay_events_unknown_type_total", &[]),
        1.0,
        "known types are not counted"
    );
    app.stop().await;
}

const CASE_ROUTES: &str = r#"
[[routes]]
name = "critical-cases"
to = ["slack"]
[routes.when]
type = ["case"]
case_priority = ["Critical", "High"]
case_mode = ["automatic"]
tags = ["vip"]

[[routes]]
name = "other-cases"
to = ["mattermost"]
[routes.when]
type = ["case"]

[[routes]]
name = "health"
to = ["teams"]
[routes.when]
type = ["intake", "playbook", "connector"]
"#;

#[tokio::test]
async fn cases_are_routed_by_priority_mode_and_tags() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, CASE_ROUTES).await;
    assert_eq!(app.post(fixture("event-case-created.json")).await.0, 202);
    fake.wait_for("/slack", 1, WAIT).await;
    // A low-priority case goes to the other route.
    let mut low = fixture_json("case-full.json");
    low["uuid"] = "11111111-2222-4333-8444-555555555555".into();
    low["custom_priority"]["label"] = "Low".into();
    fake.set_case("11111111-2222-4333-8444-555555555555", low);
    let mut ev = fixture_json("event-case-created.json");
    ev["attributes"]["uuid"] = "11111111-2222-4333-8444-555555555555".into();
    assert_eq!(app.post(ev.to_string()).await.0, 202);
    fake.wait_for("/mattermost", 1, WAIT).await;
    assert_eq!(
        app.post(fixture("event-intake-no-events.json")).await.0,
        202
    );
    fake.wait_for("/teams", 1, WAIT).await;
    assert_eq!(fake.received("/slack").len(), 1);
    assert_eq!(fake.received("/mattermost").len(), 1);
    app.stop().await;
}

#[test]
fn check_names_the_case_condition_keys() {
    let dir = tempfile::tempdir().unwrap();
    let bad = r#"
[[routes]]
name = "x"
to = ["slack"]
[routes.when]
case_mode = ["sometimes"]
"#;
    let text = config_text_for_check(dir.path(), bad);
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, text).unwrap();
    let (code, out, err) = cli(&["check", "--config", path.to_str().unwrap()]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("routes[0].when.case_mode"),
        "{out}{err}"
    );
}

/// A configuration `check` can read without a running fake.
fn config_text_for_check(dir: &std::path::Path, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[store]
path = "{db}"
[origins.sekoia]
kind = "sekoia"
region = "fra1"
api_key = "{API_KEY}"
[hooks.soc]
id = "{HOOK_ID}"
origin = "sekoia"
[destinations.slack]
kind = "slack"
url = "http://127.0.0.1:9/slack"
{extra}
"#,
        db = dir.join("spool.db").display()
    )
}

/// Destinations `sk` (Slack API mode) and `mm` (Mattermost API mode).
fn threaded(chat: &common::chat::ChatApi) -> String {
    use common::chat::{MM_CHANNEL, MM_TOKEN, SLACK_CHANNEL, SLACK_TOKEN};
    format!(
        r#"
[destinations.sk]
kind = "slack"
token = "{SLACK_TOKEN}"
channel = "{SLACK_CHANNEL}"
api_url = "{api}"
[destinations.mm]
kind = "mattermost"
server_url = "{server}"
token = "{MM_TOKEN}"
channel_id = "{MM_CHANNEL}"
[[routes]]
name = "soc"
to = ["sk", "mm"]
"#,
        api = chat.slack_api(),
        server = chat.mattermost_server(),
    )
}

/// Posts an event to a hook; asserts the 202.
async fn post_to(hook_url: &str, body: Vec<u8>) {
    let r = reqwest::Client::new()
        .post(hook_url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
}

/// The alert created, a case created, the case taking the alert, the
/// case closed: step `step` sent to `hooks[step % len]`, each once the
/// previous one's messages are in the channels.
async fn case_life(
    fake: &Fake,
    chat: &common::chat::ChatApi,
    hooks: &[String],
    steps: std::ops::Range<usize>,
) {
    for step in steps {
        let event = match step {
            0 => "event-alert-created.json",
            1 => "event-case-created.json",
            2 => "event-case-alerts-updated.json",
            _ => {
                let mut closed = fixture_json("case-full.json");
                closed["custom_status"] = serde_json::json!({"label": "Closed", "stage": "closed"});
                closed["custom_status_uuid"] = CLOSED.into();
                closed["status"] = "Closed".into();
                closed["status_uuid"] = CLOSED.into();
                fake.set_case(CASE_UUID, closed);
                fake.set_name("custom_priorities", CRITICAL, "Critical");
                "event-case-updated.json"
            }
        };
        post_to(&hooks[step % hooks.len()], fixture(event)).await;
        // Per destination: the alert's root, the case's root, a reply in
        // each thread, the close.
        let want = [2, 4, 8, 10][step];
        chat.wait(WAIT, "the event's messages", |m| m.len() >= want)
            .await;
    }
}

/// On each destination: two roots (the alert's, the case's); the alert's
/// thread told which case took it; the case's thread lists the alert,
/// then the close (broadcast in Slack), its root showing it closed.
fn assert_case_threads(chat: &common::chat::ChatApi) {
    use common::chat::{MM_CHANNEL, SLACK_CHANNEL};
    let text = |m: &common::chat::Message| {
        let v = m.current();
        v.get("text")
            .or(v.get("message"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    for (channel, link, bold) in [
        (
            SLACK_CHANNEL,
            "<https://app.sekoia.io/operations/cases/CA42|CA42>",
            "*",
        ),
        (
            MM_CHANNEL,
            "[CA42](https://app.sekoia.io/operations/cases/CA42)",
            "**",
        ),
    ] {
        let roots: Vec<_> = chat
            .roots()
            .into_iter()
            .filter(|m| m.channel == channel)
            .collect();
        assert_eq!(roots.len(), 2, "{channel}: the alert's and the case's");
        let alert_root = roots
            .iter()
            .find(|m| m.versions[0].to_string().contains("Suspicious PowerShell"))
            .unwrap();
        let case_root = roots
            .iter()
            .find(|m| m.versions[0].to_string().contains("Ransomware precursor"))
            .unwrap();
        // The alert's thread: told which case took it, its root untouched.
        let alert_replies: Vec<String> = chat.replies(&alert_root.id).iter().map(text).collect();
        assert_eq!(
            alert_replies,
            [format!(
                "added to case CA42 — Ransomware precursor on finance workstations\n{link}"
            )],
            "{channel}: {:#?}",
            chat.messages()
        );
        assert_eq!(alert_root.versions.len(), 1, "{channel}");
        // The case's thread: its alert, then the close.
        let case_replies = chat.replies(&case_root.id);
        let texts: Vec<String> = case_replies.iter().map(text).collect();
        assert_eq!(
            texts,
            [
                "case alerts updated: alerts added: ALEY4fqz8moo".to_owned(),
                format!("{bold}Status:{bold} Ongoing → {bold}Closed{bold}"),
            ],
            "{channel}"
        );
        let first = case_root.versions[0].to_string();
        assert!(first.contains("case · Ongoing"), "{first}");
        let shown = case_root.shown();
        assert!(
            shown.contains("[Closed] Ransomware precursor on finance workstations"),
            "{shown}"
        );
        if channel == SLACK_CHANNEL {
            assert_eq!(
                case_replies.iter().map(|m| m.broadcast).collect::<Vec<_>>(),
                [false, true]
            );
        }
    }
}

#[tokio::test]
async fn a_case_is_one_thread_and_the_alerts_thread_says_which_case_took_it() {
    let fake = Fake::start().await;
    let chat = common::chat::ChatApi::start().await;
    let app = spawn_app(&fake, &threaded(&chat)).await;
    case_life(&fake, &chat, &[app.hook_url()], 0..4).await;
    assert_case_threads(&chat);
    app.stop().await;
}

#[tokio::test]
async fn case_threads_survive_a_restart() {
    let fake = Fake::start().await;
    let chat = common::chat::ChatApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), &threaded(&chat));
    let first = Daemon::spawn(&config).await;
    case_life(&fake, &chat, &[first.hook_url()], 0..2).await;
    first.signal(libc::SIGTERM);
    let mut first = first;
    tokio::task::spawn_blocking(move || first.child.wait().unwrap())
        .await
        .unwrap();
    let second = Daemon::spawn(&config).await;
    case_life(&fake, &chat, &[second.hook_url()], 2..4).await;
    assert_case_threads(&chat);
}

#[tokio::test]
async fn two_replicas_taking_alternate_events_keep_the_case_threads() {
    let Some(server) = common::pg::server() else {
        return;
    };
    let fake = Fake::start().await;
    let chat = common::chat::ChatApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), &threaded(&chat));
    common::pg::use_postgres(&config, &server.database().await, "15s");
    let replicas = [Daemon::spawn(&config).await, Daemon::spawn(&config).await];
    let hooks: Vec<String> = replicas.iter().map(|d| d.hook_url()).collect();
    case_life(&fake, &chat, &hooks, 0..4).await;
    assert_case_threads(&chat);
}

/// `preview` takes a case event: with `--alert`, the file is the case
/// object; the route tester's verdicts name the case conditions.
#[test]
fn preview_takes_a_case_event() {
    let dir = tempfile::tempdir().unwrap();
    let routes = r#"
[[routes]]
name = "low-cases"
to = ["slack"]
[routes.when]
type = ["case"]
case_priority = ["Low"]

[[routes]]
name = "cases"
to = ["slack"]
[routes.when]
type = ["case"]
case_status = ["Ongoing"]
"#;
    let path = dir.path().join("hookrelay.toml");
    std::fs::write(&path, config_text_for_check(dir.path(), routes)).unwrap();
    let fixtures = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let (code, out, err) = cli(&[
        "preview",
        "--config",
        path.to_str().unwrap(),
        "--event",
        &format!("{fixtures}/event-case-created.json"),
        "--alert",
        &format!("{fixtures}/case-full.json"),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("case_priority = [\"Low\"]: the case's priority is \"High\""),
        "{out}"
    );
    assert!(out.contains("=== slack (slack)"), "{out}");
    assert!(
        out.contains("Ransomware precursor on finance workstations"),
        "{out}"
    );
    assert!(
        out.contains("https://app.sekoia.io/operations/cases/CA42"),
        "{out}"
    );
}
