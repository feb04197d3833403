//! The routing rules, table by table.

use super::*;
use std::collections::HashMap;

fn routes(toml_routes: &str) -> Vec<RouteConfig> {
    let text = crate::config::test_config_text(&format!(
        r#"
        [hooks.other]
        id = "77a7472b-b43c-415d-b1ce-c135fb1dfb0e"
        origin = "o"
        [destinations.b]
        kind = "teams"
        url = "http://127.0.0.1:1/b"
        {toml_routes}
        "#
    ));
    crate::config::load_str(&text, &HashMap::new())
        .unwrap()
        .routes
}

fn event(file: &str) -> Event {
    let path = format!("{}/tests/fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
    crate::event::parse(&std::fs::read(path).unwrap()).unwrap()
}

fn alert(urgency: u32, status: &str) -> Alert {
    let mut v: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/fixtures/alert-full.json")).unwrap();
    v["urgency"]["value"] = urgency.into();
    v["status"]["name"] = status.into();
    Alert::from_value(v).unwrap()
}

/// (event file, alert, hook) → destinations.
fn check(rs: &[RouteConfig], ev: &str, a: Option<Alert>, hook: &str, expect: &[&str]) {
    let none = BTreeMap::new();
    let clock = Clock {
        now: jiff::Timestamp::UNIX_EPOCH,
        intervals: &none,
    };
    let got: Vec<String> = route(rs, hook, &event(ev), a.as_ref(), &clock)
        .into_iter()
        .map(|t| format!("{}:{}", t.route, t.destination))
        .collect();
    assert_eq!(got, expect, "event {ev} hook {hook}");
}

static NO_INTERVALS: std::sync::LazyLock<BTreeMap<String, TimeIntervalConfig>> =
    std::sync::LazyLock::new(BTreeMap::new);

fn no_clock() -> Clock<'static> {
    Clock {
        now: jiff::Timestamp::UNIX_EPOCH,
        intervals: &NO_INTERVALS,
    }
}

/// On-call hours and maintenance windows: an inactive or muted route
/// does not match (the next one is tried) and what it would have sent
/// is kept as muted, naming the interval.
#[test]
fn time_intervals_switch_routes_on_and_off() {
    let text = crate::config::test_config_text(
        r#"
        [destinations.phone]
        kind = "teams"
        url = "http://127.0.0.1:1/p"
        [time_intervals.business-hours]
        weekdays = ["monday:friday"]
        times = ["08:00-18:00"]
        timezone = "Europe/Paris"
        [time_intervals.patch-tuesday]
        weekdays = ["tuesday"]
        times = ["20:00-23:00"]
        timezone = "Europe/Paris"
        [[routes]]
        name = "night-phone"
        to = ["phone"]
        active_during = ["!business-hours"]
        muted_during = ["patch-tuesday"]
        [[routes]]
        name = "day"
        to = ["a"]
        "#,
    );
    let config = crate::config::load_str(&text, &HashMap::new()).unwrap();
    let at = |t: &str| Clock {
        now: t.parse().unwrap(),
        intervals: &config.time_intervals,
    };
    let targets = |t: &str| -> Vec<String> {
        route(
            &config.routes,
            "soc",
            &event("event-alert-created.json"),
            None,
            &at(t),
        )
        .into_iter()
        .map(|t| {
            format!(
                "{}:{}{}",
                t.route,
                t.destination,
                if t.muted.is_some() { " (muted)" } else { "" }
            )
        })
        .collect()
    };
    // Monday 10:00 in Paris (09:00 UTC, winter): business hours.
    assert_eq!(
        targets("2026-01-05T09:00:00Z"),
        ["night-phone:phone (muted)", "day:a"]
    );
    // Monday 22:00 in Paris: the phone route is on; "day" is not reached.
    assert_eq!(targets("2026-01-05T21:00:00Z"), ["night-phone:phone"]);
    // Tuesday 21:00 in Paris, summer (19:00 UTC): patch window.
    assert_eq!(
        targets("2026-07-07T19:00:00Z"),
        ["night-phone:phone (muted)", "day:a"]
    );
    let why = route(
        &config.routes,
        "soc",
        &event("event-alert-created.json"),
        None,
        &at("2026-07-07T19:00:00Z"),
    )
    .remove(0)
    .muted
    .unwrap();
    assert_eq!(
        why,
        "route \"night-phone\" muted: muted_during \"patch-tuesday\" holds now"
    );
    let d = decisions(
        &config.routes,
        "soc",
        &event("event-alert-created.json"),
        None,
        &at("2026-01-05T09:00:00Z"),
    );
    assert!(
        d[0].reason
            .ends_with("but inactive: active_during [\"!business-hours\"] does not hold now"),
        "{}",
        d[0].reason
    );
    // Unknown interval names are config errors naming the key.
    let bad = crate::config::test_config_text(
        "[[routes]]\nname = \"r\"\nto = [\"a\"]\nmuted_during = [\"nope\"]\n",
    );
    let e = crate::config::load_str(&bad, &HashMap::new())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("routes[0].muted_during[0]: no [time_intervals.nope] is defined"),
        "{e}"
    );
}

/// Each route's verdict says which condition decided, with the value
/// the event had; routes after the first match are not evaluated.
#[test]
fn decisions_say_which_condition_decided() {
    let rs = routes(
        r#"
        [[routes]]
        name = "soc-only"
        hooks = ["other"]
        to = ["a"]
        [[routes]]
        name = "critical"
        to = ["a"]
        [routes.when]
        urgency_min = 70
        [[routes]]
        name = "recurring"
        to = ["a"]
        [routes.when]
        similar_min = 5
        [[routes]]
        name = "pending"
        to = ["b"]
        [routes.when]
        type = ["alert"]
        status = ["Pending"]
        [[routes]]
        name = "rest"
        to = ["b"]
        "#,
    );
    let a = alert(63, "Pending");
    let got: Vec<(bool, String)> = decisions(
        &rs,
        "soc",
        &event("event-alert-created.json"),
        Some(&a),
        &no_clock(),
    )
    .into_iter()
    .map(|d| (d.matched, format!("{}: {}", d.route, d.reason)))
    .collect();
    assert_eq!(
        got,
        [
            (
                false,
                r#"soc-only: hooks = ["other"]: the event came in on "soc""#.to_owned()
            ),
            (
                false,
                "critical: urgency_min = 70: the alert's urgency is 63".to_owned()
            ),
            (
                false,
                "recurring: similar_min = 5: the alert has 2 similar".to_owned()
            ),
            (true, "pending: type, status hold".to_owned()),
            (
                false,
                r#"rest: not evaluated: route "pending" matched first (without continue = true)"#
                    .to_owned()
            ),
        ]
    );
    // Without the alert's details, alert conditions say so.
    let d = decisions(
        &rs,
        "soc",
        &event("event-alert-created.json"),
        None,
        &no_clock(),
    );
    assert_eq!(
        d[1].reason,
        "urgency_min = 70: the alert's details are unavailable"
    );
    // similar_min holds at the alert's count.
    let five = routes("[[routes]]\nname = \"r\"\nto = [\"a\"]\n[routes.when]\nsimilar_min = 2\n");
    assert!(
        decisions(
            &five,
            "soc",
            &event("event-alert-created.json"),
            Some(&a),
            &no_clock()
        )[0]
        .matched
    );
}

#[test]
fn first_match_wins_and_continue() {
    let rs = routes(
        r#"
        [[routes]]
        name = "urgent"
        to = ["a"]
        continue = true
        [routes.when]
        urgency_min = 70
        [[routes]]
        name = "pending"
        to = ["a", "b"]
        [routes.when]
        status = ["pending"]
        [[routes]]
        name = "rest"
        to = ["b"]
        "#,
    );
    let created = "event-alert-created.json";
    check(
        &rs,
        created,
        Some(alert(80, "Pending")),
        "soc",
        &["urgent:a", "pending:b"],
    );
    check(
        &rs,
        created,
        Some(alert(50, "Pending")),
        "soc",
        &["pending:a", "pending:b"],
    );
    check(&rs, created, Some(alert(50, "Closed")), "soc", &["rest:b"]);
    // The bounds are inclusive.
    check(
        &rs,
        created,
        Some(alert(70, "Closed")),
        "soc",
        &["urgent:a", "rest:b"],
    );
    // Degraded: alert-field conditions do not match.
    check(&rs, created, None, "soc", &["rest:b"]);
}

#[test]
fn type_action_hook_and_update_status() {
    let rs = routes(
        r#"
        [[routes]]
        name = "acks"
        hooks = ["other"]
        to = ["a"]
        [routes.when]
        type = ["alert"]
        action = ["updated"]
        status = ["Acknowledged"]
        [[routes]]
        name = "comments"
        to = ["b"]
        [routes.when]
        type = ["alert-comment"]
        "#,
    );
    check(
        &rs,
        "event-alert-updated-status.json",
        None,
        "other",
        &["acks:a"],
    );
    check(&rs, "event-alert-updated-status.json", None, "soc", &[]);
    check(
        &rs,
        "event-alert-comment-created.json",
        None,
        "soc",
        &["comments:b"],
    );
    check(
        &rs,
        "event-alert-created.json",
        Some(alert(10, "Pending")),
        "other",
        &[],
    );
}

#[test]
fn asset_community_updated_and_not() {
    let rs = routes(
        r#"
        [[routes]]
        name = "status-changes"
        to = ["a"]
        [routes.when]
        updated = ["status"]
        community = ["D6CEA089-0F36-46C4-A10A-0E4C2E20FB10"]
        [[routes]]
        name = "asset-open"
        to = ["b"]
        [routes.when]
        asset = ["0f8e8d7c-6b5a-4c3d-2e1f-0a9b8c7d6e5f"]
        not = { status = ["Closed", "Rejected"] }
        "#,
    );
    check(
        &rs,
        "event-alert-updated-status.json",
        None,
        "soc",
        &["status-changes:a"],
    );
    // An urgency change is not a status change; the asset route takes it.
    check(
        &rs,
        "event-alert-updated-urgency.json",
        Some(alert(50, "Pending")),
        "soc",
        &["asset-open:b"],
    );
    check(
        &rs,
        "event-alert-updated-urgency.json",
        Some(alert(50, "Closed")),
        "soc",
        &[],
    );
    // Degraded: the asset condition needs the alert.
    check(&rs, "event-alert-created.json", None, "soc", &[]);
}

#[test]
fn urgency_max_bounds_a_band() {
    let rs = routes("[[routes]]\nname = \"noisy\"\nto = [\"a\"]\n[routes.when]\nurgency_min = 20\nurgency_max = 59\n");
    let created = "event-alert-created.json";
    check(&rs, created, Some(alert(19, "Pending")), "soc", &[]);
    check(
        &rs,
        created,
        Some(alert(20, "Pending")),
        "soc",
        &["noisy:a"],
    );
    check(
        &rs,
        created,
        Some(alert(59, "Pending")),
        "soc",
        &["noisy:a"],
    );
    check(&rs, created, Some(alert(60, "Pending")), "soc", &[]);
    check(&rs, created, None, "soc", &[]);
}

#[test]
fn dedup_keys() {
    use crate::config::DedupField::*;
    let created = event("event-alert-created.json");
    let update = event("event-alert-updated-status.json");
    let a = alert(10, "Pending");
    assert_eq!(
        dedup_key(&[Alert, Action], &created, Some(&a)),
        "5696845f-9ecf-4431-9f0f-48ee0ee2eff1:created"
    );
    assert_eq!(
        dedup_key(&[Alert, Status], &update, Some(&a)),
        "5696845f-9ecf-4431-9f0f-48ee0ee2eff1:acknowledged"
    );
    assert_eq!(dedup_key(&[Type, Status], &created, None), "alert:");
}

#[test]
fn alert_type_rule_entity() {
    let rs = routes(
        r#"
        [[routes]]
        name = "intrusions"
        to = ["a"]
        [routes.when]
        alert_type = ["intrusions/system-compromise"]
        rule = ["powershell download from url"]
        entity = ["Headquarters"]
        "#,
    );
    check(
        &rs,
        "event-alert-created.json",
        Some(alert(10, "Pending")),
        "soc",
        &["intrusions:a"],
    );
    let rs2 = routes(
        "[[routes]]\nname = \"x\"\nto = [\"a\"]\n[routes.when]\nalert_type = [\"malware\"]\n",
    );
    check(
        &rs2,
        "event-alert-created.json",
        Some(alert(10, "Pending")),
        "soc",
        &[],
    );
}
