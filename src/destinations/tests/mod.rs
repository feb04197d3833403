//! Golden files: the exact payload each target gets for the fixtures
//! (`src/destinations/tests/snapshots/`). Review a change with `cargo insta review`.

use super::*;
use crate::config::DestinationConfig;
use crate::config::DestinationKind;
use crate::enrich::Alert;
use crate::enrich::Enrichment;
use crate::event::Event;
use crate::render::*;
use serde_json::Value;
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

/// Outside text of any shape is a time or nothing, never a panic: a
/// character across byte 19, short and empty text, times past year 9999.
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
        assert_eq!(
            teams::render::render_string(&f),
            teams::render::render(&f).to_string()
        );
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

/// What decides whether a message may go out before its delivery is
/// recorded: the id a retry must repeat, and the order of an incident.
#[test]
fn which_messages_carry_the_delivery_id_or_go_in_order() {
    let dest = |v: serde_json::Value| -> crate::config::DestinationConfig {
        serde_json::from_value(v).unwrap()
    };
    let table = [
        (
            serde_json::json!({"kind": "teams", "url": "https://x"}),
            false,
            false,
        ),
        (
            serde_json::json!({"kind": "webhook", "url": "https://x"}),
            false,
            false,
        ),
        (
            serde_json::json!({"kind": "webhook", "url": "https://x", "secret": "whsec_AAAA"}),
            true,
            false,
        ),
        (serde_json::json!({"kind": "email"}), true, false),
        (
            serde_json::json!({"kind": "matrix", "url": "https://x"}),
            true,
            false,
        ),
        (serde_json::json!({"kind": "pagerduty"}), false, true),
        (serde_json::json!({"kind": "opsgenie"}), false, true),
    ];
    for (v, carries, ordered) in table {
        let d = dest(v.clone());
        assert_eq!(d.carries_delivery_id(), carries, "{v}");
        assert_eq!(d.in_order(), ordered, "{v}");
    }
}

mod cases;
mod payloads;
