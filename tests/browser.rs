//! Real-browser tests: Debian's chromium, headless, driven over WebDriver
//! (chromedriver, started here) with fantoccini. An analyst opens the
//! action link of a Teams card, reads the page, types a comment, confirms,
//! and sees the result; the fake Sekoia.io API gets exactly one change.
//! Screenshots of both pages land in `target/browser/`.
//!
//! Skipped (loudly) when chromium or chromedriver is missing, unless
//! `TESTS_REQUIRE_BROWSER=1` (set by `scripts/test.sh`, which installs them).

mod common;

use common::*;
use fantoccini::{ClientBuilder, Locator};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);

/// chromedriver on a free loopback port; killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(cmd: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(cmd))
        .find(|p| p.exists())
}

async fn driver() -> Option<Driver> {
    let (Some(chromedriver), Some(_)) = (find("chromedriver"), find("chromium")) else {
        if std::env::var("TESTS_REQUIRE_BROWSER").as_deref() == Ok("1") {
            panic!("chromium and chromedriver are required (scripts/test.sh installs them)");
        }
        eprintln!(
            "SKIPPED: chromium or chromedriver not installed (scripts/test.sh installs them)"
        );
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(Driver { child, port })
}

async fn browser(d: &Driver) -> fantoccini::Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": find("chromium").unwrap(),
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=900,900"],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", d.port))
        .await
        .expect("a chromium session")
}

/// A daemon with `[actions]` whose Teams card for the fixture alert was
/// delivered to `fake`, and that card's `title` action link, pointed at
/// the daemon.
async fn action_link(fake: &Fake, title: &str) -> (TestApp, String) {
    let extra = "[actions]\npublic_url = \"https://relay.example.org\"\nsecret = \"an-actions-secret-of-at-least-32-bytes!!\"\n[[routes]]\nname = \"all\"\nto = [\"teams\"]\n";
    let app = spawn_app(fake, extra).await;
    let (status, _) = app.post(fixture("event-alert-created.json")).await;
    assert_eq!(status, 202);
    let card = fake.wait_for("/teams", 1, WAIT).await[0].json();
    let url = card["attachments"][0]["content"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"] == title)
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .replace("https://relay.example.org", &format!("http://{}", app.addr));
    (app, url)
}

fn shots() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_analyst_confirms_an_action_in_a_real_browser() {
    let Some(d) = driver().await else {
        return;
    };
    let fake = Fake::start().await;
    let (app, url) = action_link(&fake, "Acknowledge").await;

    let c = browser(&d).await;
    c.goto(&url).await.unwrap();
    let heading = c
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(heading, "Acknowledge alert ALEY4fqz8moo?");
    let status = c
        .find(Locator::Id("status"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(status, "Pending");
    std::fs::write(
        shots().join("action-confirm.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    assert!(fake
        .received("/api/v1/sic/alerts/5696845f-9ecf-4431-9f0f-48ee0ee2eff1/workflow")
        .is_empty());

    c.find(Locator::Id("comment"))
        .await
        .unwrap()
        .send_keys("Seen from the browser")
        .await
        .unwrap();
    c.find(Locator::Id("confirm"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let result = c
        .wait()
        .at_most(WAIT)
        .for_element(Locator::Css("h1.ok"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(result, "Alert ALEY4fqz8moo is now Acknowledged");
    std::fs::write(
        shots().join("action-result.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    let sent = fake.received("/api/v1/sic/alerts/5696845f-9ecf-4431-9f0f-48ee0ee2eff1/workflow");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].json()["comment"],
        "Seen from the browser (via hookrelay)"
    );

    // Back and submit again: the spent form is refused, nothing more sent.
    c.back().await.unwrap();
    if let Ok(button) = c.find(Locator::Id("confirm")).await {
        button.click().await.unwrap();
        let h = c
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css("h1"))
            .await
            .unwrap();
        let _ = h.text().await;
    }
    assert_eq!(
        fake.received("/api/v1/sic/alerts/5696845f-9ecf-4431-9f0f-48ee0ee2eff1/workflow")
            .len(),
        1
    );
    c.close().await.unwrap();
    app.stop().await;
}

/// The hostile fixture's text on the confirmation page runs nothing: no
/// script executes (the page has none, and the policy allows none).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_alert_text_runs_nothing_in_a_real_browser() {
    let Some(d) = driver().await else {
        return;
    };
    let fake = Fake::start().await;
    let mut hostile = fixture_json("alert-hostile.json");
    hostile["uuid"] = ALERT_UUID.into();
    hostile["title"] =
        "<img src=x onerror=\"window.hookrelayPwned=1\"><script>window.hookrelayPwned=2</script>"
            .into();
    fake.set_alert(ALERT_UUID, hostile);
    let (app, url) = action_link(&fake, "Close").await;
    let c = browser(&d).await;
    c.goto(&url).await.unwrap();
    let marker = c
        .execute(
            "return window.hookrelayPwned === undefined ? null : window.hookrelayPwned;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        marker,
        serde_json::Value::Null,
        "a script from the alert ran"
    );
    let shown = c
        .find(Locator::Css("dd:nth-of-type(2)"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        shown.contains("<script>"),
        "the title is shown as text: {shown}"
    );
    std::fs::write(
        shots().join("action-hostile.png"),
        c.screenshot().await.unwrap(),
    )
    .unwrap();
    c.close().await.unwrap();
    app.stop().await;
}

const CONSOLE_PASSWORD: &str = "a console password";

/// A created-alert event about `uuid` with its own short id.
fn event_about(uuid: &str, short_id: &str) -> String {
    let mut v = fixture_json("event-alert-created.json");
    v["attributes"]["uuid"] = uuid.into();
    v["attributes"]["short_id"] = short_id.into();
    v.to_string()
}

async fn console_shot(c: &fantoccini::Client, name: &str) {
    std::fs::write(shots().join(name), c.screenshot().await.unwrap()).unwrap();
}

/// The text of the first element matching `css`, once there is one. A
/// click that navigates may leave the old page's element to be found
/// first; it goes stale, and the new page's is read instead.
async fn text_of(c: &fantoccini::Client, css: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found = c.wait().at_most(WAIT).for_element(Locator::Css(css)).await;
        match found {
            Ok(e) => match e.text().await {
                Ok(t) => return t,
                Err(_) if tokio::time::Instant::now() < deadline => {}
                Err(err) => panic!("{css}: {err}"),
            },
            Err(err) => panic!("{css}: {err}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The text of `css` once it reads `want` (a page loading after a click),
/// or whatever it reads at the deadline.
async fn text_becomes(c: &fantoccini::Client, css: &str, want: &str) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = text_of(c, css).await;
        if text == want || tokio::time::Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An operator logs in, reads the overview, finds the alert by its short
/// id, reads why each route matched or not, replays the dead letter (it
/// is delivered once more, once), runs the route tester on the stored
/// fixture event, and opens the hostile alert's page, which runs nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_uses_the_console_in_a_real_browser() {
    let Some(d) = driver().await else {
        return;
    };
    let fake = Fake::start().await;
    // The urgent alert's card is refused once: a dead letter.
    fake.script(
        "/teams/workflows/secret-token",
        [Reply::status(400, "bad card")],
    );
    let mut urgent = fixture_json("alert-full.json");
    urgent["urgency"]["value"] = 90.into();
    urgent["urgency"]["current_value"] = 90.into();
    fake.set_alert(ALERT_UUID, urgent);
    let extra = format!(
        "[console]\nenabled = true\npassword = \"{CONSOLE_PASSWORD}\"\n\
         [[routes]]\nname = \"majors\"\nto = [\"teams\"]\n[routes.when]\nurgency_min = 70\n\
         [[routes]]\nname = \"the rest\"\nto = [\"slack\"]\n"
    );
    let app = spawn_app(&fake, &extra).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    fake.wait_for("/teams/workflows/secret-token", 1, WAIT)
        .await;
    // Another alert, below the majors' bar: to Slack.
    let other = "0b0b0b0b-1111-4222-8333-444444444444";
    fake.set_alert(other, fixture_json("alert-full.json"));
    assert_eq!(app.post(event_about(other, "ALother1")).await.0, 202);
    fake.wait_for("/slack", 1, WAIT).await;

    let base = format!("http://{}", app.admin);
    let c = browser(&d).await;
    c.set_window_size(1280, 1000).await.unwrap();
    // Log in (the overview redirects to the form first).
    c.goto(&format!("{base}/console/")).await.unwrap();
    c.wait()
        .at_most(WAIT)
        .for_element(Locator::Id("password"))
        .await
        .unwrap();
    c.find(Locator::Id("username"))
        .await
        .unwrap()
        .send_keys("admin")
        .await
        .unwrap();
    c.find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(CONSOLE_PASSWORD)
        .await
        .unwrap();
    c.find(Locator::Id("login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(text_becomes(&c, "h1", "Overview").await, "Overview");
    let deadline = tokio::time::Instant::now() + WAIT;
    while text_of(&c, "#events-hour").await != "2" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the overview never counted 2 events"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        c.refresh().await.unwrap();
    }
    assert_eq!(text_of(&c, "#dead-total").await, "1");
    console_shot(&c, "console-overview.png").await;

    // The events page, filtered by the alert's short id.
    c.goto(&format!("{base}/console/events")).await.unwrap();
    c.find(Locator::Id("q"))
        .await
        .unwrap()
        .send_keys("ALEY4fqz8moo")
        .await
        .unwrap();
    c.find(Locator::Id("apply"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !c
        .current_url()
        .await
        .unwrap()
        .as_str()
        .contains("q=ALEY4fqz8moo")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the filter was not applied"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rows = c
        .find_all(Locator::Css("#events tr[data-id]"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "one event about that alert");
    console_shot(&c, "console-events.png").await;

    // Its journey: why each route matched or not.
    c.find(Locator::Css("#events tr[data-id] a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let majors = text_of(&c, "#decisions tr[data-route='majors']").await;
    assert!(
        majors.contains("matched") && majors.contains("urgency_min = 70 (urgency 90)"),
        "{majors}"
    );
    let rest = text_of(&c, "#decisions tr[data-route='the rest']").await;
    assert!(rest.contains("not evaluated"), "{rest}");
    let delivery = text_of(&c, ".delivery").await;
    assert!(
        delivery.contains("dead") && delivery.contains("HTTP 400"),
        "{delivery}"
    );
    console_shot(&c, "console-event.png").await;

    // Replay the dead letter: pick it, confirm, see it delivered once.
    c.goto(&format!("{base}/console/dead-letters"))
        .await
        .unwrap();
    c.find(Locator::Css("#dead input[type=checkbox]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    console_shot(&c, "console-dead-letters.png").await;
    c.find(Locator::Id("replay-selected"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        text_becomes(&c, "h1", "Replay 1 dead letters?").await,
        "Replay 1 dead letters?"
    );
    assert_eq!(
        fake.received("/teams/workflows/secret-token").len(),
        1,
        "not before the confirmation"
    );
    c.find(Locator::Id("confirm-replay"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    assert_eq!(
        text_of(&c, "#replayed").await,
        "1 dead letters are queued again."
    );
    fake.wait_for("/teams/workflows/secret-token", 2, WAIT)
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        fake.received("/teams/workflows/secret-token").len(),
        2,
        "delivered once more, once"
    );

    // The route tester on the stored fixture event.
    c.goto(&format!("{base}/console/events?q=ALEY4fqz8moo"))
        .await
        .unwrap();
    c.find(Locator::Css("#events tr[data-id] a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Id("test-routes"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Id("run-test"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let verdict = text_of(&c, "#decisions tr[data-route='majors']").await;
    assert!(verdict.contains("matched"), "{verdict}");
    let request = text_of(&c, "pre.request").await;
    assert!(
        request.starts_with("POST") && !request.contains("secret-token"),
        "{request}"
    );
    console_shot(&c, "console-route-tester.png").await;

    c.goto(&format!("{base}/console/config")).await.unwrap();
    assert!(text_of(&c, "#effective").await.contains("<redacted>"));
    console_shot(&c, "console-config.png").await;

    // The hostile alert's page runs nothing.
    let hostile_uuid = "0c0c0c0c-1111-4222-8333-444444444444";
    let mut hostile = fixture_json("alert-hostile.json");
    hostile["uuid"] = hostile_uuid.into();
    hostile["title"] =
        "<img src=x onerror=\"window.hookrelayPwned=1\"><script>window.hookrelayPwned=2</script>"
            .into();
    fake.set_alert(hostile_uuid, hostile);
    assert_eq!(
        app.post(event_about(hostile_uuid, "ALhostile")).await.0,
        202
    );
    fake.wait_for("/slack", 2, WAIT).await;
    c.goto(&format!("{base}/console/events?q=hookrelayPwned"))
        .await
        .unwrap();
    let title = text_of(&c, "#events tr[data-id] td.text").await;
    assert!(title.contains("<script>"), "shown as text: {title}");
    c.find(Locator::Css("#events tr[data-id] a"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Css("#journey")).await.unwrap();
    let marker = c
        .execute(
            "return window.hookrelayPwned === undefined ? null : window.hookrelayPwned;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        marker,
        serde_json::Value::Null,
        "a script from the alert ran"
    );
    console_shot(&c, "console-hostile.png").await;
    c.close().await.unwrap();
    app.stop().await;
}
