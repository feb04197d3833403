//! E-mail (against a real SMTP server), generic webhooks (signed the
//! Standard Webhooks way) and operator templates, end to end.

mod common;

use common::*;
use hookrelay::ingress::auth::standard_webhooks_sign;
use serde_json::Value;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const WHSEC: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Asserts that `haystack` contains `needle`, showing the haystack if not.
#[track_caller]
fn has(haystack: &str, needle: &str) {
    assert!(haystack.contains(needle), "{needle:?} not in:\n{haystack}");
}

/// Waits until the app has dead-lettered one delivery.
async fn wait_dead(app: &TestApp) {
    wait_metric(
        app,
        "hookrelay_deliveries_total",
        &["outcome=\"dead\""],
        1.0,
        WAIT,
    )
    .await;
}

fn email_destination(port: u16, extra: &str) -> String {
    format!(
        r#"
[destinations.mail]
kind = "email"
host = "127.0.0.1"
port = {port}
tls = "none"
from = "hookrelay <hookrelay@soc.example>"
to = ["soc@soc.example", "Night Shift <oncall@soc.example>"]
timeout = "2s"
{extra}
[[routes]]
name = "mail"
to = ["mail"]
"#
    )
}

/// The MIME part of `data` with this content type, decoded enough to
/// compare text (quoted-printable soft breaks joined).
fn part(data: &str, content_type: &str) -> String {
    let start = data
        .find(&format!("Content-Type: {content_type}"))
        .unwrap_or_else(|| panic!("no {content_type} part in\n{data}"));
    let rest = &data[start..];
    let body = &rest[rest.find("\n\n").unwrap() + 2..];
    let end = body.find("\n--").unwrap_or(body.len());
    let raw = &body[..end];
    if rest[..rest.find("\n\n").unwrap()].contains("quoted-printable") {
        raw.replace("=\n", "").replace("=3D", "=")
    } else {
        raw.to_owned()
    }
}

#[tokio::test]
async fn an_alert_arrives_as_a_multipart_email_on_a_real_smtp_server() {
    let smtp = SmtpSink::start(&[]);
    let fake = Fake::start().await;
    let app = spawn_app(&fake, &email_destination(smtp.port, "")).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    let mails = smtp.wait_for(1, WAIT).await;
    let mail = &mails[0];
    assert_eq!(mail.mail_from, "hookrelay@soc.example");
    assert_eq!(mail.rcpt_tos, ["soc@soc.example", "oncall@soc.example"]);
    let data = &mail.data;
    has(data, "From: hookrelay <hookrelay@soc.example>\n");
    assert!(
        data.contains("To: soc@soc.example, \"Night Shift\" <oncall@soc.example>\n")
            || data.contains("To: soc@soc.example, Night Shift <oncall@soc.example>\n"),
        "{data}"
    );
    has(data, // The em dash is RFC 2047-encoded on a folded line.
            "Subject: [Major (63)] Suspicious PowerShell download cradle\n =?utf-8?b?4oCU?= alert created\n");
    has(data, "Content-Type: multipart/alternative;");
    assert!(
        data.contains("@soc.example>\n"),
        "Message-ID from the sender's domain: {data}"
    );
    let text = &part(data, "text/plain");
    has(text, "Suspicious PowerShell download cradle");
    has(
        text,
        "Open in Sekoia.io: https://app.sekoia.io/operations/alerts/ALEY4fqz8moo",
    );
    let html = &part(data, "text/html");
    has(
        html,
        "<h2 style=\"margin: 4px 0\">Suspicious PowerShell download cradle</h2>",
    );
    has(
        html,
        "<a href=\"https://app.sekoia.io/operations/alerts/ALEY4fqz8moo\">Open in Sekoia.io</a>",
    );
    app.stop().await;
}

#[tokio::test]
async fn a_4xx_smtp_reply_is_retried_and_a_5xx_reply_is_a_dead_letter() {
    // First message: 451 then accepted on the retry.
    let smtp = SmtpSink::start(&["451 4.3.0 Mailbox busy, try again later"]);
    let fake = Fake::start().await;
    let app = spawn_app(&fake, &email_destination(smtp.port, "")).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    smtp.wait_for(1, WAIT).await;
    let m = app.metrics().await;
    assert_eq!(
        metric(&m, "hookrelay_deliveries_total", &["outcome=\"retry\""]),
        1.0
    );
    assert_eq!(
        metric(&m, "hookrelay_deliveries_total", &["outcome=\"delivered\""]),
        1.0
    );
    app.stop().await;

    let smtp = SmtpSink::start(&["550 5.1.1 No such user here"]);
    let app = spawn_app(&fake, &email_destination(smtp.port, "")).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    wait_dead(&app).await;
    let m = app.metrics().await;
    assert_eq!(
        metric(&m, "hookrelay_deliveries_total", &["outcome=\"retry\""]),
        0.0
    );
    assert!(smtp.mails().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn an_smtp_server_that_never_answers_is_timed_out_and_retried() {
    // Accepts connections and never sends its greeting.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let held = std::thread::spawn(move || {
        let mut conns = Vec::new();
        for c in silent.incoming().take(2) {
            conns.push(c);
        }
        std::thread::sleep(Duration::from_secs(3));
    });
    let fake = Fake::start().await;
    let app = spawn_app(
        &fake,
        &email_destination(port, "").replace("timeout = \"2s\"", "timeout = \"200ms\""),
    )
    .await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    wait_metric(
        &app,
        "hookrelay_deliveries_total",
        &["outcome=\"retry\""],
        1.0,
        WAIT,
    )
    .await;
    app.stop().await;
    drop(held);
}

#[tokio::test]
async fn a_webhook_gets_the_hookrelay_document_signed_with_its_headers() {
    let fake = Fake::start().await;
    let path = "/receiver/incoming";
    let extra = format!(
        r#"
[destinations.hook]
kind = "webhook"
url = "{url}"
secret = "{WHSEC}"
headers = {{ "Authorization" = "Bearer receiver-token", "X-Tenant" = "acme" }}
[[routes]]
name = "to-webhook"
to = ["hook"]
"#,
        url = fake.url(path)
    );
    let app = spawn_app(&fake, &extra).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    let got = fake.wait_for("/receiver", 1, WAIT).await;
    let r = &got[0];
    let header = |name: &str| r.headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert_eq!(
        header("authorization").as_deref(),
        Some("Bearer receiver-token")
    );
    assert_eq!(header("x-tenant").as_deref(), Some("acme"));
    // The receiver can verify it came from hookrelay.
    let id = header("webhook-id").unwrap();
    let ts: i64 = header("webhook-timestamp").unwrap().parse().unwrap();
    assert_eq!(
        header("webhook-signature").unwrap(),
        standard_webhooks_sign(WHSEC, &id, ts, &r.body).unwrap()
    );
    let doc = r.json();
    assert_eq!(doc["schema"], "hookrelay.message/v1");
    assert_eq!(
        doc["route"],
        serde_json::json!({"hook": "soc", "name": "to-webhook", "destination": "hook"})
    );
    assert_eq!(doc["event"], fixture_json("event-alert-created.json"));
    assert_eq!(doc["alert"]["short_id"], "ALEY4fqz8moo");
    assert_eq!(doc["urgency"]["value"], 63);
    assert_eq!(
        doc["message"]["headline"],
        "Suspicious PowerShell download cradle"
    );
    assert_eq!(
        doc["link"],
        "https://app.sekoia.io/operations/alerts/ALEY4fqz8moo"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_retried_webhook_keeps_its_webhook_id() {
    let fake = Fake::start().await;
    let path = "/receiver/flaky";
    fake.script(path, [Reply::status(503, "busy")]);
    let extra = format!(
        "[destinations.hook]\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"{WHSEC}\"\n[[routes]]\nname = \"w\"\nto = [\"hook\"]\n",
        fake.url(path)
    );
    let app = spawn_app(&fake, &extra).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    let got = fake.wait_for("/receiver", 2, WAIT).await;
    assert_eq!(got[0].headers["webhook-id"], got[1].headers["webhook-id"]);
    app.stop().await;
}

fn template_file(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[tokio::test]
async fn an_operator_template_shapes_the_message() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let template = template_file(
        dir.path(),
        "slack.json",
        r#"{"text": {{ "[" ~ urgency.display ~ "] " ~ (message.headline|slack_escape) ~ " via " ~ route.name }}, "alert": {{ alert.short_id }}}"#,
    );
    let path = "/slack/services/T1/B1/custom";
    let extra = format!(
        "[destinations.custom]\nkind = \"slack\"\nurl = \"{}\"\ntemplate = \"{template}\"\n[[routes]]\nname = \"c\"\nto = [\"custom\"]\n",
        fake.url(path)
    );
    let app = spawn_app(&fake, &extra).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    let got = fake.wait_for(path, 1, WAIT).await;
    assert_eq!(
        got[0].json(),
        serde_json::json!({"text": "[Major] Suspicious PowerShell download cradle via c", "alert": "ALEY4fqz8moo"})
    );
    app.stop().await;
}

#[tokio::test]
async fn a_template_that_renders_invalid_json_dead_letters_the_delivery() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    // `|safe` prints the headline unquoted: not JSON.
    let template = template_file(
        dir.path(),
        "bad.json",
        r#"{"text": {{ message.headline|safe }}}"#,
    );
    let path = "/receiver/bad";
    let extra = format!(
        "[destinations.bad]\nkind = \"webhook\"\nurl = \"{}\"\ntemplate = \"{template}\"\n[destinations.good]\nkind = \"webhook\"\nurl = \"{}\"\n[[routes]]\nname = \"b\"\nto = [\"bad\", \"good\"]\n",
        fake.url(path),
        fake.url("/receiver/good")
    );
    let app = spawn_app(&fake, &extra).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    // The other destination of the same event is unaffected.
    fake.wait_for("/receiver/good", 1, WAIT).await;
    wait_metric(
        &app,
        "hookrelay_deliveries_total",
        &["destination=\"bad\"", "outcome=\"dead\""],
        1.0,
        WAIT,
    )
    .await;
    assert!(fake.received(path).is_empty());
    app.stop().await;
}

#[tokio::test]
async fn check_names_the_template_file_and_line_of_an_error() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    template_file(
        dir.path(),
        "card.json",
        "{\n  \"text\": {{ message.headline|shout }}\n}\n",
    );
    template_file(dir.path(), "broken.json", "{\n  \"text\": {% if %}\n}\n");
    let extra = format!(
        "[destinations.a]\nkind = \"slack\"\nurl = \"{}\"\ntemplate = \"card.json\"\n[destinations.b]\nkind = \"webhook\"\nurl = \"{}\"\ntemplate = \"broken.json\"\n[[routes]]\nname = \"x\"\nto = [\"a\", \"b\"]\n",
        fake.url("/slack/x"),
        fake.url("/receiver/x")
    );
    // Relative template paths are read next to the config file.
    let config = write_config(&fake, dir.path(), &extra);
    let (code, out, err) = cli(&["check", "--config", config.to_str().unwrap()]);
    assert_ne!(code, 0, "{out}");
    has(
        &err,
        "destinations.a.template: card.json:2: unknown filter \"shout\"",
    );
    has(&err, "destinations.b.template: broken.json:2: syntax error");
}

#[tokio::test]
async fn check_rejects_bad_email_settings_by_key() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = r#"
[destinations.mail]
kind = "email"
host = "smtp.example.com"
from = "hookrelay@example.com"
to = ["soc@example.com", "not an address"]
headers = { "X-A" = "b" }
[[routes]]
name = "m"
to = ["mail"]
"#;
    let config = write_config(&fake, dir.path(), extra);
    let (code, _, err) = cli(&["check", "--config", config.to_str().unwrap()]);
    assert_ne!(code, 0);
    has(
        &err,
        "destinations.mail.to[1]: invalid address \"not an address\"",
    );
    has(
        &err,
        "destinations.mail.headers: only for kind = \"webhook\"",
    );
}

/// An e-mail destination (with `mail_extra` keys) and a signed webhook
/// with an Authorization header, both on route "both".
fn mail_and_hook(fake: &Fake, mail_extra: &str, hook_path: &str, token: &str) -> String {
    format!(
        r#"
[destinations.mail]
kind = "email"
host = "smtp.example.com"
from = "hookrelay@soc.example"
to = ["soc@soc.example"]
{mail_extra}
[destinations.hook]
kind = "webhook"
url = "{url}"
secret = "{WHSEC}"
headers = {{ "Authorization" = "Bearer {token}" }}
[[routes]]
name = "both"
to = ["mail", "hook"]
"#,
        url = fake.url(hook_path)
    )
}

/// `hookrelay preview` of the created-alert fixture with the full alert.
fn preview_fixture(config: &std::path::Path) -> (i32, String, String) {
    let fixture = |name: &str| format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    cli(&[
        "preview",
        "--config",
        config.to_str().unwrap(),
        "--event",
        &fixture("event-alert-created.json"),
        "--alert",
        &fixture("alert-full.json"),
    ])
}

#[tokio::test]
async fn preview_prints_the_mime_message_and_the_signed_request() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = mail_and_hook(
        &fake,
        "subject = \"[{{ urgency.display }}] {{ message.headline }}\"",
        "/receiver/preview",
        "receiver-token",
    );
    let config = write_config(&fake, dir.path(), &extra);
    let (code, out, err) = preview_fixture(&config);
    assert_eq!(code, 0, "{err}");
    has(
        &out,
        "=== mail (email) via route \"both\"\nSMTP smtp://smtp.example.com:587\n",
    );
    has(
        &out,
        "Subject: [Major] Suspicious PowerShell download cradle\n",
    );
    has(&out, "Content-Type: multipart/alternative");
    has(&out, "=== hook (webhook) via route \"both\"\nPOST ");
    has(&out, "authorization: <redacted>\n");
    has(&out, "webhook-signature: v1,");
    assert!(!out.contains("receiver-token"), "{out}");
    let json_start = out.rfind("\n{\n").unwrap();
    let doc: Value = serde_json::from_str(out[json_start..].trim()).unwrap();
    assert_eq!(doc["schema"], "hookrelay.message/v1");
}

#[tokio::test]
async fn send_test_reaches_email_and_webhook_destinations() {
    let smtp = SmtpSink::start(&[]);
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "{}\n[destinations.hook]\nkind = \"webhook\"\nurl = \"{}\"\n",
        email_destination(smtp.port, ""),
        fake.url("/receiver/test")
    );
    let config = write_config(&fake, dir.path(), &extra);
    let config = config.to_str().unwrap().to_owned();
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        let mail = cli(&["send-test", "--config", &config, "--destination", "mail"]);
        let hook = cli(&["send-test", "--config", &config, "--destination", "hook"]);
        (mail.0 + hook.0, mail.1 + &hook.1, mail.2 + &hook.2)
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "delivered to mail (smtp://127.0.0.1:{}): SMTP 250",
            smtp.port
        )),
        "{out}"
    );
    let mails = smtp.wait_for(1, WAIT).await;
    assert!(
        mails[0].data.contains("hookrelay test message"),
        "{}",
        mails[0].data
    );
    let got = fake.wait_for("/receiver/test", 1, WAIT).await;
    assert_eq!(got[0].json()["kind"], "test");
}

#[tokio::test]
async fn check_warns_about_a_template_that_breaks_on_a_sample_and_not_about_the_shipped_ones() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    // Valid JSON while the alert is known; `{"urgency": }` when it is not.
    template_file(
        dir.path(),
        "fragile.json",
        r#"{"urgency": {{ alert.urgency.value|safe }}}"#,
    );
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/templates");
    let mut extra = format!(
        "[destinations.fragile]\nkind = \"webhook\"\nurl = \"{}\"\ntemplate = \"fragile.json\"\n",
        fake.url("/receiver/f")
    );
    let mut names = vec!["\"fragile\"".to_owned()];
    for (kind, file) in [
        ("teams", "teams.json"),
        ("teams-legacy", "teams-legacy.json"),
        ("slack", "slack.json"),
        ("mattermost", "mattermost.json"),
        ("discord", "discord.json"),
        ("google-chat", "google-chat.json"),
        ("webhook", "webhook.json"),
    ] {
        extra.push_str(&format!(
            "[destinations.shipped-{kind}]\nkind = \"{kind}\"\nurl = \"{}\"\ntemplate = \"{shipped}/{file}\"\n",
            fake.url(&format!("/shipped/{kind}"))
        ));
        names.push(format!("\"shipped-{kind}\""));
    }
    extra.push_str(&format!(
        "[destinations.shipped-email]\nkind = \"email\"\nhost = \"smtp.example.com\"\nfrom = \"a@example.com\"\nto = [\"b@example.com\"]\ntemplate = \"{shipped}/email.html\"\nsubject = \"[{{{{ urgency.display|default('SOC') }}}}] {{{{ message.headline }}}}\"\n"
    ));
    names.push("\"shipped-email\"".into());
    extra.push_str(&format!(
        "[[routes]]\nname = \"all\"\nto = [{}]\n",
        names.join(", ")
    ));
    let config = write_config(&fake, dir.path(), &extra);
    let (code, out, err) = cli(&["check", "--config", config.to_str().unwrap()]);
    let all = format!("{out}{err}");
    assert_eq!(code, 0, "{all}");
    has(
        &all,
        "destinations.fragile.template: fails on a sample event whose alert is unavailable: template fragile.json rendered invalid JSON",
    );
    assert!(
        !all.contains("fails on a sample alert"),
        "the full sample renders: {all}"
    );
    assert!(
        !all.lines()
            .any(|l| l.contains("shipped-") && l.contains(".template")),
        "shipped templates warn: {all}"
    );
}

#[tokio::test]
async fn a_tls_mode_the_server_does_not_speak_is_a_retry_that_says_what_to_check() {
    let smtp = SmtpSink::start(&[]);
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &fake,
        dir.path(),
        &email_destination(smtp.port, "").replace("tls = \"none\"", "tls = \"starttls\""),
    );
    let config = config.to_str().unwrap().to_owned();
    let (code, _, err) = tokio::task::spawn_blocking(move || {
        cli(&["send-test", "--config", &config, "--destination", "mail"])
    })
    .await
    .unwrap();
    assert_ne!(code, 0);
    has(&err, "temporary failure, the daemon would retry");
    has(
        &err,
        "the server does not offer STARTTLS: use tls = \"implicit\"",
    );
    assert!(smtp.mails().is_empty());
}

#[tokio::test]
async fn a_dead_letter_from_a_broken_template_is_rendered_again_when_replayed_after_the_fix() {
    let fake = Fake::start().await;
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let template = dir.path().join("card.json");
    // `|safe` prints the headline unquoted: not JSON.
    std::fs::write(&template, r#"{"text": {{ message.headline|safe }}}"#).unwrap();
    let path = "/receiver/fixed";
    let extra = format!(
        "[destinations.hook]\nkind = \"webhook\"\nurl = \"{}\"\ntemplate = \"{}\"\n[[routes]]\nname = \"h\"\nto = [\"hook\"]\n",
        fake.url(path),
        template.display()
    );
    let app = spawn_app_in(&fake, &extra, dir.clone()).await;
    assert_eq!(app.post(fixture("event-alert-created.json")).await.0, 202);
    wait_dead(&app).await;

    // The operator fixes the template and reloads…
    std::fs::write(&template, r#"{"text": {{ message.headline }}}"#).unwrap();
    let text = config_text(&fake, &dir.path().join("spool.db"), &extra);
    let fixed = hookrelay::config::load_str(&text, &Default::default()).unwrap();
    app.reloader.send(Ok(fixed).into()).unwrap();
    wait_metric(
        &app,
        "hookrelay_config_reloads_total",
        &["result=\"ok\""],
        1.0,
        WAIT,
    )
    .await;
    // …and replays the dead letter, which is rendered with the fixed one.
    let config = write_config(&fake, dir.path(), &extra);
    let (code, out, err) = tokio::task::spawn_blocking(move || {
        cli(&[
            "dead-letters",
            "replay",
            "--all",
            "--config",
            config.to_str().unwrap(),
        ])
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{out}{err}");
    let got = fake.wait_for(path, 1, WAIT).await;
    assert_eq!(
        got[0].json(),
        serde_json::json!({"text": "Suspicious PowerShell download cradle"})
    );
    app.stop().await;
}

#[tokio::test]
async fn check_and_preview_never_show_the_new_kinds_secrets() {
    let fake = Fake::start().await;
    let dir = tempfile::tempdir().unwrap();
    let password = "smtp-pa55-do-not-print";
    let token = "receiver-token-do-not-print";
    let extra = mail_and_hook(
        &fake,
        &format!("username = \"relay\"\npassword = \"{password}\""),
        "/receiver/secret-path-do-not-print",
        token,
    );
    let config = write_config(&fake, dir.path(), &extra);
    let (_, check_out, check_err) = cli(&["check", "--config", config.to_str().unwrap()]);
    let (code, out, err) = preview_fixture(&config);
    assert_eq!(code, 0, "{err}");
    let all = format!("{check_out}{check_err}{out}{err}");
    for secret in [
        password,
        token,
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "secret-path-do-not-print",
    ] {
        assert!(!all.contains(secret), "{secret} printed:\n{all}");
    }
}
