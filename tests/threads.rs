//! One conversation per alert: Slack and Mattermost in API mode against
//! in-process fakes of their APIs (`common::chat`). An alert's first
//! message is its root; every later event edits the root to show the
//! alert's current state and replies in its thread with what changed, in
//! the order the events were accepted — across a restart, with two
//! replicas on PostgreSQL, with 50 alerts interleaved. The services'
//! refusals become dead letters carrying their error, never the token.

mod common;

use common::chat::{self, ChatApi, MM_CHANNEL, MM_TOKEN, SLACK_CHANNEL, SLACK_TOKEN};
use common::pg::{self, use_postgres};
use common::*;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// Destinations `sk` (Slack API mode) and `mm` (Mattermost API mode) on
/// `chat`, and a route to `to`.
fn threaded(chat: &ChatApi, to: &str, slack: &str) -> String {
    format!(
        r#"
[destinations.sk]
kind = "slack"
token = "{SLACK_TOKEN}"
channel = "{SLACK_CHANNEL}"
api_url = "{api}"
{slack}
[destinations.mm]
kind = "mattermost"
server_url = "{server}"
token = "{MM_TOKEN}"
channel_id = "{MM_CHANNEL}"
[[routes]]
name = "soc"
to = {to}
"#,
        api = chat.slack_api(),
        server = chat.mattermost_server(),
    )
}

/// Event `step` of an alert's life: created, acknowledged, a comment,
/// closed (`n` makes the bodies unique per alert).
fn life_event(step: usize, alert: &str, n: usize) -> String {
    let name = match step {
        0 => "event-alert-created.json",
        1 | 3 => "event-alert-updated-status.json",
        _ => "event-alert-comment-created.json",
    };
    let mut v: Value = serde_json::from_slice(&fixture(name)).unwrap();
    let attrs = &mut v["attributes"];
    if step == 2 {
        attrs["alert_uuid"] = json!(alert);
        attrs["uuid"] = json!(format!("a3e1f0c2-5b6d-4e7f-8a9b-{:012}", n));
    } else {
        attrs["uuid"] = json!(alert);
    }
    if step == 3 {
        attrs["updated"]["status_name"] = json!("Closed");
        attrs["updated"]["status"] = json!("1738b1c1-767d-489e-bada-19176621a007");
    }
    v["metadata"]["created_at"] = json!(format!(
        "2022-01-14T15:{:02}:{:02}.000000+00:00",
        step,
        n % 60
    ));
    v.to_string()
}

/// The fixture alert with `status`.
fn alert_with(status: &str) -> Value {
    let mut a = fixture_json("alert-full.json");
    a["status"]["name"] = json!(status);
    a
}

/// Runs a CLI command off the runtime (the fakes answer on it meanwhile).
async fn cli_off(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&args)
    })
    .await
    .unwrap()
}

/// Posts an event to a daemon's hook; asserts the 202.
async fn post_to(hook_url: &str, body: String) {
    let r = reqwest::Client::new()
        .post(hook_url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
}

/// The alert's life, one event at a time, each sent once the previous is
/// in the channel; the alert API says what the event says.
async fn live_through(
    fake: &Fake,
    chat: &ChatApi,
    hook_url: &str,
    steps: std::ops::Range<usize>,
    posted: fn(usize) -> usize,
) {
    for step in steps {
        let status = ["Pending", "Acknowledged", "Acknowledged", "Closed"][step];
        fake.set_alert(ALERT_UUID, alert_with(status));
        post_to(hook_url, life_event(step, ALERT_UUID, 0)).await;
        let want = posted(step);
        chat.wait(WAIT, "the event's message", |m| m.len() >= want)
            .await;
    }
}

/// Per destination (Slack's fake keeps `sk`'s messages apart from `mm`'s
/// by channel): exactly one root, three replies under it saying what
/// changed, and a root whose last edit shows the alert closed.
fn assert_one_conversation(chat: &ChatApi, channel: &str, bold: &str) {
    let roots: Vec<_> = chat
        .roots()
        .into_iter()
        .filter(|m| m.channel == channel)
        .collect();
    assert_eq!(roots.len(), 1, "one root: {roots:#?}");
    let root = &roots[0];
    let first = root.versions[0].to_string();
    assert!(
        first.contains("Suspicious PowerShell download cradle"),
        "{first}"
    );
    assert!(
        first.contains("Pending"),
        "the root first shows the alert as created: {first}"
    );
    assert_eq!(
        root.versions.len(),
        4,
        "created, then edited by each of the three later events"
    );
    let last = root.shown();
    assert!(
        last.contains("[Closed] Suspicious PowerShell download cradle"),
        "{last}"
    );
    let replies = chat.replies(&root.id);
    let texts: Vec<String> = replies
        .iter()
        .map(|m| {
            let v = m.current();
            v.get("text")
                .or(v.get("message"))
                .and_then(Value::as_str)
                .unwrap()
                .to_owned()
        })
        .collect();
    let b = |s: &str| format!("{bold}{s}{bold}");
    assert_eq!(
        texts,
        [
            format!("{} Pending → {}", b("Status:"), b("Acknowledged")),
            format!(
                "{}\nIsolated the host, waiting for forensics.",
                b("Comment:")
            ),
            format!("{} Acknowledged → {}", b("Status:"), b("Closed")),
        ],
        "{replies:#?}"
    );
}

#[tokio::test]
async fn an_alerts_life_is_one_thread_in_slack_and_mattermost() {
    let fake = Fake::start().await;
    let chat = ChatApi::start().await;
    let app = spawn_app(&fake, &threaded(&chat, r#"["sk", "mm"]"#, "")).await;
    live_through(&fake, &chat, &app.hook_url(), 0..4, |step| 2 * (step + 1)).await;
    assert_one_conversation(&chat, SLACK_CHANNEL, "*");
    assert_one_conversation(&chat, MM_CHANNEL, "**");

    // Slack: the close is also shown in the channel; each call carries the
    // bot token and the channel; edits name the root.
    let slack_replies = chat.replies(
        &chat
            .roots()
            .iter()
            .find(|m| m.channel == SLACK_CHANNEL)
            .unwrap()
            .id,
    );
    assert_eq!(
        slack_replies
            .iter()
            .map(|m| m.broadcast)
            .collect::<Vec<_>>(),
        [false, false, true]
    );
    let calls = chat.calls();
    for c in calls.iter().filter(|c| c.name.starts_with("chat.")) {
        assert_eq!(
            c.authorization.as_deref(),
            Some(format!("Bearer {SLACK_TOKEN}").as_str())
        );
        assert_eq!(c.body["channel"], SLACK_CHANNEL);
    }
    let root_ts = chat
        .roots()
        .iter()
        .find(|m| m.channel == SLACK_CHANNEL)
        .unwrap()
        .id
        .clone();
    assert!(calls
        .iter()
        .filter(|c| c.name == "chat.update")
        .all(|c| c.body["ts"] == json!(root_ts)));
    // The root keeps its colour bar and blocks when edited.
    let roots = chat.roots();
    let root = roots.iter().find(|m| m.channel == SLACK_CHANNEL).unwrap();
    assert!(
        root.current()["attachments"][0]["blocks"].is_array(),
        "{root:#?}"
    );

    app.stop().await;
}

#[tokio::test]
async fn a_restart_between_events_keeps_the_thread() {
    let fake = Fake::start().await;
    let chat = ChatApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), &threaded(&chat, r#"["sk", "mm"]"#, ""));
    let first = Daemon::spawn(&config).await;
    live_through(&fake, &chat, &first.hook_url(), 0..2, |step| 2 * (step + 1)).await;
    // A clean stop: what was sent is committed (a kill could leave the
    // last delivery to be sent again, as at-least-once allows).
    first.signal(libc::SIGTERM);
    let mut first = first;
    tokio::task::spawn_blocking(move || first.child.wait().unwrap())
        .await
        .unwrap();
    let second = Daemon::spawn(&config).await;
    live_through(&fake, &chat, &second.hook_url(), 2..4, |step| {
        2 * (step + 1)
    })
    .await;
    assert_one_conversation(&chat, SLACK_CHANNEL, "*");
    assert_one_conversation(&chat, MM_CHANNEL, "**");

    // `events show` of the close says which thread it went to.
    let (code, out, _) = cli_off(&["events", "list", "--config", config.to_str().unwrap()]).await;
    assert_eq!(code, 0);
    let last_id = out
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse::<i64>().ok())
        .max()
        .expect("events listed");
    let (code, shown, err) = cli_off(&[
        "events",
        "show",
        &last_id.to_string(),
        "--config",
        config.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    let root = &chat
        .roots()
        .iter()
        .find(|m| m.channel == SLACK_CHANNEL)
        .unwrap()
        .id
        .clone();
    assert!(
        shown.contains(&format!("reply in thread {root} of channel {SLACK_CHANNEL} (also sent to the channel), root edited")),
        "{shown}"
    );
    assert!(!shown.contains(SLACK_TOKEN) && !shown.contains(MM_TOKEN));

    // `preview` reads the spool: this alert has a thread, so another event
    // would be an edit of its root and a reply; another alert's, a root.
    let event = dir.path().join("event.json");
    std::fs::write(&event, life_event(2, ALERT_UUID, 0)).unwrap();
    let preview = |destination: &'static str| {
        let (config, event) = (config.clone(), event.clone());
        async move {
            cli_off(&[
                "preview",
                "--config",
                config.to_str().unwrap(),
                "--event",
                event.to_str().unwrap(),
                "--destination",
                destination,
            ])
            .await
        }
    };
    let (code, out, err) = preview("sk").await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(&format!(
            "-> an edit of root {root} (the alert's current state) and a reply in its thread"
        )),
        "{out}"
    );
    assert!(
        out.contains("/chat.update")
            && out.contains("/chat.postMessage")
            && out.contains("\"thread_ts\""),
        "{out}"
    );
    assert!(
        out.contains("authorization: <redacted>") && !out.contains(SLACK_TOKEN),
        "{out}"
    );
    std::fs::write(
        &event,
        life_event(0, "5696845f-9ecf-4431-9f0f-000000000099", 0),
    )
    .unwrap();
    let (code, out, err) = preview("mm").await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("-> a new root message"), "{out}");
    assert!(
        out.contains("/api/v4/posts") && out.contains(MM_CHANNEL) && !out.contains(MM_TOKEN),
        "{out}"
    );

    // `send-test` posts a plain channel message through the API.
    let before = chat.messages().len();
    let (code, out, err) = cli_off(&[
        "send-test",
        "--config",
        config.to_str().unwrap(),
        "--destination",
        "sk",
    ])
    .await;
    assert_eq!(code, 0, "{out}{err}");
    let messages = chat.messages();
    assert_eq!(messages.len(), before + 1);
    let test = messages.last().unwrap();
    assert!(
        test.thread.is_none() && test.shown().contains("hookrelay test message"),
        "{test:#?}"
    );
}

#[tokio::test]
async fn fifty_alerts_interleaved_keep_each_thread_in_order() {
    let fake = Fake::start().await;
    let chat = ChatApi::start().await;
    let app = spawn_app(&fake, &threaded(&chat, r#"["sk"]"#, "concurrency = 8")).await;
    let alerts: Vec<String> = (0..50)
        .map(|i| format!("5696845f-9ecf-4431-9f0f-{i:012}"))
        .collect();
    // Every alert's created, then every alert's acknowledge, comment and
    // close, as fast as the hook takes them.
    for step in 0..4 {
        for (i, alert) in alerts.iter().enumerate() {
            post_to(&app.hook_url(), life_event(step, alert, i)).await;
        }
    }
    chat.wait(WAIT * 3, "50 roots and 150 replies", |m| m.len() >= 200)
        .await;
    let roots = chat.roots();
    assert_eq!(roots.len(), 50, "one root per alert");
    for root in &roots {
        let replies = chat.replies(&root.id);
        let texts: Vec<String> = replies
            .iter()
            .map(|m| m.current()["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert!(texts[0].contains("*Acknowledged*"), "{texts:?}");
        assert!(texts[1].contains("*Comment:*"), "{texts:?}");
        assert!(texts[2].ends_with("*Closed*"), "{texts:?}");
        assert!(root.shown().contains("[Closed]"), "{root:#?}");
    }
    assert_eq!(chat.messages().len(), 200, "nothing sent twice");
    app.stop().await;
}

#[tokio::test]
async fn slack_errors_rate_limits_and_a_deleted_root() {
    let fake = Fake::start().await;
    let chat = ChatApi::start().await;
    let app = spawn_app(&fake, &threaded(&chat, r#"["sk"]"#, "")).await;
    // A 429 with Retry-After, then Slack's own internal error: waited out
    // and retried; one root in the end.
    chat.script(
        "chat.postMessage",
        [
            Reply::status(429, r#"{"ok":false,"error":"ratelimited"}"#).retry_after("1"),
            Reply::status(200, r#"{"ok":false,"error":"internal_error"}"#),
        ],
    );
    let started = std::time::Instant::now();
    post_to(&app.hook_url(), life_event(0, ALERT_UUID, 0)).await;
    chat.wait(WAIT, "the root", |m| m.len() == 1).await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "Retry-After honoured"
    );
    let first_root = chat.roots()[0].id.clone();

    // Someone deletes the root: the next event posts a new one, and the
    // one after that threads under the new root.
    chat.delete(&first_root);
    fake.set_alert(ALERT_UUID, alert_with("Acknowledged"));
    post_to(&app.hook_url(), life_event(1, ALERT_UUID, 0)).await;
    chat.wait(WAIT, "a new root", |m| {
        m.iter().filter(|m| !m.deleted).count() == 1
    })
    .await;
    post_to(&app.hook_url(), life_event(2, ALERT_UUID, 0)).await;
    chat.wait(WAIT, "a reply", |m| m.len() == 3).await;
    let live: Vec<_> = chat.roots().into_iter().filter(|m| !m.deleted).collect();
    assert_eq!(live.len(), 1);
    assert_ne!(live[0].id, first_root);
    assert!(
        live[0].versions[0].to_string().contains("Acknowledged"),
        "the new root shows the current state"
    );
    let replies = chat.replies(&live[0].id);
    assert_eq!(replies.len(), 1);
    assert!(replies[0].current()["text"]
        .as_str()
        .unwrap()
        .starts_with("*Comment:*"));
    app.stop().await;
}

#[tokio::test]
async fn refusals_are_dead_letters_with_slacks_error_and_never_the_token() {
    let fake = Fake::start().await;
    let chat = ChatApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let wrong_token = "xoxb-9999-revoked-secret-token";
    let extra = format!(
        r#"
[destinations.badtoken]
kind = "slack"
token = "{wrong_token}"
channel = "{SLACK_CHANNEL}"
api_url = "{api}"
[destinations.nochannel]
kind = "slack"
token = "{SLACK_TOKEN}"
channel = "C0DOESNOTEXIST"
api_url = "{api}"
[destinations.garbage]
kind = "slack"
token = "{SLACK_TOKEN}"
channel = "{SLACK_CHANNEL}"
api_url = "{garbage}"
[destinations.mmbad]
kind = "mattermost"
server_url = "{mm}"
token = "wrong-mattermost-token-secret"
channel_id = "{MM_CHANNEL}"
[[routes]]
name = "soc"
to = ["badtoken", "nochannel", "garbage", "mmbad"]
"#,
        api = chat.slack_api(),
        mm = chat.mattermost_server(),
        garbage = fake.url("/garbage"),
    );
    // An answer that is not JSON, then one without a ts: retried until
    // max_age, then a dead letter — never a thread keyed on garbage.
    fake.always(
        "/garbage/chat.postMessage",
        Reply::status(200, r#"{"ok":true}"#),
    );
    fake.script(
        "/garbage/chat.postMessage",
        [Reply::status(200, "<html>gateway</html>")],
    );
    let config = write_config(&fake, dir.path(), &format!("{extra}\n"));
    edit_config(
        &config,
        "max_backoff = \"200ms\"",
        "max_backoff = \"200ms\"\nmax_age = \"2s\"",
    );
    let daemon = Daemon::spawn(&config).await;
    post_to(&daemon.hook_url(), life_event(0, ALERT_UUID, 0)).await;

    let deadline = tokio::time::Instant::now() + WAIT;
    let listing = loop {
        let (code, out, err) =
            cli_off(&["dead-letters", "list", "--config", config.to_str().unwrap()]).await;
        assert_eq!(code, 0, "{err}");
        if ["badtoken", "nochannel", "garbage", "mmbad"]
            .iter()
            .all(|d| out.contains(d))
        {
            break out;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "dead letters: {out}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(listing.contains("Slack: invalid_auth"), "{listing}");
    assert!(listing.contains("Slack: channel_not_found"), "{listing}");
    assert!(
        listing.contains("Slack's answer has no channel or ts"),
        "{listing}"
    );
    assert!(listing.contains("Mattermost: HTTP 401"), "{listing}");
    assert!(chat.messages().is_empty(), "{:#?}", chat.messages());
    let metrics = daemon.metrics().await;
    for (what, text) in [
        ("dead letters", &listing),
        ("logs", &daemon.logs()),
        ("metrics", &metrics),
    ] {
        for secret in [
            wrong_token,
            SLACK_TOKEN,
            MM_TOKEN,
            "wrong-mattermost-token-secret",
        ] {
            assert!(!text.contains(secret), "a token in the {what}");
        }
    }
}

#[tokio::test]
async fn two_replicas_taking_alternate_events_keep_one_thread() {
    let Some(server) = pg::server() else {
        return;
    };
    let fake = Fake::start().await;
    let chat = ChatApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), &threaded(&chat, r#"["sk", "mm"]"#, ""));
    use_postgres(&config, &server.database().await, "15s");
    let replicas = Arc::new([Daemon::spawn(&config).await, Daemon::spawn(&config).await]);
    for step in 0..4 {
        let status = ["Pending", "Acknowledged", "Acknowledged", "Closed"][step];
        fake.set_alert(ALERT_UUID, alert_with(status));
        post_to(
            &replicas[step % 2].hook_url(),
            life_event(step, ALERT_UUID, 0),
        )
        .await;
        chat.wait(WAIT, "the event's message", |m| m.len() >= 2 * (step + 1))
            .await;
    }
    assert_one_conversation(&chat, SLACK_CHANNEL, "*");
    assert_one_conversation(&chat, MM_CHANNEL, "**");
}

/// Events sent to both replicas at once, without waiting: each thread
/// still gets its messages in the order the events were accepted.
#[tokio::test]
async fn two_replicas_keep_interleaved_threads_in_order() {
    let Some(server) = pg::server() else {
        return;
    };
    let fake = Fake::start().await;
    let chat = ChatApi::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), &threaded(&chat, r#"["sk"]"#, ""));
    use_postgres(&config, &server.database().await, "15s");
    let replicas = [Daemon::spawn(&config).await, Daemon::spawn(&config).await];
    let alerts: Vec<String> = (0..10)
        .map(|i| format!("5696845f-9ecf-4431-9f0f-{i:012}"))
        .collect();
    let mut n = 0;
    for step in 0..4 {
        for (i, alert) in alerts.iter().enumerate() {
            post_to(&replicas[n % 2].hook_url(), life_event(step, alert, i)).await;
            n += 1;
        }
    }
    chat.wait(WAIT * 2, "10 roots and 30 replies", |m| m.len() >= 40)
        .await;
    assert_eq!(chat.roots().len(), 10);
    for root in chat.roots() {
        let texts: Vec<String> = chat
            .replies(&root.id)
            .iter()
            .map(|m| m.current()["text"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(texts.len(), 3, "{texts:?}");
        assert!(
            texts[0].contains("*Acknowledged*")
                && texts[1].contains("*Comment:*")
                && texts[2].ends_with("*Closed*"),
            "{texts:?}"
        );
    }
    let _ = chat::SLACK_TOKEN;
}

/// Over `max_per_minute` with `digest = true`, held alerts go out as one
/// plain channel message (not in any thread); the first alert's root is
/// posted as usual.
#[tokio::test]
async fn digests_are_plain_channel_messages_in_api_mode() {
    let fake = Fake::start().await;
    let chat = ChatApi::start().await;
    let app = spawn_app(
        &fake,
        &threaded(
            &chat,
            r#"["sk"]"#,
            "max_per_minute = 1\ndigest = true\ndigest_interval = \"500ms\"",
        ),
    )
    .await;
    for i in 0..3 {
        post_to(
            &app.hook_url(),
            life_event(0, &format!("5696845f-9ecf-4431-9f0f-{i:012}"), i),
        )
        .await;
    }
    chat.wait(WAIT, "a root and a digest", |m| m.len() >= 2)
        .await;
    let messages = chat.messages();
    assert!(messages.iter().all(|m| m.thread.is_none()), "{messages:#?}");
    let digest = messages
        .iter()
        .find(|m| m.shown().contains("more alerts in the last"))
        .expect("a digest");
    assert!(digest.shown().contains("2 more alerts"), "{digest:#?}");
    app.stop().await;
}

/// Templates and replay in API mode: the operator's template makes the
/// root; a root Slack refused (a dead letter) goes out as the alert's root
/// once replayed, and the alert's next event threads under it.
#[tokio::test]
async fn templates_and_replay_work_in_api_mode() {
    let fake = Fake::start().await;
    let chat = ChatApi::start().await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    std::fs::write(
        dir.path().join("root.json"),
        r#"{"text": {{ "SOC: " ~ message.headline ~ " is " ~ alert.status.name }}}"#,
    )
    .unwrap();
    let extra = threaded(
        &chat,
        r#"["sk"]"#,
        &format!("template = \"{}\"", dir.path().join("root.json").display()),
    );
    let config = write_config(&fake, dir.path(), &extra);
    let app = spawn_app_in(&fake, &extra, dir.clone()).await;
    chat.script(
        "chat.postMessage",
        [Reply::status(
            200,
            r#"{"ok":false,"error":"invalid_blocks"}"#,
        )],
    );
    post_to(&app.hook_url(), life_event(0, ALERT_UUID, 0)).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, out, _) =
            cli_off(&["dead-letters", "list", "--config", config.to_str().unwrap()]).await;
        if out.contains("Slack: invalid_blocks") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{out}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(chat.messages().is_empty());
    let (code, _, err) = cli_off(&[
        "dead-letters",
        "replay",
        "--all",
        "--config",
        config.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, 0, "{err}");
    chat.wait(WAIT, "the replayed root", |m| m.len() == 1).await;
    let root = chat.roots()[0].clone();
    assert_eq!(
        root.current()["text"],
        "SOC: Suspicious PowerShell download cradle is Pending"
    );
    fake.set_alert(ALERT_UUID, alert_with("Acknowledged"));
    post_to(&app.hook_url(), life_event(1, ALERT_UUID, 0)).await;
    chat.wait(WAIT, "a reply", |m| m.len() == 2).await;
    assert_eq!(chat.replies(&root.id).len(), 1);
    assert_eq!(
        chat.roots()[0].current()["text"],
        "SOC: Suspicious PowerShell download cradle is Acknowledged"
    );
    app.stop().await;
}
