//! A real Matrix homeserver for the tests: Synapse (`matrix-synapse` from
//! PyPI, pinned in `scripts/test.sh`, installed into `target/test-venv`),
//! one throw-away server per test binary, started on first use on a free
//! loopback port in a temporary directory: SQLite, plain HTTP, the client
//! API only (no federation listener, federation to nobody), registration
//! closed except through the admin API's shared secret, rate limits raised
//! so that tests are not throttled, no presence, URL previews or stats.
//! Each test registers its own users and creates its own room, so tests
//! share the server and still run in parallel.
//!
//! The Python that has Synapse is `SYNAPSE_PYTHON` (set by
//! `scripts/test.sh`), else `target/test-venv/bin/python`. When Synapse is
//! not installed the tests that need it are skipped with a loud message —
//! unless `TESTS_REQUIRE_SYNAPSE=1` (set by `scripts/test.sh`), where that
//! is a failure. The server is killed with the test process (parent-death
//! signal), so nothing is left running.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// The server name user ids end with (`@bot1:localhost`).
pub const SERVER_NAME: &str = "localhost";
/// How long Synapse may take to answer `/_matrix/client/versions` after it
/// was started (it creates its SQLite schema first).
const START_DEADLINE: Duration = Duration::from_secs(90);

pub struct Synapse {
    /// `http://127.0.0.1:<port>`: the client-server API.
    pub url: String,
    pub addr: SocketAddr,
    /// Its directory (config, database, log), kept while it runs.
    pub dir: PathBuf,
    /// How long it took to start, for the suite's timing notes.
    pub started_in: Duration,
    /// The Python interpreter that runs it (also used to compute the
    /// shared-secret registration's HMAC-SHA1).
    python: PathBuf,
    shared_secret: String,
}

static SERVER: OnceLock<Result<Synapse, String>> = OnceLock::new();
static NEXT_USER: AtomicUsize = AtomicUsize::new(1);

/// The shared server, or `None` (after saying why) when the tests that
/// need it should be skipped.
pub fn server() -> Option<&'static Synapse> {
    match SERVER.get_or_init(start) {
        Ok(s) => Some(s),
        Err(why) => {
            if std::env::var("TESTS_REQUIRE_SYNAPSE").as_deref() == Ok("1") {
                panic!("Synapse is required (TESTS_REQUIRE_SYNAPSE=1) but cannot start: {why}");
            }
            eprintln!(
                "\n*** SKIPPED: this test needs a Matrix homeserver (Synapse) and none could be started: {why}\n\
                 *** Run scripts/test.sh (it installs matrix-synapse into target/test-venv), or set SYNAPSE_PYTHON.\n"
            );
            None
        }
    }
}

/// [`server`] from async tests: starting it blocks for seconds.
pub async fn server_async() -> Option<&'static Synapse> {
    tokio::task::spawn_blocking(server).await.unwrap()
}

fn python() -> Result<PathBuf, String> {
    let python = match std::env::var_os("SYNAPSE_PYTHON") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv/bin/python"),
    };
    if !python.exists() {
        return Err(format!(
            "no Python at {} (SYNAPSE_PYTHON)",
            python.display()
        ));
    }
    let out = Command::new(&python)
        .args(["-c", "import synapse; print(synapse.__version__)"])
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} has no synapse module (pip install matrix-synapse)",
            python.display()
        ));
    }
    Ok(python)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Removes server directories left by earlier test runs (their server is
/// gone: its pid file names no live process).
fn remove_stale() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let path = e.path();
        let ours = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("hookrelay-synapse-"));
        if !ours {
            continue;
        }
        let pid = std::fs::read_to_string(path.join("homeserver.pid"))
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok());
        // SAFETY: kill with signal 0 only checks that the process exists.
        let alive = match pid {
            Some(p) => (unsafe { libc::kill(p, 0) }) == 0,
            None => e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age < Duration::from_secs(600)),
        };
        if !alive {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// A rate limit no test reaches.
const UNLIMITED: &str = "{per_second: 100000, burst_count: 100000}";

fn config(dir: &Path, port: u16, shared_secret: &str) -> String {
    let d = dir.display();
    format!(
        r#"server_name: "{SERVER_NAME}"
pid_file: "{d}/homeserver.pid"
listeners:
  - port: {port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: "{d}/homeserver.db"
media_store_path: "{d}/media"
signing_key_path: "{d}/signing.key"
report_stats: false
enable_metrics: false
enable_registration: false
registration_shared_secret: "{shared_secret}"
macaroon_secret_key: "{shared_secret}-macaroon"
form_secret: "{shared_secret}-form"
suppress_key_server_warning: true
trusted_key_servers: []
federation_domain_whitelist: []
presence:
  enabled: false
url_preview_enabled: false
# A repeated /sync must show what changed since (counts polled by tests).
caches:
  sync_response_cache_duration: 0
rc_message: {UNLIMITED}
rc_registration: {UNLIMITED}
rc_login:
  address: {UNLIMITED}
  account: {UNLIMITED}
  failed_attempts: {UNLIMITED}
rc_joins:
  local: {UNLIMITED}
  remote: {UNLIMITED}
rc_invites:
  per_room: {UNLIMITED}
  per_user: {UNLIMITED}
  per_issuer: {UNLIMITED}
"#
    )
}

/// Whether `GET /_matrix/client/versions` answers 200 (plain HTTP/1.0 on
/// a socket, so the start needs no async runtime).
fn versions_ok(addr: SocketAddr) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    if s.write_all(b"GET /_matrix/client/versions HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.") && &head[9..12] == b"200"
}

fn start() -> Result<Synapse, String> {
    use base64::Engine;
    use rand::RngCore;
    let python = python()?;
    remove_stale();
    let dir = tempfile::Builder::new()
        .prefix("hookrelay-synapse-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    // Synapse's signing key file: "ed25519 <version> <unpadded base64 seed>".
    let mut seed = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut seed);
    let key = base64::engine::general_purpose::STANDARD_NO_PAD.encode(seed);
    std::fs::write(dir.join("signing.key"), format!("ed25519 a_test {key}\n"))
        .map_err(|e| e.to_string())?;
    let mut secret = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut secret);
    let shared_secret = hex(&secret);
    let port = free_port();
    let config_path = dir.join("homeserver.yaml");
    std::fs::write(&config_path, config(&dir, port, &shared_secret)).map_err(|e| e.to_string())?;
    let log = dir.join("homeserver.log");
    let started = Instant::now();
    // The parent-death signal fires when the thread that started the child
    // ends, so the server is started from a thread that never does; the
    // thread also reports the server's exit.
    let (tx, rx) = std::sync::mpsc::channel::<Result<(), String>>();
    let exited: Arc<Mutex<Option<String>>> = Arc::default();
    {
        let (python, exited, log) = (python.clone(), exited.clone(), log.clone());
        let config_path = config_path.clone();
        let dir = dir.clone();
        std::thread::spawn(move || {
            use std::os::unix::process::CommandExt;
            let log_file = match std::fs::File::create(&log) {
                Ok(f) => f,
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            };
            let mut c = Command::new(&python);
            c.args(["-m", "synapse.app.homeserver", "-c"])
                .arg(&config_path)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file);
            // SAFETY: prctl is async-signal-safe; nothing else runs in the child.
            unsafe {
                c.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
            match c.spawn() {
                Ok(mut child) => {
                    let _ = tx.send(Ok(()));
                    let status = child.wait();
                    *exited.lock().unwrap() = Some(format!("{status:?}"));
                    loop {
                        std::thread::park();
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot start synapse: {e}")));
                }
            }
        });
    }
    rx.recv().map_err(|e| e.to_string())??;
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    let deadline = started + START_DEADLINE;
    let log_tail = || {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    };
    while !versions_ok(addr) {
        if let Some(status) = exited.lock().unwrap().clone() {
            return Err(format!("synapse exited ({status}):\n{}", log_tail()));
        }
        if Instant::now() > deadline {
            return Err(format!(
                "synapse did not answer within {START_DEADLINE:?}:\n{}",
                log_tail()
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let started_in = started.elapsed();
    eprintln!("Synapse started in {started_in:.1?} at http://{addr}");
    Ok(Synapse {
        url: format!("http://{addr}"),
        addr,
        dir,
        started_in,
        python,
        shared_secret,
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A room id or user id as one path segment.
pub fn segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes()).collect()
}

/// A registered user: its id and access token.
#[derive(Clone)]
pub struct User {
    pub user_id: String,
    pub token: String,
}

impl Synapse {
    /// The HMAC-SHA1 the shared-secret registration wants, computed by
    /// Python's standard library (the message holds NUL bytes: stdin).
    fn registration_mac(&self, message: &str) -> String {
        let mut child = Command::new(&self.python)
            .args([
                "-c",
                "import hmac, hashlib, sys; print(hmac.new(sys.argv[1].encode(), sys.stdin.buffer.read(), hashlib.sha1).hexdigest())",
                &self.shared_secret,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(message.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "hmac failed");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// Registers a new user through the admin API's shared-secret
    /// registration (`/_synapse/admin/v1/register`: a nonce, then the
    /// HMAC-SHA1 of nonce, user, password and admin flag). `prefix` gets a
    /// number so every test has users of its own.
    pub async fn register(&self, prefix: &str, displayname: &str) -> User {
        let n = NEXT_USER.fetch_add(1, Ordering::Relaxed);
        let username = format!("{prefix}{n}");
        let password = format!("pw-{username}-{n}");
        let client = reqwest::Client::new();
        let url = format!("{}/_synapse/admin/v1/register", self.url);
        let nonce: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        let nonce = nonce["nonce"].as_str().unwrap().to_owned();
        let mac = self.registration_mac(&format!("{nonce}\0{username}\0{password}\0notadmin"));
        let r = client
            .post(&url)
            .json(&json!({
                "nonce": nonce, "username": username, "password": password,
                "displayname": displayname, "admin": false, "mac": mac,
            }))
            .send()
            .await
            .unwrap();
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        assert!(status.is_success(), "registration failed: {v}");
        User {
            user_id: v["user_id"].as_str().unwrap().to_owned(),
            token: v["access_token"].as_str().unwrap().to_owned(),
        }
    }

    /// A client-server API call as `user`; the status and the JSON answer.
    pub async fn call(
        &self,
        user: &User,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut r = reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&user.token);
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// `user` creates a private room of the server's default version and
    /// invites `invite`; its id.
    pub async fn create_room(&self, user: &User, invite: &[&User]) -> String {
        let invite: Vec<&str> = invite.iter().map(|u| u.user_id.as_str()).collect();
        let (status, v) = self
            .call(
                user,
                reqwest::Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(json!({"preset": "private_chat", "invite": invite})),
            )
            .await;
        assert_eq!(status, 200, "createRoom: {v}");
        v["room_id"].as_str().unwrap().to_owned()
    }

    pub async fn invite(&self, by: &User, room: &str, who: &User) {
        let (status, v) = self
            .call(
                by,
                reqwest::Method::POST,
                &format!("/_matrix/client/v3/rooms/{}/invite", segment(room)),
                Some(json!({"user_id": who.user_id})),
            )
            .await;
        assert_eq!(status, 200, "invite: {v}");
    }

    pub async fn join(&self, user: &User, room: &str) {
        let (status, v) = self
            .call(
                user,
                reqwest::Method::POST,
                &format!("/_matrix/client/v3/join/{}", segment(room)),
                Some(json!({})),
            )
            .await;
        assert_eq!(status, 200, "join: {v}");
    }

    /// The room's version (from its create event).
    pub async fn room_version(&self, user: &User, room: &str) -> String {
        let (status, v) = self
            .call(
                user,
                reqwest::Method::GET,
                &format!(
                    "/_matrix/client/v3/rooms/{}/state/m.room.create/",
                    segment(room)
                ),
                None,
            )
            .await;
        assert_eq!(status, 200, "create event: {v}");
        v["room_version"].as_str().unwrap_or("1").to_owned()
    }

    /// The `m.room.message` events of `room` as `user` reads them
    /// (`/rooms/{id}/messages`, oldest first).
    pub async fn messages(&self, user: &User, room: &str) -> Vec<Value> {
        let filter = segment(r#"{"types":["m.room.message"]}"#);
        let (status, v) = self
            .call(
                user,
                reqwest::Method::GET,
                &format!(
                    "/_matrix/client/v3/rooms/{}/messages?dir=f&limit=1000&filter={filter}",
                    segment(room)
                ),
                None,
            )
            .await;
        assert_eq!(status, 200, "messages: {v}");
        v["chunk"].as_array().cloned().unwrap_or_default()
    }

    /// Polls [`Synapse::messages`] until `done` holds for them, or panics
    /// after `timeout` with what arrived.
    pub async fn wait_messages(
        &self,
        user: &User,
        room: &str,
        timeout: Duration,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.messages(user, room).await;
            if done(&got) {
                return got;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for messages in {room}; got {}: {got:#?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `user`'s notifications (`/notifications`): what its push rules made
    /// of the events it received, newest first.
    pub async fn notifications(&self, user: &User) -> Vec<Value> {
        let (status, v) = self
            .call(
                user,
                reqwest::Method::GET,
                "/_matrix/client/v3/notifications?limit=100",
                None,
            )
            .await;
        assert_eq!(status, 200, "notifications: {v}");
        v["notifications"].as_array().cloned().unwrap_or_default()
    }

    /// The room's `unread_notifications` counts in `user`'s `/sync`.
    pub async fn unread(&self, user: &User, room: &str) -> Value {
        let (status, v) = self
            .call(user, reqwest::Method::GET, "/_matrix/client/v3/sync", None)
            .await;
        assert_eq!(status, 200, "sync: {v}");
        v["rooms"]["join"][room]["unread_notifications"].clone()
    }
}

/// Whether a push notification's actions highlight (`set_tweak:
/// highlight` with no value or `true`).
pub fn highlights(notification: &Value) -> bool {
    notification["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|a| a["set_tweak"] == "highlight" && a.get("value").is_none_or(|v| v == true))
}

/// What a [`LossyProxy`] does with the next connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Forward both ways.
    Forward,
    /// Forward the request, read the whole answer from upstream, drop it
    /// and close the connection: the request took effect, the sender
    /// never learns it.
    Drop,
    /// Like `Drop`, but keep the connection open without answering, until
    /// the sender gives up or dies.
    Hold,
}

/// A loopback TCP proxy in front of a server that loses answers on
/// purpose: each connection takes the next scripted [`Answer`] (then the
/// default, `Forward` unless changed). Every answer it drops is kept, so a test can see what the
/// sender missed.
#[derive(Clone)]
pub struct LossyProxy {
    pub addr: SocketAddr,
    script: Arc<Mutex<std::collections::VecDeque<Answer>>>,
    /// What connections get once the script is used up.
    default: Arc<Mutex<Answer>>,
    /// Answers dropped or held, as received from upstream.
    pub lost: Arc<Mutex<Vec<String>>>,
    /// Requests that reached upstream through the proxy (per connection).
    pub connections: Arc<AtomicUsize>,
    changed: Arc<tokio::sync::Notify>,
}

impl LossyProxy {
    pub async fn start(upstream: SocketAddr) -> LossyProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = LossyProxy {
            addr: listener.local_addr().unwrap(),
            script: Arc::default(),
            default: Arc::new(Mutex::new(Answer::Forward)),
            lost: Arc::default(),
            connections: Arc::default(),
            changed: Arc::default(),
        };
        let p = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let next = p.script.lock().unwrap().pop_front();
                let answer = next.unwrap_or_else(|| *p.default.lock().unwrap());
                p.connections.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(p.clone().serve(client, upstream, answer));
            }
        });
        proxy
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The next connections' fates, in order.
    pub fn script(&self, answers: &[Answer]) {
        self.script.lock().unwrap().extend(answers.iter().copied());
    }

    /// What connections get once the script is used up.
    pub fn set_default(&self, answer: Answer) {
        *self.default.lock().unwrap() = answer;
    }

    async fn serve(self, mut client: tokio::net::TcpStream, upstream: SocketAddr, answer: Answer) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await else {
            return;
        };
        if answer == Answer::Forward {
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            return;
        }
        let (mut client_read, client_write) = client.into_split();
        let (server_read, mut server_write) = server.into_split();
        // The request goes through as it comes.
        let upload = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        });
        // The first whole answer is read and lost.
        let mut server_read = server_read;
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !complete_response(&got) {
            match server_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        self.lost
            .lock()
            .unwrap()
            .push(String::from_utf8_lossy(&got).into_owned());
        self.changed.notify_waiters();
        match answer {
            Answer::Hold => {
                // Kept open, silent, until the sender closes it.
                let _keep = (client_write, server_read);
                let _ = upload.await;
            }
            _ => {
                upload.abort();
                let mut w = client_write;
                let _ = w.shutdown().await;
            }
        }
    }

    /// Waits until `n` answers were lost.
    pub async fn wait_lost(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            let lost = self.lost.lock().unwrap().clone();
            if lost.len() >= n {
                return lost;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("timed out waiting for {n} lost answers; {}", lost.len());
            }
        }
    }
}

/// Whether `bytes` hold a whole HTTP/1.1 response (headers, and the body
/// by `Content-Length` or to the last chunk).
fn complete_response(bytes: &[u8]) -> bool {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let body = &bytes[end + 4..];
    if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return body.len() >= len;
    }
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    true
}

/// The `event_id` in a lost answer's JSON body (Synapse sends it chunked:
/// the object is taken from between its braces).
pub fn event_id_of(answer: &str) -> Option<String> {
    let body = answer.split_once("\r\n\r\n")?.1;
    let json = body.get(body.find('{')?..=body.rfind('}')?)?;
    let v: Value = serde_json::from_str(json).ok()?;
    v["event_id"].as_str().map(str::to_owned)
}
