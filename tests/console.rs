//! The web console over HTTP, as a browser without JavaScript would use
//! it: off → 404; a password → login, a session cookie, redirects; the
//! security headers; CSRF on every POST; events filtered, one event's
//! journey with its route decisions; dead-letter replay with a
//! confirmation; the route tester; the effective config with secrets
//! redacted and a reload; bad input → a 4xx page, never a 500.
//! (The same in a real browser: tests/browser.rs.)

mod common;

use common::*;
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);
const PASSWORD: &str = "a console password";

const ROUTES: &str = r#"
[[routes]]
name = "majors"
to = ["teams"]
[routes.when]
urgency_min = 70

[[routes]]
name = "the rest"
to = ["slack"]
"#;

fn console(password: bool) -> String {
    let p = if password {
        format!("password = \"{PASSWORD}\"\n")
    } else {
        String::new()
    };
    format!("[console]\nenabled = true\n{p}{ROUTES}")
}

/// A client that keeps cookies and does not follow redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn url(app: &TestApp, path: &str) -> String {
    format!("http://{}{path}", app.admin)
}

/// The hidden CSRF field of a page.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

async fn get(c: &reqwest::Client, u: &str) -> (u16, String) {
    let r = c.get(u).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn login(app: &TestApp, c: &reqwest::Client) {
    let r = c
        .post(url(app, "/console/login"))
        .form(&[
            ("username", "admin"),
            ("password", PASSWORD),
            ("next", "/console/events"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/events");
}

#[tokio::test]
async fn the_console_is_off_unless_enabled() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, ROUTE_ALL).await;
    let (status, _) = get(&browser(), &url(&app, "/console/")).await;
    assert_eq!(status, 404);
    let (status, _) = get(&browser(), &url(&app, "/console/events")).await;
    assert_eq!(status, 404);
}

#[test]
fn a_console_reachable_from_elsewhere_needs_a_password() {
    let text = "[admin]\nlisten = \"0.0.0.0:9091\"\n[console]\nenabled = true\n";
    let errors = hookrelay::config::load_str(text, &Default::default()).unwrap_err();
    assert!(
        errors
            .0
            .iter()
            .any(|e| e.key == "console.password" && e.message.contains("not a loopback")),
        "{errors}"
    );
    let short = "[console]\nenabled = true\npassword = \"short\"\n";
    let errors = hookrelay::config::load_str(short, &Default::default()).unwrap_err();
    assert!(
        errors.0.iter().any(|e| e.key == "console.password"),
        "{errors}"
    );
}

#[tokio::test]
async fn a_login_guards_every_page_and_a_wrong_one_learns_nothing() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, &console(true)).await;
    let c = browser();
    // No session: pages redirect to the login form, POSTs are refused.
    let r = c
        .get(url(&app, "/console/events?q=AL1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        "/console/login?next=%2Fconsole%2Fevents%3Fq%3DAL1"
    );
    let r = c
        .post(url(&app, "/console/dead-letters/replay"))
        .form(&[("scope", "all"), ("confirm", "yes")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (status, form) = get(&c, &url(&app, "/console/login")).await;
    assert_eq!(status, 200);
    assert!(form.contains("name=\"password\""));

    // A wrong user and a wrong password get the same answer, slowly.
    let mut answers = Vec::new();
    for (user, password) in [("admin", "wrong password!"), ("root", PASSWORD)] {
        let started = Instant::now();
        let r = c
            .post(url(&app, "/console/login"))
            .form(&[("username", user), ("password", password)])
            .send()
            .await
            .unwrap();
        assert!(started.elapsed() >= Duration::from_millis(700));
        assert_eq!(r.status(), 401);
        assert!(r.headers().get("set-cookie").is_none());
        answers.push(r.text().await.unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[0].contains("Wrong user name or password."));

    // The right one: a session cookie, then every page.
    let r = c
        .post(url(&app, "/console/login"))
        .form(&[
            ("username", "admin"),
            ("password", PASSWORD),
            ("next", "https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/console/", "never elsewhere");
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attr), "{cookie}");
    }
    assert!(
        !cookie.contains("Secure"),
        "secure_cookies is off: {cookie}"
    );
    for path in [
        "/console/",
        "/console/events",
        "/console/dead-letters",
        "/console/routes/test",
        "/console/config",
    ] {
        let r = c.get(url(&app, path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && !csp.contains("script-src"),
            "{csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let html = r.text().await.unwrap();
        assert!(!html.contains("<script"), "{path}: no script");
    }
    // Logging out ends it.
    let (_, page) = get(&c, &url(&app, "/console/")).await;
    let r = c
        .post(url(&app, "/console/logout"))
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = c.get(url(&app, "/console/")).send().await.unwrap();
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn events_are_filtered_and_each_shows_its_journey() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, &console(true)).await;
    let c = browser();
    login(&app, &c).await;
    let (status, _) = app.post(fixture("event-alert-created.json")).await;
    assert_eq!(status, 202);
    // The sender retries the same body: recognised, stored once.
    let (status, _) = app.post(fixture("event-alert-created.json")).await;
    assert_eq!(status, 202);
    fake.wait_for("/slack", 1, WAIT).await;

    // The list, filtered by the alert's short id.
    let deadline = Instant::now() + WAIT;
    let id = loop {
        let (status, html) = get(
            &c,
            &url(&app, "/console/events?q=ALEY4fqz8moo&state=delivered"),
        )
        .await;
        assert_eq!(status, 200);
        if let Some(at) = html.find("href=\"/console/events/") {
            let rest = &html[at + 22..];
            break rest[..rest.find('"').unwrap()].parse::<i64>().unwrap();
        }
        assert!(Instant::now() < deadline, "{html}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (_, none) = get(&c, &url(&app, "/console/events?q=ALnothing")).await;
    assert!(none.contains("No event matches."));
    let (_, by_title) = get(&c, &url(&app, "/console/events?q=powershell")).await;
    assert!(
        by_title.contains("Suspicious PowerShell download cradle"),
        "{by_title}"
    );

    // The journey: received, enrichment, every route's verdict and why,
    // the delivery with its attempt and payload.
    let (status, html) = get(&c, &url(&app, &format!("/console/events/{id}"))).await;
    assert_eq!(status, 200);
    for want in [
        "127.0.0.1",
        "none: the hook has no secret",
        "1 (the same body again",
        "alert fetched",
        "urgency_min = 70: the alert's urgency is 63",
        "the rest",
        "matched",
        "HTTP 200",
        "Payload sent",
    ] {
        assert!(
            html.contains(want),
            "{want:?} not on the event page:\n{html}"
        );
    }
    assert!(!html.contains("secret-token"), "webhook URLs never shown");
}

#[tokio::test]
async fn bad_input_gets_a_4xx_page_never_a_500() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, &console(false)).await;
    let c = browser();
    for (path, want) in [
        ("/console/events?state=everything", 400),
        ("/console/events?before=abc", 400),
        ("/console/events?before=99999999999999999999999", 400),
        ("/console/events?before=-5", 400),
        ("/console/events?before=3&after=2", 400),
        ("/console/events?from=yesterday", 400),
        ("/console/events?limit=100000", 400),
        ("/console/events?digest=nonsense", 400),
        ("/console/events?since=forever", 400),
        ("/console/events?since=99999999999d", 400),
        (
            "/console/events?since=1h&state=delivered&type=alert&hook=soc",
            200,
        ),
        ("/console/events?q=%FF%FE", 200),
        ("/console/events?before=9223372036854775807", 200),
        ("/console/events/123456789", 404),
        ("/console/events/abc", 400),
        ("/console/events/99999999999999999999", 400),
        ("/console/dead-letters?before=x", 400),
        ("/console/routes/test?event=0", 400),
        ("/console/routes/test?event=424242", 404),
        ("/console/nothing-here", 404),
    ] {
        let (status, html) = get(&c, &url(&app, path)).await;
        assert_eq!(status, want, "{path}: {html}");
        assert!(html.contains("</html>"), "{path}: an HTML page");
    }
    // A POST without the form's token changes nothing.
    for path in [
        "/console/dead-letters/replay",
        "/console/config/reload",
        "/console/routes/test",
    ] {
        let r = c
            .post(url(&app, path))
            .form(&[("csrf", "00ff"), ("scope", "all"), ("confirm", "yes")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
    }
}

#[tokio::test]
async fn a_dead_letter_is_replayed_after_a_confirmation_and_sent_once() {
    let fake = Fake::start().await;
    fake.script(
        "/teams/workflows/secret-token",
        [Reply::status(400, "bad card")],
    );
    let app = spawn_app(&fake, &console(false)).await;
    let c = browser();
    let mut urgent = fixture_json("alert-full.json");
    urgent["urgency"]["value"] = 90.into();
    urgent["urgency"]["current_value"] = 90.into();
    fake.set_alert(ALERT_UUID, urgent);
    let (status, _) = app.post(fixture("event-alert-created.json")).await;
    assert_eq!(status, 202);
    let deadline = Instant::now() + WAIT;
    let page = loop {
        let (_, html) = get(&c, &url(&app, "/console/dead-letters?destination=teams")).await;
        if html.contains("id=\"dead\"") {
            break html;
        }
        assert!(Instant::now() < deadline, "{html}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(page.contains("HTTP 400"), "{page}");
    let id = {
        let marker = "name=\"id\" value=\"";
        let at = page.find(marker).unwrap() + marker.len();
        page[at..].split('"').next().unwrap().to_owned()
    };
    let csrf = csrf_of(&page);
    // The first POST asks for confirmation and changes nothing.
    let r = c
        .post(url(&app, "/console/dead-letters/replay"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("id", id.as_str()),
            ("scope", "selected"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let confirm = r.text().await.unwrap();
    assert!(confirm.contains("Replay 1 dead letters?"), "{confirm}");
    assert_eq!(fake.received("/teams/workflows/secret-token").len(), 1);
    let r = c
        .post(url(&app, "/console/dead-letters/replay"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("id", id.as_str()),
            ("confirm", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("1 dead letters are queued again."));
    fake.wait_for("/teams/workflows/secret-token", 2, WAIT)
        .await;
    // Replaying again: nothing left to replay, nothing sent.
    let r = c
        .post(url(&app, "/console/dead-letters/replay"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("id", id.as_str()),
            ("confirm", "yes"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fake.received("/teams/workflows/secret-token").len(), 2);
}

#[tokio::test]
async fn the_route_tester_says_why_and_sends_nothing() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, &console(false)).await;
    let c = browser();
    let (_, form) = get(&c, &url(&app, "/console/routes/test")).await;
    let event = String::from_utf8(fixture("event-alert-created.json")).unwrap();
    let alert = String::from_utf8(fixture("alert-full.json")).unwrap();
    let r = c
        .post(url(&app, "/console/routes/test"))
        .form(&[
            ("csrf", csrf_of(&form).as_str()),
            ("hook", "soc"),
            ("event", event.as_str()),
            ("alert", alert.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("urgency_min = 70: the alert's urgency is 63"),
        "{html}"
    );
    assert!(html.contains("data-destination=\"slack\""), "{html}");
    assert!(!html.contains("secret-token"), "the webhook URL is hidden");
    // Garbage in: a 422 naming the problem.
    let r = c
        .post(url(&app, "/console/routes/test"))
        .form(&[("csrf", csrf_of(&form).as_str()), ("event", "{not json")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("event: "));
    assert!(fake
        .received("/slack/services/T000/B000/secret-token")
        .is_empty());
    assert!(fake.received("/teams/workflows/secret-token").is_empty());
}

#[tokio::test]
async fn the_config_page_hides_secrets_and_reloads_from_the_file() {
    let fake = Fake::start().await;
    let (app, path) = spawn_app_file(&fake, &console(false)).await;
    let c = browser();
    let (status, html) = get(&c, &url(&app, "/console/config")).await;
    assert_eq!(status, 200);
    assert!(html.contains(&path.display().to_string()));
    assert!(html.contains("&lt;redacted&gt;"), "{html}");
    for secret in ["secret-token", API_KEY] {
        assert!(!html.contains(secret), "{secret} on the config page");
    }
    assert!(html.contains("urgency_min = 70"));
    // A broken file: refused with its errors by key; the old one serves.
    edit_config(&path, "urgency_min = 70", "urgency_min = \"high\"");
    let r = c
        .post(url(&app, "/console/config/reload"))
        .form(&[("csrf", csrf_of(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    assert!(page.contains("routes[0].when.urgency_min"), "{page}");
    // Fixed: applied.
    edit_config(&path, "urgency_min = \"high\"", "urgency_min = 50");
    let r = c
        .post(url(&app, "/console/config/reload"))
        .form(&[("csrf", csrf_of(&html))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("Reloaded"), "{page}");
    assert!(page.contains("urgency_min = 50"), "{page}");
    assert!(app
        .metrics()
        .await
        .contains("hookrelay_config_reloads_total{result=\"ok\"} 1"));
}

#[tokio::test]
async fn the_overview_counts_the_last_hour() {
    let fake = Fake::start().await;
    let app = spawn_app(&fake, &console(false)).await;
    let c = browser();
    for n in 0..3 {
        assert_eq!(app.post(unique_event(n, ALERT_UUID)).await.0, 202);
    }
    fake.wait_for("/slack", 3, WAIT).await;
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, html) = get(&c, &url(&app, "/console/")).await;
        assert_eq!(status, 200);
        if html.contains("<b id=\"events-hour\">3</b>") && html.contains("<polyline") {
            assert!(html.contains("data-destination=\"slack\""));
            break;
        }
        assert!(Instant::now() < deadline, "{html}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A digest links to the console's list of exactly the alerts it stands
/// for (the held deliveries it folded in), and says how many.
#[tokio::test]
async fn a_digest_links_to_exactly_its_alerts() {
    let fake = Fake::start().await;
    let extra = "[console]\nenabled = true\npublic_url = \"https://relay.example.org/\"\n\
                 [[routes]]\nname = \"all\"\nto = [\"slack\"]\n";
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let env = [
        ("HOOKRELAY_DESTINATIONS__SLACK__MAX_PER_MINUTE", "1"),
        ("HOOKRELAY_DESTINATIONS__SLACK__DIGEST", "true"),
        ("HOOKRELAY_DESTINATIONS__SLACK__DIGEST_INTERVAL", "300ms"),
    ];
    let app = spawn_app_with(&fake, extra, dir, &env).await;
    for i in 0..6 {
        let mut v: serde_json::Value = serde_json::from_str(&unique_event(i, ALERT_UUID)).unwrap();
        v["attributes"]["short_id"] = format!("ALdigest{i}").into();
        assert_eq!(app.post(v.to_string()).await.0, 202);
    }
    let deadline = Instant::now() + WAIT;
    let digest = loop {
        let found = fake
            .received("/slack")
            .into_iter()
            .map(|r| r.json().to_string())
            .find(|t| t.contains("more alerts in the last"));
        if let Some(d) = found {
            break d;
        }
        assert!(Instant::now() < deadline, "no digest");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let start = digest
        .find("https://relay.example.org/console/events?digest=")
        .expect(&digest);
    let link: String = digest[start..]
        .chars()
        .take_while(|c| !matches!(c, '|' | '"' | '>' | ')'))
        .collect();
    let n: usize = {
        let text_at = digest.find(" more alerts in the last").unwrap();
        let head = &digest[..text_at];
        head[head.rfind(|c: char| !c.is_ascii_digit()).unwrap() + 1..]
            .parse()
            .unwrap()
    };
    assert!(n >= 1, "{digest}");
    let local = link.replace(
        "https://relay.example.org",
        &format!("http://{}", app.admin),
    );
    let (status, page) = get(&browser(), &local).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("id=\"digest-filter\""), "{page}");
    let rows = page.matches("<tr data-id=").count();
    assert_eq!(
        rows, n,
        "the console lists exactly the {n} alerts of the digest:\n{page}"
    );
}

/// A GET of `path` on the admin listener with this `Host` header (`None`:
/// none at all), over a raw HTTP/1.1 connection: its status and body.
async fn raw_get(app: &TestApp, path: &str, host: Option<&str>, extra: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(app.admin).await.unwrap();
    let host = host.map(|h| format!("Host: {h}\r\n")).unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\n{host}{extra}Connection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, text)
}

/// DNS rebinding: a page of attacker.example resolved to 127.0.0.1 reaches
/// the loopback console from the operator's browser with its own `Host`.
#[tokio::test]
async fn the_console_answers_only_the_host_names_it_is_served_under() {
    let fake = Fake::start().await;
    let extra = format!(
        "[console]\nenabled = true\npublic_url = \"https://relay.example.org/\"\nallowed_hosts = [\"Console.Internal\"]\n{ROUTES}"
    );
    let app = spawn_app(&fake, &extra).await;
    let port = app.admin.port();
    for path in [
        "/console/",
        "/console/config",
        "/console/events",
        "/console/login",
        "/console/static/console.css",
    ] {
        for host in [
            Some("attacker.example".to_owned()),
            Some(format!("attacker.example:{port}")),
            Some(format!("localhost.attacker.example:{port}")),
            Some("relay.example.org:8443".to_owned()),
            None,
        ] {
            let (status, text) = raw_get(&app, path, host.as_deref(), "").await;
            assert_eq!(status, 421, "{path} with Host {host:?}: {text}");
            assert!(!text.contains("csrf"), "{text}");
            assert!(text.contains("misdirected request"), "{text}");
        }
    }
    // Its own names: loopback (any port: an SSH tunnel), public_url's
    // host, allowed_hosts (any case).
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        "localhost:8022".to_owned(),
        format!("[::1]:{port}"),
        "relay.example.org".to_owned(),
        "relay.example.org:443".to_owned(),
        "console.internal".to_owned(),
    ] {
        let (status, text) = raw_get(&app, "/console/config", Some(&host), "").await;
        assert_eq!(status, 200, "Host {host}: {text}");
    }
    // reqwest's own Host (127.0.0.1:port), as the browser tests use.
    let (status, _) = get(&browser(), &url(&app, "/console/config")).await;
    assert_eq!(status, 200);
    // Hooks and probes do not care.
    let (status, _) = raw_get(&app, "/healthz", Some("attacker.example"), "").await;
    assert_eq!(status, 200);
    app.stop().await;
}

#[test]
fn allowed_hosts_entries_are_host_names() {
    for bad in [
        "https://relay.example.org",
        "relay.example.org/console",
        "a b",
        "",
    ] {
        let text = format!("[console]\nenabled = true\nallowed_hosts = [\"{bad}\"]\n");
        let errors = hookrelay::config::load_str(&text, &Default::default()).unwrap_err();
        assert!(
            errors
                .0
                .iter()
                .any(|e| e.key == "console.allowed_hosts[0]" && e.message.contains("host name")),
            "{bad}: {errors}"
        );
    }
    let ok = "[console]\nenabled = true\nallowed_hosts = [\"relay.example.org\", \"[::1]:9091\", \"10.0.0.5:8080\"]\n";
    hookrelay::config::load_str(ok, &Default::default()).unwrap();
}

/// The session cookie of a login (its `name=value` pair).
async fn session_cookie(app: &TestApp) -> String {
    let r = browser()
        .post(url(app, "/console/login"))
        .form(&[("username", "admin"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// A GET with `cookie` and nothing else: its status.
async fn get_with(app: &TestApp, path: &str, cookie: &str) -> u16 {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(url(app, path))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_logout_ends_copied_sessions_on_every_replica_and_a_new_password_all() {
    let fake = Fake::start().await;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let app = spawn_app_in(&fake, &console(true), dir.clone()).await;
    // Two sessions (two browsers, or a cookie copied elsewhere).
    let (one, two) = (session_cookie(&app).await, session_cookie(&app).await);
    assert_eq!(get_with(&app, "/console/", &one).await, 200);
    assert_eq!(get_with(&app, "/console/", &two).await, 200);
    // Logging out in one ends both: the cookie alone is no longer enough.
    let c = browser();
    login(&app, &c).await;
    let (_, page) = get(&c, &url(&app, "/console/")).await;
    let r = c
        .post(url(&app, "/console/logout"))
        .form(&[("csrf", csrf_of(&page))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(get_with(&app, "/console/", &one).await, 303);
    assert_eq!(get_with(&app, "/console/", &two).await, 303);
    // A new login works, and holds after a restart on the same spool
    // (the salt and the epoch are the spool's).
    let fresh = session_cookie(&app).await;
    assert_eq!(get_with(&app, "/console/", &fresh).await, 200);
    app.stop().await;
    let app = spawn_app_in(&fake, &console(true), dir.clone()).await;
    assert_eq!(get_with(&app, "/console/", &fresh).await, 200);
    assert_eq!(get_with(&app, "/console/", &one).await, 303);
    app.stop().await;
    // Another password: every session ends.
    let other = console(true).replace(PASSWORD, "another console password");
    let app = spawn_app_in(&fake, &other, dir).await;
    assert_eq!(get_with(&app, "/console/", &fresh).await, 303);
    app.stop().await;
}

#[tokio::test]
async fn cookies_are_secure_when_the_console_is_reached_over_https() {
    let fake = Fake::start().await;
    let https = console(true).replace(
        "enabled = true\n",
        "enabled = true\npublic_url = \"https://relay.example.org\"\n",
    );
    let app = spawn_app(&fake, &https).await;
    let r = browser()
        .post(url(&app, "/console/login"))
        .form(&[("username", "admin"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let set = r.headers()["set-cookie"].to_str().unwrap();
    assert!(set.contains("; Secure"), "{set}");
    app.stop().await;
    // An explicit `secure_cookies = false` still wins.
    let off = https.replace(
        "enabled = true\n",
        "enabled = true\nsecure_cookies = false\n",
    );
    let app = spawn_app(&fake, &off).await;
    let r = browser()
        .post(url(&app, "/console/login"))
        .form(&[("username", "admin"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    let set = r.headers()["set-cookie"].to_str().unwrap();
    assert!(!set.contains("Secure"), "{set}");
    app.stop().await;
}

#[tokio::test]
async fn the_login_limit_counts_each_client_behind_the_proxy() {
    let fake = Fake::start().await;
    // Loopback is a trusted proxy by default: X-Forwarded-For names the client.
    let app = spawn_app(&fake, &console(true)).await;
    let attempt = |xff: &'static str| {
        browser()
            .post(url(&app, "/console/login"))
            .header("x-forwarded-for", xff)
            .form(&[("username", "admin"), ("password", PASSWORD)])
            .send()
    };
    let mut codes = Vec::new();
    for _ in 0..11 {
        codes.push(attempt("192.0.2.1").await.unwrap().status().as_u16());
    }
    assert_eq!(codes[..10], [303; 10], "{codes:?}");
    assert_eq!(codes[10], 429, "{codes:?}");
    // Another client behind the same proxy is not locked out.
    assert_eq!(attempt("192.0.2.2").await.unwrap().status(), 303);
    // A header that cannot be read is refused, never counted as the proxy.
    let r = browser()
        .post(url(&app, "/console/login"))
        .header(
            "x-forwarded-for",
            reqwest::header::HeaderValue::from_bytes(b"192.0.2.\xff").unwrap(),
        )
        .form(&[("username", "admin"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("set-cookie").is_none());
    app.stop().await;
}
