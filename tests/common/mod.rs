//! Test harness: a fake upstream (alert API + chat services) on loopback
//! that speaks the real formats and error codes, and helpers that start the
//! real daemon in-process (`spawn_app`) or as the built binary (`Daemon`).
//! `pg` starts a real PostgreSQL server for the replica tests, `synapse` a
//! real Matrix homeserver for the Matrix tests.
#![allow(dead_code)]

pub mod chat;
pub mod pg;
pub mod synapse;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hookrelay::app::App;
use serde_json::Value;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub const HOOK_ID: &str = "67a7472b-b43c-415d-b1ce-c135fb1dfb0e";
pub const ALERT_UUID: &str = "5696845f-9ecf-4431-9f0f-48ee0ee2eff1";
pub const API_KEY: &str = "test-api-key-SIC_READ_ALERT";

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

pub fn fixture_json(name: &str) -> Value {
    serde_json::from_slice(&fixture(name)).unwrap()
}

/// A created-alert event whose body is unique (so sender-retry dedup does
/// not merge it) but which is about `alert_uuid`.
pub fn unique_event(n: usize, alert_uuid: &str) -> String {
    let mut v = fixture_json("event-alert-created.json");
    v["attributes"]["uuid"] = alert_uuid.into();
    v["metadata"]["created_at"] = format!(
        "2022-01-14T{:02}:{:02}:{:02}+00:00",
        n / 3600 % 24,
        n / 60 % 60,
        n % 60
    )
    .into();
    v.to_string()
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub retry_after: Option<String>,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.into(),
            retry_after: None,
            delay: Duration::ZERO,
        }
    }
    pub fn retry_after(mut self, v: &str) -> Reply {
        self.retry_after = Some(v.into());
        self
    }
    pub fn delay(mut self, d: Duration) -> Reply {
        self.delay = d;
        self
    }
}

/// What the fake received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: std::time::Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("body is JSON")
    }
}

#[derive(Default)]
struct FakeState {
    /// Answers to give next, per exact path, in order.
    script: Mutex<HashMap<String, VecDeque<Reply>>>,
    /// Answer for a path once its script is used up (instead of the built-in default).
    fallback: Mutex<HashMap<String, Reply>>,
    /// Answers to give next to any path starting with a prefix, in order
    /// (after the exact-path script).
    prefix_script: Mutex<Vec<(String, VecDeque<Reply>)>>,
    /// Alert objects served per uuid (default: alert-full with that uuid).
    alerts: Mutex<HashMap<String, Value>>,
    /// Asset objects served per uuid (default: 404).
    assets: Mutex<HashMap<String, Value>>,
    /// Case objects served per uuid (default: case-full with that uuid).
    cases: Mutex<HashMap<String, Value>>,
    /// Custom statuses, priorities and verdicts per path
    /// (`custom_statuses/{uuid}`, …; default: 404).
    names: Mutex<HashMap<String, Value>>,
    received: Mutex<Vec<Received>>,
    /// Paths of requests that arrived (recorded before any scripted delay).
    started: Mutex<Vec<String>>,
    changed: Notify,
}

/// The alert API (`/api/v1/sic/alerts/{uuid}`) and chat services (`/teams…`
/// → 202 empty, `/legacy…` → 200 `1`, `/slack…` and `/mattermost…` → 200 `ok`).
#[derive(Clone)]
pub struct Fake {
    pub addr: SocketAddr,
    state: Arc<FakeState>,
}

async fn handle(
    State(state): State<Arc<FakeState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    state.started.lock().unwrap().push(path.clone());
    state.changed.notify_waiters();
    let scripted = state
        .script
        .lock()
        .unwrap()
        .get_mut(&path)
        .and_then(|q| q.pop_front());
    let scripted = scripted.or_else(|| {
        state
            .prefix_script
            .lock()
            .unwrap()
            .iter_mut()
            .find(|(prefix, q)| path.starts_with(prefix.as_str()) && !q.is_empty())
            .and_then(|(_, q)| q.pop_front())
    });
    let reply = scripted.or_else(|| state.fallback.lock().unwrap().get(&path).cloned());
    let reply = match reply {
        Some(r) => r,
        // Sekoia.io's workflow change: the alert moves to that status.
        None if method == Method::PATCH
            && path.starts_with("/api/v1/sic/alerts/")
            && path.ends_with("/workflow") =>
        {
            let uuid = path
                .trim_start_matches("/api/v1/sic/alerts/")
                .trim_end_matches("/workflow")
                .to_owned();
            let wanted: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let name = match wanted["action_uuid"].as_str().unwrap_or_default() {
                "8f206505-af6d-433e-93f4-775d46dc7d0f" => "Acknowledged",
                "1f2f88d5-ff5b-48bf-bbbc-00c2fff82d9f" => "Ongoing",
                "1738b1c1-767d-489e-bada-19176621a007" => "Closed",
                "4f68da89-38e0-4703-a6ab-652f02bdf24e" => "Rejected",
                _ => "",
            };
            if name.is_empty() {
                Reply::status(400, r#"{"message": "unknown action_uuid"}"#)
            } else {
                let mut alerts = state.alerts.lock().unwrap();
                let alert = alerts.entry(uuid.clone()).or_insert_with(|| {
                    let mut v = fixture_json("alert-full.json");
                    v["uuid"] = uuid.clone().into();
                    v
                });
                alert["status"] = serde_json::json!({"uuid": wanted["action_uuid"], "name": name});
                Reply::status(200, "{}")
            }
        }
        // Sekoia.io's asset API: what `set_asset` registered, else 404.
        None if path.starts_with("/api/v2/asset-management/assets/") => {
            let uuid = path.trim_start_matches("/api/v2/asset-management/assets/");
            match state.assets.lock().unwrap().get(uuid) {
                Some(asset) => Reply::status(200, &asset.to_string()),
                None => Reply::status(404, r#"{"message": "Asset not found"}"#),
            }
        }
        // Sekoia.io's case API and the names of its statuses, priorities
        // and verdicts.
        None if path.starts_with("/api/v1/sic/cases/") => {
            let uuid = path.trim_start_matches("/api/v1/sic/cases/").to_owned();
            let case = state
                .cases
                .lock()
                .unwrap()
                .get(&uuid)
                .cloned()
                .unwrap_or_else(|| {
                    let mut v = fixture_json("case-full.json");
                    v["uuid"] = uuid.clone().into();
                    v
                });
            Reply::status(200, &case.to_string())
        }
        None if path.starts_with("/api/v1/sic/custom_") => {
            let key = path.trim_start_matches("/api/v1/sic/");
            match state.names.lock().unwrap().get(key) {
                Some(v) => Reply::status(200, &v.to_string()),
                None => Reply::status(404, r#"{"message": "Not found"}"#),
            }
        }
        None if path.starts_with("/api/v1/sic/alerts/") => {
            let uuid = path.trim_start_matches("/api/v1/sic/alerts/").to_owned();
            let alert = state
                .alerts
                .lock()
                .unwrap()
                .get(&uuid)
                .cloned()
                .unwrap_or_else(|| {
                    let mut v = fixture_json("alert-full.json");
                    v["uuid"] = uuid.clone().into();
                    v
                });
            Reply::status(200, &alert.to_string())
        }
        None if path.starts_with("/teams") => Reply::status(202, ""),
        None if path.starts_with("/discord") => Reply::status(204, ""),
        None if path.starts_with("/legacy") => Reply::status(200, "1"),
        None => Reply::status(200, "ok"),
    };
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    {
        state.received.lock().unwrap().push(Received {
            method,
            path,
            query: uri.query().map(str::to_owned),
            headers,
            body,
            at: std::time::Instant::now(),
        });
    }
    state.changed.notify_waiters();
    let mut resp = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    if let Some(ra) = reply.retry_after {
        resp.headers_mut()
            .insert("retry-after", ra.parse().unwrap());
    }
    resp
}

impl Fake {
    pub async fn start() -> Fake {
        let state = Arc::new(FakeState::default());
        let router = axum::Router::new()
            .fallback(handle)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Fake { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn script(&self, path: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .script
            .lock()
            .unwrap()
            .entry(path.into())
            .or_default()
            .extend(replies);
    }

    /// Like [`Fake::script`], for every path starting with `prefix`.
    pub fn script_prefix(&self, prefix: &str, replies: impl IntoIterator<Item = Reply>) {
        self.state
            .prefix_script
            .lock()
            .unwrap()
            .push((prefix.into(), replies.into_iter().collect()));
    }

    pub fn always(&self, path: &str, reply: Reply) {
        self.state
            .fallback
            .lock()
            .unwrap()
            .insert(path.into(), reply);
    }

    pub fn clear_always(&self, path: &str) {
        self.state.fallback.lock().unwrap().remove(path);
    }

    /// Serves an asset (`GET /api/v2/asset-management/assets/{uuid}`).
    pub fn set_asset(&self, uuid: &str, name: &str, criticality: u32) {
        let asset = serde_json::json!({
            "uuid": uuid, "name": name, "type": "host", "criticality": criticality,
            "community_uuid": "d6cea089-0f36-46c4-a10a-0e4c2e20fb10", "atoms": {"hostname": [name]},
        });
        self.state.assets.lock().unwrap().insert(uuid.into(), asset);
    }

    /// Serves a case (`GET /api/v1/sic/cases/{uuid}`).
    pub fn set_case(&self, uuid: &str, case: Value) {
        self.state.cases.lock().unwrap().insert(uuid.into(), case);
    }

    /// Serves a custom status, priority or verdict: `what` is
    /// `custom_statuses`, `custom_priorities` or `custom_verdicts`.
    pub fn set_name(&self, what: &str, uuid: &str, label: &str) {
        let v = serde_json::json!({
            "uuid": uuid, "community_uuid": "d6cea089-0f36-46c4-a10a-0e4c2e20fb10",
            "level": 1, "label": label, "description": label, "stage": "in_progress",
            "color": "#808080", "created_at": "2024-01-10T08:00:00Z",
            "created_by": "0b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9", "created_by_type": "avatar",
        });
        self.state
            .names
            .lock()
            .unwrap()
            .insert(format!("{what}/{uuid}"), v);
    }

    pub fn set_alert(&self, uuid: &str, alert: Value) {
        self.state.alerts.lock().unwrap().insert(uuid.into(), alert);
    }

    pub fn received(&self, path: &str) -> Vec<Received> {
        self.state
            .received
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path.starts_with(path))
            .cloned()
            .collect()
    }

    /// Waits until `n` requests to paths starting with `path` have arrived
    /// (it may still be waiting on its scripted delay).
    pub async fn wait_started(&self, path: &str, n: usize, timeout: Duration) {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.changed.notified();
            if self
                .state
                .started
                .lock()
                .unwrap()
                .iter()
                .filter(|p| p.starts_with(path))
                .count()
                >= n
            {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for a request to {path}");
            }
        }
    }

    /// Waits until at least `n` requests to paths starting with `path`
    /// arrived, or panics after `timeout`.
    pub async fn wait_for(&self, path: &str, n: usize, timeout: Duration) -> Vec<Received> {
        self.wait_until(path, timeout, |got| got.len() >= n).await
    }

    /// Waits until at least `n` different bodies arrived at `path`.
    pub async fn wait_distinct(&self, path: &str, n: usize, timeout: Duration) -> Vec<Received> {
        // Counting first keeps this cheap while requests are still coming.
        self.wait_until(path, timeout, |got| {
            got.len() >= n
                && got
                    .iter()
                    .map(|r| &r.body)
                    .collect::<std::collections::HashSet<_>>()
                    .len()
                    >= n
        })
        .await
    }

    async fn wait_until(
        &self,
        path: &str,
        timeout: Duration,
        done: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.state.changed.notified();
            let got = self.received(path);
            if done(&got) {
                return got;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "timed out waiting at {path}; got {} requests",
                    self.received(path).len()
                );
            }
        }
    }
}

/// A config with one hook, one origin on the fake and a destination of
/// each kind; `extra` adds routes and overrides.
pub fn config_text(fake: &Fake, db: &Path, extra: &str) -> String {
    format!(
        r#"
[server]
listen = "127.0.0.1:0"
[admin]
listen = "127.0.0.1:0"
[store]
path = "{db}"
sync = "normal"
[delivery]
initial_backoff = "20ms"
max_backoff = "200ms"
[origins.sekoia]
kind = "sekoia"
base_url = "{api}"
api_key = "{API_KEY}"
enrich_deadline = "1s"
[hooks.soc]
id = "{HOOK_ID}"
origin = "sekoia"
[destinations.teams]
kind = "teams"
url = "{teams}"
[destinations.legacy]
kind = "teams-legacy"
url = "{legacy}"
[destinations.slack]
kind = "slack"
url = "{slack}"
[destinations.mattermost]
kind = "mattermost"
url = "{mattermost}"
{extra}
"#,
        db = db.display(),
        api = fake.url("/api"),
        teams = fake.url("/teams/workflows/secret-token"),
        legacy = fake.url("/legacy/webhookb2/secret-token"),
        slack = fake.url("/slack/services/T000/B000/secret-token"),
        mattermost = fake.url("/mattermost/hooks/secret-token"),
    )
}

pub const ROUTE_ALL: &str = r#"
[[routes]]
name = "all"
to = ["teams", "legacy", "slack", "mattermost"]
"#;

/// Writes the config of [`config_text`] to `dir/hookrelay.toml` (spool in
/// `dir/spool.db`) for the binary and the CLI.
pub fn write_config(fake: &Fake, dir: &Path, extra: &str) -> PathBuf {
    let path = dir.join("hookrelay.toml");
    std::fs::write(&path, config_text(fake, &dir.join("spool.db"), extra)).unwrap();
    path
}

/// Replaces `from` with `to` in a config file written by [`write_config`].
pub fn edit_config(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from:?} not in the config");
    std::fs::write(path, text.replace(from, to)).unwrap();
}

/// Runs a CLI command to completion: (exit code, stdout, stderr).
pub fn cli(args: &[&str]) -> (i32, String, String) {
    let out = std::process::Command::new(bin())
        .args(args)
        .env_remove("HOOKRELAY_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The daemon running in this test process.
pub struct TestApp {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub dir: Arc<tempfile::TempDir>,
    pub client: reqwest::Client,
    /// Hands the running app a new configuration, like SIGHUP does.
    pub reloader: tokio::sync::mpsc::UnboundedSender<hookrelay::app::ReloadRequest>,
    cancel: CancellationToken,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app(fake: &Fake, extra: &str) -> TestApp {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    spawn_app_in(fake, extra, dir).await
}

pub async fn spawn_app_in(fake: &Fake, extra: &str, dir: Arc<tempfile::TempDir>) -> TestApp {
    spawn_app_with(fake, extra, dir, &[]).await
}

/// Like [`spawn_app`], with the configuration read from a file in the
/// app's directory (as the daemon does: reloads re-read it).
pub async fn spawn_app_file(fake: &Fake, extra: &str) -> (TestApp, PathBuf) {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let path = write_config(fake, dir.path(), extra);
    let config = hookrelay::config::load_file(&path).unwrap_or_else(|e| panic!("{e}"));
    (start_app(config, dir).await, path)
}

async fn start_app(config: hookrelay::config::Config, dir: Arc<tempfile::TempDir>) -> TestApp {
    let app = App::build(config).await.unwrap();
    let cancel = CancellationToken::new();
    let (addr, admin) = (app.public_addr(), app.admin_addr());
    let reloader = app.reloader();
    let task = tokio::spawn(app.run(cancel.clone()));
    TestApp {
        addr,
        admin,
        dir,
        client: reqwest::Client::new(),
        reloader,
        cancel,
        task: Some(task),
    }
}

/// Like [`spawn_app`], with `HOOKRELAY_*` overrides (e.g. store settings).
pub async fn spawn_app_with(
    fake: &Fake,
    extra: &str,
    dir: Arc<tempfile::TempDir>,
    env: &[(&str, &str)],
) -> TestApp {
    let text = config_text(fake, &dir.path().join("spool.db"), extra);
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let config = hookrelay::config::load_str(&text, &env).unwrap_or_else(|e| panic!("{e}"));
    start_app(config, dir).await
}

impl TestApp {
    pub fn hook_url(&self) -> String {
        format!("http://{}/hooks/{HOOK_ID}", self.addr)
    }

    pub async fn post(&self, body: impl Into<reqwest::Body>) -> (u16, Value) {
        let r = self
            .client
            .post(self.hook_url())
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let body = r.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// Posts `n` events, `concurrency` at a time, each body made by
    /// `body(i)`; asserts every answer is 202.
    pub async fn post_concurrently(&self, n: usize, concurrency: usize, body: fn(usize) -> String) {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut senders = Vec::new();
        for _ in 0..concurrency {
            let (client, url, next) = (self.client.clone(), self.hook_url(), next.clone());
            senders.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= n {
                        return;
                    }
                    let r = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body(i))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status().as_u16(), 202, "event {i}");
                }
            }));
        }
        for s in senders {
            s.await.unwrap();
        }
    }

    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Starts a graceful shutdown without waiting for it.
    pub fn begin_stop(&self) {
        self.cancel.cancel();
    }

    /// Graceful shutdown; waits for the daemon to stop.
    pub async fn stop(mut self) {
        self.cancel.cancel();
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

/// The value of a metric line (`name{labels} value`) whose name and labels
/// contain all of `parts`; 0 when absent.
pub fn metric(text: &str, name: &str, parts: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| parts.iter().all(|p| l.contains(p)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The built binary, run as a child process.
pub struct Daemon {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub stderr: Arc<Mutex<Vec<String>>>,
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hookrelay"))
}

impl Daemon {
    /// Starts `hookrelay run --config <path>` and waits for it to listen.
    pub fn start(config: &Path) -> Daemon {
        Self::start_with_env(config, &[])
    }

    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Daemon {
        use std::io::BufRead;
        let mut child = std::process::Command::new(bin())
            .args(["run", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .env_remove("HOOKRELAY_CONFIG")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("hookrelay is listening") {
                    let v: Value = serde_json::from_str(&line).unwrap();
                    let _ = tx.send((
                        v["listen"].as_str().unwrap().to_owned(),
                        v["admin"].as_str().unwrap().to_owned(),
                    ));
                }
                sink.lock().unwrap().push(line);
            }
        });
        let (addr, admin) = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("daemon did not start: {:?}", lines.lock().unwrap()));
        Daemon {
            child,
            addr: addr.parse().unwrap(),
            admin: admin.parse().unwrap(),
            stderr: lines,
        }
    }

    pub fn hook_url(&self) -> String {
        format!("http://{}/hooks/{HOOK_ID}", self.addr)
    }

    /// Posts event `n` of [`unique_event`] about [`ALERT_UUID`]; the status.
    pub async fn post_unique(&self, n: usize) -> u16 {
        reqwest::Client::new()
            .post(self.hook_url())
            .header("content-type", "application/json")
            .body(unique_event(n, ALERT_UUID))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// [`Daemon::start`] from async tests, off the runtime's threads.
    pub async fn spawn(config: &Path) -> Daemon {
        let config = config.to_path_buf();
        tokio::task::spawn_blocking(move || Daemon::start(&config))
            .await
            .unwrap()
    }

    /// The admin listener's Prometheus text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.admin))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Sends a signal (SIGTERM, SIGHUP, …) to the daemon.
    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on the pid of a child we own and have not reaped.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        assert_eq!(rc, 0, "kill({sig}) failed");
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real SMTP server on loopback (`tests/support/smtp_sink.py`, Python's
/// standard `smtpd`) that keeps what it accepts; `replies` answer the
/// first messages (e.g. `"451 4.3.0 Try again later"`) instead of 250.
pub struct SmtpSink {
    child: std::process::Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

/// One message the SMTP sink accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// The DATA as received (headers and MIME body), with `\n` line ends.
    pub data: String,
}

impl SmtpSink {
    pub fn start(replies: &[&str]) -> SmtpSink {
        use std::io::BufRead;
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = std::process::Command::new("python3")
            .arg(script)
            .arg(dir.path())
            .args(replies)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the SMTP sink (python3 {script}): {e}"));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().unwrap_or_else(|_| {
            panic!("the SMTP sink did not start (needs python3 with the smtpd module): {line:?}")
        });
        SmtpSink { child, port, dir }
    }

    /// What has been accepted so far, in order.
    pub fn mails(&self) -> Vec<Mail> {
        let mut out = Vec::new();
        for n in 1.. {
            let envelope = self.dir.path().join(format!("{n}.json"));
            let Ok(text) = std::fs::read_to_string(&envelope) else {
                break;
            };
            let v: Value = serde_json::from_str(&text).unwrap();
            out.push(Mail {
                mail_from: v["mail_from"].as_str().unwrap().to_owned(),
                rcpt_tos: serde_json::from_value(v["rcpt_tos"].clone()).unwrap(),
                data: std::fs::read_to_string(self.dir.path().join(format!("{n}.eml")))
                    .unwrap()
                    .replace("\r\n", "\n"),
            });
        }
        out
    }

    /// Waits (polling, with a deadline) until `n` messages arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let mails = self.mails();
            if mails.len() >= n {
                return mails;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} of {n} e-mails after {timeout:?}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls the in-process app's metrics until `name{parts}` reaches `want`.
pub async fn wait_metric(app: &TestApp, name: &str, parts: &[&str], want: f64, timeout: Duration) {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let m = app.metrics().await;
        let got = metric(&m, name, parts);
        if got >= want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name}{parts:?} = {got}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
