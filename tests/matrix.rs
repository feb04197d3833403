//! The `matrix` destination against a real homeserver: Synapse on loopback
//! (`common::synapse`; skipped loudly when it is not installed, required
//! under `scripts/test.sh`). Each test registers a bot and a reader, the
//! bot creates a room of the server's default version (12: an id without a
//! server part) and the reader joins; what the relay sends is read back as
//! the reader sees it (`/rooms/{id}/messages`, `/notifications`, `/sync`).

mod common;

use common::synapse::{self, Answer, LossyProxy, Synapse, User};
use common::*;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(30);
/// The reader's display name, which alert text names in one test.
const READER_NAME: &str = "Riley Reader";

/// A room with the relay's bot and a reader in it.
struct Room {
    hs: &'static Synapse,
    bot: User,
    reader: User,
    id: String,
}

/// A fresh room on the shared server, or `None` when there is no Synapse
/// (the test is then skipped; `server` said why).
async fn room() -> Option<Room> {
    let hs = synapse::server_async().await?;
    let bot = hs.register("relay", "hookrelay").await;
    let reader = hs.register("reader", READER_NAME).await;
    let id = hs.create_room(&bot, &[&reader]).await;
    hs.join(&reader, &id).await;
    Some(Room {
        hs,
        bot,
        reader,
        id,
    })
}

/// A `matrix` destination `name` posting to `room` as `token` through
/// `homeserver`; `more` adds keys.
fn destination(name: &str, homeserver: &str, room: &str, token: &str, more: &str) -> String {
    format!(
        "[destinations.{name}]\nkind = \"matrix\"\nhomeserver = \"{homeserver}\"\nroom_id = \"{room}\"\naccess_token = \"{token}\"\n{more}\n"
    )
}

fn route_to(dests: &[&str]) -> String {
    format!("[[routes]]\nname = \"matrix\"\nto = {dests:?}\n")
}

fn text(path: &str) -> String {
    String::from_utf8(fixture(path)).unwrap()
}

/// Polls a daemon's metrics until `name{parts}` reaches `want`.
async fn wait_daemon_metric(d: &Daemon, name: &str, parts: &[&str], want: f64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = metric(&d.metrics().await, name, parts);
        if got >= want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}{parts:?} = {got}, wanted {want}; logs:\n{}",
            d.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Runs the CLI off the runtime's threads.
async fn cli_async(args: Vec<String>) -> (i32, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cli(&args)
    })
    .await
    .unwrap()
}

fn sent_by<'a>(messages: &'a [Value], user: &User) -> Vec<&'a Value> {
    messages
        .iter()
        .filter(|m| m["sender"] == user.user_id.as_str())
        .collect()
}

/// Created, updated, comment and a hostile alert, in a room of the current
/// default version (whose id `check` used to refuse): each arrives once,
/// as rendered, with an empty `m.mentions`, and hostile markup arrives as
/// text.
#[tokio::test]
async fn created_updated_comment_and_hostile_alerts_arrive_in_a_current_room() {
    let Some(r) = room().await else { return };
    assert_eq!(r.hs.room_version(&r.bot, &r.id).await, "12");
    assert!(
        !r.id.contains(':'),
        "a version 12 room id has no server part: {}",
        r.id
    );
    let fake = Fake::start().await;
    const HOSTILE: &str = "0b5a0b8e-58f5-4bd1-9e0a-3c8b1b0f4d11";
    let mut hostile = fixture_json("alert-hostile.json");
    hostile["uuid"] = HOSTILE.into();
    fake.set_alert(HOSTILE, hostile);
    let extra = destination("mx", &r.hs.url, &r.id, &r.bot.token, "") + &route_to(&["mx"]);
    let app = spawn_app(&fake, &extra).await;
    let events = [
        (
            text("event-alert-created.json"),
            "Suspicious PowerShell download cradle",
        ),
        (text("event-alert-updated-status.json"), "Acknowledged"),
        (
            text("event-alert-comment-created.json"),
            "Isolated the host",
        ),
        (unique_event(1, HOSTILE), "URGENT"),
    ];
    for (i, (body, expect)) in events.iter().enumerate() {
        assert_eq!(app.post(body.clone()).await.0, 202, "event {i}");
        let got =
            r.hs.wait_messages(&r.reader, &r.id, WAIT, |m| m.len() > i)
                .await;
        assert_eq!(got.len(), i + 1, "one message per event: {got:#?}");
        let m = &got[i];
        assert_eq!(m["sender"], r.bot.user_id.as_str());
        let c = &m["content"];
        assert_eq!(c["msgtype"], "m.text");
        assert_eq!(c["format"], "org.matrix.custom.html");
        assert_eq!(c["m.mentions"], json!({}), "{c}");
        let body = c["body"].as_str().unwrap();
        assert!(body.contains(expect), "event {i}: {expect:?} in {body}");
        let html = c["formatted_body"].as_str().unwrap();
        assert_eq!(
            html.matches("<a ").count(),
            1,
            "the alert link only: {html}"
        );
        assert!(
            html.contains("<a href=\"https://app.sekoia.io/operations/alerts/"),
            "{html}"
        );
    }
    let hostile = r.hs.messages(&r.reader, &r.id).await[3]["content"].clone();
    let html = hostile["formatted_body"].as_str().unwrap();
    assert!(
        html.contains("&lt;https://evil.example|login&gt;") && !html.contains("<https"),
        "markup arrives as text: {html}"
    );
    for text in [html, hostile["body"].as_str().unwrap()] {
        assert!(
            !text.contains("@all") && !text.contains("@here") && !text.contains("@room"),
            "{text}"
        );
    }
    app.stop().await;
}

/// An alert whose title holds the reader's display name, user id and
/// "@room" highlights nobody (the legacy push rules would have); the
/// operator's own mention, on a `mention = true` route, does.
#[tokio::test]
async fn alert_text_naming_a_member_highlights_nobody_and_a_mention_does() {
    let Some(r) = room().await else { return };
    let fake = Fake::start().await;
    let mut alert = fixture_json("alert-full.json");
    alert["title"] = format!(
        "escalate to {READER_NAME} and {}: login by {} @room",
        r.reader
            .user_id
            .trim_start_matches('@')
            .split(':')
            .next()
            .unwrap(),
        r.reader.user_id
    )
    .into();
    fake.set_alert(ALERT_UUID, alert);
    let mentions = format!("mentions = [\"{}\"]", r.reader.user_id);
    let extra = destination("mx", &r.hs.url, &r.id, &r.bot.token, "")
        + &destination("mx-page", &r.hs.url, &r.id, &r.bot.token, &mentions)
        + "[[routes]]\nname = \"quiet\"\nto = [\"mx\"]\n[routes.when]\ntype = [\"alert\"]\n"
        + "[[routes]]\nname = \"page\"\nto = [\"mx-page\"]\nmention = true\n[routes.when]\ntype = [\"alert-comment\"]\n";
    let app = spawn_app(&fake, &extra).await;
    assert_eq!(app.post(text("event-alert-created.json")).await.0, 202);
    let got =
        r.hs.wait_messages(&r.reader, &r.id, WAIT, |m| !m.is_empty())
            .await;
    let named = got[0]["event_id"].as_str().unwrap().to_owned();
    assert!(
        got[0]["content"]["body"]
            .as_str()
            .unwrap()
            .contains(READER_NAME),
        "the title reached the room: {}",
        got[0]["content"]
    );
    let of_named = notification(r.hs, &r.reader, &named).await;
    assert!(
        !synapse::highlights(&of_named),
        "alert text highlighted the reader: {of_named:#}"
    );
    let unread = unread_after(r.hs, &r.reader, &r.id, 1).await;
    assert_eq!(
        unread["highlight_count"], 0,
        "alert text highlighted the reader: {unread}"
    );
    // The operator's mention does highlight.
    assert_eq!(
        app.post(text("event-alert-comment-created.json")).await.0,
        202
    );
    let got =
        r.hs.wait_messages(&r.reader, &r.id, WAIT, |m| m.len() >= 2)
            .await;
    let paged = got[1]["event_id"].as_str().unwrap().to_owned();
    assert_eq!(
        got[1]["content"]["m.mentions"],
        json!({"user_ids": [r.reader.user_id]})
    );
    let of_paged = notification(r.hs, &r.reader, &paged).await;
    assert!(
        synapse::highlights(&of_paged),
        "the operator's mention highlights: {of_paged:#}"
    );
    let unread = unread_after(r.hs, &r.reader, &r.id, 2).await;
    assert_eq!(unread["highlight_count"], 1, "{unread}");
    app.stop().await;
}

/// The room's unread counts in `user`'s `/sync` once they count `n`
/// notifications (every message notifies in a room of two; Synapse updates
/// the counts shortly after the events, so they are polled).
async fn unread_after(hs: &Synapse, user: &User, room: &str, n: u64) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let unread = hs.unread(user, room).await;
        if unread["notification_count"].as_u64() >= Some(n) {
            return unread;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "unread counts: {unread}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `user`'s notification for `event_id` (push actions are computed as the
/// event is stored: polled until it is listed).
async fn notification(hs: &Synapse, user: &User, event_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let n = hs.notifications(user).await;
        if let Some(x) = n.iter().find(|x| x["event"]["event_id"] == event_id) {
            return x.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no notification for {event_id}: {n:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The first answer is lost on its way back (the event landed): the retry
/// reuses the transaction id and Synapse answers with the same event, so
/// the room has it once.
#[tokio::test]
async fn a_lost_answer_is_retried_without_a_duplicate() {
    let Some(r) = room().await else { return };
    let proxy = LossyProxy::start(r.hs.addr).await;
    proxy.script(&[Answer::Drop]);
    let fake = Fake::start().await;
    let extra = destination("mx", &proxy.url(), &r.id, &r.bot.token, "") + &route_to(&["mx"]);
    let app = spawn_app(&fake, &extra).await;
    assert_eq!(app.post(text("event-alert-created.json")).await.0, 202);
    let lost = proxy.wait_lost(1, WAIT).await;
    let landed = synapse::event_id_of(&lost[0])
        .unwrap_or_else(|| panic!("Synapse answered with an event id: {:?}", lost[0]));
    wait_metric(
        &app,
        "hookrelay_deliveries_total",
        &["destination=\"mx\"", "outcome=\"delivered\""],
        1.0,
        WAIT,
    )
    .await;
    let m = app.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hookrelay_deliveries_total",
            &["destination=\"mx\"", "outcome=\"retry\""]
        ),
        1.0
    );
    let got = r.hs.messages(&r.reader, &r.id).await;
    let ours = sent_by(&got, &r.bot);
    assert_eq!(ours.len(), 1, "{got:#?}");
    assert_eq!(ours[0]["event_id"], landed.as_str());
    app.stop().await;
}

/// The relay dies while the answer is on its way (the event landed); the
/// next start sends the delivery again with the same transaction id and
/// the room still has it once.
#[tokio::test]
async fn a_restart_after_a_lost_answer_sends_no_duplicate() {
    let Some(r) = room().await else { return };
    let proxy = LossyProxy::start(r.hs.addr).await;
    proxy.script(&[Answer::Hold]);
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &fake,
        dir.path(),
        &(destination("mx", &proxy.url(), &r.id, &r.bot.token, "") + &route_to(&["mx"])),
    );
    let mut first = Daemon::spawn(&config).await;
    assert_eq!(first.post_unique(1).await, 202);
    let lost = proxy.wait_lost(1, WAIT).await;
    let landed = synapse::event_id_of(&lost[0])
        .unwrap_or_else(|| panic!("Synapse answered with an event id: {:?}", lost[0]));
    first.kill9();
    let second = Daemon::spawn(&config).await;
    wait_daemon_metric(
        &second,
        "hookrelay_deliveries_total",
        &["destination=\"mx\"", "outcome=\"delivered\""],
        1.0,
    )
    .await;
    let got = r.hs.messages(&r.reader, &r.id).await;
    let ours = sent_by(&got, &r.bot);
    assert_eq!(ours.len(), 1, "{got:#?}");
    assert_eq!(ours[0]["event_id"], landed.as_str());
}

/// A token the homeserver does not know (401 `M_UNKNOWN_TOKEN`) and a bot
/// that is not in the room (403 `M_FORBIDDEN`) are dead letters with
/// Synapse's reason and no token anywhere; once the bot has joined, a
/// replay delivers the message once.
#[tokio::test]
async fn bad_token_and_not_in_room_are_dead_letters_and_a_replay_after_joining_delivers_once() {
    let Some(r) = room().await else { return };
    let outsider = r.hs.register("outsider", "hookrelay outsider").await;
    const BAD_TOKEN: &str = "syt_bm90X2FfdG9rZW4_NotARealTokenAtAll_0xyz";
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &fake,
        dir.path(),
        &(destination("mx-bad", &r.hs.url, &r.id, BAD_TOKEN, "")
            + &destination("mx-out", &r.hs.url, &r.id, &outsider.token, "")
            + &route_to(&["mx-bad", "mx-out"])),
    );
    let config_arg = config.to_str().unwrap().to_owned();
    let daemon = Daemon::spawn(&config).await;
    assert_eq!(daemon.post_unique(1).await, 202);
    wait_daemon_metric(
        &daemon,
        "hookrelay_deliveries_total",
        &["outcome=\"dead\""],
        2.0,
    )
    .await;
    let (code, listed, _) = cli_async(
        ["dead-letters", "list", "--config", &config_arg]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert_eq!(code, 0, "{listed}");
    let line = |dest: &str| {
        listed
            .lines()
            .find(|l| l.contains(dest))
            .unwrap_or_else(|| panic!("no dead letter for {dest}: {listed}"))
            .to_owned()
    };
    assert!(
        line("mx-bad").contains("HTTP 401") && line("mx-bad").contains("M_UNKNOWN_TOKEN"),
        "{listed}"
    );
    assert!(
        line("mx-out").contains("HTTP 403") && line("mx-out").contains("M_FORBIDDEN"),
        "{listed}"
    );
    // The bot joins; its dead letter is replayed.
    r.hs.invite(&r.bot, &r.id, &outsider).await;
    r.hs.join(&outsider, &r.id).await;
    let (code, out, err) = cli_async(
        [
            "dead-letters",
            "replay",
            "--all",
            "--destination",
            "mx-out",
            "--config",
            &config_arg,
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("re-queued 1"), "{out}");
    wait_daemon_metric(
        &daemon,
        "hookrelay_deliveries_total",
        &["destination=\"mx-out\"", "outcome=\"delivered\""],
        1.0,
    )
    .await;
    let got = r.hs.messages(&r.reader, &r.id).await;
    assert_eq!(sent_by(&got, &outsider).len(), 1, "{got:#?}");
    let m = daemon.metrics().await;
    for text in [daemon.logs(), listed, m] {
        for token in [BAD_TOKEN, &outsider.token, &r.bot.token] {
            assert!(!text.contains(token), "a token leaked: {text}");
        }
    }
}

/// Every answer is lost until `delivery.max_age` makes the delivery a dead
/// letter, although its event landed at the first attempt. Replaying it
/// reuses the delivery's transaction id: Synapse recognises the message
/// and the room still has it once.
#[tokio::test]
async fn a_replayed_dead_letter_whose_message_landed_is_not_posted_again() {
    let Some(r) = room().await else { return };
    let proxy = LossyProxy::start(r.hs.addr).await;
    proxy.set_default(Answer::Drop);
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &fake,
        dir.path(),
        &(destination("mx", &proxy.url(), &r.id, &r.bot.token, "") + &route_to(&["mx"])),
    );
    let daemon = tokio::task::spawn_blocking({
        let config = config.clone();
        move || Daemon::start_with_env(&config, &[("HOOKRELAY_DELIVERY__MAX_AGE", "2s")])
    })
    .await
    .unwrap();
    assert_eq!(daemon.post_unique(1).await, 202);
    wait_daemon_metric(
        &daemon,
        "hookrelay_deliveries_total",
        &["destination=\"mx\"", "outcome=\"dead\""],
        1.0,
    )
    .await;
    let lost = proxy.lost.lock().unwrap().clone();
    assert!(lost.len() >= 2, "{} answers lost", lost.len());
    let landed = synapse::event_id_of(&lost[0])
        .unwrap_or_else(|| panic!("Synapse answered with an event id: {:?}", lost[0]));
    for answer in &lost {
        assert_eq!(
            synapse::event_id_of(answer).as_deref(),
            Some(landed.as_str()),
            "every retry was the same message"
        );
    }
    proxy.set_default(Answer::Forward);
    let (code, out, err) = cli_async(
        [
            "dead-letters",
            "replay",
            "--all",
            "--config",
            config.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec(),
    )
    .await;
    assert_eq!(code, 0, "{out}{err}");
    wait_daemon_metric(
        &daemon,
        "hookrelay_deliveries_total",
        &["destination=\"mx\"", "outcome=\"delivered\""],
        1.0,
    )
    .await;
    let got = r.hs.messages(&r.reader, &r.id).await;
    let ours = sent_by(&got, &r.bot);
    assert_eq!(
        ours.len(),
        1,
        "the replay posted the message again: {got:#?}"
    );
    assert_eq!(ours[0]["event_id"], landed.as_str());
}
