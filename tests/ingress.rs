//! The public HTTP surface: every answer of the contract's table, in the
//! contract's order, and none of them calling the alert API.

mod common;

use common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn post_raw(
    app: &TestApp,
    url: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, serde_json::Value) {
    let mut req = app.client.post(url).body(body.to_owned());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(serde_json::Value::Null))
}

#[tokio::test]
async fn every_rejection_is_precise_and_calls_nothing() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, ROUTE_ALL).await;
    let url = app.hook_url();
    let json = Some("application/json");
    let cases: Vec<(&str, Option<&str>, String, u16, &str)> = vec![
        ("not JSON", json, "{oops".into(), 400, "not valid JSON"),
        ("array", json, "[]".into(), 400, "JSON object"),
        (
            "missing type",
            json,
            r#"{"action":"created","attributes":{}}"#.into(),
            400,
            "`type`",
        ),
        (
            "missing action",
            json,
            r#"{"type":"alert","attributes":{}}"#.into(),
            400,
            "`action`",
        ),
        (
            "missing attributes",
            json,
            r#"{"type":"alert","action":"created"}"#.into(),
            400,
            "`attributes`",
        ),
        (
            "missing uuid",
            json,
            r#"{"type":"alert","action":"created","attributes":{}}"#.into(),
            400,
            "`attributes.uuid`",
        ),
        (
            "path traversal uuid",
            json,
            r#"{"type":"alert","action":"created","attributes":{"uuid":"../../admin"}}"#.into(),
            400,
            "`attributes.uuid` must be a canonical UUID",
        ),
        (
            "form body",
            Some("application/x-www-form-urlencoded"),
            "a=b".into(),
            415,
            "Content-Type",
        ),
        (
            "text body",
            Some("text/plain"),
            "{}".into(),
            415,
            "Content-Type",
        ),
        (
            "too large",
            json,
            format!("{{\"pad\":\"{}\"}}", "x".repeat(70_000)),
            413,
            "larger than 65536",
        ),
    ];
    for (what, ct, body, status, needle) in cases {
        let (got, answer) = post_raw(&app, &url, ct, &body).await;
        assert_eq!(got, status, "{what}: {answer}");
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(needle), "{what}: {error:?} lacks {needle:?}");
    }
    // No Content-Type at all is fine.
    assert_eq!(
        post_raw(
            &app,
            &url,
            None,
            &String::from_utf8(fixture("event-alert-created.json")).unwrap()
        )
        .await
        .0,
        202
    );
    // Unknown types, actions and extra fields are accepted.
    let odd = r#"{"type":"countermeasure","action":"archived","attributes":{"x":1},"metadata":{"version":3},"extra":[1]}"#;
    assert_eq!(post_raw(&app, &url, json, odd).await.0, 202);

    // 404: same body for an unknown hook and any other path.
    let unknown_hook = format!(
        "http://{}/hooks/00000000-0000-4000-8000-000000000000",
        app.addr
    );
    let (s1, b1) = post_raw(&app, &unknown_hook, json, "{}").await;
    let (s2, b2) = post_raw(&app, &format!("http://{}/admin", app.addr), json, "{}").await;
    let (s3, b3) = post_raw(
        &app,
        &format!("http://{}/hooks/not-a-uuid", app.addr),
        json,
        "{}",
    )
    .await;
    assert_eq!((s1, s2, s3), (404, 404, 404));
    assert_eq!(b1, b2);
    assert_eq!(b1, b3);

    // 405 on a known hook only.
    let r = app.client.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 405);
    assert_eq!(r.headers()["allow"], "POST");
    assert_eq!(
        app.client
            .put(&unknown_hook)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );

    // Health.
    let r = app
        .client
        .get(format!("http://{}/healthz", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Only the two accepted events reached the alert API (the case has no uuid).
    fake.wait_for("/slack", 2, Duration::from_secs(20)).await;
    assert_eq!(fake.received("/api/").len(), 1);
    let m = app.metrics().await;
    assert_eq!(
        metric(
            &m,
            "hookrelay_events_received_total",
            &["result=\"bad_request\""]
        ),
        7.0
    );
    assert_eq!(
        metric(
            &m,
            "hookrelay_events_received_total",
            &["result=\"unsupported_media_type\""]
        ),
        2.0
    );
    assert_eq!(
        metric(
            &m,
            "hookrelay_events_received_total",
            &["result=\"too_large\""]
        ),
        1.0
    );
    assert_eq!(
        metric(
            &m,
            "hookrelay_events_received_total",
            &["result=\"not_found\""]
        ),
        3.0
    );
    assert_eq!(
        metric(
            &m,
            "hookrelay_events_nonstandard_total",
            &["reason=\"version\""]
        ),
        1.0
    );
    app.stop().await;
}

#[tokio::test]
async fn a_lying_content_length_gets_413_without_reading_the_body() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, ROUTE_ALL).await;
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    // Declares a huge body and sends only a few bytes: answered at once.
    let head = format!(
        "POST /hooks/{HOOK_ID} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 10000000\r\n\r\n{{\"a\":"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Declares a small body and sends more (chunked): cut at the cap.
    let mut s = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head =
        format!("POST /hooks/{HOOK_ID} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    s.write_all(head.as_bytes()).await.unwrap();
    let chunk = "x".repeat(40_000);
    for _ in 0..2 {
        let _ = s
            .write_all(format!("{:x}\r\n{chunk}\r\n", chunk.len()).as_bytes())
            .await;
    }
    let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    app.stop().await;
}

#[tokio::test]
async fn admin_endpoints_live_on_their_own_port() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, ROUTE_ALL).await;
    assert_ne!(app.addr.port(), app.admin.port());
    let get = |path: &str| app.client.get(format!("http://{}{path}", app.admin)).send();
    assert_eq!(get("/healthz").await.unwrap().status().as_u16(), 200);
    assert_eq!(get("/readyz").await.unwrap().status().as_u16(), 200);
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("hookrelay_build_info"), "{metrics}");
    // Not on the public port.
    let r = app
        .client
        .get(format!("http://{}/metrics", app.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    app.stop().await;
}
