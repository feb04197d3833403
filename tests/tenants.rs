//! The tenants API: a tenant created over HTTP gets its own hook, which
//! relays to its own destination; tenants cannot reach each other's
//! destinations nor the file's; secrets are sealed in the spool and never
//! answered; bad requests get a precise 4xx naming the key and change
//! nothing; a deleted tenant's hook answers 404 once the DELETE answered.

mod common;

use common::*;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const TOKEN: &str = "test-api-token-0123456789abcdef";
const ACME_HOOK: &str = "a0a0a0a0-1111-4222-8333-444444444444";
const ACME_KEY: &str = "sk-acme-tenant-api-key";

struct Api {
    app: TestApp,
    client: reqwest::Client,
}

impl Api {
    fn url(&self, path: &str) -> String {
        format!("http://{}/api/v1{path}", self.app.admin)
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let mut r = self
            .client
            .request(method, self.url(path))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            r = r.header("content-type", "application/json").body(b);
        }
        let resp = r.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    async fn put(&self, name: &str, doc: &Value) -> (u16, Value) {
        self.send(
            reqwest::Method::PUT,
            &format!("/tenants/{name}"),
            Some(doc.to_string().into_bytes()),
        )
        .await
    }
}

/// A daemon with the API on (its key in the app's directory). The fake
/// upstreams are on loopback, which tenants may reach only when the
/// operator lists it: this daemon does.
async fn api(fake: &Fake, extra: &str) -> Api {
    api_allowing(fake, extra, "127.0.0.1").await
}

/// As [`api`], with `[admin] tenant_allow_hosts` given as a comma list
/// (`""`: none, tenants reach public addresses only).
async fn api_allowing(fake: &Fake, extra: &str, allow: &str) -> Api {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let key = dir.path().join("secrets.key");
    std::fs::write(&key, [42u8; 32]).unwrap();
    let key = key.display().to_string();
    let mut env = vec![
        ("HOOKRELAY_ADMIN__API_TOKEN", TOKEN),
        ("HOOKRELAY_ADMIN__SECRETS_KEY_FILE", key.as_str()),
    ];
    if !allow.is_empty() {
        env.push(("HOOKRELAY_ADMIN__TENANT_ALLOW_HOSTS", allow));
    }
    let app = spawn_app_with(fake, extra, dir, &env).await;
    Api {
        app,
        client: reqwest::Client::new(),
    }
}

fn acme(fake: &Fake) -> Value {
    json!({
        "origins": {"sekoia": {"kind": "sekoia", "base_url": fake.url("/api"), "api_key": ACME_KEY}},
        "hooks": {"soc": {"id": ACME_HOOK, "origin": "sekoia"}},
        "destinations": {"teams": {"kind": "teams", "url": fake.url("/acme/teams/acme-url-token")}},
        "routes": [{"name": "all", "to": ["teams"]}]
    })
}

async fn post_hook(app: &TestApp, hook: &str) -> u16 {
    post_to_status(&format!("http://{}/hooks/{hook}", app.addr)).await
}

#[tokio::test]
async fn the_api_is_off_without_a_token() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, ROUTE_ALL).await;
    let r = reqwest::get(format!("http://{}/api/v1/tenants", app.admin))
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_tenant_created_over_http_relays_to_its_own_destination_only() {
    let fake = Fake::start().await;
    let a = api(&fake, ROUTE_ALL).await;
    assert_eq!(post_hook(&a.app, ACME_HOOK).await, 404, "no such hook yet");

    let (status, body) = a.put("acme", &acme(&fake)).await;
    assert_eq!(status, 201, "{body}");
    let answered = body.to_string();
    assert!(
        !answered.contains(ACME_KEY) && !answered.contains("acme-url-token"),
        "{answered}"
    );
    assert_eq!(body["tenant"]["origins"]["sekoia"]["api_key"], "<redacted>");

    // Its hook relays to its destination, not to the file's.
    assert_eq!(post_hook(&a.app, ACME_HOOK).await, 202);
    let got = fake.wait_for("/acme/teams/acme-url-token", 1, WAIT).await;
    assert!(got[0].json().to_string().contains("Suspicious PowerShell"));
    // The file's catch-all route does not see the tenant's events.
    assert_eq!(post_hook(&a.app, HOOK_ID).await, 202);
    fake.wait_for("/slack", 1, WAIT).await;
    assert_eq!(
        fake.received("/slack").len(),
        1,
        "only the file's own event"
    );

    // Listed, shown redacted; replaced with 200.
    let (status, list) = a.send(reqwest::Method::GET, "/tenants", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["tenants"][0]["name"], "acme");
    assert_eq!(list["tenants"][0]["hooks"][0], ACME_HOOK);
    let (status, shown) = a.send(reqwest::Method::GET, "/tenants/acme", None).await;
    assert_eq!(status, 200);
    assert!(!shown.to_string().contains(ACME_KEY));
    let (status, _) = a.put("acme", &acme(&fake)).await;
    assert_eq!(status, 200);

    // Another tenant cannot name acme's destination.
    let mut beta = acme(&fake);
    beta["hooks"]["soc"]["id"] = "b0b0b0b0-1111-4222-8333-444444444444".into();
    beta["destinations"] = json!({});
    let (status, body) = a.put("beta", &beta).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("routes[0].to"), "{body}");

    // The spool holds no secret in the clear.
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(a.app.dir.path()).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("spool.db")
        {
            bytes.extend(std::fs::read(p).unwrap());
        }
    }
    for secret in [ACME_KEY, "acme-url-token"] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} in the spool's bytes"
        );
    }
    let metrics = a.app.metrics().await;
    assert!(!metrics.contains(ACME_KEY) && !metrics.contains("acme-url-token"));
    assert!(
        metrics.contains("hookrelay_tenant_changes_total{action=\"created\"} 1"),
        "{metrics}"
    );

    // Deleted: its hook is gone once the DELETE is answered.
    let (status, _) = a.send(reqwest::Method::DELETE, "/tenants/acme", None).await;
    assert_eq!(status, 204);
    assert_eq!(post_hook(&a.app, ACME_HOOK).await, 404);
    let (status, _) = a.send(reqwest::Method::GET, "/tenants/acme", None).await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_requests_name_the_problem_and_store_nothing() {
    let fake = Fake::start().await;
    let a = api(&fake, ROUTE_ALL).await;
    // The token.
    for auth in [None, Some("Bearer wrong"), Some("Basic abc")] {
        let mut r = a.client.get(a.url("/tenants"));
        if let Some(v) = auth {
            r = r.header("authorization", v);
        }
        assert_eq!(r.send().await.unwrap().status(), 401, "{auth:?}");
    }
    let put_raw = |body: Vec<u8>| a.send(reqwest::Method::PUT, "/tenants/acme", Some(body));
    let (status, body) = put_raw(b"{not json".to_vec()).await;
    assert_eq!(status, 422, "{body}");
    let (status, _) = put_raw(vec![b' '; (1 << 20) + 10]).await;
    assert_eq!(status, 413);
    let cases: Vec<(Value, &str)> = vec![
        (json!({"server": {}}), "server"),
        (
            json!({"hooks": {"soc": {"id": "not-a-uuid", "origin": "x"}}}),
            "hooks.soc.id",
        ),
        (
            json!({"hooks": {"soc": {"id": ACME_HOOK, "origin": 5}}}),
            "hooks.soc.origin",
        ),
        (
            json!({"hooks": {"soc": {"id": ACME_HOOK, "origin": "o"}},
                   "origins": {"o": {"kind": "sekoia", "base_url": fake.url("/api"), "api_key_file": "/etc/shadow"}}}),
            "origins.o.api_key_file",
        ),
        (
            {
                let mut d = acme(&fake);
                d["routes"] = Value::Array(
                    (0..10_000)
                        .map(|i| json!({"name": format!("r{i}"), "to": ["teams"]}))
                        .collect(),
                );
                d
            },
            "routes",
        ),
    ];
    for (doc, key) in cases {
        let (status, body) = a.put("acme", &doc).await;
        assert_eq!(status, 422, "{key}: {body}");
        assert!(
            body["errors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["key"] == key),
            "{key} not named: {body}"
        );
    }
    // A hook id the file already uses.
    let mut taken = acme(&fake);
    taken["hooks"]["soc"]["id"] = HOOK_ID.into();
    let (status, body) = a.put("acme", &taken).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["errors"][0]["key"], "hooks.soc.id");
    // Names with path characters.
    for name in ["Acme", "a..b", "a%2Fb", "-x"] {
        let (status, _) = a.put(name, &acme(&fake)).await;
        assert!(status == 422 || status == 404, "{name}: {status}");
    }
    let (status, list) = a.send(reqwest::Method::GET, "/tenants", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["tenants"], json!([]), "nothing stored");
    assert_eq!(post_hook(&a.app, ACME_HOOK).await, 404);
    // The document is served without a token.
    let r = reqwest::get(a.url("/openapi.json")).await.unwrap();
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
}

/// The API fuzzed from its own OpenAPI document with schemathesis (from
/// PyPI; `scripts/test.sh` installs it and sets `SCHEMATHESIS`): no 5xx,
/// every status, content type, header and body as the document says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_against_the_openapi_document() {
    let Some(st) = std::env::var_os("SCHEMATHESIS") else {
        eprintln!("SKIPPED: schemathesis not installed (scripts/test.sh installs it)");
        return;
    };
    let fake = Fake::start().await;
    let a = api(&fake, ROUTE_ALL).await;
    // One tenant to read, replace and delete among the generated requests.
    assert_eq!(a.put("acme", &acme(&fake)).await.0, 201);
    let schema = a.url("/openapi.json");
    let token = format!("Authorization: Bearer {TOKEN}");
    // Its cache and reports go to a scratch directory, not the repository.
    let scratch = tempfile::tempdir().unwrap();
    let cwd = scratch.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(st)
            .current_dir(cwd)
            .args(["run", &schema, "--header", &token])
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
                "--max-examples",
                "40",
                "--seed",
                "1",
                "--no-color",
            ])
            .env("SCHEMATHESIS_HOOKS", "")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{report}"
    );
    eprintln!("{report}");
    assert!(
        report.contains("passed"),
        "schemathesis ran no test:\n{report}"
    );
}

fn signed(secret: &str, id: &str, body: &[u8]) -> reqwest::header::HeaderMap {
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let sig = hookrelay::ingress::auth::standard_webhooks_sign(secret, id, ts, body).unwrap();
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("webhook-id", id.parse().unwrap());
    h.insert("webhook-timestamp", ts.to_string().parse().unwrap());
    h.insert("webhook-signature", sig.parse().unwrap());
    h.insert("content-type", "application/json".parse().unwrap());
    h
}

/// A rotated hook secret: the new one works at once, the old one until the
/// overlap ends (here: at once, with overlap=0s it is refused).
#[tokio::test]
async fn a_rotated_secret_overlaps_the_old_one() {
    let fake = Fake::start().await;
    let a = api(&fake, ROUTE_ALL).await;
    let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let mut doc = acme(&fake);
    doc["hooks"]["soc"]["secret"] = old.into();
    assert_eq!(a.put("acme", &doc).await.0, 201);
    let url = format!("http://{}/hooks/{ACME_HOOK}", a.app.addr);
    let body = fixture("event-alert-created.json");
    let post = |secret: String, id: &'static str| {
        let (url, body) = (url.clone(), body.clone());
        async move {
            reqwest::Client::new()
                .post(&url)
                .headers(signed(&secret, id, &body))
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(post(old.into(), "m1").await, 202);
    let (status, rotated) = a
        .send(
            reqwest::Method::POST,
            "/tenants/acme/hooks/soc/rotate-secret",
            None,
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert!(new.starts_with("whsec_") && new != old);
    assert_eq!(
        post(new.clone(), "m2").await,
        202,
        "the new secret works at once"
    );
    assert_eq!(
        post(old.into(), "m3").await,
        202,
        "the old one during the overlap"
    );
    let (_, shown) = a.send(reqwest::Method::GET, "/tenants/acme", None).await;
    assert!(!shown.to_string().contains(&new), "never answered again");
    // Rotated again without overlap: the previous secret stops at once.
    let (status, again) = a
        .send(
            reqwest::Method::POST,
            "/tenants/acme/hooks/soc/rotate-secret?overlap=0s",
            None,
        )
        .await;
    assert_eq!(status, 200);
    let newest = again["secret"].as_str().unwrap().to_owned();
    assert_eq!(post(new, "m4").await, 401);
    assert_eq!(post(newest, "m5").await, 202);
    let (status, _) = a
        .send(
            reqwest::Method::POST,
            "/tenants/acme/hooks/nope/rotate-secret",
            None,
        )
        .await;
    assert_eq!(status, 404);
}

/// Replacing and deleting a tenant while its events flow: every accepted
/// event is delivered (or dead-lettered when its destination was deleted),
/// nothing reaches the deleted destination after the DELETE answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_while_events_flow_lose_nothing() {
    let fake = Fake::start().await;
    let a = api(&fake, ROUTE_ALL).await;
    assert_eq!(a.put("acme", &acme(&fake)).await.0, 201);
    let url = format!("http://{}/hooks/{ACME_HOOK}", a.app.addr);
    let sender = {
        let url = url.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut accepted = 0;
            for i in 0..60 {
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(unique_event(i, ALERT_UUID))
                    .send()
                    .await
                    .unwrap();
                if r.status() == 202 {
                    accepted += 1;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            accepted
        })
    };
    // Replaced mid-stream (same hook, same destination).
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(a.put("acme", &acme(&fake)).await.0, 200);
    let accepted = sender.await.unwrap();
    assert_eq!(accepted, 60);
    fake.wait_distinct("/acme/teams/acme-url-token", 60, WAIT)
        .await;
    // Deleted: after the answer, nothing more reaches its destination.
    let (status, _) = a.send(reqwest::Method::DELETE, "/tenants/acme", None).await;
    assert_eq!(status, 204);
    let before = fake.received("/acme/teams/acme-url-token").len();
    assert_eq!(post_hook(&a.app, ACME_HOOK).await, 404);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.received("/acme/teams/acme-url-token").len(), before);
}

/// The CLI works through the spool, and a running daemon (the binary)
/// applies its changes within a second; the daemon's logs hold no secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_manages_tenants_and_a_running_daemon_follows() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("secrets.key");
    std::fs::write(&key, hex::encode([9u8; 32])).unwrap();
    let extra = format!("{ROUTE_ALL}\n");
    let config = write_config(&fake, dir.path(), &extra);
    edit_config(
        &config,
        "[admin]\n",
        &format!(
            "[admin]\napi_token = \"{TOKEN}\"\nsecrets_key_file = \"{}\"\ntenant_allow_hosts = [\"127.0.0.1\"]\n",
            key.display()
        ),
    );
    let daemon = Daemon::spawn(&config).await;
    let tenant_file = dir.path().join("acme.toml");
    std::fs::write(
        &tenant_file,
        format!(
            "[origins.sekoia]\nkind = \"sekoia\"\nbase_url = \"{}\"\napi_key = \"{ACME_KEY}\"\n\
             [hooks.soc]\nid = \"{ACME_HOOK}\"\norigin = \"sekoia\"\n\
             [destinations.teams]\nkind = \"teams\"\nurl = \"{}\"\n\
             [[routes]]\nname = \"all\"\nto = [\"teams\"]\n",
            fake.url("/api"),
            fake.url("/acme/teams/acme-url-token")
        ),
    )
    .unwrap();
    let c = config.display().to_string();
    let t = tenant_file.display().to_string();
    // The CLI off the async threads (it blocks), as `hookrelay WORDS…`.
    let run = |words: &[&str]| {
        let args: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        async move {
            tokio::task::spawn_blocking(move || {
                let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                cli(&refs)
            })
            .await
            .unwrap()
        }
    };
    let (code, out, err) = run(&["check", "--config", &c, "--tenant", &t]).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("OK (1 origins, 1 hooks, 1 destinations, 1 routes)"),
        "{out}"
    );
    let apply = ["tenants", "apply", "--config", &c, "--file", &t, "acme"];
    let (code, out, err) = run(&apply).await;
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("tenant acme created"), "{out}");
    // The daemon applies it within a second.
    let url = format!("http://{}/hooks/{ACME_HOOK}", daemon.addr);
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    loop {
        if post_to_status(&url).await == 202 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not applied within a second"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fake.wait_for("/acme/teams/acme-url-token", 1, WAIT).await;
    let (code, out, _) = run(&["tenants", "list", "--config", &c]).await;
    assert_eq!(code, 0);
    assert!(
        out.starts_with("acme\t") && out.contains(ACME_HOOK),
        "{out}"
    );
    let (code, out, _) = run(&["tenants", "show", "--config", &c, "acme"]).await;
    assert_eq!(code, 0);
    assert!(
        out.contains("<redacted>") && !out.contains(ACME_KEY),
        "{out}"
    );
    // A bad fragment: every problem by key, nothing stored.
    std::fs::write(&tenant_file, "[hooks.soc]\nid = \"nope\"\norigin = \"x\"\n").unwrap();
    let (code, _, err) = run(&apply).await;
    assert_eq!(code, 1);
    assert!(err.contains("hooks.soc.id"), "{err}");
    let (code, out, _) = run(&["tenants", "delete", "--config", &c, "acme"]).await;
    assert_eq!(code, 0, "{out}");
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while post_to_status(&url).await != 404 {
        assert!(
            std::time::Instant::now() < deadline,
            "the delete was not applied within a second"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = daemon.logs();
    for secret in [ACME_KEY, "acme-url-token", TOKEN] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
}

/// The status a sender gets for an alert posted to `url`.
async fn post_to_status(url: &str) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(fixture("event-alert-created.json"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A deleted tenant's pending deliveries become dead letters with the
/// reason, as a reload that removes a destination does.
#[tokio::test]
async fn a_deleted_tenants_pending_deliveries_become_dead_letters() {
    let fake = Fake::start().await;
    fake.always("/acme/teams/acme-url-token", Reply::status(503, "busy"));
    let a = api(&fake, ROUTE_ALL).await;
    assert_eq!(a.put("acme", &acme(&fake)).await.0, 201);
    assert_eq!(post_hook(&a.app, ACME_HOOK).await, 202);
    fake.wait_for("/acme/teams/acme-url-token", 1, WAIT).await;
    let (status, _) = a.send(reqwest::Method::DELETE, "/tenants/acme", None).await;
    assert_eq!(status, 204);
    let store = hookrelay::store::Store::open_now(
        &hookrelay::config::StoreConfig {
            path: a.app.dir.path().join("spool.db"),
            ..Default::default()
        },
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let dead = store.dead_letters(Some("acme/teams".into())).await.unwrap();
        if let Some(d) = dead.first() {
            let why = d.last_error.clone().unwrap_or_default();
            assert!(why.contains("no longer in the configuration"), "{why}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One bad tenant in the spool (a hook id another took first in a race
/// between replicas, a document sealed with another key) is left out and
/// logged; the others and the file keep serving.
#[tokio::test]
async fn a_tenant_that_cannot_be_served_is_left_out_alone() {
    let fake = Fake::start().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    {
        let store = hookrelay::store::Store::open_now(
            &hookrelay::config::StoreConfig {
                path: dir.path().join("spool.db"),
                ..Default::default()
            },
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        let put = |name: &str, key: [u8; 32], doc: &Value| {
            let store = store.clone();
            let t = hookrelay::store::StoredTenant {
                name: name.into(),
                summary: "{}".into(),
                sealed: hookrelay::sealed::seal(&key, name, doc.to_string().as_bytes()),
                updated_at: 0,
            };
            let c = hookrelay::store::TenantChange {
                tenant: name.into(),
                action: "put".into(),
                client: "test".into(),
            };
            async move { store.put_tenant(t, c).await.unwrap() }
        };
        put("acme", [42u8; 32], &acme(&fake)).await;
        put("twin", [42u8; 32], &acme(&fake)).await; // the same hook id
        let mut other = acme(&fake);
        other["hooks"]["soc"]["id"] = "d0d0d0d0-1111-4222-8333-444444444444".into();
        put("foreign", [1u8; 32], &other).await; // sealed with another key
    }
    let key = dir.path().join("secrets.key");
    std::fs::write(&key, [42u8; 32]).unwrap();
    let key = key.display().to_string();
    let env = [
        ("HOOKRELAY_ADMIN__API_TOKEN", TOKEN),
        ("HOOKRELAY_ADMIN__SECRETS_KEY_FILE", key.as_str()),
        ("HOOKRELAY_ADMIN__TENANT_ALLOW_HOSTS", "127.0.0.1"),
    ];
    let app = spawn_app_with(&fake, ROUTE_ALL, dir, &env).await;
    assert_eq!(post_hook(&app, ACME_HOOK).await, 202, "acme serves");
    fake.wait_for("/acme/teams/acme-url-token", 1, WAIT).await;
    assert_eq!(
        post_hook(&app, "d0d0d0d0-1111-4222-8333-444444444444").await,
        404
    );
    assert_eq!(post_hook(&app, HOOK_ID).await, 202, "the file serves");
}

/// Puts `doc` as tenant `name` straight into the spool of a daemon-to-be in
/// `dir` (as another replica, or an older version, could have stored it),
/// bypassing the API's checks.
async fn seal_into_spool(dir: &std::path::Path, name: &str, doc: &Value) {
    let store = hookrelay::store::Store::open_now(
        &hookrelay::config::StoreConfig {
            path: dir.join("spool.db"),
            ..Default::default()
        },
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    let t = hookrelay::store::StoredTenant {
        name: name.into(),
        summary: "{}".into(),
        sealed: hookrelay::sealed::seal(&[42u8; 32], name, doc.to_string().as_bytes()),
        updated_at: 0,
    };
    let c = hookrelay::store::TenantChange {
        tenant: name.into(),
        action: "put".into(),
        client: "test".into(),
    };
    store.put_tenant(t, c).await.unwrap();
}

fn refused_keys(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["key"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A tenant programs nothing and reaches no private address: a subject
/// template, destinations and origins at loopback, link-local, private
/// addresses or a name resolving to loopback, an origin steering its URL
/// with a query, and timeouts past the caps are each refused with 422
/// naming the key, and nothing is stored.
#[tokio::test]
async fn a_tenant_is_refused_templates_private_addresses_and_long_timeouts() {
    let fake = Fake::start().await;
    let a = api_allowing(&fake, ROUTE_ALL, "").await;
    let port = fake.addr.port();
    let with = |edit: &dyn Fn(&mut Value)| {
        let mut d = acme(&fake);
        // Public addresses (documentation range) where the case is not about them.
        d["origins"]["sekoia"]["base_url"] = "https://203.0.113.10/api".into();
        d["destinations"]["teams"]["url"] = "https://203.0.113.11/teams/x".into();
        edit(&mut d);
        d
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            with(&|d| {
                d["destinations"]["mail"] = json!({"kind": "email", "host": "203.0.113.12",
                    "from": "relay@example.org", "to": ["soc@example.org"],
                    "subject": "[{{ alert.urgency }}] {% for x in range(9) %}x{% endfor %}"});
            }),
            "destinations.mail.subject",
        ),
        (
            with(&|d| {
                d["destinations"]["teams"]["url"] = format!("http://127.0.0.1:{port}/teams").into()
            }),
            "destinations.teams.url",
        ),
        (
            with(&|d| {
                d["destinations"]["teams"]["url"] =
                    "http://169.254.169.254/latest/meta-data/".into()
            }),
            "destinations.teams.url",
        ),
        (
            with(&|d| d["destinations"]["teams"]["url"] = "http://10.20.30.40/x".into()),
            "destinations.teams.url",
        ),
        (
            with(&|d| d["destinations"]["teams"]["url"] = "http://[::1]:8080/x".into()),
            "destinations.teams.url",
        ),
        (
            with(&|d| {
                d["destinations"]["teams"]["url"] = format!("http://localhost:{port}/teams").into()
            }),
            "destinations.teams.url",
        ),
        (
            with(&|d| {
                d["origins"]["sekoia"]["base_url"] = format!("http://localhost:{port}/api").into()
            }),
            "origins.sekoia.base_url",
        ),
        (
            with(&|d| d["origins"]["sekoia"]["base_url"] = "http://100.64.1.1/api".into()),
            "origins.sekoia.base_url",
        ),
        (
            with(&|d| {
                d["destinations"]["mail"] = json!({"kind": "email", "host": "localhost", "port": 2525,
                    "from": "relay@example.org", "to": ["soc@example.org"]});
            }),
            "destinations.mail.host",
        ),
        (
            with(&|d| {
                d["destinations"]["room"] = json!({"kind": "matrix", "homeserver": "http://192.168.1.5:8008",
                    "access_token": "t", "room_id": "!r:example.org"});
            }),
            "destinations.room.homeserver",
        ),
        (
            with(&|d| {
                d["destinations"]["mm"] = json!({"kind": "mattermost", "server_url": "http://172.16.0.9",
                    "token": "t", "channel_id": "abcdefghijklmnopqrstuvwxyz"});
            }),
            "destinations.mm.server_url",
        ),
        (
            with(&|d| {
                d["destinations"]["pd"] = json!({"kind": "pagerduty", "api_url": "http://[fd00::1]/v2/enqueue",
                    "routing_key": "k"});
            }),
            "destinations.pd.api_url",
        ),
        (
            with(&|d| {
                d["destinations"]["push"] =
                    json!({"kind": "ntfy", "url": "http://0.0.0.0:80/topic"});
            }),
            "destinations.push.url",
        ),
        (
            with(&|d| d["origins"]["sekoia"]["base_url"] = "https://203.0.113.10/api?x=".into()),
            "origins.sekoia.base_url",
        ),
        (
            with(&|d| d["origins"]["sekoia"]["base_url"] = "https://203.0.113.10/api#frag".into()),
            "origins.sekoia.base_url",
        ),
        (
            with(&|d| d["origins"]["sekoia"]["timeout"] = "31s".into()),
            "origins.sekoia.timeout",
        ),
        (
            with(&|d| d["origins"]["sekoia"]["enrich_deadline"] = "6m".into()),
            "origins.sekoia.enrich_deadline",
        ),
    ];
    // Every case is tried; the failure lists each one not refused.
    let mut not_refused = Vec::new();
    for (doc, key) in cases {
        let (status, body) = a.put("acme", &doc).await;
        if status != 422 || !refused_keys(&body).iter().any(|k| k == key) {
            not_refused.push(format!("{key}: {status} {}", body["errors"]));
        }
        if status < 300 {
            a.send(reqwest::Method::DELETE, "/tenants/acme", None).await;
        }
    }
    assert!(
        not_refused.is_empty(),
        "not refused by key:\n{}",
        not_refused.join("\n")
    );
    // At the caps, with a plain subject and public addresses: accepted.
    let fine = with(&|d| {
        d["origins"]["sekoia"]["timeout"] = "30s".into();
        d["origins"]["sekoia"]["enrich_deadline"] = "5m".into();
        d["destinations"]["mail"] = json!({"kind": "email", "host": "203.0.113.12",
            "from": "relay@example.org", "to": ["soc@example.org"],
            "subject": "{urgency}: {headline} {unknown}"});
    });
    let (status, body) = a.put("acme", &fine).await;
    assert_eq!(status, 201, "{body}");
    // The file's operator is not restricted: the file's destinations are
    // on loopback and deliver.
    assert_eq!(post_hook(&a.app, HOOK_ID).await, 202);
    fake.wait_for("/slack", 1, WAIT).await;
}

/// What `tenant_allow_hosts` lists, by address or by name, a tenant may
/// reach: the same destinations are accepted and delivered to.
#[tokio::test]
async fn a_listed_host_is_allowed() {
    let fake = Fake::start().await;
    let port = fake.addr.port();
    let by_name = api_allowing(&fake, ROUTE_ALL, "localhost").await;
    let mut d = acme(&fake);
    d["origins"]["sekoia"]["base_url"] = format!("http://localhost:{port}/api").into();
    d["destinations"]["teams"]["url"] =
        format!("http://localhost:{port}/acme/teams/by-name").into();
    let (status, body) = by_name.put("acme", &d).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(post_hook(&by_name.app, ACME_HOOK).await, 202);
    let got = fake.wait_for("/acme/teams/by-name", 1, WAIT).await;
    assert!(
        got[0].json().to_string().contains("Suspicious PowerShell"),
        "enriched"
    );
    // Listed by address: the literal loopback URL (as every other test
    // here), and an SMTP host; its plain subject gets the placeholders.
    let smtp = SmtpSink::start(&[]);
    let by_range = api_allowing(&fake, ROUTE_ALL, "127.0.0.0/8,10.0.0.0/8").await;
    let mut with_mail = acme(&fake);
    with_mail["destinations"]["mail"] = json!({"kind": "email", "host": "127.0.0.1",
        "port": smtp.port, "tls": "none", "from": "relay@example.org", "to": ["soc@example.org"],
        "subject": "{urgency}: {headline} {unknown} {{"});
    with_mail["routes"] = json!([{"name": "all", "to": ["teams", "mail"]}]);
    let (status, body) = by_range.put("acme", &with_mail).await;
    assert_eq!(status, 422, "template syntax: {body}");
    with_mail["destinations"]["mail"]["subject"] = "{urgency}: {headline} {unknown}".into();
    let (status, body) = by_range.put("acme", &with_mail).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(post_hook(&by_range.app, ACME_HOOK).await, 202);
    let mail = &smtp.wait_for(1, WAIT).await[0];
    let subject = mail
        .data
        .lines()
        .find(|l| l.starts_with("Subject:"))
        .unwrap_or_default();
    assert_eq!(
        subject, "Subject: Major (63): Suspicious PowerShell download cradle {unknown}",
        "{}",
        mail.data
    );
    // Not listed: localhost by name is still refused there.
    let (status, body) = by_range
        .put("beta", &{
            let mut b = d.clone();
            b["hooks"]["soc"]["id"] = "b0b0b0b0-1111-4222-8333-444444444444".into();
            b["destinations"]["teams"]["url"] = "http://[::1]:9/x".into();
            b
        })
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(
        refused_keys(&body).contains(&"destinations.teams.url".to_owned()),
        "{body}"
    );
}

/// The check at connect time: a tenant already in the spool (stored before
/// the policy, or by another replica) whose destination names loopback —
/// by a name that resolves there, or literally — never gets a request
/// through; its deliveries fail with the reason.
#[tokio::test]
async fn connections_are_checked_when_they_are_made() {
    let fake = Fake::start().await;
    let port = fake.addr.port();
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let mut d = acme(&fake);
    d["origins"]["sekoia"]["base_url"] = format!("http://localhost:{port}/api").into();
    d["origins"]["sekoia"]["enrich_deadline"] = "300ms".into();
    d["destinations"]["teams"]["url"] =
        format!("http://localhost:{port}/acme/teams/rebound").into();
    d["destinations"]["literal"] = json!({"kind": "teams", "url": fake.url("/acme/teams/literal")});
    let smtp = SmtpSink::start(&[]);
    d["destinations"]["mail"] = json!({"kind": "email", "host": "localhost",
        "port": smtp.port, "tls": "none", "from": "relay@example.org", "to": ["soc@example.org"]});
    d["routes"] = json!([{"name": "all", "to": ["teams", "literal", "mail"]}]);
    seal_into_spool(dir.path(), "acme", &d).await;
    let key = dir.path().join("secrets.key");
    std::fs::write(&key, [42u8; 32]).unwrap();
    let key = key.display().to_string();
    let env = [
        ("HOOKRELAY_ADMIN__API_TOKEN", TOKEN),
        ("HOOKRELAY_ADMIN__SECRETS_KEY_FILE", key.as_str()),
    ];
    let app = spawn_app_with(&fake, ROUTE_ALL, dir.clone(), &env).await;
    assert_eq!(post_hook(&app, ACME_HOOK).await, 202);
    let store = hookrelay::store::Store::open_now(
        &hookrelay::config::StoreConfig {
            path: dir.path().join("spool.db"),
            ..Default::default()
        },
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    // The literal address: a dead letter at once (nothing was sent).
    let deadline = tokio::time::Instant::now() + WAIT;
    let why = loop {
        let dead = store
            .dead_letters(Some("acme/literal".into()))
            .await
            .unwrap();
        if let Some(d) = dead.first() {
            break d.last_error.clone().unwrap_or_default();
        }
        assert!(tokio::time::Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        why.contains("loopback") && why.contains("tenant_allow_hosts"),
        "{why}"
    );
    // The names (HTTP and SMTP): their attempts fail at connect time, the
    // fake and the SMTP server never see one.
    for dest in ["acme/teams", "acme/mail"] {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let failed = metric(
                &app.metrics().await,
                "hookrelay_deliveries_total",
                &[&format!("destination=\"{dest}\""), "outcome=\"retry\""],
            );
            if failed >= 1.0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{dest}: no failed attempt"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(smtp.mails().is_empty(), "nothing reached the SMTP server");
    assert!(fake.received("/acme/teams/rebound").is_empty());
    assert!(fake.received("/acme/teams/literal").is_empty());
    assert!(
        fake.received(&format!("/api/v1/sic/alerts/{ALERT_UUID}"))
            .is_empty(),
        "nor its origin"
    );
}

/// What a tenant's own messages say when its origin fails: a category,
/// never the API's answer nor the connection's details (its messages would
/// otherwise scan the relay's network for it).
#[tokio::test]
async fn a_tenants_degraded_message_says_a_category_only() {
    let fake = Fake::start().await;
    let a = api(&fake, ROUTE_ALL).await;
    fake.always(
        &format!("/failing/v1/sic/alerts/{ALERT_UUID}"),
        Reply::status(500, "<html>secret internal page at 10.9.8.7</html>"),
    );
    let mut d = acme(&fake);
    d["origins"]["sekoia"]["base_url"] = fake.url("/failing").into();
    d["origins"]["sekoia"]["enrich_deadline"] = "300ms".into();
    assert_eq!(a.put("acme", &d).await.0, 201);
    // Another tenant whose origin refuses connections.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut b = acme(&fake);
    b["hooks"]["soc"]["id"] = "b0b0b0b0-1111-4222-8333-444444444444".into();
    b["origins"]["sekoia"]["base_url"] = format!("http://127.0.0.1:{closed_port}/api").into();
    b["origins"]["sekoia"]["enrich_deadline"] = "300ms".into();
    b["destinations"]["teams"]["url"] = fake.url("/beta/teams/x").into();
    assert_eq!(a.put("beta", &b).await.0, 201);

    assert_eq!(post_hook(&a.app, ACME_HOOK).await, 202);
    assert_eq!(
        post_hook(&a.app, "b0b0b0b0-1111-4222-8333-444444444444").await,
        202
    );
    let acme_msg = fake.wait_for("/acme/teams/acme-url-token", 1, WAIT).await[0]
        .json()
        .to_string();
    let beta_msg = fake.wait_for("/beta/teams/x", 1, WAIT).await[0]
        .json()
        .to_string();
    assert!(
        acme_msg.contains("Alert details unavailable (HTTP 500)."),
        "{acme_msg}"
    );
    assert!(
        beta_msg.contains("Alert details unavailable (refused)."),
        "{beta_msg}"
    );
    for msg in [&acme_msg, &beta_msg] {
        for leak in [
            "secret internal page",
            "10.9.8.7",
            "os error",
            "Connection refused",
            "tcp connect",
            "127.0.0.1",
            "gave up after",
        ] {
            assert!(!msg.contains(leak), "{leak:?} in {msg}");
        }
    }
}
