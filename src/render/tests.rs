//! Golden files: the exact payload each target gets for the fixtures
//! (`src/render/snapshots/`). Review a change with `cargo insta review`.

use super::*;
use crate::enrich::Alert;
use std::sync::Arc;

const LINK: &str = "https://app.sekoia.io/operations/alerts/{short_id}";
const KINDS: [DestinationKind; 6] = [
    DestinationKind::Teams,
    DestinationKind::TeamsLegacy,
    DestinationKind::Slack,
    DestinationKind::Mattermost,
    DestinationKind::Discord,
    DestinationKind::GoogleChat,
];

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

fn facts(event_file: &str, e: &Enrichment) -> Facts {
    let event = crate::event::parse(&fixture(event_file)).unwrap();
    Facts::build(&event, e, Some(LINK))
}

fn snapshot_all(case: &str, f: &Facts) {
    for kind in KINDS {
        insta::assert_json_snapshot!(format!("{case}-{}", kind.as_str()), render(kind, f));
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
    for kind in KINDS {
        let body = serde_json::to_string(&render(kind, &f)).unwrap();
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
    let f = Facts::build(&event, &Enrichment::Unavailable("x".into()), Some(LINK));
    assert_eq!(f.link, None);
    for kind in KINDS {
        let body = serde_json::to_string(&render(kind, &f)).unwrap();
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
        snapshot_all(
            kind,
            &Facts::build(&event, &Enrichment::NotApplicable, Some(LINK)),
        );
    }
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
    let f = Facts::digest(&items, std::time::Duration::from_secs(60));
    assert_eq!(
        f.headline,
        "4 more alerts in the last 1m: 3 Major, 1 Moderate"
    );
    snapshot_all("digest", &f);
    for kind in KINDS {
        let body = serde_json::to_string(&render(kind, &f)).unwrap();
        assert!(
            !body.contains("<!channel>") && !body.contains("](https://evil"),
            "{}",
            kind.as_str()
        );
    }
}
