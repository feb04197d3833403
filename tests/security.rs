//! Safe on the open internet: signatures, source allow-lists, slow
//! clients, and no secret in any log line or metric.

mod common;

use common::*;
use hmac::{Hmac, Mac};
use hookrelay::ingress::auth::standard_webhooks_sign;
use sha2::Sha256;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SIGNED_ID: &str = "0b8ad3a4-54b5-4c4e-9b65-9f3c6fa1e001";
const GITHUB_ID: &str = "0b8ad3a4-54b5-4c4e-9b65-9f3c6fa1e002";
const PARTNER_ID: &str = "0b8ad3a4-54b5-4c4e-9b65-9f3c6fa1e003";
const KEY_OLD: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const KEY_NEW: &str = "whsec_c2VjcmV0LWtleS1udW1iZXItdHdvLWZvci1ob29rcmVsYXk=";
const GH_SECRET: &str = "it's a secret to everybody";

fn hooks() -> String {
    format!(
        r#"
[hooks.signed]
id = "{SIGNED_ID}"
origin = "sekoia"
secret = "{KEY_NEW}"
signature = "standard-webhooks"
[hooks.github]
id = "{GITHUB_ID}"
origin = "sekoia"
secret = "{GH_SECRET}"
signature = "github-sha256"
[hooks.partner]
id = "{PARTNER_ID}"
origin = "sekoia"
allow_from = ["203.0.113.0/24"]
{ROUTE_ALL}
"#
    )
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn post_with(app: &TestApp, hook: &str, body: &str, headers: &[(&str, String)]) -> u16 {
    let mut req = app
        .client
        .post(format!("http://{}/hooks/{hook}", app.addr))
        .header("content-type", "application/json")
        .body(body.to_owned());
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    req.send().await.unwrap().status().as_u16()
}

fn sw_headers(secret: &str, id: &str, ts: i64, body: &str) -> Vec<(&'static str, String)> {
    vec![
        ("webhook-id", id.to_owned()),
        ("webhook-timestamp", ts.to_string()),
        (
            "webhook-signature",
            standard_webhooks_sign(secret, id, ts, body.as_bytes()).unwrap(),
        ),
    ]
}

#[tokio::test]
async fn standard_webhooks_signatures() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, &hooks()).await;
    let body = unique_event(1, ALERT_UUID);
    let ts = now();

    // Valid.
    assert_eq!(
        post_with(
            &app,
            SIGNED_ID,
            &body,
            &sw_headers(KEY_NEW, "msg_1", ts, &body)
        )
        .await,
        202
    );
    // Replayed id (same message again): refused.
    assert_eq!(
        post_with(
            &app,
            SIGNED_ID,
            &body,
            &sw_headers(KEY_NEW, "msg_1", ts, &body)
        )
        .await,
        401
    );
    // Wrong key.
    let b2 = unique_event(2, ALERT_UUID);
    assert_eq!(
        post_with(&app, SIGNED_ID, &b2, &sw_headers(KEY_OLD, "msg_2", ts, &b2)).await,
        401
    );
    // Rotated keys: old and new signatures side by side; one valid passes.
    let mut h = sw_headers(KEY_NEW, "msg_3", ts, &b2);
    let old = standard_webhooks_sign(KEY_OLD, "msg_3", ts, b2.as_bytes()).unwrap();
    h[2].1 = format!("{old} {}", h[2].1);
    assert_eq!(post_with(&app, SIGNED_ID, &b2, &h).await, 202);
    // Stale and future timestamps.
    let b4 = unique_event(4, ALERT_UUID);
    assert_eq!(
        post_with(
            &app,
            SIGNED_ID,
            &b4,
            &sw_headers(KEY_NEW, "msg_4", ts - 310, &b4)
        )
        .await,
        401
    );
    assert_eq!(
        post_with(
            &app,
            SIGNED_ID,
            &b4,
            &sw_headers(KEY_NEW, "msg_5", ts + 310, &b4)
        )
        .await,
        401
    );
    // Tampered body.
    let h = sw_headers(KEY_NEW, "msg_6", ts, &b4);
    assert_eq!(
        post_with(&app, SIGNED_ID, &b4.replace("alert", "alerT"), &h).await,
        401
    );
    // Missing headers, one at a time.
    for skip in 0..3 {
        let h: Vec<_> = sw_headers(KEY_NEW, "msg_7", ts, &b4)
            .into_iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, h)| h)
            .collect();
        assert_eq!(
            post_with(&app, SIGNED_ID, &b4, &h).await,
            401,
            "without header {skip}"
        );
    }
    // The signature is checked before the body is parsed: garbage with a bad
    // signature is 401, garbage with a good one is 400.
    assert_eq!(post_with(&app, SIGNED_ID, "{oops", &[]).await, 401);
    assert_eq!(
        post_with(
            &app,
            SIGNED_ID,
            "{oops",
            &sw_headers(KEY_NEW, "msg_8", ts, "{oops")
        )
        .await,
        400
    );

    // The 401 says nothing about which check failed.
    let r = app
        .client
        .post(format!("http://{}/hooks/{SIGNED_ID}", app.addr))
        .body(b4.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.text().await.unwrap(),
        r#"{"error":"missing or invalid signature"}"#
    );
    let m = app.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hookrelay_events_received_total",
            &["hook=\"signed\"", "result=\"accepted\""]
        ),
        2.0
    );
    assert_eq!(
        metric(
            &m,
            "hookrelay_events_received_total",
            &["hook=\"signed\"", "result=\"unauthorized\""]
        ),
        10.0
    );
    app.stop().await;
}

#[tokio::test]
async fn github_signatures() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, &hooks()).await;
    let sign = |secret: &str, body: &str| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body.as_bytes());
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    };
    let body = unique_event(1, ALERT_UUID);
    assert_eq!(
        post_with(
            &app,
            GITHUB_ID,
            &body,
            &[("x-hub-signature-256", sign(GH_SECRET, &body))]
        )
        .await,
        202
    );
    assert_eq!(
        post_with(
            &app,
            GITHUB_ID,
            &body,
            &[("x-hub-signature-256", sign("wrong", &body))]
        )
        .await,
        401
    );
    let other = unique_event(2, ALERT_UUID);
    assert_eq!(
        post_with(
            &app,
            GITHUB_ID,
            &other,
            &[("x-hub-signature-256", sign(GH_SECRET, &body))]
        )
        .await,
        401
    );
    assert_eq!(
        post_with(
            &app,
            GITHUB_ID,
            &other,
            &[("x-hub-signature-256", "sha256=zz".into())]
        )
        .await,
        401
    );
    assert_eq!(
        post_with(
            &app,
            GITHUB_ID,
            &other,
            &[(
                "x-hub-signature-256",
                sign(GH_SECRET, &other).replace("sha256=", "sha1=")
            )]
        )
        .await,
        401
    );
    assert_eq!(post_with(&app, GITHUB_ID, &other, &[]).await, 401);
    app.stop().await;
}

#[tokio::test]
async fn allow_from_through_trusted_proxies_only() {
    let fake = Fake::start().await;
    // Loopback is a trusted proxy (the default): X-Forwarded-For counts.
    let app = spawn_app(&fake, &hooks()).await;
    let body = unique_event(1, ALERT_UUID);
    let xff = |v: &str| vec![("x-forwarded-for", v.to_owned())];
    assert_eq!(
        post_with(&app, PARTNER_ID, &body, &xff("203.0.113.5")).await,
        202
    );
    // The proxy itself is not allowed.
    assert_eq!(
        post_with(&app, PARTNER_ID, &unique_event(2, ALERT_UUID), &[]).await,
        403
    );
    // A forged left-hand entry changes nothing: the right-most untrusted counts.
    assert_eq!(
        post_with(
            &app,
            PARTNER_ID,
            &unique_event(3, ALERT_UUID),
            &xff("203.0.113.5, 198.51.100.1")
        )
        .await,
        403
    );
    // Trusted hops on the right are skipped.
    assert_eq!(
        post_with(
            &app,
            PARTNER_ID,
            &unique_event(4, ALERT_UUID),
            &xff("203.0.113.9, 127.0.0.1")
        )
        .await,
        202
    );
    // 403 comes before 415 and 400.
    let r = app
        .client
        .post(format!("http://{}/hooks/{PARTNER_ID}", app.addr))
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    app.stop().await;

    // Loopback not trusted: the header is ignored, the socket peer counts.
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_app_with(
        &fake,
        &hooks(),
        dir,
        &[("HOOKRELAY_SERVER__TRUSTED_PROXIES", "192.0.2.1/32")],
    )
    .await;
    assert_eq!(
        post_with(
            &app,
            PARTNER_ID,
            &unique_event(5, ALERT_UUID),
            &xff("203.0.113.5")
        )
        .await,
        403
    );
    app.stop().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let fake = Fake::start().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_app_with(
        &fake,
        ROUTE_ALL,
        dir,
        &[("HOOKRELAY_SERVER__HEADER_READ_TIMEOUT", "300ms")],
    )
    .await;
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    s.write_all(format!("POST /hooks/{HOOK_ID} HTTP/1.1\r\nHost: x\r\nX-Slow: ").as_bytes())
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    // The server closes the connection (possibly after a 408) by itself.
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "slow client was not cut off");
    // Others are still served.
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_or_metrics_on_any_error_path() {
    let fake = Fake::start().await;
    // The alert API refuses the key; Slack says the channel is gone; Teams
    // is unreachable (its URL, token included, ends up in the HTTP error).
    fake.always(
        &format!("/api/v1/sic/alerts/{ALERT_UUID}"),
        Reply::status(401, "{\"message\":\"invalid token\"}"),
    );
    fake.always(
        "/slack/services/T000/B000/secret-token",
        Reply::status(404, "channel_not_found"),
    );
    let dir = tempfile::tempdir().unwrap();
    let text = config_text(
        &fake,
        &dir.path().join("spool.db"),
        &format!(
            "{}\n[[routes]]\nname = \"all\"\nto = [\"teams\", \"slack\", \"mattermost\"]\n",
            hooks().replace(ROUTE_ALL, "")
        ),
    )
    .replace(
        &fake.url("/teams/workflows/secret-token"),
        "http://127.0.0.1:1/teams/workflows/secret-token-unreachable",
    )
    .replace(
        &format!("api_key = \"{API_KEY}\""),
        "api_key = \"${SEKOIA_KEY}\"",
    );
    let config = dir.path().join("hookrelay.toml");
    std::fs::write(&config, text).unwrap();
    let secrets = [
        "sekoia-key-0123456789",
        "secret-token",
        KEY_NEW,
        "c2VjcmV0LWtleS1udW1iZXItdHdv",
        GH_SECRET,
    ];
    let mut daemon = tokio::task::spawn_blocking({
        let config = config.clone();
        move || {
            std::env::set_var("SEKOIA_KEY", "sekoia-key-0123456789");
            Daemon::start(&config)
        }
    })
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let url = |id: &str| format!("http://{}/hooks/{id}", daemon.addr);
    // Accepted, then: enrich 401, Slack 404 (dead letter), Teams unreachable (retries).
    let r = client
        .post(daemon.hook_url())
        .header("content-type", "application/json")
        .body(fixture("event-alert-created.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    // Bad signatures, bad bodies, wrong sources, unknown hooks.
    for (id, body) in [
        (SIGNED_ID, "{}"),
        (GITHUB_ID, "{}"),
        (PARTNER_ID, "{}"),
        (HOOK_ID, "{oops"),
        ("00000000-0000-4000-8000-000000000000", "{}"),
    ] {
        let _ = client
            .post(url(id))
            .header("webhook-signature", "v1,AAAA")
            .body(body)
            .send()
            .await
            .unwrap();
    }
    fake.wait_for("/slack", 1, Duration::from_secs(20)).await;
    fake.wait_for("/mattermost", 1, Duration::from_secs(20))
        .await;
    // Let the unreachable Teams fail at least twice.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while daemon
        .logs()
        .matches("Delivery failed; will retry.")
        .count()
        < 2
    {
        assert!(std::time::Instant::now() < deadline, "{}", daemon.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = daemon.metrics().await;
    let (_, check_out, check_err) = tokio::task::spawn_blocking({
        let config = config.clone();
        move || cli(&["check", "--config", config.to_str().unwrap()])
    })
    .await
    .unwrap();
    daemon.kill9();
    let logs = daemon.logs();
    if std::env::var_os("SHOW_LOGS").is_some() {
        eprintln!("{logs}");
    }
    assert!(
        logs.contains("invalid_payload") || logs.contains("channel_not_found"),
        "{logs}"
    );
    assert!(
        logs.contains("http://127.0.0.1:1/…"),
        "the unreachable URL should show redacted:\n{logs}"
    );
    // The config's own list of its secrets covers every one used here.
    let env = std::collections::HashMap::from([(
        "SEKOIA_KEY".to_owned(),
        "sekoia-key-0123456789".to_owned(),
    )]);
    let loaded = hookrelay::config::load_str(&std::fs::read_to_string(&config).unwrap(), &env)
        .unwrap_or_else(|e| panic!("{e}"));
    let listed: Vec<&str> = loaded.secrets().iter().map(|s| s.expose()).collect();
    for s in secrets {
        assert!(
            listed.iter().any(|l| l.contains(s)),
            "{s:?} is not in Config::secrets()"
        );
    }
    for s in listed {
        assert!(
            !logs.contains(s),
            "a configured secret is in the logs:\n{logs}"
        );
    }
    for s in secrets {
        assert!(!logs.contains(s), "secret {s:?} in logs:\n{logs}");
        assert!(!metrics.contains(s), "secret {s:?} in metrics");
        assert!(
            !check_out.contains(s) && !check_err.contains(s),
            "secret {s:?} in check output"
        );
    }
}

#[tokio::test]
async fn a_flood_of_bad_requests_leaves_the_daemon_healthy() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, &hooks()).await;
    let mut tasks = Vec::new();
    for worker in 0..16 {
        let (client, addr) = (app.client.clone(), app.addr);
        tasks.push(tokio::spawn(async move {
            for i in 0..125 {
                let (path, body) = match (worker + i) % 4 {
                    0 => (format!("/hooks/{HOOK_ID}"), "{not json".to_owned()),
                    1 => (format!("/hooks/{SIGNED_ID}"), "{}".to_owned()),
                    2 => (
                        "/hooks/00000000-0000-4000-8000-000000000000".to_owned(),
                        "{}".to_owned(),
                    ),
                    _ => (format!("/hooks/{PARTNER_ID}"), "{}".to_owned()),
                };
                let r = client
                    .post(format!("http://{addr}{path}"))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_client_error());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // Still serving, and every rejection was counted.
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    fake.wait_for("/slack", 1, Duration::from_secs(20)).await;
    let m = app.metrics().await;
    let rejected: f64 = ["bad_request", "unauthorized", "not_found", "forbidden"]
        .iter()
        .map(|r| {
            metric(
                &m,
                "hookrelay_events_received_total",
                &[&format!("result=\"{r}\"")],
            )
        })
        .sum();
    assert_eq!(rejected, 2000.0);
    app.stop().await;
}
