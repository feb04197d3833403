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

/// A daemon with the API on (its key in the app's directory).
async fn api(fake: &Fake, extra: &str) -> Api {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let key = dir.path().join("secrets.key");
    std::fs::write(&key, [42u8; 32]).unwrap();
    let key = key.display().to_string();
    let env = [
        ("HOOKRELAY_ADMIN__API_TOKEN", TOKEN),
        ("HOOKRELAY_ADMIN__SECRETS_KEY_FILE", key.as_str()),
    ];
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
    app.client
        .post(format!("http://{}/hooks/{hook}", app.addr))
        .header("content-type", "application/json")
        .body(fixture("event-alert-created.json"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
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
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(st)
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
