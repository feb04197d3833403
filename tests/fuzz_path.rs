//! Property-based fuzzing of the whole path an outside document takes,
//! not just its parsing: a webhook body and an alert document with
//! arbitrary Unicode, huge and tiny numbers, odd dates, deep and missing
//! fields go through parse → route (every condition) → render (every
//! destination kind, threads, digests, the paging kinds' lifecycle) → fit
//! → the request each destination would get. Asserted: no panic, each
//! service's size limit kept, no mention or live link from outside text.
//!
//! Runs inside `cargo test` (and `scripts/test.sh`) with a case count that
//! fits CI; a longer pass:
//! `PROPTEST_CASES=20000 cargo test --release --test fuzz_path`.

use hookrelay::config::DestinationKind;
use hookrelay::destinations::{event_payload, render, Capabilities};
use hookrelay::enrich::{Alert, Enrichment};
use hookrelay::event::Event;
use hookrelay::render::context::Target;
use hookrelay::render::thread::Threaded;
use hookrelay::render::Facts;
use proptest::prelude::*;
use serde_json::{json, Value};
use std::sync::{Arc, OnceLock};

const LINK: &str = "https://app.sekoia.io/operations/alerts/{short_id}";

/// Every destination kind (Slack and Mattermost in both modes), and routes
/// that between them use every condition.
fn config() -> &'static (
    hookrelay::config::Config,
    hookrelay::destinations::Destinations,
) {
    static CONFIG: OnceLock<(
        hookrelay::config::Config,
        hookrelay::destinations::Destinations,
    )> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let text = r#"
[origins.sekoia]
kind = "sekoia"
base_url = "https://api.example.org"
api_key = "k"
[hooks.soc]
id = "67a7472b-b43c-415d-b1ce-c135fb1dfb0e"
origin = "sekoia"
[time_intervals.always]
weekdays = ["monday:sunday"]
[destinations.teams]
kind = "teams"
url = "https://example.org/teams"
mentions = [{ id = "29:1", name = "SOC lead" }]
[destinations.teams-card]
kind = "teams"
url = "https://example.org/teams-card"
shape = "card"
[destinations.legacy]
kind = "teams-legacy"
url = "https://example.org/legacy"
[destinations.slack]
kind = "slack"
url = "https://example.org/slack"
mentions = ["<!subteam^S1>"]
[destinations.slack-api]
kind = "slack"
token = "xoxb-1"
channel = "C0123ABCD"
api_url = "https://example.org/slack-api"
[destinations.mattermost]
kind = "mattermost"
url = "https://example.org/mattermost"
[destinations.mattermost-api]
kind = "mattermost"
server_url = "https://example.org"
token = "mm-token"
channel_id = "4xp9fdt77pncbef59f4k1qe83o"
[destinations.discord]
kind = "discord"
url = "https://example.org/discord"
[destinations.gchat]
kind = "google-chat"
url = "https://example.org/gchat"
[destinations.matrix]
kind = "matrix"
homeserver = "https://example.org"
access_token = "syt_1"
room_id = "!room:example.org"
[destinations.ntfy]
kind = "ntfy"
url = "https://example.org/alerts"
[destinations.mail]
kind = "email"
host = "smtp.example.org"
from = "relay@example.org"
to = ["soc@example.org"]
[destinations.hook]
kind = "webhook"
url = "https://example.org/hook"
[destinations.pd]
kind = "pagerduty"
routing_key = "R0123456789abcdef0123456789abcde"
[destinations.og]
kind = "opsgenie"
api_key = "og-key"

[[routes]]
name = "urgent"
to = ["teams", "slack"]
mention = true
continue = true
active_during = ["always"]
[routes.when]
type = ["alert"]
action = ["created", "updated"]
urgency_min = 70
urgency_max = 100
status = ["Pending", "Acknowledged"]
not = { rule = ["noise"] }

[[routes]]
name = "by-fields"
to = ["legacy", "teams-card"]
continue = true
dedup = "1h"
dedup_key = ["alert", "action"]
[routes.when]
rule = ["Suspicious PowerShell download cradle"]
entity = ["Internal"]
alert_type = ["intrusions"]
similar_min = 2
updated = ["status_name"]

[[routes]]
name = "everything"
to = ["slack-api", "mattermost", "mattermost-api", "discord", "gchat", "matrix", "ntfy", "mail", "hook", "pd", "og"]
"#;
        let config = hookrelay::config::load_str(text, &Default::default())
            .unwrap_or_else(|e| panic!("{e}"));
        let (destinations, _) = hookrelay::destinations::destinations(&config).unwrap();
        (config, destinations)
    })
}

/// Text an attacker would send: any Unicode, markup and mentions of every
/// target, control and bidi characters, long runs.
fn hostile_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,60}",
        "\\PC{0,40}",
        Just("<!channel> @here @all <!everyone> @room".to_owned()),
        Just(
            "[x](https://evil.example) <https://evil.example|y> ![i](https://evil.example/i)"
                .to_owned()
        ),
        Just("<script>alert(1)</script>&amp;\u{202e}\u{0}\r\n".to_owned()),
        Just("é".repeat(3000)),
        Just("2022-01-14T15:06:5é".to_owned()),
        "[0-9:T.+-]{0,32}",
    ]
}

/// Any JSON value, numbers of every size among them.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        hostile_text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A number as an origin might answer one: 0–100, or far outside.
fn odd_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..=100).prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        Just(json!(253_402_300_800u64)),
        Just(json!(u64::MAX)),
        Just(json!(-1)),
        Just(json!(1e308)),
        Just(json!(0.5)),
        hostile_text().prop_map(Value::from),
        Just(Value::Null),
    ]
}

/// A field set to `v`, or left out.
fn set(doc: &mut Value, pointer: &str, v: Option<Value>) {
    let Some(v) = v else {
        return;
    };
    let mut at = doc;
    let parts: Vec<&str> = pointer.trim_start_matches('/').split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        if !at.is_object() {
            *at = json!({});
        }
        let map = at.as_object_mut().unwrap();
        if i + 1 == parts.len() {
            map.insert((*p).to_owned(), v);
            return;
        }
        at = map.entry((*p).to_owned()).or_insert(json!({}));
    }
}

fn event_doc() -> impl Strategy<Value = Value> {
    (
        prop_oneof![
            Just("alert"),
            Just("alert-comment"),
            Just("case"),
            Just("content-proposal"),
            Just("hookrelay.silence"),
            Just("hookrelay.recovered"),
            Just("x"),
        ],
        prop_oneof![Just("created"), Just("updated"), Just("deleted"), Just("?")],
        prop::option::of(hostile_text()),
        prop::option::of(hostile_text()),
        prop::option::of(prop_oneof![
            hostile_text().prop_map(Value::from),
            any_json()
        ]),
        prop::option::of(any_json()),
        prop::option::of(odd_number()),
        prop::option::of(hostile_text()),
        prop::option::of(any_json()),
    )
        .prop_map(
            |(kind, action, short_id, created_at, status, updated, urgency, content, extra)| {
                let mut v = json!({
                    "type": kind,
                    "action": action,
                    "attributes": {"uuid": "5696845f-9ecf-4431-9f0f-48ee0ee2eff1",
                                   "alert_uuid": "5696845f-9ecf-4431-9f0f-48ee0ee2eff1"},
                    "metadata": {"version": 2},
                });
                set(&mut v, "/attributes/short_id", short_id.map(Value::from));
                set(&mut v, "/metadata/created_at", created_at.map(Value::from));
                set(&mut v, "/attributes/updated", updated);
                set(&mut v, "/attributes/updated/status_name", status);
                set(&mut v, "/attributes/updated/urgency", urgency.clone());
                set(&mut v, "/attributes/content", content.map(Value::from));
                set(&mut v, "/attributes/silent_for", urgency);
                set(&mut v, "/attributes/extra", extra);
                v
            },
        )
}

fn alert_doc() -> impl Strategy<Value = Value> {
    (
        prop::option::of(hostile_text()),
        prop::option::of(odd_number()),
        prop::option::of(hostile_text()),
        prop::option::of(hostile_text()),
        prop::option::of(hostile_text()),
        prop::option::of(odd_number()),
        prop::option::of(hostile_text()),
        prop::option::of(odd_number()),
        prop::option::of(any_json()),
    )
        .prop_map(
            |(title, urgency, status, rule, entity, created_at, short_id, similar, assets)| {
                let mut v: Value =
                    serde_json::from_str(include_str!("fixtures/alert-full.json")).unwrap();
                set(&mut v, "/title", title.map(Value::from));
                set(&mut v, "/urgency/value", urgency.clone());
                set(&mut v, "/urgency/current_value", urgency);
                set(&mut v, "/status/name", status.map(Value::from));
                set(&mut v, "/rule/name", rule.clone().map(Value::from));
                set(&mut v, "/entity/name", entity.map(Value::from));
                set(&mut v, "/created_at", created_at);
                set(&mut v, "/short_id", short_id.map(Value::from));
                set(&mut v, "/similar", similar);
                set(&mut v, "/assets", assets);
                set(&mut v, "/alert_type/category", rule.map(Value::from));
                v
            },
        )
}

/// What outside text must never become in a message people read: on the
/// kinds that render markup, no mention and no live link; in Matrix's
/// HTML, no link. (ntfy, the paging kinds and Matrix's `body` are plain
/// text; e-mail is HTML-escaped and checked by the e-mail tests; a webhook
/// carries the raw documents to a program, by design.)
fn assert_defused(kind: DestinationKind, out: &str) -> Result<(), TestCaseError> {
    use DestinationKind::*;
    match kind {
        Teams | TeamsLegacy | Slack | Mattermost | Discord | GoogleChat => {
            for live in [
                "<!channel>",
                "<!everyone>",
                "](https://evil",
                "<https://evil",
            ] {
                prop_assert!(!out.contains(live), "{kind:?}: {live} in {out}");
            }
            // A word joiner (or an escape) always separates `@` from `here`.
            prop_assert!(!out.contains("@here"), "{kind:?}: @here in {out}");
        }
        Matrix => {
            let v: Value = serde_json::from_str(out).unwrap_or_default();
            let html = v["formatted_body"].as_str().unwrap_or_default();
            prop_assert!(!html.contains("href=\"https://evil"), "{html}");
            prop_assert!(!html.contains("<script"), "{html}");
        }
        _ => {}
    }
    Ok(())
}

/// The most a service takes (bytes of the request body), with headroom.
fn limit(kind: DestinationKind) -> usize {
    match kind {
        DestinationKind::Teams => 28 * 1024,
        DestinationKind::Slack => 40_000 * 4,
        DestinationKind::Mattermost => 16_383 * 4,
        DestinationKind::Discord => 6_000 * 4 + 4096,
        DestinationKind::GoogleChat => 32 * 1024,
        _ => 512 * 1024,
    }
}

fn check_path(event: &Event, enrichment: &Enrichment) -> Result<(), TestCaseError> {
    let (config, destinations) = config();
    let clock = hookrelay::route::Clock {
        now: jiff::Timestamp::now(),
        intervals: &config.time_intervals,
    };
    let (targets, decisions) =
        hookrelay::route::route_explained(&config.routes, "soc", event, enrichment.alert(), &clock);
    prop_assert_eq!(decisions.len(), config.routes.len());
    let facts = Facts::build(event, enrichment, Some(LINK));
    for t in &targets {
        let _ = hookrelay::route::dedup_key(&t.dedup_key, event, enrichment.alert());
        let dest = &destinations[&t.destination];
        let kind = dest.config.kind;
        let mut facts = facts.clone();
        if t.mention {
            facts.mentions = dest.config.mentions.clone();
        }
        let target = Target {
            hook: Some("soc"),
            route: Some(&t.route),
            destination: &t.destination,
        };
        let body = event_payload(dest, event, enrichment, &facts, target)
            .map_err(|e| TestCaseError::fail(format!("{kind:?}: {e}")))?;
        // Threads: the root, and every reply it could get.
        if let Some(threaded) = Threaded::unwrap(&body) {
            for (status, urgency) in [
                (None, None),
                (Some("Pending"), Some(0)),
                (Some("Closed"), Some(i64::MAX)),
            ] {
                let change = threaded.change(status, urgency);
                let text = change.text(hookrelay::destinations::of(kind).markup());
                assert_defused(kind, &text)?;
                let _ =
                    hookrelay::render::thread::describe(Some(("1.0", status, urgency)), &threaded);
            }
            assert_defused(kind, &threaded.message.to_string())?;
            continue;
        }
        prop_assert!(body.len() <= limit(kind), "{kind:?}: {} bytes", body.len());
        assert_defused(kind, &body)?;
        // The request each destination would get (the paging kinds' own
        // endpoints and bodies, Matrix's transaction id, e-mail as MIME).
        // (E-mail's MIME is built by lettre, which needs a runtime: the
        // e-mail tests cover it.)
        if !dest.config.api_mode() && kind != DestinationKind::Email {
            let _ = hookrelay::preview::request(&Arc::new(dest.config.clone()), "msg_1", &body);
        }
        if matches!(kind, DestinationKind::Pagerduty | DestinationKind::Opsgenie) {
            let doc: Value = serde_json::from_str(&body).unwrap_or_default();
            let _ = hookrelay::render::paging::lifecycle(&doc);
        }
    }
    // Digests: this message among others held back, on every kind.
    let summary = facts.summary();
    let items = vec![summary; 30];
    let digest = Facts::digest(&items, std::time::Duration::from_secs(60), Some(LINK));
    for kind in [
        DestinationKind::Teams,
        DestinationKind::TeamsLegacy,
        DestinationKind::Slack,
        DestinationKind::Mattermost,
        DestinationKind::Discord,
        DestinationKind::GoogleChat,
        DestinationKind::Matrix,
        DestinationKind::Ntfy,
        DestinationKind::Email,
    ] {
        let mut v = render(kind, &digest, &|| Value::Null);
        hookrelay::destinations::fit(kind, &mut v);
        let out = v.to_string();
        prop_assert!(
            out.len() <= limit(kind),
            "{kind:?} digest: {} bytes",
            out.len()
        );
        assert_defused(kind, &out)?;
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(96)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Event and alert both from outside, the alert fetched.
    #[test]
    fn the_whole_path_holds_for_any_event_and_alert(event in event_doc(), alert in alert_doc()) {
        let Ok(event) = hookrelay::event::parse(event.to_string().as_bytes()) else {
            return Ok(());
        };
        let enrichment = match Alert::from_value(alert) {
            Ok(a) => Enrichment::Fetched(Arc::new(a)),
            Err(e) => Enrichment::Unavailable(e),
        };
        check_path(&event, &enrichment)?;
    }

    /// The alert could not be fetched: the degraded message from what the
    /// webhook carried.
    #[test]
    fn the_whole_path_holds_without_the_alert(event in event_doc(), reason in hostile_text()) {
        let Ok(event) = hookrelay::event::parse(event.to_string().as_bytes()) else {
            return Ok(());
        };
        check_path(&event, &Enrichment::Unavailable(reason))?;
        check_path(&event, &Enrichment::NotApplicable)?;
    }

    /// Bodies that are not documents at all still parse or fail cleanly.
    #[test]
    fn any_document_parses_or_fails_cleanly(v in any_json()) {
        if let Ok(event) = hookrelay::event::parse(v.to_string().as_bytes()) {
            check_path(&event, &Enrichment::NotApplicable)?;
        }
    }
}
