//! Golden files: the exact payload each target gets for the fixtures
//! (`src/render/snapshots/`). Review a change with `cargo insta review`.

use super::*;
use crate::config::DestinationConfig;
use crate::enrich::Alert;
use crate::event::Event;
use std::sync::Arc;

const LINK: &str = "https://app.sekoia.io/operations/alerts/{short_id}";
const KINDS: [DestinationKind; 8] = [
    DestinationKind::Teams,
    DestinationKind::TeamsLegacy,
    DestinationKind::Slack,
    DestinationKind::Mattermost,
    DestinationKind::Discord,
    DestinationKind::GoogleChat,
    DestinationKind::Email,
    DestinationKind::Webhook,
];
/// Kinds whose receivers are people reading chat: mentions and live links
/// must be defused. (E-mail is checked on its own; a webhook carries the
/// raw event and alert to a program, by design.)
fn is_chat(kind: DestinationKind) -> bool {
    !matches!(kind, DestinationKind::Email | DestinationKind::Webhook)
}

fn chat_kinds() -> impl Iterator<Item = DestinationKind> {
    KINDS.into_iter().filter(|k| is_chat(*k))
}
const TARGET: context::Target = context::Target {
    hook: Some("soc"),
    route: Some("critical"),
    destination: "out",
};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn enrichment(alert_file: &str) -> Enrichment {
    let v = serde_json::from_slice(&fixture(alert_file)).unwrap();
    Enrichment::Fetched(Arc::new(Alert::from_value(v).unwrap()))
}

/// One message to render: its facts and, for events, what the message
/// document is built from.
struct Case {
    source: Option<(Event, Enrichment)>,
    facts: Facts,
}

impl std::ops::Deref for Case {
    type Target = Facts;
    fn deref(&self) -> &Facts {
        &self.facts
    }
}

impl Case {
    fn of_event(event: Event, e: &Enrichment) -> Case {
        let facts = Facts::build(&event, e, Some(LINK));
        Case {
            source: Some((event, e.clone())),
            facts,
        }
    }

    fn of_facts(facts: Facts) -> Case {
        Case {
            source: None,
            facts,
        }
    }

    fn doc(&self) -> Value {
        match &self.source {
            Some((event, e)) => context::for_event(event, e, &self.facts, TARGET),
            None => context::for_message("digest", &self.facts, TARGET),
        }
    }

    fn render(&self, kind: DestinationKind) -> Value {
        render(kind, &self.facts, &|| self.doc())
    }

    fn body(&self, kind: DestinationKind) -> String {
        self.render(kind).to_string()
    }
}

fn facts(event_file: &str, e: &Enrichment) -> Case {
    Case::of_event(crate::event::parse(&fixture(event_file)).unwrap(), e)
}

fn snapshot_all(case: &str, c: &Case) {
    for kind in KINDS {
        let name = format!("{case}-{}", kind.as_str());
        if kind == DestinationKind::Email {
            // Readable as a person reads it, not as escaped JSON.
            let v = c.render(kind);
            let text = format!(
                "Subject: {}\n\n----- text/plain -----\n{}\n----- text/html -----\n{}",
                v["subject"].as_str().unwrap(),
                v["text"].as_str().unwrap(),
                v["html"].as_str().unwrap()
            );
            insta::assert_snapshot!(name, text);
        } else {
            insta::assert_json_snapshot!(name, c.render(kind));
        }
    }
}

#[test]
fn alert_full() {
    snapshot_all(
        "full",
        &facts("event-alert-created.json", &enrichment("alert-full.json")),
    );
}

#[test]
fn alert_sparse() {
    snapshot_all(
        "sparse",
        &facts("event-alert-created.json", &enrichment("alert-sparse.json")),
    );
}

#[test]
fn alert_hostile() {
    snapshot_all(
        "hostile",
        &facts(
            "event-alert-created.json",
            &enrichment("alert-hostile.json"),
        ),
    );
}

#[test]
fn degraded_when_alert_unavailable() {
    let e = Enrichment::Unavailable("alert API answered 404 (Not Found)".into());
    snapshot_all("degraded", &facts("event-alert-created.json", &e));
}

#[test]
fn status_update() {
    snapshot_all(
        "updated",
        &facts(
            "event-alert-updated-status.json",
            &enrichment("alert-full.json"),
        ),
    );
}

#[test]
fn comment_and_content_proposal() {
    let e = Enrichment::Unavailable("alert API answered 403 (Forbidden)".into());
    snapshot_all("comment", &facts("event-alert-comment-created.json", &e));
    snapshot_all(
        "proposal",
        &facts(
            "event-content-proposal-created.json",
            &Enrichment::NotApplicable,
        ),
    );
}

#[test]
fn hostile_text_is_defused_and_bounded() {
    let f = facts(
        "event-alert-created.json",
        &enrichment("alert-hostile.json"),
    );
    for kind in chat_kinds() {
        let body = f.body(kind);
        let name = kind.as_str();
        for live in [
            "<!channel>",
            "@all",
            "@here",
            "<@U024BE7LH>",
            "](https://evil",
            "<https://evil",
            "<script>",
            "\u{202E}",
        ] {
            assert!(!body.contains(live), "{name}: {live:?} survived");
        }
        // The only URL that may be live is the alert link.
        assert!(
            body.contains("https://app.sekoia.io/operations/alerts/ALEY4fqz8moo"),
            "{name}"
        );
        // Limits with headroom: Teams 24 KB request, Mattermost one post, Slack text.
        assert!(body.len() < 24 * 1024, "{name}: {} bytes", body.len());
        // Values are rendered literally: no ${VAR} expansion, no template evaluation.
        assert!(
            body.contains("${SEKOIA_API_KEY}") && body.contains("{{ secret }}"),
            "{name}"
        );
    }
}

#[test]
fn no_link_without_short_id() {
    let event = crate::event::parse(
        br#"{"type":"alert","action":"created","attributes":{"uuid":"5696845f-9ecf-4431-9f0f-48ee0ee2eff1","short_id":"../x"}}"#,
    )
    .unwrap();
    let f = Case::of_event(event, &Enrichment::Unavailable("x".into()));
    assert_eq!(f.link, None);
    for kind in KINDS {
        let body = f.body(kind);
        assert!(
            !body.contains("sekoia.io/operations"),
            "{}: {body}",
            kind.as_str()
        );
    }
}

#[test]
fn time_formats() {
    assert_eq!(
        format_iso("2022-01-14T15:06:57.398005+00:00").as_deref(),
        Some("2022-01-14 15:06:57 UTC")
    );
    assert_eq!(
        format_iso("2022-01-14T15:06:57Z").as_deref(),
        Some("2022-01-14 15:06:57 UTC")
    );
    assert_eq!(
        format_iso("2022-01-14T15:06:57+02:00").as_deref(),
        Some("2022-01-14 15:06:57 UTC+02:00")
    );
    assert_eq!(format_iso("<script>"), None);
    assert_eq!(
        format_epoch(1642172817).as_deref(),
        Some("2022-01-14 15:06:57 UTC")
    );
}

/// Outside text of any shape is a time or nothing, never a panic: a
/// character across byte 19, short and empty text, times past year 9999.
#[test]
fn odd_times_are_none_not_a_panic() {
    for text in [
        "2022-01-14T15:06:5é",
        "2022-01-14T15:06:57é",
        "2022-01-14T15:0é:57Z",
        "éééééééééééééééééééé",
        "2022-01-14",
        "",
        "2022-01-14T15:06:57.ééé",
    ] {
        assert_eq!(format_iso(text), None, "{text:?}");
    }
    assert_eq!(format_epoch(253_402_300_800), None);
    assert_eq!(format_epoch(i64::MAX), None);
    assert_eq!(format_epoch(-1), None);
    assert_eq!(
        format_epoch(4_102_444_800).as_deref(),
        Some("2100-01-01 00:00:00 UTC")
    );
}

#[test]
fn silence_and_recovery_notices() {
    for (kind, body) in [
        (
            "silence",
            r#"{"type":"hookrelay.silence","action":"created","attributes":{"hook":"soc","silent_for":3600,"last_event_at":"2022-01-14T15:06:57Z"},"metadata":{"created_at":"2022-01-14T16:06:57Z"}}"#,
        ),
        (
            "recovered",
            r#"{"type":"hookrelay.recovered","action":"created","attributes":{"hook":"soc","silent_for":5400,"last_event_at":"2022-01-14T15:06:57Z"},"metadata":{"created_at":"2022-01-14T16:36:57Z"}}"#,
        ),
    ] {
        let event = crate::event::parse(body.as_bytes()).unwrap();
        snapshot_all(kind, &Case::of_event(event, &Enrichment::NotApplicable));
    }
}

/// A digest names every held alert: the first with their headline, the
/// rest by short id, and only beyond what a message holds, a count.
#[test]
fn a_digest_names_every_alert_it_stands_for() {
    let summary = |i: usize| Summary {
        headline: format!("Alert number {i}"),
        urgency: Some("Major".into()),
        short_id: Some(format!("AL{i:010}")),
        link: Some(format!("https://app.sekoia.io/operations/alerts/AL{i:010}")),
    };
    let items: Vec<Summary> = (0..60).map(summary).collect();
    let f = Facts::digest(&items, std::time::Duration::from_secs(60), None);
    let body = f.body.clone().unwrap();
    for i in 0..60 {
        assert!(
            body.contains(&format!("AL{i:010}")),
            "alert {i} is named: {body}"
        );
    }
    assert!(body.contains("AL0000000000 — Alert number 0"));
    assert!(!body.contains("Alert number 20"), "the rest by id only");
    assert!(!body.contains("more (all are in the history"));
    let many: Vec<Summary> = (0..1000).map(summary).collect();
    let body = Facts::digest(&many, std::time::Duration::from_secs(60), None)
        .body
        .unwrap();
    assert!(body.contains("AL0000000150"));
    assert!(
        body.contains("more (all are in the history: hookrelay events list)"),
        "{body}"
    );
    assert!(body.len() < 8_000);
    // With the console reachable: a link to exactly those alerts, and how many.
    let url = "https://relay.example.org/console/events?digest=teams%3A5-1004";
    let f = Facts::digest(&many, std::time::Duration::from_secs(60), Some(url));
    let body = f.body.unwrap();
    assert!(
        body.contains("more: all 1000 are listed in the console"),
        "{body}"
    );
    assert_eq!(f.link.as_deref(), Some(url));
}

#[test]
fn digest_of_held_alerts() {
    let full = facts("event-alert-created.json", &enrichment("alert-full.json")).summary();
    let sparse = facts("event-alert-created.json", &enrichment("alert-sparse.json")).summary();
    let hostile = facts(
        "event-alert-created.json",
        &enrichment("alert-hostile.json"),
    )
    .summary();
    let items = vec![full.clone(), full, sparse, hostile];
    let f = Case::of_facts(Facts::digest(
        &items,
        std::time::Duration::from_secs(60),
        None,
    ));
    assert_eq!(
        f.headline,
        "4 more alerts in the last 1m: 3 Major, 1 Moderate"
    );
    snapshot_all("digest", &f);
    for kind in chat_kinds() {
        let body = f.body(kind);
        assert!(
            !body.contains("<!channel>") && !body.contains("](https://evil"),
            "{}",
            kind.as_str()
        );
    }
}

#[test]
fn hostile_text_in_email_is_escaped() {
    let f = facts(
        "event-alert-created.json",
        &enrichment("alert-hostile.json"),
    );
    let v = f.render(DestinationKind::Email);
    let html = v["html"].as_str().unwrap();
    assert!(!html.contains("<script>"), "{html}");
    // The only link in the HTML is the alert link hookrelay built.
    assert_eq!(html.matches("<a href=").count(), 1, "{html}");
    assert!(html.contains("<a href=\"https://app.sekoia.io/operations/alerts/ALEY4fqz8moo\">"));
    let subject = v["subject"].as_str().unwrap();
    assert!(!subject.contains(['\r', '\n']), "{subject:?}");
    assert!(subject.chars().count() <= 300);
}

#[test]
fn teams_serializes_to_the_same_text_as_its_value() {
    for alert in ["alert-full.json", "alert-sparse.json", "alert-hostile.json"] {
        let f = facts("event-alert-created.json", &enrichment(alert));
        assert_eq!(teams::render_string(&f), teams::render(&f).to_string());
    }
}

#[test]
fn webhook_document_carries_event_alert_and_route() {
    let f = facts("event-alert-created.json", &enrichment("alert-full.json"));
    let v = f.render(DestinationKind::Webhook);
    assert_eq!(v["schema"], "hookrelay.message/v1");
    assert_eq!(v["kind"], "event");
    assert_eq!(v["route"]["name"], "critical");
    assert_eq!(v["route"]["hook"], "soc");
    assert_eq!(v["enrichment"]["status"], "ok");
    assert_eq!(v["event"]["type"], "alert");
    assert_eq!(v["alert"]["short_id"], v["message"]["facts"][5]["value"]);
    assert!(v["urgency"]["value"].is_u64());
    assert_eq!(v["link"], v["message"]["link"]);
}

fn with_template(kind: DestinationKind, text: &str) -> (Destination, ()) {
    let escape = if kind == DestinationKind::Email {
        Escape::Html
    } else {
        Escape::Json
    };
    let templates = Templates::compile(Some(("t", text)), None, escape).unwrap();
    let dest: DestinationConfig = serde_json::from_value(serde_json::json!({
        "kind": kind.as_str(), "url": "https://example.com/x", "template": "t"
    }))
    .unwrap();
    (
        Destination {
            config: dest,
            templates: Some(templates),
            console_url: None,
        },
        (),
    )
}

#[test]
fn templates_render_with_the_message_document() {
    let f = facts(
        "event-alert-created.json",
        &enrichment("alert-hostile.json"),
    );
    let (dest, _file) = with_template(
        DestinationKind::Slack,
        r#"{"text": {{ ("*" ~ message.headline|slack_escape ~ "* " ~ route.name)|truncate(60) }}}"#,
    );
    let out = payload(&dest, &f, &|| f.doc()).unwrap();
    let v: Value = serde_json::from_str(&out).unwrap();
    let text = v["text"].as_str().unwrap();
    assert!(
        text.starts_with('*') && text.chars().count() <= 60,
        "{text}"
    );
    assert!(!text.contains("<!channel>"), "{text}");
}

#[test]
fn a_template_that_renders_invalid_json_is_an_error() {
    let f = facts("event-alert-created.json", &enrichment("alert-full.json"));
    let (dest, _file) = with_template(
        DestinationKind::Webhook,
        "{\"text\": {{ message.headline|safe }}}",
    );
    let e = payload(&dest, &f, &|| f.doc()).unwrap_err();
    assert!(matches!(e, RenderError::InvalidJson { .. }), "{e}");
    assert!(e.to_string().contains("rendered invalid JSON"), "{e}");
}

#[test]
fn shipped_templates_compile_and_render_valid_json() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/templates");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let kind = match name.split('.').next().unwrap() {
            "teams" => DestinationKind::Teams,
            "teams-legacy" => DestinationKind::TeamsLegacy,
            "slack" => DestinationKind::Slack,
            "mattermost" => DestinationKind::Mattermost,
            "discord" => DestinationKind::Discord,
            "google-chat" => DestinationKind::GoogleChat,
            "email" => DestinationKind::Email,
            "webhook" => DestinationKind::Webhook,
            other => panic!("unexpected template {other}"),
        };
        let text = std::fs::read_to_string(&path).unwrap();
        let (dest, _file) = with_template(kind, &text);
        for alert in ["alert-full.json", "alert-sparse.json", "alert-hostile.json"] {
            let f = facts("event-alert-created.json", &enrichment(alert));
            let out = payload(&dest, &f, &|| f.doc()).unwrap_or_else(|e| panic!("{name}: {e}"));
            if is_chat(kind) {
                assert!(out.contains("Open in Sekoia.io"), "{name}: {out}");
            }
            if is_chat(kind) {
                assert!(
                    !out.contains("<!channel>") && !out.contains("](https://evil"),
                    "{name}: {out}"
                );
            }
        }
        let degraded = facts(
            "event-alert-created.json",
            &Enrichment::Unavailable("down".into()),
        );
        payload(&dest, &degraded, &|| degraded.doc()).unwrap_or_else(|e| panic!("{name}: {e}"));
        seen += 1;
    }
    assert!(seen >= 6, "only {seen} templates in config/templates");
}

/// A destination of `kind` with no template, as configured in TOML.
fn destination(kind: &str, extra: serde_json::Value) -> Destination {
    let mut v = serde_json::json!({"kind": kind, "url": "https://chat.example.org/hook"});
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    if v.get("token").is_some() {
        v.as_object_mut().unwrap().remove("url");
    }
    Destination::plain(serde_json::from_value::<DestinationConfig>(v).unwrap())
}

/// Channels that cannot thread get a compact card for an update: the
/// alert, what changed and where it stands, not the first card again.
#[test]
fn an_update_is_a_compact_card_where_there_are_no_threads() {
    let c = facts(
        "event-alert-updated-status.json",
        &enrichment("alert-full.json"),
    );
    let (event, e) = c.source.as_ref().unwrap();
    for kind in chat_kinds() {
        let dest = destination(kind.as_str(), serde_json::json!({}));
        let body = event_payload(&dest, event, e, &c.facts, TARGET).unwrap();
        assert!(body.contains("Acknowledged"), "{kind:?}: {body}");
        assert!(body.contains("ALEY4fqz8moo"), "{kind:?}: {body}");
        assert!(
            !body.contains("Headquarters"),
            "{kind:?}: the entity repeated: {body}"
        );
        assert!(
            !body.contains("PowerShell Download From URL"),
            "{kind:?}: the rule repeated: {body}"
        );
        if kind == DestinationKind::Teams {
            let v: Value = serde_json::from_str(&body).unwrap();
            insta::assert_json_snapshot!("updated-compact-teams", v);
        }
    }
    // The creation is the full card.
    let created = facts("event-alert-created.json", &enrichment("alert-full.json"));
    let (event, e) = created.source.as_ref().unwrap();
    let dest = destination("teams", serde_json::json!({}));
    let body = event_payload(&dest, event, e, &created.facts, TARGET).unwrap();
    assert!(body.contains("Headquarters"));
}

/// On a threaded destination the stored payload is the full message (the
/// root) with what a reply needs; a closed alert's root says so.
#[test]
fn a_threaded_delivery_keeps_the_full_message_and_the_change() {
    let dest = destination(
        "slack",
        serde_json::json!({"token": "xoxb-1", "channel": "C0123ABCD"}),
    );
    let mut alert: Value = serde_json::from_slice(&fixture("alert-full.json")).unwrap();
    alert["status"]["name"] = "Closed".into();
    let e = Enrichment::Fetched(Arc::new(Alert::from_value(alert).unwrap()));
    let mut event = crate::event::parse(&fixture("event-alert-updated-status.json")).unwrap();
    event.updated.as_mut().unwrap()["status_name"] = "Closed".into();
    let f = Facts::build(&event, &e, Some(LINK));
    let body = event_payload(&dest, &event, &e, &f, TARGET).unwrap();
    let t = thread::Threaded::unwrap(&body).expect("threaded");
    assert_eq!(t.alert, "5696845f-9ecf-4431-9f0f-48ee0ee2eff1");
    assert_eq!(t.status.as_deref(), Some("Closed"));
    assert_eq!(t.urgency, Some(63));
    let root = t.message.to_string();
    assert!(
        root.contains("[Closed] Suspicious PowerShell download cradle"),
        "{root}"
    );
    assert!(
        root.contains("Headquarters"),
        "the root is the full message: {root}"
    );
    let change = t.change(Some("Acknowledged"), Some(63));
    assert!(change.broadcast);
    assert_eq!(
        change.text(DestinationKind::Slack),
        "*Status:* Acknowledged → *Closed*"
    );
}

/// `mention = true` routes: each kind notifies exactly the operator's
/// people or groups, in its own form (golden files); the hostile alert's
/// own mentions stay inert.
#[test]
fn mentions_are_the_operators_and_only_theirs() {
    use crate::config::Mention;
    let base = facts(
        "event-alert-created.json",
        &enrichment("alert-hostile.json"),
    );
    for (kind, mentions) in [
        (
            DestinationKind::Teams,
            vec![Mention::Named {
                id: "29:1a2b3c-soc-oncall".into(),
                name: "SOC on-call".into(),
            }],
        ),
        (
            DestinationKind::Slack,
            vec![
                Mention::Text("<!subteam^S0123ABC>".into()),
                Mention::Text("<@U0123ABC>".into()),
            ],
        ),
        (
            DestinationKind::Mattermost,
            vec![Mention::Text("@soc-oncall".into())],
        ),
        (
            DestinationKind::Discord,
            vec![Mention::Text("123456789012345678".into())],
        ),
    ] {
        let mut f = base.facts.clone();
        f.mentions = mentions;
        let v = render(kind, &f, &|| Value::Null);
        insta::assert_json_snapshot!(format!("mentions-{}", kind.as_str()), v);
        let text = v.to_string();
        match kind {
            DestinationKind::Teams => {
                assert_eq!(
                    v["attachments"][0]["content"]["msteams"]["entities"][0]["text"],
                    "<at>SOC on-call</at>"
                );
                assert_eq!(
                    text.matches("<at>").count(),
                    2,
                    "the block and the entity: {text}"
                );
            }
            DestinationKind::Slack => {
                assert!(v["text"]
                    .as_str()
                    .unwrap()
                    .starts_with("<!subteam^S0123ABC> <@U0123ABC> "));
                assert!(
                    !text.contains("<!channel>"),
                    "the alert's own mention is inert"
                );
            }
            DestinationKind::Mattermost => {
                assert!(v["text"].as_str().unwrap().starts_with("@soc-oncall **"));
            }
            _ => {
                assert_eq!(
                    v["allowed_mentions"],
                    serde_json::json!({"parse": [], "roles": ["123456789012345678"]})
                );
                assert!(v["content"]
                    .as_str()
                    .unwrap()
                    .starts_with("<@&123456789012345678> "));
            }
        }
    }
}

/// Matrix (golden files `matrix-*`): every message carries `m.mentions`,
/// empty unless the route mentions the operator's user ids, which are then
/// exactly its list; alert text, hostile or naming a member, adds nobody.
/// (An `m.mentions` turns off the legacy push rules that match display
/// names and user names in the body; tests/matrix.rs checks that on a real
/// Synapse.)
#[test]
fn matrix_mentions_only_the_operators_user_ids() {
    use crate::config::Mention;
    let e = Enrichment::Unavailable("alert API answered 403 (Forbidden)".into());
    let cases = [
        (
            "full",
            facts("event-alert-created.json", &enrichment("alert-full.json")),
        ),
        (
            "hostile",
            facts(
                "event-alert-created.json",
                &enrichment("alert-hostile.json"),
            ),
        ),
        (
            "updated",
            facts(
                "event-alert-updated-status.json",
                &enrichment("alert-full.json"),
            ),
        ),
        ("comment", facts("event-alert-comment-created.json", &e)),
    ];
    for (name, case) in &cases {
        let v = case.render(DestinationKind::Matrix);
        insta::assert_json_snapshot!(format!("matrix-{name}"), v);
        assert_eq!(v["m.mentions"], serde_json::json!({}), "{name}");
        let html = v["formatted_body"].as_str().unwrap();
        assert_eq!(
            html.matches("<a ").count(),
            1,
            "{name}: only the alert link: {html}"
        );
        assert!(
            !html.contains("<script") && !html.contains("<img"),
            "{name}: {html}"
        );
    }
    let mut f = cases[1].1.facts.clone();
    f.mentions = vec![
        Mention::Text("@alice:example.org".into()),
        Mention::Text("@soc/oncall:[::1]:8448".into()),
    ];
    let v = render(DestinationKind::Matrix, &f, &|| Value::Null);
    insta::assert_json_snapshot!("matrix-mentions", v);
    assert_eq!(
        v["m.mentions"],
        serde_json::json!({"user_ids": ["@alice:example.org", "@soc/oncall:[::1]:8448"]})
    );
    assert!(v["body"]
        .as_str()
        .unwrap()
        .starts_with("@alice:example.org @soc/oncall:[::1]:8448 "));
    let html = v["formatted_body"].as_str().unwrap();
    assert!(
        html.starts_with(
            "<a href=\"https://matrix.to/#/@alice:example.org\">@alice:example.org</a> \
             <a href=\"https://matrix.to/#/@soc%2Foncall:%5B::1%5D:8448\">@soc/oncall:[::1]:8448</a> <b>"
        ),
        "{html}"
    );
}

/// Messages that always fit: an alert with a 100 KB title, 500 assets and
/// 10,000 comments' worth of text (full of characters that escaping makes
/// longer), and a digest of 10,000 alerts, rendered for every kind, stay
/// within each service's limits and keep the title, urgency, status and
/// the link.
#[test]
fn every_message_fits_its_channel() {
    let mut alert: Value = serde_json::from_slice(&fixture("alert-full.json")).unwrap();
    alert["title"] = Value::String(format!("Huge <title> & {}", "x&<".repeat(34_000)));
    let assets: Vec<Value> = (0..500)
        .map(|i| Value::String(format!("0f8e8d7c-6b5a-4c3d-2e1f-{i:012}")))
        .collect();
    alert["assets"] = Value::Array(assets);
    let mut parsed = Alert::from_value(alert).unwrap();
    parsed.assets = (0..500)
        .map(|i| crate::enrich::Asset {
            uuid: format!("0f8e8d7c-6b5a-4c3d-2e1f-{i:012}"),
            name: Some(format!("host-{i}-&<>")),
            criticality: Some(i % 101),
        })
        .collect();
    let e = Enrichment::Fetched(Arc::new(parsed));
    let mut event: Value =
        serde_json::from_slice(&fixture("event-alert-comment-created.json")).unwrap();
    event["attributes"]["content"] = Value::String("A comment & <b>more</b>\n".repeat(10_000));
    let event = crate::event::parse(event.to_string().as_bytes()).unwrap();
    let big = Case::of_event(event, &e);
    let many: Vec<Summary> = (0..10_000)
        .map(|i| Summary {
            headline: format!("Alert {i} {}", "&<".repeat(100)),
            urgency: Some("Major".into()),
            short_id: Some(format!("AL{i:010}")),
            link: Some(format!("https://app.sekoia.io/operations/alerts/AL{i:010}")),
        })
        .collect();
    let digest = Case::of_facts(Facts::digest(
        &many,
        std::time::Duration::from_secs(60),
        None,
    ));
    let chars = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    for (what, case) in [("big alert", &big), ("digest", &digest)] {
        for kind in KINDS {
            let dest = Destination::plain(
                serde_json::from_value(
                    serde_json::json!({"kind": kind.as_str(), "url": "https://x.example.org/h"}),
                )
                .unwrap(),
            );
            let body = payload(&dest, &case.facts, &|| case.doc()).unwrap();
            let v: Value = serde_json::from_str(&body).unwrap();
            let name = format!("{what} / {}", kind.as_str());
            match kind {
                DestinationKind::Slack => {
                    let blocks = v["attachments"][0]["blocks"].as_array().unwrap();
                    assert!(blocks.len() <= fit::SLACK_BLOCKS, "{name}");
                    let mut total = 0;
                    for b in blocks {
                        assert!(chars(&b["text"]["text"]) <= fit::SLACK_SECTION, "{name}");
                        total += chars(&b["text"]["text"]);
                        for f in b["fields"].as_array().into_iter().flatten() {
                            assert!(chars(&f["text"]) <= fit::SLACK_FIELD, "{name}");
                            total += chars(&f["text"]);
                        }
                    }
                    assert!(total <= fit::SLACK_BLOCKS_TEXT, "{name}: {total}");
                    assert!(chars(&v["text"]) <= fit::SLACK_SECTION, "{name}");
                }
                DestinationKind::Teams | DestinationKind::TeamsLegacy => {
                    assert!(body.len() <= 28 * 1024, "{name}: {} bytes", body.len());
                }
                DestinationKind::Discord => {
                    let e = &v["embeds"][0];
                    let fields = e["fields"].as_array().unwrap();
                    let total = chars(&e["title"])
                        + chars(&e["description"])
                        + chars(&e["footer"]["text"])
                        + fields
                            .iter()
                            .map(|f| chars(&f["name"]) + chars(&f["value"]))
                            .sum::<usize>();
                    assert!(
                        total <= fit::DISCORD_EMBED && fields.len() <= 25,
                        "{name}: {total}"
                    );
                    assert!(
                        chars(&v["content"]) <= 2000 && chars(&e["description"]) <= 4096,
                        "{name}"
                    );
                }
                DestinationKind::Mattermost => {
                    let total = chars(&v["text"]) + v["attachments"][0].to_string().chars().count();
                    assert!(total <= fit::MATTERMOST_POST, "{name}: {total}");
                }
                DestinationKind::GoogleChat => assert!(body.len() <= 32_000, "{name}"),
                _ => {}
            }
            if what == "big alert" && kind != DestinationKind::Webhook {
                for must in ["Huge", "Major (63)", "Acknowledged", "ALEY4fqz8moo"] {
                    let shown = if kind == DestinationKind::Email {
                        v.to_string()
                    } else {
                        body.clone()
                    };
                    assert!(
                        shown.contains(must) || must == "Acknowledged" && shown.contains("Pending"),
                        "{name}: {must} missing"
                    );
                }
            }
        }
    }
}

/// `shape = "card"`: a bare Adaptive Card for flows that want one.
#[test]
fn teams_can_post_a_bare_card() {
    let c = facts("event-alert-created.json", &enrichment("alert-full.json"));
    let dest = destination("teams", serde_json::json!({"shape": "card"}));
    let (event, e) = c.source.as_ref().unwrap();
    let v: Value =
        serde_json::from_str(&event_payload(&dest, event, e, &c.facts, TARGET).unwrap()).unwrap();
    assert_eq!(v["type"], "AdaptiveCard");
    assert_eq!(
        v["body"][1]["text"],
        "Suspicious PowerShell download cradle"
    );
}

/// A message within its channel's limits is left exactly as rendered.
#[test]
fn fitting_leaves_a_message_that_fits_alone() {
    for case in [
        facts("event-alert-created.json", &enrichment("alert-full.json")),
        facts(
            "event-alert-created.json",
            &enrichment("alert-hostile.json"),
        ),
    ] {
        for kind in KINDS {
            let v = case.render(kind);
            let mut fitted = v.clone();
            fit::fit(kind, &mut fitted);
            assert_eq!(fitted, v, "{}", kind.as_str());
        }
    }
}
