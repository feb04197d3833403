//! Acting on an alert from the chat: the action links in a rendered card
//! lead to a confirmation page (a GET changes nothing), whose form
//! performs exactly one status change on the (fake) Sekoia.io API; forged,
//! expired, replayed and foreign links are refused with no API call;
//! Sekoia's refusals and outages are said as such; Slack's signed button
//! clicks act in one click and say so in the alert's thread.

mod common;

use common::chat::{ChatApi, SLACK_CHANNEL, SLACK_TOKEN};
use common::*;
use hookrelay::action_link::{sign, tag, Link};
use hookrelay::config::ActionKind;
use serde_json::{json, Value};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "an-actions-secret-of-at-least-32-bytes!!";
const PUBLIC: &str = "https://relay.example.org";
const WORKFLOW: &str = "/api/v1/sic/alerts/5696845f-9ecf-4431-9f0f-48ee0ee2eff1/workflow";
const SIGNING: &str = "8f742231b10e8888abcd99yyyzzz85a5";

fn actions_config(extra: &str) -> String {
    format!(
        "[actions]\npublic_url = \"{PUBLIC}\"\nsecret = \"{SECRET}\"\nbuttons = [\"acknowledge\", \"close\"]\n{extra}\n[[routes]]\nname = \"all\"\nto = [\"teams\"]\n"
    )
}

/// The action URLs of the Teams card for the fixture alert, by button
/// title, pointed at the test daemon instead of the public name.
async fn card_actions(app: &TestApp, fake: &Fake) -> Vec<(String, String)> {
    let (status, _) = app.post(fixture("event-alert-created.json")).await;
    assert_eq!(status, 202);
    let card = fake.wait_for("/teams", 1, WAIT).await[0].json();
    card["attachments"][0]["content"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["url"].as_str().unwrap().starts_with(PUBLIC))
        .map(|a| {
            (
                a["title"].as_str().unwrap().to_owned(),
                a["url"]
                    .as_str()
                    .unwrap()
                    .replace(PUBLIC, &format!("http://{}", app.addr)),
            )
        })
        .collect()
}

fn patches(fake: &Fake) -> Vec<Received> {
    fake.received(WORKFLOW)
}

/// The hidden CSRF field of a confirmation page.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_cards_action_link_shows_the_alert_then_changes_it_once() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, &actions_config("")).await;
    let actions = card_actions(&app, &fake).await;
    let titles: Vec<&str> = actions.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(titles, ["Acknowledge", "Close"]);
    let ack = &actions[0].1;
    assert!(!ack.contains(SECRET) && !ack.contains("teams"), "{ack}");

    // GET: the alert as it is now, a form; nothing changed.
    let client = reqwest::Client::new();
    let page = client.get(ack).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let h = page.headers().clone();
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .starts_with("default-src 'none'"));
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let html = page.text().await.unwrap();
    assert!(html.contains("Acknowledge alert ALEY4fqz8moo?"), "{html}");
    assert!(
        html.contains("Suspicious PowerShell download cradle")
            && html.contains("Pending")
            && html.contains("Major (63)")
    );
    assert!(!html.contains("<script"), "no script at all");
    assert!(patches(&fake).is_empty(), "a GET never changes anything");

    // POST: exactly one PATCH with Sekoia's status uuid and the comment.
    let csrf = csrf_of(&html);
    let form = [("csrf", csrf.as_str()), ("comment", "Isolated the host")];
    let done = client.post(ack).form(&form).send().await.unwrap();
    assert_eq!(done.status(), 200);
    let html = done.text().await.unwrap();
    assert!(html.contains("is now Acknowledged"), "{html}");
    let sent = patches(&fake);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "PATCH");
    assert_eq!(
        sent[0].json(),
        json!({"action_uuid": "8f206505-af6d-433e-93f4-775d46dc7d0f", "comment": "Isolated the host (via hookrelay)"})
    );
    assert_eq!(
        sent[0].headers["authorization"],
        format!("Bearer {API_KEY}")
    );

    // The same form again: refused, nothing sent.
    let again = client.post(ack).form(&form).send().await.unwrap();
    assert_eq!(again.status(), 403);
    assert_eq!(patches(&fake).len(), 1);
    // The link again: the alert already is Acknowledged; nothing to send.
    let html = client.get(ack).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Already Acknowledged"), "{html}");
    assert_eq!(patches(&fake).len(), 1);

    let metrics = app.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "hookrelay_actions_total",
            &["action=\"acknowledge\"", "result=\"done\""]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "hookrelay_actions_total",
            &["result=\"replayed\""]
        ),
        1.0
    );
    app.stop().await;
}

#[tokio::test]
async fn forged_expired_foreign_and_garbage_links_are_refused_without_an_api_call() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, &actions_config("")).await;
    let actions = card_actions(&app, &fake).await;
    let ack = actions[0].1.clone();
    let base = format!("http://{}/actions/", app.addr);
    let client = reqwest::Client::new();
    let before = fake.received("/api/v1/sic/alerts/").len();
    let secret = SECRET.as_bytes();
    let alert = uuid::Uuid::parse_str(ALERT_UUID).unwrap();
    let link = |destination: &str, expires: u64| Link {
        alert,
        action: ActionKind::Close,
        destination: tag(secret, "destination", destination),
        origin: tag(secret, "origin", "sekoia"),
        expires,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = ack.rsplit('/').next().unwrap();
    let mut tampered = token.to_owned().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    let cases = [
        (String::from_utf8(tampered).unwrap(), 403),
        (sign(secret, &link("teams", now - 1)), 410),
        // Signed right, for a destination this relay does not have.
        (sign(secret, &link("elsewhere", now + 600)), 403),
        // Another relay's secret.
        (
            sign(
                b"some-other-relay-secret-of-32-bytes!!!!",
                &link("teams", now + 600),
            ),
            403,
        ),
        ("x".repeat(500), 403),
        ("%00%3Cscript%3E".into(), 403),
    ];
    for (token, want) in &cases {
        for post in [false, true] {
            let url = format!("{base}{token}");
            let r = if post {
                client
                    .post(&url)
                    .form(&[("csrf", "x")])
                    .send()
                    .await
                    .unwrap()
            } else {
                client.get(&url).send().await.unwrap()
            };
            assert_eq!(r.status().as_u16(), *want, "{token} (post: {post})");
            assert!(r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"));
        }
    }
    // A valid link with a missing or wrong CSRF token.
    for form in [
        vec![],
        vec![("csrf", "garbage")],
        vec![(
            "csrf",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        )],
    ] {
        let r = client.post(&ack).form(&form).send().await.unwrap();
        assert_eq!(r.status(), 403, "{form:?}");
    }
    assert_eq!(
        fake.received("/api/v1/sic/alerts/").len(),
        before,
        "no call to the alert API"
    );
    app.stop().await;

    // Without [actions], the paths do not exist.
    let plain = spawn_app(&fake, ROUTE_ALL).await;
    let r = client
        .get(format!("http://{}/actions/{token}", plain.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    plain.stop().await;
}

#[tokio::test]
async fn sekoias_refusal_and_outage_are_said_as_such_and_recorded() {
    let fake = Fake::start().await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let extra = actions_config("");
    let config = write_config(&fake, dir.path(), &extra);
    let app = spawn_app_in(&fake, &extra, dir.clone()).await;
    let actions = card_actions(&app, &fake).await;
    let close = &actions[1].1;
    let client = reqwest::Client::new();
    let attempt = |reply: Reply| {
        let (fake, client, close) = (fake.clone(), client.clone(), close.clone());
        async move {
            fake.script(WORKFLOW, [reply]);
            let html = client
                .get(&close)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let r = client
                .post(&close)
                .form(&[("csrf", csrf_of(&html))])
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (status, html) = attempt(Reply::status(
        400,
        r#"{"message": "Transition from Pending to Closed is not allowed"}"#,
    ))
    .await;
    assert_eq!(status, 409);
    assert!(
        html.contains("Transition from Pending to Closed is not allowed"),
        "{html}"
    );
    let (status, html) = attempt(Reply::status(503, "unavailable")).await;
    assert_eq!(status, 502);
    assert!(html.contains("Nothing was changed"), "{html}");

    // The history of the alert's event says who tried what, and how it went.
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        cli(&["events", "show", "1", "--config", config.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("close by 127.0.0.1 via teams → refused (HTTP 400: Transition from Pending to Closed is not allowed)"), "{out}");
    assert!(
        out.contains("close by 127.0.0.1 via teams → failed"),
        "{out}"
    );
    app.stop().await;
}

#[tokio::test]
async fn hostile_alert_text_is_inert_on_the_page() {
    let fake = Fake::start().await;
    fake.set_alert(ALERT_UUID, {
        let mut a = fixture_json("alert-hostile.json");
        a["uuid"] = json!(ALERT_UUID);
        a
    });
    let app = spawn_app(&fake, &actions_config("")).await;
    let actions = card_actions(&app, &fake).await;
    let html = reqwest::get(&actions[0].1)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "{html}"
    );
    assert!(html.contains("&lt;"), "the text is shown, escaped: {html}");
    app.stop().await;
}

#[tokio::test]
async fn a_flood_of_requests_is_rate_limited_per_address() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, &actions_config("")).await;
    let url = format!("http://{}/actions/{}", app.addr, "x".repeat(40));
    let client = reqwest::Client::new();
    let mut codes = Vec::new();
    for _ in 0..40 {
        codes.push(client.post(&url).send().await.unwrap().status().as_u16());
    }
    assert!(codes.iter().all(|c| *c == 403 || *c == 429), "{codes:?}");
    // Garbage is refused before it counts; a real link is limited.
    let actions = card_actions(&app, &fake).await;
    let mut limited = 0;
    for _ in 0..40 {
        if client.get(&actions[0].1).send().await.unwrap().status() == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 10, "{limited}");
    // Hooks are not affected.
    let (status, _) = app.post(unique_event(7, ALERT_UUID)).await;
    assert_eq!(status, 202);
    app.stop().await;
}

/// Slack's request signature over `v0:{ts}:{body}`.
fn slack_sign(secret: &str, ts: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

#[tokio::test]
async fn one_click_in_slack_changes_the_alert_and_says_so_in_its_thread() {
    let fake = Fake::start().await;
    let chat = ChatApi::start().await;
    let extra = format!(
        "[actions]\npublic_url = \"{PUBLIC}\"\nsecret = \"{SECRET}\"\n[destinations.sk]\nkind = \"slack\"\ntoken = \"{SLACK_TOKEN}\"\nchannel = \"{SLACK_CHANNEL}\"\napi_url = \"{}\"\nsigning_secret = \"{SIGNING}\"\n[[routes]]\nname = \"all\"\nto = [\"sk\"]\n",
        chat.slack_api()
    );
    let app = spawn_app(&fake, &extra).await;
    let (status, _) = app.post(fixture("event-alert-created.json")).await;
    assert_eq!(status, 202);
    chat.wait(WAIT, "the root", |m| m.len() == 1).await;
    let root = chat.roots()[0].clone();
    let buttons = root.current()["attachments"][0]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "actions")
        .unwrap()["elements"]
        .clone();
    let ack = buttons
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["action_id"] == "hookrelay_acknowledge")
        .expect("an interactive button");
    assert!(ack.get("url").is_none(), "interactive: no link");
    let token = ack["value"].as_str().unwrap();

    let payload = json!({
        "type": "block_actions",
        "user": {"id": "U0ALICE", "username": "alice", "name": "alice"},
        "channel": {"id": SLACK_CHANNEL},
        "message": {"ts": root.id},
        "actions": [{"action_id": "hookrelay_acknowledge", "value": token, "type": "button"}],
    });
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let url = format!("http://{}/integrations/slack", app.addr);
    let send = |ts: u64, secret: &str, body: String| {
        let sig = slack_sign(secret, &ts.to_string(), &body);
        reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", ts.to_string())
            .header("x-slack-signature", sig)
            .body(body)
    };
    // Wrong secret, stale timestamp, body changed after signing: 401.
    assert_eq!(
        send(now, "wrong-secret", body.clone())
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        send(now - 600, SIGNING, body.clone())
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let sig = slack_sign(SIGNING, &now.to_string(), &body);
    let changed = reqwest::Client::new()
        .post(&url)
        .header("x-slack-request-timestamp", now.to_string())
        .header("x-slack-signature", sig)
        .body(body.replace("alice", "mallory"))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), 401);
    assert!(patches(&fake).is_empty());

    // Signed right: 200 at once, then the change and a reply in the thread.
    let started = std::time::Instant::now();
    let ok = send(now, SIGNING, body).send().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(started.elapsed() < Duration::from_secs(3));
    chat.wait(WAIT, "the reply", |m| m.len() == 2).await;
    let sent = patches(&fake);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].json()["action_uuid"],
        "8f206505-af6d-433e-93f4-775d46dc7d0f"
    );
    assert_eq!(
        sent[0].json()["comment"],
        "Acknowledge by slack:@alice (via hookrelay)"
    );
    let reply = chat.replies(&root.id);
    assert_eq!(reply.len(), 1);
    assert_eq!(reply[0].current()["text"], "Acknowledged by @\u{2060}alice");
    let m: Value = json!(app.metrics().await);
    assert!(m
        .as_str()
        .unwrap()
        .contains("hookrelay_actions_total{action=\"acknowledge\",result=\"done\"} 1"));
    app.stop().await;
}

#[tokio::test]
async fn mattermost_buttons_post_back_and_the_thread_says_who_acted() {
    use common::chat::{MM_CHANNEL, MM_TOKEN};
    let fake = Fake::start().await;
    let chat = ChatApi::start().await;
    let extra = format!(
        "[actions]\npublic_url = \"{PUBLIC}\"\nsecret = \"{SECRET}\"\nbuttons = [\"close\"]\n[destinations.mm]\nkind = \"mattermost\"\nserver_url = \"{}\"\ntoken = \"{MM_TOKEN}\"\nchannel_id = \"{MM_CHANNEL}\"\n[[routes]]\nname = \"all\"\nto = [\"mm\"]\n",
        chat.mattermost_server()
    );
    let app = spawn_app(&fake, &extra).await;
    app.post(fixture("event-alert-created.json")).await;
    chat.wait(WAIT, "the root", |m| m.len() == 1).await;
    let root = chat.roots()[0].clone();
    let button = root.current()["props"]["attachments"][0]["actions"][0].clone();
    assert_eq!(button["name"], "Close");
    assert_eq!(
        button["integration"]["url"],
        format!("{PUBLIC}/integrations/mattermost")
    );
    let token = button["integration"]["context"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("http://{}/integrations/mattermost", app.addr);
    let client = reqwest::Client::new();
    let forged = client
        .post(&url)
        .json(&json!({"user_name": "bob", "context": {"token": format!("{token}x")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let answer = client
        .post(&url)
        .json(&json!({"user_id": "u1", "user_name": "bob", "channel_id": MM_CHANNEL, "post_id": root.id, "context": {"token": token}}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(
        answer.json::<Value>().await.unwrap()["ephemeral_text"],
        "Close requested."
    );
    chat.wait(WAIT, "the reply", |m| m.len() == 2).await;
    let sent = patches(&fake);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].json()["action_uuid"],
        "1738b1c1-767d-489e-bada-19176621a007"
    );
    let reply = &chat.replies(&root.id)[0];
    assert_eq!(reply.current()["message"], "Closed by @\u{2060}bob");
    app.stop().await;
}

/// The action token of `action` on the fixture alert for destination
/// `dest`, valid for an hour, as the relay would sign it.
fn token_for(dest: &str, action: ActionKind) -> String {
    let s = SECRET.as_bytes();
    let expires = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 3600;
    sign(
        s,
        &Link {
            alert: ALERT_UUID.parse().unwrap(),
            action,
            destination: tag(s, "destination", dest),
            origin: tag(s, "origin", "sekoia"),
            expires,
        },
    )
}

#[tokio::test]
async fn an_unreadable_forwarded_address_is_refused_not_taken_for_the_proxys() {
    let fake = Fake::start().await;
    // Loopback is a trusted proxy (the default) and inside allow_from: a
    // garbled X-Forwarded-For must not make the request the proxy's.
    let app = spawn_app(&fake, &actions_config("allow_from = [\"127.0.0.0/8\"]")).await;
    let actions = card_actions(&app, &fake).await;
    let client = reqwest::Client::new();
    let ok = client.get(&actions[0].1).send().await.unwrap();
    assert_eq!(ok.status(), 200, "the proxy itself, no header");
    let garbled = reqwest::header::HeaderValue::from_bytes(b"203.0.113.\xff").unwrap();
    let r = client
        .get(&actions[0].1)
        .header("x-forwarded-for", garbled.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = client
        .post(&actions[0].1)
        .header("x-forwarded-for", garbled)
        .form(&[("csrf", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // An address that is not one, too.
    let r = client
        .get(&actions[0].1)
        .header("x-forwarded-for", "not-an-address")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(patches(&fake).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn action_and_integration_bodies_are_capped_small() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, &actions_config("")).await;
    let big = "payload=".to_owned() + &"x".repeat(100 * 1024);
    let client = reqwest::Client::new();
    for path in [
        "/integrations/slack".to_owned(),
        "/integrations/mattermost".to_owned(),
        format!("/actions/{}", token_for("teams", ActionKind::Close)),
    ] {
        let r = client
            .post(format!("http://{}{path}", app.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{path}");
    }
    // A Slack payload of a few KB is read as before.
    let small = "payload=".to_owned() + &"{}".repeat(2000);
    let r = client
        .post(format!("http://{}/integrations/slack", app.addr))
        .body(small)
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 413);
    app.stop().await;
}

/// Unsigned Slack interactions with a ~60 KB body, `n` of them: how long
/// they took to be refused.
async fn refuse_unsigned_slack(app: &TestApp, n: usize) -> Duration {
    let payload = json!({
        "type": "block_actions",
        "actions": [{"action_id": "hookrelay_close", "value": token_for("sk0", ActionKind::Close)}],
        "filler": "x".repeat(60 * 1024),
    });
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    for _ in 0..n {
        let r = client
            .post(format!("http://{}/integrations/slack", app.addr))
            .header("x-slack-request-timestamp", now.to_string())
            .header("x-slack-signature", format!("v0={}", "0".repeat(64)))
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
    }
    started.elapsed()
}

fn slack_destinations(n: usize, api: &str) -> String {
    (0..n)
        .map(|i| format!("[destinations.sk{i}]\nkind = \"slack\"\ntoken = \"{SLACK_TOKEN}\"\nchannel = \"{SLACK_CHANNEL}\"\napi_url = \"{api}\"\nsigning_secret = \"{SIGNING}{i}\"\n"))
        .collect()
}

#[tokio::test]
async fn a_slack_interaction_costs_one_signature_check_whatever_the_destinations() {
    let fake = Fake::start().await;
    let chat = ChatApi::start().await;
    let config = |n: usize| {
        format!(
            "[actions]\npublic_url = \"{PUBLIC}\"\nsecret = \"{SECRET}\"\n{}[[routes]]\nname = \"all\"\nto = [\"sk0\"]\n",
            slack_destinations(n, &chat.slack_api())
        )
    };
    let one = spawn_app(&fake, &config(1)).await;
    refuse_unsigned_slack(&one, 2).await; // warm up
    let t_one = refuse_unsigned_slack(&one, 12).await;
    one.stop().await;
    let many = spawn_app(&fake, &config(400)).await;
    refuse_unsigned_slack(&many, 2).await;
    let t_many = refuse_unsigned_slack(&many, 12).await;
    many.stop().await;
    // Checked against every destination's secret, the 400 would cost
    // 400 MACs over 60 KB each per request (seconds in all).
    assert!(
        t_many < t_one * 4 + Duration::from_millis(800),
        "400 destinations: {t_many:?}; one: {t_one:?}"
    );
}

#[tokio::test]
async fn a_slack_signature_counts_only_for_the_destination_the_button_names() {
    let fake = Fake::start().await;
    let chat = ChatApi::start().await;
    let config = format!(
        "[actions]\npublic_url = \"{PUBLIC}\"\nsecret = \"{SECRET}\"\n{}[[routes]]\nname = \"all\"\nto = [\"sk0\", \"sk1\"]\n",
        slack_destinations(2, &chat.slack_api())
    );
    let app = spawn_app(&fake, &config).await;
    let payload = json!({
        "type": "block_actions",
        "user": {"id": "U0ALICE", "username": "alice"},
        "actions": [{"action_id": "hookrelay_close", "value": token_for("sk1", ActionKind::Close)}],
    });
    let body: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .to_string();
    // sk0's secret does not vouch for sk1's button.
    let r = reqwest::Client::new()
        .post(format!("http://{}/integrations/slack", app.addr))
        .header("x-slack-request-timestamp", &ts)
        .header(
            "x-slack-signature",
            slack_sign(&format!("{SIGNING}0"), &ts, &body),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = reqwest::Client::new()
        .post(format!("http://{}/integrations/slack", app.addr))
        .header("x-slack-request-timestamp", &ts)
        .header(
            "x-slack-signature",
            slack_sign(&format!("{SIGNING}1"), &ts, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    fake.wait_for(WORKFLOW, 1, WAIT).await;
    app.stop().await;
}

/// A Mattermost button click as Mattermost's server posts it.
fn mm_click(token: &str, user_id: &str, user_name: &str) -> Value {
    json!({
        "user_id": user_id,
        "user_name": user_name,
        "channel_id": common::chat::MM_CHANNEL,
        "team_id": "t1",
        "post_id": "p1",
        "trigger_id": "x",
        "type": "",
        "data_source": "",
        "context": {"token": token},
    })
}

#[tokio::test]
async fn mattermost_clicks_are_admitted_spent_once_and_attributed_by_mattermost() {
    use common::chat::{MM_CHANNEL, MM_TOKEN};
    let fake = Fake::start().await;
    let chat = ChatApi::start().await;
    let extra = format!(
        "[actions]\npublic_url = \"{PUBLIC}\"\nsecret = \"{SECRET}\"\nbuttons = [\"close\"]\nmattermost_allow_from = [\"192.0.2.0/24\"]\n[destinations.mm]\nkind = \"mattermost\"\nserver_url = \"{}\"\ntoken = \"{MM_TOKEN}\"\nchannel_id = \"{MM_CHANNEL}\"\n[[routes]]\nname = \"all\"\nto = [\"mm\"]\n",
        chat.mattermost_server()
    );
    let app = spawn_app(&fake, &extra).await;
    app.post(fixture("event-alert-created.json")).await;
    chat.wait(WAIT, "the root", |m| m.len() == 1).await;
    let root = chat.roots()[0].clone();
    let token = root.current()["props"]["attachments"][0]["actions"][0]["integration"]["context"]
        ["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("http://{}/integrations/mattermost", app.addr);
    let client = reqwest::Client::new();
    let click = |xff: &'static str, body: Value| {
        client
            .post(&url)
            .header("x-forwarded-for", xff)
            .json(&body)
            .send()
    };
    // Not from the Mattermost server's network; an unreadable address.
    let r = click("198.51.100.1", mm_click(&token, "u1", "bob"))
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let garbled = client
        .post(&url)
        .header(
            "x-forwarded-for",
            reqwest::header::HeaderValue::from_bytes(b"192.0.2.\xff").unwrap(),
        )
        .json(&mm_click(&token, "u1", "bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(garbled.status(), 403);
    // The body's user_name is not who clicked: Mattermost's user u1 is bob.
    let r = click("192.0.2.7", mm_click(&token, "u1", "mallory"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.json::<Value>().await.unwrap()["ephemeral_text"],
        "Close requested."
    );
    chat.wait(WAIT, "the reply", |m| m.len() == 2).await;
    let reply = &chat.replies(&root.id)[0];
    assert_eq!(reply.current()["message"], "Closed by @\u{2060}bob");
    let sent = patches(&fake);
    assert_eq!(sent.len(), 1);
    assert!(
        !sent[0].json()["comment"].to_string().contains("mallory"),
        "{}",
        sent[0].json()
    );
    // The same click again is refused, and nothing is done twice.
    let again = click("192.0.2.7", mm_click(&token, "u1", "mallory"))
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    // A user Mattermost does not know is named by id, marked as such.
    let r = click("192.0.2.8", mm_click(&token, "zz9", "eve"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    chat.wait(WAIT, "the second reply", |m| m.len() == 3).await;
    let texts: Vec<String> = chat
        .replies(&root.id)
        .iter()
        .map(|m| {
            m.current()["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert!(
        texts.iter().any(|t| t.contains("zz9")
            && t.contains("as reported by Mattermost")
            && !t.contains("eve")),
        "{texts:?}"
    );
    // A flood from one address is limited like the action pages.
    let mut codes = Vec::new();
    for i in 0..40 {
        let body = mm_click(&format!("{token}{i}"), "u1", "bob");
        codes.push(click("192.0.2.9", body).await.unwrap().status().as_u16());
    }
    assert!(codes.contains(&429), "{codes:?}");
    assert!(patches(&fake).len() <= 2);
    app.stop().await;
}
