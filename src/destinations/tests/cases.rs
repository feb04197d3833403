//! Golden files for what is not an alert (`src/render/snapshots/`): a
//! case on every destination kind, its change and alert list, a content
//! proposal, an intake health notification and a type the relay does not
//! know; and that none of them is titled or linked as an alert.

use super::*;
use crate::enrich::Case;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

const LINKS: Links<'static> = Links {
    alert: Some("https://app.sekoia.io/operations/alerts/{short_id}"),
    case: Some("https://app.sekoia.io/operations/cases/{short_id}"),
};
const ALL_KINDS: [DestinationKind; 12] = [
    DestinationKind::Teams,
    DestinationKind::TeamsLegacy,
    DestinationKind::Slack,
    DestinationKind::Mattermost,
    DestinationKind::Discord,
    DestinationKind::GoogleChat,
    DestinationKind::Matrix,
    DestinationKind::Ntfy,
    DestinationKind::Email,
    DestinationKind::Webhook,
    DestinationKind::Pagerduty,
    DestinationKind::Opsgenie,
];
const TARGET: context::Target = context::Target {
    hook: Some("soc"),
    route: Some("cases"),
    destination: "out",
};

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn event(name: &str) -> Event {
    crate::event::parse(&fixture(name)).unwrap()
}

/// The case fixture `name` as enrichment, with `names` looked up.
fn case(name: &str, names: &[(&str, &str)]) -> Enrichment {
    let raw: Value = serde_json::from_slice(&fixture(name)).unwrap();
    let names: BTreeMap<String, String> = names
        .iter()
        .map(|(u, n)| (u.to_string(), n.to_string()))
        .collect();
    Enrichment::Case(Arc::new(Case::from_parts(raw, names, &[])))
}

fn render_one(kind: DestinationKind, event: &Event, e: &Enrichment) -> Value {
    let facts = Facts::build_linked(event, e, LINKS);
    let mut v = render(kind, &facts, &|| {
        context::for_event(event, e, &facts, TARGET)
    });
    super::super::fit(kind, &mut v);
    v
}

fn snapshot_all(name: &str, event: &Event, e: &Enrichment) {
    for kind in ALL_KINDS {
        let v = render_one(kind, event, e);
        let name = format!("{name}-{}", kind.as_str());
        if kind == DestinationKind::Email {
            let text = format!(
                "Subject: {}\n\n----- text/plain -----\n{}\n----- text/html -----\n{}",
                v["subject"].as_str().unwrap(),
                v["text"].as_str().unwrap(),
                v["html"].as_str().unwrap()
            );
            insta::assert_snapshot!(name, text);
        } else {
            insta::assert_json_snapshot!(name, v);
        }
    }
}

#[test]
fn case_created_on_every_kind() {
    snapshot_all(
        "case-created",
        &event("event-case-created.json"),
        &case("case-full.json", &[]),
    );
}

#[test]
fn case_updated_says_what_changed_with_names() {
    let e = case(
        "case-full.json",
        &[
            ("2e4b4b02-9d4e-4b0e-9f0b-2a3c4d5e6f70", "Closed"),
            ("8e2a4b6c-2222-4b3c-8d4e-5f6071829304", "Critical"),
        ],
    );
    let ev = event("event-case-updated.json");
    let f = Facts::build_linked(&ev, &e, LINKS);
    let change = f.fact("Change").unwrap();
    assert_eq!(
        change,
        "status → Closed; priority → Critical; verdict → True positive; assignees → Alice Martin, Bob Dupont; tags → ransomware, vip, finance"
    );
    assert!(!change.contains("2e4b4b02"), "names, not uuids");
    for kind in [DestinationKind::Slack, DestinationKind::Teams] {
        let v = render_one(kind, &ev, &e);
        insta::assert_json_snapshot!(format!("case-updated-{}", kind.as_str()), v);
    }
}

#[test]
fn case_alerts_updated_names_the_alert() {
    let e = case("case-full.json", &[]);
    let ev = event("event-case-alerts-updated.json");
    let f = Facts::build_linked(&ev, &e, LINKS);
    assert_eq!(f.fact("Change").unwrap(), "alerts added: ALEY4fqz8moo");
    let body = f.body.clone().unwrap();
    assert!(body.contains("• ALEY4fqz8moo — Suspicious PowerShell download cradle (Major 63)"));
    assert!(body.contains("• ALFq8Zp3Kx2m — Credential dumping tool executed (Urgent 82)"));
    assert_eq!(
        f.links[0],
        (
            "ALEY4fqz8moo".to_owned(),
            "https://app.sekoia.io/operations/alerts/ALEY4fqz8moo".to_owned()
        )
    );
    insta::assert_json_snapshot!(
        "case-alerts-updated-slack",
        render_one(DestinationKind::Slack, &ev, &e)
    );
}

#[test]
fn a_case_the_api_cannot_return_is_still_a_case() {
    let ev = event("event-case-created.json");
    let e = Enrichment::Unavailable("HTTP 404 (case API answered 404 (Not Found))".into());
    let f = Facts::build_linked(&ev, &e, LINKS);
    assert_eq!(f.headline, "Ransomware precursor on finance workstations");
    assert_eq!(
        f.degraded.as_deref(),
        Some("Case details unavailable (HTTP 404).")
    );
    assert_eq!(
        f.link.as_deref(),
        Some("https://app.sekoia.io/operations/cases/CA42")
    );
    assert_eq!(f.fact("Mode").as_deref(), Some("automatic"));
    insta::assert_json_snapshot!(
        "case-degraded-slack",
        render_one(DestinationKind::Slack, &ev, &e)
    );
}

#[test]
fn nothing_but_an_alert_is_titled_or_linked_as_one() {
    for (file, e) in [
        ("event-case-created.json", Enrichment::NotApplicable),
        ("event-case-created.json", case("case-full.json", &[])),
        (
            "event-content-proposal-created.json",
            Enrichment::NotApplicable,
        ),
        ("event-intake-no-events.json", Enrichment::NotApplicable),
        ("event-unknown.json", Enrichment::NotApplicable),
    ] {
        let ev = event(file);
        let f = Facts::build_linked(&ev, &e, LINKS);
        assert!(!f.headline.starts_with("Alert "), "{file}: {}", f.headline);
        assert!(
            !f.link
                .as_deref()
                .unwrap_or("")
                .contains("/operations/alerts/"),
            "{file}: {:?}",
            f.link
        );
        assert!(f.fact("Alert").is_none(), "{file}");
    }
    // A case titled nowhere still reads as a case.
    let ev = crate::event::parse(
        br#"{"type":"case","action":"created","attributes":{"uuid":"3f1c9e2a-7b4d-4c6e-9a1f-2d3e4f5a6b7c","short_id":"CA42"}}"#,
    )
    .unwrap();
    let f = Facts::build_linked(&ev, &Enrichment::Unavailable("x".into()), LINKS);
    assert_eq!(f.headline, "Case CA42");
}

#[test]
fn other_notifications() {
    let na = Enrichment::NotApplicable;
    for (name, file) in [
        ("content-proposal", "event-content-proposal-created.json"),
        ("intake-health", "event-intake-no-events.json"),
        ("unknown-type", "event-unknown.json"),
    ] {
        let ev = event(file);
        for kind in [
            DestinationKind::Slack,
            DestinationKind::Teams,
            DestinationKind::Mattermost,
            DestinationKind::Email,
        ] {
            let v = render_one(kind, &ev, &na);
            let snap = format!("{name}-{}", kind.as_str());
            if kind == DestinationKind::Email {
                insta::assert_snapshot!(snap, v["text"].as_str().unwrap());
            } else {
                insta::assert_json_snapshot!(snap, v);
            }
        }
    }
    let f = Facts::build_linked(&event("event-unknown.json"), &na, LINKS);
    assert_eq!(f.headline, "Sekoia.io notification: countermeasure applied");
    let body = f.body.unwrap();
    assert!(body.contains("nested: {\"a\":[1,2,3]}"), "{body}");
    let f = Facts::build_linked(&event("event-intake-no-events.json"), &na, LINKS);
    assert_eq!(f.headline, "Platform health: Firewall <!here> syslog");
    assert_eq!(
        f.link.as_deref(),
        Some("https://app.sekoia.io/operations/intakes/c0ffee00-1234-4abc-8def-0123456789ab")
    );
    let f = Facts::build_linked(&event("event-content-proposal-created.json"), &na, LINKS);
    assert_eq!(f.headline, "Intelligence report: content proposal created");
}

#[test]
fn hostile_case_text_is_defused_everywhere() {
    let e = case("case-hostile.json", &[]);
    let ev = event("event-case-created.json");
    // The chat kinds the alert's hostile test covers: their mention and
    // link syntaxes.
    for kind in [
        DestinationKind::Teams,
        DestinationKind::TeamsLegacy,
        DestinationKind::Slack,
        DestinationKind::Mattermost,
        DestinationKind::Discord,
        DestinationKind::GoogleChat,
    ] {
        let body = render_one(kind, &ev, &e).to_string();
        let name = kind.as_str();
        for live in [
            "<!channel>",
            "<!here>",
            "<!everyone>",
            "@here",
            "@channel",
            "@everyone",
            "@all",
            "<@U12345>",
            "<@U999>",
            "](https://evil",
            "<https://evil",
            "<script>",
            "\u{202E}",
        ] {
            assert!(!body.contains(live), "{name}: {live:?} survived: {body}");
        }
        assert!(body.len() < 24 * 1024, "{name}: {} bytes", body.len());
    }
    // Matrix notifies on @room and on user ids.
    for kind in [DestinationKind::Matrix] {
        let body = render_one(kind, &ev, &e).to_string();
        for live in ["@room", "@here"] {
            assert!(!body.contains(live), "{}: {live:?} survived", kind.as_str());
        }
    }
    let formatted = render_one(DestinationKind::Matrix, &ev, &e)["formatted_body"].to_string();
    assert!(!formatted.contains("<script>"), "{formatted}");
    let html = render_one(DestinationKind::Email, &ev, &e)["html"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!html.contains("<script>"), "{html}");
}

#[test]
fn a_case_with_many_alerts_is_fitted() {
    let mut raw: Value = serde_json::from_slice(&fixture("case-full.json")).unwrap();
    let alert = raw["alerts"][0].clone();
    raw["alerts"] = Value::Array(
        (0..200)
            .map(|i| {
                let mut a = alert.clone();
                a["short_id"] = json!(format!("AL{i:08}"));
                a["title"] = json!("x".repeat(500));
                a
            })
            .collect(),
    );
    raw["number_of_alerts"] = json!(200);
    raw["description"] = json!("d".repeat(100_000));
    let e = Enrichment::Case(Arc::new(Case::from_parts(raw, BTreeMap::new(), &[])));
    let ev = event("event-case-created.json");
    let f = Facts::build_linked(&ev, &e, LINKS);
    assert!(f.body.as_deref().unwrap().contains("… and 190 more"));
    // The webhook document carries the case object as the API sent it.
    for kind in ALL_KINDS
        .into_iter()
        .filter(|k| *k != DestinationKind::Webhook)
    {
        let body = render_one(kind, &ev, &e).to_string();
        assert!(
            body.len() < 24 * 1024,
            "{}: {} bytes",
            kind.as_str(),
            body.len()
        );
    }
}

#[test]
fn a_case_opens_one_incident_resolved_when_it_closes() {
    let ev = event("event-case-created.json");
    let e = case("case-full.json", &[]);
    let v = render_one(DestinationKind::Pagerduty, &ev, &e);
    assert_eq!(v["event_action"], "trigger");
    assert_eq!(v["dedup_key"], "3f1c9e2a-7b4d-4c6e-9a1f-2d3e4f5a6b7c");
    let mut raw: Value = serde_json::from_slice(&fixture("case-full.json")).unwrap();
    raw["custom_status"] = json!({"label": "Closed", "stage": "closed"});
    let closed = Enrichment::Case(Arc::new(Case::from_parts(raw, BTreeMap::new(), &[])));
    let upd = event("event-case-updated.json");
    let v = render_one(DestinationKind::Pagerduty, &upd, &closed);
    assert_eq!(v["event_action"], "resolve");
    assert_eq!(v["dedup_key"], "3f1c9e2a-7b4d-4c6e-9a1f-2d3e4f5a6b7c");
    let v = render_one(DestinationKind::Opsgenie, &upd, &closed);
    assert_eq!(v["op"], "close");
    assert_eq!(v["alias"], "3f1c9e2a-7b4d-4c6e-9a1f-2d3e4f5a6b7c");
}
