//! End to end: a Sekoia webhook in, the alert API called back, the exact
//! payload out to each chat service.

mod common;

use common::*;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// The golden file of what a destination of `kind` gets for the
/// created-alert fixture (`case`: "full" with alert-full.json, "degraded"
/// with the alert API answering 404): the reviewed snapshots in
/// src/destinations/tests/snapshots, read verbatim, never produced by the code under
/// test.
fn golden(kind: &str, case: &str) -> Value {
    let path = format!(
        "{}/src/destinations/tests/snapshots/hookrelay__destinations__tests__{case}-{kind}.snap",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // An insta file: a `---` header block, then the value.
    let body = text.splitn(3, "---").nth(2).expect("insta header");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn alert_reaches_all_four_kinds_with_the_exact_payload() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, ROUTE_ALL).await;
    let (status, body) = app.post(fixture("event-alert-created.json")).await;
    assert_eq!(status, 202);
    assert!(
        body["id"].as_str().is_some_and(|id| !id.is_empty()),
        "{body}"
    );

    for (path, kind) in [
        ("/teams", "teams"),
        ("/legacy", "teams-legacy"),
        ("/slack", "slack"),
        ("/mattermost", "mattermost"),
    ] {
        let got = fake.wait_for(path, 1, WAIT).await;
        assert_eq!(got.len(), 1, "{path}");
        assert_eq!(got[0].headers["content-type"], "application/json");
        assert_eq!(got[0].json(), golden(kind, "full"), "{path}");
    }
    let teams = fake.received("/teams")[0].json();
    assert_eq!(teams["attachments"][0]["contentUrl"], Value::Null);
    assert!(teams["attachments"][0]
        .as_object()
        .unwrap()
        .contains_key("contentUrl"));
    assert_eq!(
        teams["attachments"][0]["content"]["body"][1]["text"],
        "Suspicious PowerShell download cradle"
    );

    // The alert API was called as documented, with the bearer key.
    let api = fake.received("/api/v1/sic/alerts/");
    assert_eq!(api.len(), 1);
    assert_eq!(api[0].path, format!("/api/v1/sic/alerts/{ALERT_UUID}"));
    assert_eq!(api[0].query.as_deref(), Some("stix=false"));
    assert_eq!(
        api[0].headers["authorization"],
        format!("Bearer {API_KEY}").as_str()
    );

    let m = app.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hookrelay_events_received_total",
            &["hook=\"soc\"", "result=\"accepted\""]
        ),
        1.0
    );
    assert_eq!(
        metric(&m, "hookrelay_deliveries_total", &["outcome=\"delivered\""]),
        4.0
    );
    app.stop().await;
}

/// The enrichment note recorded with the event the hook answered with
/// `accepted` (`{"id": N}`): what `events show` and the console's journey
/// show the operator.
async fn enrichment_note(app: &TestApp, accepted: &Value) -> String {
    let id: i64 = accepted["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .expect("the hook answers the event's id");
    let store = hookrelay::store::Store::open_now(
        &hookrelay::config::StoreConfig {
            path: app.dir.path().join("spool.db"),
            ..Default::default()
        },
        std::time::Duration::from_secs(5),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let note = store
            .event_detail(id)
            .await
            .unwrap()
            .and_then(|d| d.enrichment);
        if let Some(note) = note {
            return note;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no enrichment recorded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn degraded_when_the_alert_api_refuses_or_fails() {
    // Messages say the status; the journey keeps the API's words.
    for (reply, reason, detail) in [
        (
            Reply::status(404, "{\"message\":\"not found\"}"),
            "HTTP 404",
            "alert API answered 404 (Not Found)",
        ),
        (
            Reply::status(401, "{\"message\":\"unauthorized\"}"),
            "HTTP 401",
            "alert API answered 401 (Unauthorized)",
        ),
    ] {
        let fake = Fake::start().await;
        fake.always(&format!("/api/v1/sic/alerts/{ALERT_UUID}"), reply);
        let app = spawn_app(&fake, ROUTE_ALL).await;
        let (status, accepted) = app.post(fixture("event-alert-created.json")).await;
        assert_eq!(status, 202);
        let got = fake.wait_for("/slack", 1, WAIT).await;
        // The golden file shows the 404's reason; a 401 says its own.
        let want = golden("slack", "degraded")
            .to_string()
            .replace("HTTP 404", reason);
        assert_eq!(got[0].json().to_string(), want);
        let text = got[0].json()["attachments"][0]["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(text.contains("Alert details unavailable"), "{text}");
        let note = enrichment_note(&app, &accepted).await;
        assert!(note.contains(detail), "{note}");
        // Permanent: asked once, not retried.
        assert_eq!(fake.received("/api/").len(), 1);
        app.stop().await;
    }
}

/// A 200 whose body is not an alert (a JSON array, an HTML page, JSON cut
/// short): the event still goes out, without details, saying why, and
/// the API is not asked again.
#[tokio::test]
async fn degraded_when_the_alert_api_answers_something_other_than_an_alert() {
    for (body, reason) in [
        (
            "[1, 2]",
            "alert API answer is not a valid alert: expected a JSON object",
        ),
        (
            "<html><body>Service Unavailable</body></html>",
            "alert API answer is not a valid alert: expected value at line 1 column 1",
        ),
        (
            "{\"uuid\": \"5696845f",
            "alert API answer is not a valid alert: EOF while parsing a string",
        ),
    ] {
        let fake = Fake::start().await;
        fake.always(
            &format!("/api/v1/sic/alerts/{ALERT_UUID}"),
            Reply::status(200, body),
        );
        let app = spawn_app(&fake, ROUTE_ALL).await;
        let (status, accepted) = app.post(fixture("event-alert-created.json")).await;
        assert_eq!(status, 202);
        let got = fake.wait_for("/slack", 1, WAIT).await;
        let text = got[0].json()["attachments"][0]["blocks"][0]["text"]["text"]
            .as_str()
            .unwrap()
            .to_owned();
        // The message says why in a word; the journey says exactly.
        assert!(
            text.contains("Alert details unavailable (invalid answer)"),
            "{body}: {text}"
        );
        let note = enrichment_note(&app, &accepted).await;
        assert!(note.contains(reason), "{body}: {note}");
        assert_eq!(fake.received("/api/").len(), 1, "{body}: not retried");
        app.stop().await;
    }
}

#[tokio::test]
async fn degraded_after_the_enrich_deadline_when_the_api_keeps_failing() {
    let fake = Fake::start().await;
    fake.always(
        &format!("/api/v1/sic/alerts/{ALERT_UUID}"),
        Reply::status(503, "upstream down"),
    );
    let app = spawn_app(&fake, ROUTE_ALL).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    let got = fake.wait_for("/mattermost", 1, WAIT).await;
    let body = got[0].json();
    let note = body["attachments"][0]["text"].as_str().unwrap();
    assert!(
        note.contains("Alert details unavailable") && note.contains("503"),
        "{note}"
    );
    // Retried within the 1 s deadline, then gave up.
    assert!(fake.received("/api/").len() >= 2);
    // The link still points at the alert (short id from the webhook).
    assert!(body["text"]
        .as_str()
        .unwrap()
        .contains("/operations/alerts/ALEY4fqz8moo"));
    app.stop().await;
}

#[tokio::test]
async fn alert_api_429_is_retried_after_retry_after() {
    let fake = Fake::start().await;
    fake.script(
        &format!("/api/v1/sic/alerts/{ALERT_UUID}"),
        [
            Reply::status(429, "slow down").retry_after("0"),
            Reply::status(500, "oops"),
        ],
    );
    let app = spawn_app(&fake, ROUTE_ALL).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    let got = fake.wait_for("/teams", 1, WAIT).await;
    assert_eq!(got[0].json(), golden("teams", "full"));
    assert_eq!(fake.received("/api/").len(), 3);
    app.stop().await;
}

#[tokio::test]
async fn concurrent_lookups_of_one_alert_are_coalesced() {
    let fake = Fake::start().await;
    // A slow API so that the look-ups overlap.
    fake.script(
        &format!("/api/v1/sic/alerts/{ALERT_UUID}"),
        [
            Reply::status(200, &fixture_json("alert-full.json").to_string())
                .delay(Duration::from_millis(300)),
        ],
    );
    let app = spawn_app(&fake, "[[routes]]\nname = \"s\"\nto = [\"slack\"]\n").await;
    app.post_concurrently(100, 100, |n| unique_event(n, ALERT_UUID))
        .await;
    fake.wait_for("/slack", 100, WAIT).await;
    assert_eq!(fake.received("/api/").len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn non_alert_events_are_routed_from_what_they_carry() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, ROUTE_ALL).await;
    assert_eq!(
        app.post(fixture("event-content-proposal-created.json"))
            .await
            .0,
        202
    );
    let got = fake.wait_for("/slack", 1, WAIT).await;
    let text = got[0].json()["text"].as_str().unwrap().to_owned();
    assert!(text.contains("content proposal created"), "{text}");
    // A content proposal has no alert: the API is not asked.
    assert!(fake.received("/api/").is_empty());

    assert_eq!(
        app.post(fixture("event-alert-comment-created.json"))
            .await
            .0,
        202
    );
    let got = fake.wait_for("/mattermost", 2, WAIT).await;
    let comment = got[1].json();
    assert_eq!(
        comment["attachments"][0]["text"],
        "Isolated the host, waiting for forensics."
    );
    // A comment is enriched through its alert_uuid.
    assert_eq!(
        fake.received("/api/")[0].path,
        format!("/api/v1/sic/alerts/{ALERT_UUID}")
    );
    app.stop().await;
}

fn alert_with(urgency: u32, status: &str) -> Value {
    let mut v = fixture_json("alert-full.json");
    v["urgency"]["value"] = urgency.into();
    v["status"]["name"] = status.into();
    v
}

#[tokio::test]
async fn routing_by_urgency_status_and_continue() {
    let fake = Fake::start().await;
    let urgent = "11111111-1111-4111-8111-111111111111";
    let pending_low = "22222222-2222-4222-8222-222222222222";
    let closed_low = "33333333-3333-4333-8333-333333333333";
    fake.set_alert(urgent, alert_with(85, "Pending"));
    fake.set_alert(pending_low, alert_with(10, "Pending"));
    fake.set_alert(closed_low, alert_with(10, "Closed"));
    let routes = r#"
[[routes]]
name = "urgent"
to = ["teams"]
continue = true
[routes.when]
type = ["alert"]
urgency_min = 70
[[routes]]
name = "open"
to = ["slack"]
[routes.when]
status = ["pending", "acknowledged"]
[[routes]]
name = "rest"
to = ["mattermost"]
"#;
    let app = spawn_app(&fake, routes).await;
    for (n, uuid) in [urgent, pending_low, closed_low].into_iter().enumerate() {
        assert_eq!(app.post(unique_event(n, uuid)).await.0, 202);
    }
    // urgent → teams (continue) and slack; pending_low → slack; closed_low → mattermost.
    fake.wait_for("/teams", 1, WAIT).await;
    fake.wait_for("/slack", 2, WAIT).await;
    fake.wait_for("/mattermost", 1, WAIT).await;
    let teams_titles: Vec<String> = fake
        .received("/teams")
        .iter()
        .map(|r| {
            r.json()["attachments"][0]["content"]["body"][0]["color"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(teams_titles, ["Attention"]);
    let mm = &fake.received("/mattermost")[0].json();
    assert!(mm["attachments"][0]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["value"] == "Closed"));
    app.stop().await;
    assert_eq!(fake.received("/teams").len(), 1);
    assert_eq!(fake.received("/slack").len(), 2);
    assert_eq!(fake.received("/mattermost").len(), 1);
    assert!(fake.received("/legacy").is_empty());
}

#[tokio::test]
async fn unrouted_events_are_stored_and_counted() {
    let fake = Fake::start().await;
    let routes = "[[routes]]\nname = \"only-deleted\"\nto = [\"slack\"]\n[routes.when]\naction = [\"deleted\"]\n";
    let app = spawn_app(&fake, routes).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let m = app.metrics().await;
        if metric(&m, "hookrelay_events_unrouted_total", &[]) == 1.0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "unrouted never counted:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dir = app.dir.clone();
    app.stop().await;
    assert!(fake.received("/slack").is_empty());
    // Stored, routed to nowhere: the history shows it with no delivery.
    let store = hookrelay::store::Store::open(&hookrelay::config::StoreConfig {
        path: dir.path().join("spool.db"),
        ..Default::default()
    })
    .unwrap();
    let stored = store.events_since(0, None, None).await.unwrap();
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].state, "unrouted", "{stored:?}");
    let detail = store
        .event_detail(stored[0].id)
        .await
        .unwrap()
        .expect("the event is in the spool");
    assert_eq!(detail.summary.action, "created");
    assert!(detail.deliveries.is_empty(), "{detail:?}");
}

#[tokio::test]
async fn a_burst_of_400_reaches_four_destinations_exactly_once() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, ROUTE_ALL).await;
    app.post_concurrently(400, 400, |n| unique_event(n, ALERT_UUID))
        .await;
    for path in ["/teams", "/legacy", "/slack", "/mattermost"] {
        fake.wait_for(path, 400, WAIT).await;
    }
    app.stop().await;
    for path in ["/teams", "/legacy", "/slack", "/mattermost"] {
        let got = fake.received(path);
        assert_eq!(got.len(), 400, "{path}: duplicates");
        let distinct: std::collections::HashSet<Vec<u8>> =
            got.iter().map(|r| r.body.to_vec()).collect();
        // Payloads differ only by time: each event's own timestamp is shown.
        assert_eq!(distinct.len(), 400, "{path}: an event was delivered twice");
    }
}

#[tokio::test]
async fn sender_retry_is_accepted_and_notified_once() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, "[[routes]]\nname = \"s\"\nto = [\"slack\"]\n").await;
    let (s1, b1) = app.post(fixture("event-alert-created.json")).await;
    let (s2, b2) = app.post(fixture("event-alert-created.json")).await;
    assert_eq!((s1, s2), (202, 202));
    assert_eq!(b1["id"], b2["id"]);
    fake.wait_for("/slack", 1, WAIT).await;
    app.stop().await;
    assert_eq!(fake.received("/slack").len(), 1);
}

#[tokio::test]
async fn a_backlog_beyond_the_in_memory_queue_is_read_back_from_the_spool() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, "[[routes]]\nname = \"s\"\nto = [\"slack\"]\n").await;
    // A slow alert API (50 ms, 16 look-ups at a time) holds events in
    // enrichment, so the in-memory hand-over (512 in progress + 64 queued,
    // pipeline::INTAKE_CAPACITY)
    // overflows and the pipeline falls back to reading the spool.
    let n = 2000;
    for i in 0..n {
        let uuid = format!("00000000-0000-4000-8000-{i:012}");
        fake.always(
            &format!("/api/v1/sic/alerts/{uuid}"),
            Reply::status(200, &fixture_json("alert-full.json").to_string())
                .delay(Duration::from_millis(50)),
        );
    }
    // 64 senders at a time (more would only queue in the kernel's backlog).
    app.post_concurrently(n, 64, |i| {
        unique_event(i, &format!("00000000-0000-4000-8000-{i:012}"))
    })
    .await;
    let got = fake
        .wait_distinct("/slack", n, Duration::from_secs(60))
        .await;
    app.stop().await;
    assert_eq!(
        fake.received("/slack").len(),
        n,
        "{} deliveries for {n} events",
        got.len()
    );
    assert_eq!(
        fake.received("/api/").len(),
        n,
        "an event was enriched twice"
    );
}

#[tokio::test]
async fn discord_gets_an_embed_without_mentions_and_its_429_body_is_honoured() {
    let fake = Fake::start().await;
    let path = "/discord/api/webhooks/1234/secret-token";
    fake.script(
        path,
        [Reply::status(
            429,
            r#"{"message": "You are being rate limited.", "retry_after": 0.3, "global": false}"#,
        )],
    );
    let extra = format!(
        "[destinations.discord]\nkind = \"discord\"\nurl = \"{}\"\n[[routes]]\nname = \"d\"\nto = [\"discord\"]\n",
        fake.url(path)
    );
    let app = spawn_app(&fake, &extra).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    let got = fake.wait_for("/discord", 2, WAIT).await;
    assert!(
        got[1].at.duration_since(got[0].at) >= Duration::from_millis(250),
        "retry_after in the body was not honoured"
    );
    assert_eq!(got[1].json(), golden("discord", "full"));
    assert_eq!(
        got[1].json()["allowed_mentions"],
        serde_json::json!({"parse": []})
    );
    app.stop().await;
}

#[tokio::test]
async fn google_chat_gets_a_text_message_with_the_alert_link() {
    let fake = Fake::start().await;
    let path = "/gchat/v1/spaces/AAAA/messages";
    let extra = format!(
        "[destinations.gchat]\nkind = \"google-chat\"\nurl = \"{}\"\nrate = \"60/min\"\n[[routes]]\nname = \"g\"\nto = [\"gchat\"]\n",
        fake.url(path)
    );
    let app = spawn_app(&fake, &extra).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    let got = fake.wait_for("/gchat", 1, WAIT).await;
    assert_eq!(got[0].json(), golden("google-chat", "full"));
    let text = got[0].json()["text"].as_str().unwrap().to_owned();
    assert!(
        text.ends_with("<https://app.sekoia.io/operations/alerts/ALEY4fqz8moo|Open in Sekoia.io>"),
        "{text}"
    );
    app.stop().await;
}

/// A route muted by a time interval sends nothing; the history keeps the
/// delivery as muted, naming the route and the interval, and the next
/// route gets the event.
#[tokio::test]
async fn a_muted_route_sends_nothing_and_says_why() {
    let fake = Fake::start().await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let extra = r#"
[time_intervals.maintenance]
years = ["2000:9999"]
[[routes]]
name = "night"
to = ["teams"]
muted_during = ["maintenance"]
[[routes]]
name = "fallback"
to = ["slack"]
"#;
    let config = write_config(&fake, dir.path(), extra);
    let app = spawn_app_in(&fake, extra, dir.clone()).await;
    let (status, body) = app.post(fixture("event-alert-created.json")).await;
    assert_eq!(status, 202);
    fake.wait_for("/slack", 1, Duration::from_secs(10)).await;
    assert!(fake.received("/teams").is_empty());
    let id = body["id"].as_str().unwrap().to_owned();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        cli(&["events", "show", &id, "--config", config.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("→ teams (route night): muted"), "{out}");
    assert!(
        out.contains("route \"night\" muted: muted_during \"maintenance\" holds now"),
        "{out}"
    );
    assert!(out.contains("→ slack (route fallback): delivered"), "{out}");
    app.stop().await;
}

/// A route with `mention = true` makes its destinations notify their
/// configured people; another route to the same kind of channel does not.
#[tokio::test]
async fn a_mention_route_notifies_the_operators_people() {
    let fake = Fake::start().await;
    let extra = format!(
        r#"
[destinations.oncall]
kind = "teams"
url = "{}"
mentions = [{{ id = "29:1a2b-oncall", name = "SOC on-call" }}]
[[routes]]
name = "page"
to = ["oncall"]
mention = true
continue = true
[[routes]]
name = "quiet"
to = ["teams"]
"#,
        fake.url("/oncall/workflows")
    );
    let app = spawn_app(&fake, &extra).await;
    let (status, _) = app.post(fixture("event-alert-created.json")).await;
    assert_eq!(status, 202);
    let paged = fake.wait_for("/oncall", 1, WAIT).await[0].json();
    let card = &paged["attachments"][0]["content"];
    assert_eq!(
        card["msteams"]["entities"][0]["mentioned"]["id"],
        "29:1a2b-oncall"
    );
    assert_eq!(card["body"][0]["text"], "<at>SOC on-call</at>");
    let quiet = fake.wait_for("/teams", 1, WAIT).await[0].json();
    assert!(quiet["attachments"][0]["content"]["msteams"]
        .get("entities")
        .is_none());
    app.stop().await;
}

/// `asset_criticality_min` routes by the highest criticality among the
/// alert's assets, fetched from the origin's asset API: found (and shown
/// in the message), missing (404: unknown, the route does not match and
/// the message says so), slow (past the enrich deadline: unknown).
#[tokio::test]
async fn asset_criticality_routes_by_the_alerts_most_critical_asset() {
    const ASSET: &str = "0f8e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f";
    let extra = r#"
[[routes]]
name = "crown-jewels"
to = ["teams"]
[routes.when]
asset_criticality_min = 70
[[routes]]
name = "rest"
to = ["slack"]
"#;
    // Found, critical enough: Teams, and the card names the asset.
    let fake = Fake::start().await;
    fake.set_asset(ASSET, "srv-dc-01", 80);
    let app = spawn_app(&fake, extra).await;
    app.post(fixture("event-alert-created.json")).await;
    let card = fake.wait_for("/teams", 1, WAIT).await[0].json().to_string();
    assert!(card.contains("srv-dc-01 (criticality 80)"), "{card}");
    assert!(fake.received("/slack").is_empty());
    app.stop().await;

    // Found, not critical enough: the next route.
    let fake = Fake::start().await;
    fake.set_asset(ASSET, "lab-pc-07", 20);
    let app = spawn_app(&fake, extra).await;
    app.post(fixture("event-alert-created.json")).await;
    fake.wait_for("/slack", 1, WAIT).await;
    assert!(fake.received("/teams").is_empty());
    app.stop().await;

    // Missing (404): unknown; the message says so.
    let fake = Fake::start().await;
    let app = spawn_app(&fake, extra).await;
    app.post(fixture("event-alert-created.json")).await;
    let msg = fake.wait_for("/slack", 1, WAIT).await[0].json().to_string();
    assert!(
        msg.contains("1 unknown (the asset API did not describe them)"),
        "{msg}"
    );
    assert!(fake.received("/teams").is_empty());
    app.stop().await;

    // Slow (past the 1 s enrich deadline): unknown, and the event is not held up for long.
    let fake = Fake::start().await;
    fake.set_asset(ASSET, "srv-dc-01", 80);
    fake.always(
        &format!("/api/v2/asset-management/assets/{ASSET}"),
        Reply::status(200, "{}").delay(Duration::from_secs(5)),
    );
    let app = spawn_app(&fake, extra).await;
    let started = std::time::Instant::now();
    app.post(fixture("event-alert-created.json")).await;
    fake.wait_for("/slack", 1, WAIT).await;
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(fake.received("/teams").is_empty());
    app.stop().await;
}
