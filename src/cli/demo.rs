//! `hookrelay demo`: the real daemon on loopback, with a built-in stub
//! alert API and stub Teams / legacy Teams / Slack / Mattermost endpoints
//! that answer like the real services and print what they received, and a
//! stub Slack Web API where the alert's life becomes one thread (API mode).
//! Midway a case is opened and takes the alert: the case gets its own
//! thread, and the alert's thread is told which case took it.

use super::fail;
use crate::app::App;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

const ALERT: &str = include_str!("../../tests/fixtures/alert-full.json");
const CASE: &str = include_str!("../../tests/fixtures/case-full.json");
/// What is sent, the alert's status in the stub API meanwhile, and the
/// messages it makes beyond [`PER_EVENT`] (a case taking the alert also
/// replies in the alert's thread).
const EVENTS: &[(&str, &str, &str, usize)] = &[
    (
        "a new alert",
        include_str!("../../tests/fixtures/event-alert-created.json"),
        "Pending",
        0,
    ),
    (
        "a status change",
        include_str!("../../tests/fixtures/event-alert-updated-status.json"),
        "Acknowledged",
        0,
    ),
    (
        "a comment",
        include_str!("../../tests/fixtures/event-alert-comment-created.json"),
        "Acknowledged",
        0,
    ),
    (
        "a case opened",
        include_str!("../../tests/fixtures/event-case-created.json"),
        "Acknowledged",
        0,
    ),
    (
        "the case taking the alert",
        include_str!("../../tests/fixtures/event-case-alerts-updated.json"),
        "Acknowledged",
        1,
    ),
    (
        "the alert closed",
        include_str!("../../tests/fixtures/event-alert-updated-status.json"),
        "Closed",
        0,
    ),
];
/// Deliveries per event: four webhook destinations and the Slack thread.
const PER_EVENT: usize = 5;
const HOOK_ID: &str = "67a7472b-b43c-415d-b1ce-c135fb1dfb0e";

#[derive(Default)]
struct Stub {
    received: AtomicUsize,
    /// Destinations whose first payload was printed in full.
    shown: Mutex<HashMap<String, usize>>,
    /// The alert's status, as the stub API answers it.
    status: Mutex<String>,
    /// The stub Slack Web API's last message ts.
    ts: AtomicUsize,
    /// The first action link seen in a Teams card.
    action_link: Mutex<Option<String>>,
}

/// The stub's workflow change (`PATCH …/workflow`): the alert moves to
/// the status asked for.
async fn workflow(
    State(stub): State<Arc<Stub>>,
    Path(_uuid): Path<String>,
    body: String,
) -> (StatusCode, &'static str) {
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let name = crate::config::ActionKind::ALL
        .iter()
        .find(|a| v["action_uuid"] == a.status_uuid())
        .map(|a| a.status_name());
    match name {
        Some(name) => {
            say!(
                "── stub Sekoia.io API: the alert is now {name} (comment: {})",
                v["comment"]
            );
            *stub.status.lock().unwrap_or_else(|p| p.into_inner()) = name.to_owned();
            (StatusCode::OK, "{}")
        }
        None => (
            StatusCode::BAD_REQUEST,
            "{\"message\": \"unknown action_uuid\"}",
        ),
    }
}

async fn alert(
    State(stub): State<Arc<Stub>>,
    Path(uuid): Path<String>,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let mut v: serde_json::Value = serde_json::from_str(ALERT).expect("fixture is JSON");
    v["uuid"] = uuid.into();
    let status = stub
        .status
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    if !status.is_empty() {
        v["status"]["name"] = status.into();
    }
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        v.to_string(),
    )
}

/// The stub case API: the fixture case (it holds the demo's alert).
async fn case(Path(uuid): Path<String>) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let mut v: serde_json::Value = serde_json::from_str(CASE).expect("fixture is JSON");
    v["uuid"] = uuid.into();
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        v.to_string(),
    )
}

async fn chat(
    State(stub): State<Arc<Stub>>,
    Path(kind): Path<String>,
    body: String,
) -> (StatusCode, &'static str) {
    let (status, answer, label) = match kind.as_str() {
        "teams" => (
            StatusCode::ACCEPTED,
            "",
            "Microsoft Teams (Workflows, Adaptive Card)",
        ),
        "teams-legacy" => (
            StatusCode::OK,
            "1",
            "Microsoft Teams (legacy connector, MessageCard)",
        ),
        "slack" => (StatusCode::OK, "ok", "Slack"),
        _ => (StatusCode::OK, "ok", "Mattermost"),
    };
    let value: serde_json::Value =
        serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body.clone()));
    if kind == "teams" {
        let link = value
            .pointer("/attachments/0/content/actions")
            .and_then(|a| a.as_array())
            .and_then(|a| a.iter().find(|x| x["title"] == "Acknowledge"))
            .and_then(|x| x["url"].as_str());
        let mut seen = stub.action_link.lock().unwrap_or_else(|p| p.into_inner());
        if seen.is_none() {
            *seen = link.map(str::to_owned);
        }
    }
    let first = {
        let mut shown = stub.shown.lock().unwrap_or_else(|p| p.into_inner());
        let n = shown.entry(kind.clone()).or_insert(0);
        *n += 1;
        *n == 1
    };
    if first {
        say!(
            "\n── {label} received (answered {}) ──\n{}",
            status.as_u16(),
            serde_json::to_string_pretty(&value).unwrap_or_default()
        );
    } else {
        let text = value
            .get("text")
            .or_else(|| value.get("summary"))
            .and_then(|t| t.as_str())
            .map(str::to_owned)
            .or_else(|| {
                value
                    .pointer("/attachments/0/content/body/1/text")
                    .and_then(|t| t.as_str())
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        say!("── {label}: {}", crate::render::clean(&text, 120));
    }
    stub.received.fetch_add(1, Ordering::SeqCst);
    (status, answer)
}

/// The stub Slack Web API: `chat.postMessage` and `chat.update` answered
/// as Slack does, each call printed as a line of the thread.
async fn slack_api(
    State(stub): State<Arc<Stub>>,
    Path(method): Path<String>,
    body: String,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let first_line = |v: &serde_json::Value| {
        let text = v
            .pointer("/attachments/0/blocks/0/text/text")
            .or_else(|| v.get("text"))
            .and_then(|t| t.as_str())
            .unwrap_or_default();
        crate::render::clean(&text.replace('\n', " · "), 110)
    };
    let answer = match method.as_str() {
        "chat.update" => {
            let ts = v["ts"].as_str().unwrap_or_default();
            say!("── Slack API: root {ts} edited → {}", first_line(&v));
            serde_json::json!({"ok": true, "channel": v["channel"], "ts": ts})
        }
        "chat.postMessage" => {
            let n = stub.ts.fetch_add(1, Ordering::SeqCst) + 1;
            let ts = format!("1700000000.{n:06}");
            match v["thread_ts"].as_str() {
                None => say!("── Slack API: new root {ts} → {}", first_line(&v)),
                Some(root) => say!(
                    "── Slack API: reply in thread {root}{} → {}",
                    if v["reply_broadcast"] == true {
                        " (also shown in the channel)"
                    } else {
                        ""
                    },
                    first_line(&v)
                ),
            }
            stub.received.fetch_add(1, Ordering::SeqCst);
            serde_json::json!({"ok": true, "channel": v["channel"], "ts": ts})
        }
        _ => serde_json::json!({"ok": false, "error": "unknown_method"}),
    };
    (
        StatusCode::OK,
        [("content-type", "application/json")],
        answer.to_string(),
    )
}

pub async fn run(port: u16, once: bool) -> ExitCode {
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "warn");
    }
    crate::telemetry::init_logging(crate::telemetry::LogFormat::Text);

    let (stub, stub_addr) = match start_stubs().await {
        Ok(x) => x,
        Err(code) => return code,
    };
    let dir = match tempfile::Builder::new().prefix("hookrelay-demo").tempdir() {
        Ok(d) => d,
        Err(e) => {
            return fail(format!(
                "cannot create a temporary directory for the demo spool: {e}"
            ))
        }
    };
    let stub_url = format!("http://{stub_addr}");
    // Action links name the listener, so its port is known before it binds.
    let port = if port == 0 {
        match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
            Ok(a) => a.port(),
            Err(e) => return fail(format!("cannot find a free port for the demo: {e}")),
        }
    } else {
        port
    };
    let text = demo_config(port, &stub_url, &dir.path().join("demo.db"));
    let config = match crate::config::load_str(&text, &HashMap::new()) {
        Ok(c) => c,
        Err(e) => return fail(format!("demo configuration: {e}")),
    };
    let app = match App::build(config).await {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let addr = app.public_addr();
    let admin = app.admin_addr();
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(app.run(shutdown.clone()));
    let hook_url = format!("http://{addr}/hooks/{HOOK_ID}");
    say!("hookrelay demo: the daemon listens on {addr}; a stub Sekoia.io API and stub chat services run on {stub_addr}.");

    let client = crate::http::client();
    let expected = match send_events(&client, &hook_url, &stub).await {
        Ok(n) => n,
        Err(code) => return code,
    };
    let got = stub.received.load(Ordering::SeqCst);
    say!("\n{got} of {expected} messages delivered.");
    // The console shows the same from the spool: each event's journey.
    let listed = console_events(&client, admin).await;
    say!("The web console lists {listed} events: http://{admin}/console/ (each event's journey and why each route matched).");
    let acted = act_on_alert(&client, &hook_url, &stub).await;
    if let Err(e) = &acted {
        say!("the action link did not work: {e}");
    }
    if once {
        shutdown.cancel();
        let _ = running.await;
        return if got == expected && acted.is_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        };
    }
    say!(
        "\nTry your own (Ctrl-C to stop):\n  curl -i -X POST {hook_url} -H 'content-type: application/json' -d '{}'\n\
         Send it twice: the second is a sender retry, answered 202 with the same id and not delivered again.\n\
         Change \"created\" to \"updated\", or break the JSON, and watch the answer.\n\
         The slack-thread destination shows API mode: one root per alert and per case, kept current, their history as replies;\n\
         the alert's thread says which case took it.\n\
         Open http://{admin}/console/ in a browser: the overview, each event's journey, dead letters, the route tester.",
        EVENTS[0].1.split_whitespace().collect::<Vec<_>>().join(" ").replace('\'', "")
    );
    let _ = tokio::signal::ctrl_c().await;
    say!("\nstopping…");
    shutdown.cancel();
    let _ = running.await;
    ExitCode::SUCCESS
}

/// The stub Sekoia.io API and chat services, on a port of their own.
async fn start_stubs() -> Result<(Arc<Stub>, std::net::SocketAddr), ExitCode> {
    let stub = Arc::new(Stub::default());
    let stub_router = Router::new()
        .route("/api/v1/sic/alerts/{uuid}", get(alert))
        .route("/api/v1/sic/cases/{uuid}", get(case))
        .route(
            "/api/v1/sic/alerts/{uuid}/workflow",
            axum::routing::patch(workflow),
        )
        .route("/chat/{kind}", post(chat))
        .route("/slack-api/{method}", post(slack_api))
        .with_state(stub.clone());
    let stub_listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => return Err(fail(format!("cannot bind the demo's stub services: {e}"))),
    };
    let stub_addr = stub_listener
        .local_addr()
        .expect("bound listener has an address");
    tokio::spawn(async move { axum::serve(stub_listener, stub_router).await });

    Ok((stub, stub_addr))
}

/// The demo's configuration: every chat kind at the stubs, a threaded
/// Slack, action buttons, the console.
fn demo_config(port: u16, stub_url: &str, db: &std::path::Path) -> String {
    // A fresh actions secret per run: links from an earlier demo do not work.
    let actions_secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    format!(
        r#"
        [server]
        listen = "127.0.0.1:{port}"
        [admin]
        listen = "127.0.0.1:0"
        [store]
        path = "{db}"
        sync = "normal"
        [origins.sekoia]
        kind = "sekoia"
        base_url = "{stub_url}/api"
        api_key = "demo-api-key"
        [hooks.soc]
        id = "{HOOK_ID}"
        origin = "sekoia"
        [destinations.teams]
        kind = "teams"
        url = "{stub_url}/chat/teams"
        [destinations.teams-legacy]
        kind = "teams-legacy"
        url = "{stub_url}/chat/teams-legacy"
        [destinations.slack]
        kind = "slack"
        url = "{stub_url}/chat/slack"
        [destinations.mattermost]
        kind = "mattermost"
        url = "{stub_url}/chat/mattermost"
        [destinations.slack-thread]
        kind = "slack"
        token = "xoxb-demo-token"
        channel = "C0DEMOSOC"
        api_url = "{stub_url}/slack-api"
        [actions]
        public_url = "http://127.0.0.1:{port}"
        secret = "{actions_secret}"
        buttons = ["acknowledge", "close"]
        [console]
        enabled = true
        [[routes]]
        name = "everything"
        to = ["teams", "teams-legacy", "slack", "mattermost", "slack-thread"]
        "#,
        db = db.display(),
    )
}

/// Sends the demo's events one by one, each message printed before the
/// next is sent: how many messages the accepted events should produce.
async fn send_events(
    client: &reqwest::Client,
    hook_url: &str,
    stub: &Stub,
) -> Result<usize, ExitCode> {
    let mut expected = 0;
    for (what, body, status, extra) in EVENTS {
        *stub.status.lock().unwrap_or_else(|p| p.into_inner()) = (*status).to_owned();
        let closing = body.replace("\"Acknowledged\"", &format!("\"{status}\""));
        let body = if *status == "Closed" { &closing } else { *body };
        match client
            .post(hook_url)
            .header("content-type", "application/json")
            .body(body.to_owned())
            .send()
            .await
        {
            Ok(r) => {
                let status = r.status();
                let answer = r.text().await.unwrap_or_default();
                say!(
                    "\nsent {what}: POST /hooks/{HOOK_ID} → {} {}",
                    status.as_u16(),
                    answer.trim()
                );
                if status.as_u16() == 202 {
                    expected += PER_EVENT + extra;
                }
            }
            Err(e) => return Err(fail(format!("cannot reach the demo daemon: {e}"))),
        }
        // Let this event's messages print before the next is sent.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while stub.received.load(Ordering::SeqCst) < expected
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(expected)
}

/// How many events the console lists (it shows the same from the spool).
async fn console_events(client: &reqwest::Client, admin: std::net::SocketAddr) -> usize {
    match client
        .get(format!("http://{admin}/console/events"))
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r
            .text()
            .await
            .map(|page| page.matches("<tr data-id=").count())
            .unwrap_or(0),
        _ => 0,
    }
}

/// Acts on the demo alert the way an analyst would: the action link of
/// the first message (reopened, since the alert was closed meanwhile),
/// its confirmation page, then the form.
async fn act_on_alert(client: &reqwest::Client, hook_url: &str, stub: &Stub) -> Result<(), String> {
    *stub.status.lock().unwrap_or_else(|p| p.into_inner()) = "Pending".into();
    let link = stub
        .action_link
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .ok_or("no message carried an action link")?;
    let _ = hook_url;
    say!("\nAn action link from the Teams card (the alert was reopened meanwhile):\n  {link}");
    let page = client.get(&link).send().await.map_err(|e| e.to_string())?;
    let html = page.text().await.map_err(|e| e.to_string())?;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .ok_or("the page has no form")?;
    say!("GET shows the alert and a form (nothing changes yet); POST confirms:");
    let done = client
        .post(&link)
        .form(&[("csrf", csrf), ("comment", "seen in the demo")])
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = done.status();
    let html = done.text().await.map_err(|e| e.to_string())?;
    let heading = html
        .split("<h1")
        .nth(1)
        .and_then(|r| r.split('>').nth(1))
        .and_then(|r| r.split('<').next())
        .unwrap_or_default();
    say!("→ {} {heading}", status.as_u16());
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {status}"))
    }
}
