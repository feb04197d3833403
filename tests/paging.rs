//! Paging and push destinations against in-process fakes of their APIs:
//! PagerDuty and Opsgenie follow one alert's life (one incident, acknowledged
//! and resolved with it), Matrix retries reuse their transaction id, ntfy
//! gets a JSON publish. Rejections become dead letters carrying the
//! service's message, never the key.

mod common;

use common::*;
use serde_json::json;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const ROUTING_KEY: &str = "R0UT1NGKEY0000000000000000000AB";
const GENIE_KEY: &str = "0b1c2d3e-genie-key-secret-00000000";
const MATRIX_TOKEN: &str = "syt_bWF0cml4_secret_token";
const NTFY_TOKEN: &str = "tk_ntfysecrettoken0000000";

/// The created, acknowledged and closed events of the fixture alert.
fn life() -> [String; 3] {
    let created = String::from_utf8(fixture("event-alert-created.json")).unwrap();
    let acked = String::from_utf8(fixture("event-alert-updated-status.json")).unwrap();
    let closed = acked
        .replace("\"Acknowledged\"", "\"Closed\"")
        .replace("15:21:03", "15:40:00");
    [created, acked, closed]
}

fn destinations(fake: &Fake) -> String {
    format!(
        r#"
[destinations.pd]
kind = "pagerduty"
routing_key = "{ROUTING_KEY}"
api_url = "{pd}"
[destinations.og]
kind = "opsgenie"
api_key = "{GENIE_KEY}"
api_url = "{og}"
[destinations.mx]
kind = "matrix"
homeserver = "{mx}"
room_id = "!soc:example.org"
access_token = "{MATRIX_TOKEN}"
[destinations.nt]
kind = "ntfy"
url = "{nt}"
token = "{NTFY_TOKEN}"
"#,
        pd = fake.url("/pd/v2/enqueue"),
        og = fake.url("/og"),
        mx = fake.url("/mx"),
        nt = fake.url("/ntfy/soc-alerts"),
    )
}

fn route_to(dest: &str) -> String {
    format!("[[routes]]\nname = \"page\"\nto = [\"{dest}\"]\n")
}

/// Posts the alert's three events one after the other, each once the
/// previous one has reached `path` (Sekoia sends them minutes apart).
async fn live_the_alert(app: &TestApp, fake: &Fake, path: &str) -> Vec<Received> {
    for (i, body) in life().into_iter().enumerate() {
        assert_eq!(app.post(body).await.0, 202);
        fake.wait_for(path, i + 1, WAIT).await;
    }
    fake.received(path)
}

#[tokio::test]
async fn pagerduty_triggers_acknowledges_and_resolves_one_incident() {
    let fake = Fake::start().await;
    fake.always(
        "/pd/v2/enqueue",
        Reply::status(
            202,
            r#"{"status":"success","message":"Event processed","dedup_key":"x"}"#,
        ),
    );
    let app = spawn_app(&fake, &(destinations(&fake) + &route_to("pd"))).await;
    let got = live_the_alert(&app, &fake, "/pd").await;
    assert_eq!(got.len(), 3);
    for r in &got {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, "/pd/v2/enqueue");
        assert_eq!(r.headers["content-type"], "application/json");
    }
    assert_eq!(
        got[0].json(),
        json!({
            "routing_key": ROUTING_KEY,
            "event_action": "trigger",
            "dedup_key": ALERT_UUID,
            "client": "hookrelay",
            "client_url": "https://app.sekoia.io/operations/alerts/ALEY4fqz8moo",
            "links": [{"href": "https://app.sekoia.io/operations/alerts/ALEY4fqz8moo", "text": "Open in Sekoia.io"}],
            "payload": {
                "summary": "Suspicious PowerShell download cradle (ALEY4fqz8moo)",
                "source": "hookrelay/soc",
                "severity": "error",
                "custom_details": got[0].json()["payload"]["custom_details"].clone(),
            }
        })
    );
    let details = &got[0].json()["payload"]["custom_details"];
    assert_eq!(
        details["assets"],
        json!(["0f8e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f"])
    );
    for field in ["urgency", "status", "rule", "entity", "link"] {
        assert!(details.get(field).is_some(), "{field} missing: {details}");
    }
    assert_eq!(details["urgency"], "Major (63)");
    assert_eq!(
        got[1].json(),
        json!({"routing_key": ROUTING_KEY, "event_action": "acknowledge", "dedup_key": ALERT_UUID})
    );
    assert_eq!(
        got[2].json(),
        json!({"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": ALERT_UUID})
    );
    app.stop().await;
}

#[tokio::test]
async fn opsgenie_creates_acknowledges_and_closes_one_alert() {
    let fake = Fake::start().await;
    let accepted = r#"{"result":"Request will be processed","took":0.01,"requestId":"r"}"#;
    fake.script_prefix("/og", (0..4).map(|_| Reply::status(202, accepted)));
    let app = spawn_app(&fake, &(destinations(&fake) + &route_to("og"))).await;
    live_the_alert(&app, &fake, "/og").await;
    // A comment on the open alert: a note.
    let comment = fixture("event-alert-comment-created.json");
    assert_eq!(app.post(comment).await.0, 202);
    let got = fake.wait_for("/og", 4, WAIT).await;
    for r in &got {
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.headers["authorization"],
            format!("GenieKey {GENIE_KEY}").as_str()
        );
    }
    let paths: Vec<(String, Option<String>)> = got
        .iter()
        .map(|r| (r.path.clone(), r.query.clone()))
        .collect();
    let alias = Some("identifierType=alias".to_owned());
    assert_eq!(
        paths,
        [
            ("/og/v2/alerts".to_owned(), None),
            (
                format!("/og/v2/alerts/{ALERT_UUID}/acknowledge"),
                alias.clone()
            ),
            (format!("/og/v2/alerts/{ALERT_UUID}/close"), alias.clone()),
            (format!("/og/v2/alerts/{ALERT_UUID}/notes"), alias),
        ]
    );
    let create = got[0].json();
    assert_eq!(
        create["message"],
        "Suspicious PowerShell download cradle (ALEY4fqz8moo)"
    );
    assert_eq!(create["alias"], ALERT_UUID);
    assert_eq!(create["priority"], "P2");
    assert_eq!(create["source"], "hookrelay/soc");
    assert_eq!(create["tags"], json!(["hookrelay", "major"]));
    assert_eq!(create["details"]["urgency"], "Major (63)");
    assert!(create["description"]
        .as_str()
        .unwrap()
        .contains("https://app.sekoia.io/operations/alerts/ALEY4fqz8moo"));
    assert_eq!(got[1].json()["source"], "hookrelay/soc");
    assert!(got[3].json()["note"]
        .as_str()
        .unwrap()
        .contains("Isolated the host, waiting for forensics."));
    app.stop().await;
}

#[tokio::test]
async fn a_matrix_retry_reuses_its_transaction_id() {
    let fake = Fake::start().await;
    let room = "/mx/_matrix/client/v3/rooms/%21soc%3Aexample.org/send/m.room.message/";
    fake.script_prefix(
        room,
        [
            Reply::status(
                429,
                r#"{"errcode":"M_LIMIT_EXCEEDED","error":"Too many requests","retry_after_ms":300}"#,
            ),
            Reply::status(200, r#"{"event_id":"$abc"}"#),
        ],
    );
    let app = spawn_app(&fake, &(destinations(&fake) + &route_to("mx"))).await;
    let (_, body) = app.post(fixture("event-alert-created.json")).await;
    let got = fake.wait_for(room, 2, WAIT).await;
    assert_eq!(got.len(), 2, "{body}");
    assert_eq!(got[0].method, "PUT");
    assert_eq!(got[0].path, got[1].path, "a retry must reuse its txn id");
    assert!(got[1].at - got[0].at >= Duration::from_millis(300));
    assert_eq!(
        got[0].headers["authorization"],
        format!("Bearer {MATRIX_TOKEN}").as_str()
    );
    let m = got[1].json();
    assert_eq!(m["msgtype"], "m.text");
    assert_eq!(m["format"], "org.matrix.custom.html");
    let html = m["formatted_body"].as_str().unwrap();
    assert!(
        html.starts_with("<b>Suspicious PowerShell download cradle</b>"),
        "{html}"
    );
    assert!(html.contains("<a href=\"https://app.sekoia.io/operations/alerts/ALEY4fqz8moo\">"));
    assert!(m["body"]
        .as_str()
        .unwrap()
        .contains("Suspicious PowerShell download cradle"));
    app.stop().await;
}

/// Synapse's throttling without `retry_after_ms` and a proxy's HTML error
/// page are retried (with the same transaction id) until the homeserver
/// takes the message.
#[tokio::test]
async fn matrix_throttling_without_a_delay_and_proxy_errors_are_retried() {
    let fake = Fake::start().await;
    let room = "/mx/_matrix/client/v3/rooms/%21soc%3Aexample.org/send/m.room.message/";
    fake.script_prefix(
        room,
        [
            Reply::status(
                429,
                r#"{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests"}"#,
            ),
            Reply::status(
                502,
                "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>",
            ),
            Reply::status(200, r#"{"event_id":"$abc"}"#),
        ],
    );
    let app = spawn_app(&fake, &(destinations(&fake) + &route_to("mx"))).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    wait_metric(
        &app,
        "hookrelay_deliveries_total",
        &["destination=\"mx\"", "outcome=\"delivered\""],
        1.0,
        WAIT,
    )
    .await;
    let got = fake.received(room);
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|r| r.path == got[0].path), "one txn id");
    let m = app.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hookrelay_deliveries_total",
            &["destination=\"mx\"", "outcome=\"retry\""]
        ),
        2.0
    );
    app.stop().await;
}

/// A revoked token (401 `M_UNKNOWN_TOKEN`) and a proxy's HTML refusal are
/// dead letters whose reason is the answer; the token is in no log line,
/// no dead letter and no metric.
#[tokio::test]
async fn matrix_unknown_token_and_proxy_refusals_are_dead_letters_without_the_token() {
    let fake = Fake::start().await;
    fake.script_prefix(
        "/mx",
        [
            Reply::status(
                401,
                r#"{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid access token passed.","soft_logout":false}"#,
            ),
            Reply::status(
                403,
                "<!DOCTYPE html><html><head><title>403 Forbidden</title></head><body>Request blocked by the reverse proxy</body></html>",
            ),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), &(destinations(&fake) + &route_to("mx")));
    let daemon = Daemon::spawn(&config).await;
    let dead = |n: f64| {
        let daemon = &daemon;
        async move {
            let deadline = std::time::Instant::now() + WAIT;
            loop {
                let m = daemon.metrics().await;
                let got = metric(&m, "hookrelay_deliveries_total", &["outcome=\"dead\""]);
                if got >= n {
                    return m;
                }
                assert!(std::time::Instant::now() < deadline, "{got} dead letters");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(daemon.post_unique(1).await, 202);
    dead(1.0).await;
    assert_eq!(daemon.post_unique(2).await, 202);
    let m = dead(2.0).await;
    let (_, listed, _) = tokio::task::spawn_blocking({
        let c = config.clone();
        move || cli(&["dead-letters", "list", "--config", c.to_str().unwrap()])
    })
    .await
    .unwrap();
    assert!(
        listed.contains("HTTP 401") && listed.contains("M_UNKNOWN_TOKEN"),
        "{listed}"
    );
    assert!(
        listed.contains("HTTP 403") && listed.contains("Request blocked by the reverse proxy"),
        "{listed}"
    );
    assert_eq!(fake.received("/mx").len(), 2, "neither was retried");
    for text in [daemon.logs(), listed, m] {
        assert!(!text.contains(MATRIX_TOKEN), "the token leaked: {text}");
    }
}

#[tokio::test]
async fn matrix_escapes_hostile_alert_text() {
    let fake = Fake::start().await;
    fake.set_alert(ALERT_UUID, fixture_json("alert-hostile.json"));
    let app = spawn_app(&fake, &(destinations(&fake) + &route_to("mx"))).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    let got = fake.wait_for("/mx", 1, WAIT).await;
    let html = got[0].json()["formatted_body"].as_str().unwrap().to_owned();
    // The only live link is the one hookrelay builds; no markup gets through.
    assert_eq!(html.matches("<a ").count(), 1, "{html}");
    assert!(
        !html.contains("<script") && !html.contains("<img"),
        "{html}"
    );
    // "@all", "@here" (and "@room") reach nobody.
    let body = got[0].json()["body"].as_str().unwrap().to_owned();
    for text in [&html, &body] {
        assert!(!text.contains("@all") && !text.contains("@here"), "{text}");
    }
    app.stop().await;
}

#[tokio::test]
async fn ntfy_gets_a_json_publish_to_its_topic() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, &(destinations(&fake) + &route_to("nt"))).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    let got = fake.wait_for("/ntfy", 1, WAIT).await;
    assert_eq!(got[0].method, "POST");
    assert_eq!(got[0].path, "/ntfy");
    assert_eq!(
        got[0].headers["authorization"],
        format!("Bearer {NTFY_TOKEN}").as_str()
    );
    let m = got[0].json();
    assert_eq!(m["topic"], "soc-alerts");
    assert_eq!(m["title"], "Suspicious PowerShell download cradle");
    assert_eq!(m["priority"], 4);
    assert_eq!(m["tags"], json!(["hookrelay", "major"]));
    assert_eq!(
        m["click"],
        "https://app.sekoia.io/operations/alerts/ALEY4fqz8moo"
    );
    assert!(m["message"]
        .as_str()
        .unwrap()
        .contains("Urgency: Major (63)"));
    app.stop().await;
}

/// 429 and 5xx are retried; a 400 (an unknown routing key) is a dead
/// letter carrying PagerDuty's errors, and the key is nowhere in the logs
/// or the history.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_retries_429_and_5xx_and_dead_letters_a_400() {
    let fake = Fake::start().await;
    fake.script(
        "/pd/v2/enqueue",
        [
            Reply::status(429, r#"{"status":"throttle event","message":"Requests for this service are arriving too quickly"}"#),
            Reply::status(502, "bad gateway"),
            Reply::status(202, r#"{"status":"success","message":"Event processed"}"#),
            Reply::status(400, r#"{"status":"invalid event","message":"Event object is invalid","errors":["Invalid routing key"]}"#),
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&fake, dir.path(), &(destinations(&fake) + &route_to("pd")));
    let daemon = Daemon::spawn(&config).await;
    assert_eq!(daemon.post_unique(1).await, 202);
    fake.wait_for("/pd", 3, WAIT).await;
    assert_eq!(daemon.post_unique(2).await, 202);
    fake.wait_for("/pd", 4, WAIT).await;
    let deadline = std::time::Instant::now() + WAIT;
    let listed = loop {
        let (_, out, _) = tokio::task::spawn_blocking({
            let c = config.clone();
            move || cli(&["dead-letters", "list", "--config", c.to_str().unwrap()])
        })
        .await
        .unwrap();
        if out.contains("Invalid routing key") || std::time::Instant::now() > deadline {
            break out;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(listed.contains("Invalid routing key"), "{listed}");
    let m = daemon.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hookrelay_deliveries_total",
            &["destination=\"pd\"", "outcome=\"retry\""]
        ),
        2.0
    );
    for text in [daemon.logs(), listed, m] {
        assert!(!text.contains(ROUTING_KEY), "the routing key leaked");
    }
}

/// `hookrelay check` takes a room id of every version (room version 12's
/// have no server part) and names the key and the forms for a bad one.
#[tokio::test]
async fn check_takes_every_room_id_form_and_names_a_bad_one() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let with_room = |room: &str| {
        let extra = format!(
            "[destinations.mx]\nkind = \"matrix\"\nhomeserver = \"https://matrix.example.org\"\nroom_id = {}\naccess_token = \"{MATRIX_TOKEN}\"\n{}",
            serde_json::Value::from(room),
            route_to("mx")
        );
        write_config(&fake, dir.path(), &extra)
    };
    for room in [
        "!Ux1XbP_xbO_laXMihcxHZ2MdRFtKB7YqcITjFvOwWqs",
        "!soc:example.org",
        "!soc:matrix.example.org:8448",
    ] {
        let config = with_room(room);
        let (code, out, err) = cli(&["check", "--config", config.to_str().unwrap()]);
        assert_eq!(code, 0, "{room}: {out}{err}");
    }
    for (room, says) in [
        ("#soc:example.org", "not an alias"),
        (
            "Ux1XbP_xbO_laXMihcxHZ2MdRFtKB7YqcITjFvOwWqs",
            "starts with \"!\"",
        ),
        ("!Ux1XbP_xbO_laXMihcxHZ2MdRFtKB7YqcITjFvOwWqs ", "no spaces"),
        ("!soc:not a server", "no spaces"),
        ("!soc:exa_mple.org", "must be a server name"),
    ] {
        let config = with_room(room);
        let (code, _, err) = cli(&["check", "--config", config.to_str().unwrap()]);
        assert_eq!(code, 1, "{room:?}");
        assert!(
            err.contains("destinations.mx.room_id: ") && err.contains(says),
            "{room:?}: {err}"
        );
        assert!(err.contains("!<id>:<server>"), "the forms: {err}");
        assert!(!err.contains(MATRIX_TOKEN), "{err}");
    }
}

#[test]
fn check_names_the_keys_of_paging_destinations() {
    let fake_url = "http://127.0.0.1:9";
    let text = format!(
        r##"
[origins.o]
kind = "sekoia"
base_url = "{fake_url}"
api_key = "k"
[hooks.h]
id = "{HOOK_ID}"
origin = "o"
[destinations.pd]
kind = "pagerduty"
[destinations.mx]
kind = "matrix"
homeserver = "matrix.example.org"
room_id = "!r:example.org"
access_token = "t"
[destinations.mx2]
kind = "matrix"
homeserver = "https://matrix.example.org"
room_id = "#alias:example.org"
access_token = "t"
[destinations.og]
kind = "opsgenie"
api_key = "k"
url = "https://api.opsgenie.com"
[destinations.nt]
kind = "ntfy"
url = "https://ntfy.example.org/"
[destinations.sl]
kind = "slack"
url = "https://hooks.slack.com/x"
routing_key = "r"
[[routes]]
name = "r"
to = ["pd"]
"##
    );
    let errors = hookrelay::config::load_str(&text, &Default::default())
        .unwrap_err()
        .to_string();
    for expected in [
        "destinations.pd.routing_key: missing",
        "destinations.mx.homeserver: not a valid URL",
        "destinations.mx2.room_id: a room id, not an alias",
        "destinations.og.url: not for kind = \"opsgenie\"",
        "destinations.sl.routing_key: only for kind = \"pagerduty\"",
        "destinations.nt.url: the server and the topic",
    ] {
        assert!(errors.contains(expected), "{expected:?} not in:\n{errors}");
    }
}

/// A revoked Opsgenie key and a Matrix room the token cannot post to:
/// dead letters carrying the service's message, the keys nowhere in them.
#[tokio::test]
async fn rejections_are_dead_letters_with_the_services_message() {
    let fake = Fake::start().await;
    fake.script_prefix(
        "/og",
        [Reply::status(
            401,
            r#"{"message":"Key has expired","took":0.0,"requestId":"r"}"#,
        )],
    );
    fake.script_prefix(
        "/mx",
        [Reply::status(
            403,
            r#"{"errcode":"M_FORBIDDEN","error":"User @relay:example.org not in room"}"#,
        )],
    );
    let app = spawn_app(
        &fake,
        &(destinations(&fake) + "[[routes]]\nname = \"page\"\nto = [\"og\", \"mx\"]\n"),
    )
    .await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    wait_metric(
        &app,
        "hookrelay_deliveries_total",
        &["outcome=\"dead\""],
        2.0,
        WAIT,
    )
    .await;
    let dir = app.dir.clone();
    app.stop().await;
    let store = hookrelay::store::Store::open(&hookrelay::config::StoreConfig {
        path: dir.path().join("spool.db"),
        ..Default::default()
    })
    .unwrap();
    let dead = store.dead_letters(None).await.unwrap();
    let text = format!("{dead:?}");
    assert_eq!(dead.len(), 2, "{text}");
    assert!(text.contains("Key has expired"), "{text}");
    assert!(text.contains("not in room"), "{text}");
    for key in [GENIE_KEY, MATRIX_TOKEN] {
        assert!(!text.contains(key), "a key leaked into the history");
    }
}
