//! Routing: (hook, event, alert, routes, clock) → which destinations get
//! it. Pure: no IO, and the time is given ([`Clock`]), never read. Dedup
//! windows are applied by the store, which owns the state they need.

use crate::config::{DedupField, RouteConfig, TimeIntervalConfig, When};
use crate::enrich::{Alert, Case};
use crate::event::Event;
use std::collections::BTreeMap;
use std::time::Duration;

/// One (route, destination) pair an event is to be delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub route: String,
    pub destination: String,
    /// The route's dedup window, if any.
    pub dedup: Option<Duration>,
    /// What identifies "the same notification" within that window.
    pub dedup_key: Vec<DedupField>,
    /// Set when the route matched but was muted or inactive at the time
    /// (`muted_during`, `active_during`): recorded, not sent.
    pub muted: Option<String>,
    /// The route says `mention = true`.
    pub mention: bool,
}

/// When a routing happens, and the named intervals routes refer to.
pub struct Clock<'a> {
    pub now: jiff::Timestamp,
    pub intervals: &'a BTreeMap<String, TimeIntervalConfig>,
}

impl Clock<'_> {
    /// Whether the instant is in the interval `name` (`"!name"`: outside).
    fn holds(&self, name: &str) -> bool {
        let (negated, bare) = match name.strip_prefix('!') {
            Some(b) => (true, b),
            None => (false, name),
        };
        let inside = self
            .intervals
            .get(bare)
            .and_then(|i| i.parsed.as_ref())
            .is_some_and(|i| i.contains(self.now));
        inside != negated
    }

    /// Whether route `r` is on duty now: `Err` says why not, naming the
    /// interval.
    pub fn on_duty(&self, r: &RouteConfig) -> Result<(), String> {
        if let Some(m) = r.muted_during.iter().find(|m| self.holds(m)) {
            return Err(format!("muted: muted_during {m:?} holds now"));
        }
        if !r.active_during.is_empty() && !r.active_during.iter().any(|a| self.holds(a)) {
            return Err(format!(
                "inactive: active_during {} does not hold now",
                list(&r.active_during)
            ));
        }
        Ok(())
    }
}

/// The dedup key of an event for a route's `dedup_key` fields.
pub fn dedup_key(fields: &[DedupField], event: &Event, alert: Option<&Alert>) -> String {
    let mut parts = Vec::with_capacity(fields.len());
    for f in fields {
        parts.push(match f {
            DedupField::Alert => event
                .alert_uuid
                .or(event.uuid)
                .map(|u| u.to_string())
                .or_else(|| event.short_id.clone())
                .unwrap_or_default(),
            DedupField::Action => event.action.clone(),
            DedupField::Type => event.kind.clone(),
            DedupField::Status => update_status(event)
                .map(str::to_owned)
                .or_else(|| alert.and_then(|a| a.status.clone()))
                .unwrap_or_default()
                .to_lowercase(),
        });
    }
    parts.join(":")
}

fn update_status(event: &Event) -> Option<&str> {
    event.updated.as_ref()?.get("status_name")?.as_str()
}

fn any_eq(list: &[String], value: Option<&str>) -> bool {
    value.is_some_and(|v| list.iter().any(|x| x.eq_ignore_ascii_case(v.trim())))
}

/// Whether `when` holds for the event. Alert-field conditions do not hold
/// when the alert is missing (degraded events fall through to routes
/// without them).
pub fn matches(when: &When, event: &Event, alert: Option<&Alert>) -> bool {
    explain(when, event, alert).is_ok()
}

/// [`matches`] for an event that may be about a case.
pub fn matches_with(
    when: &When,
    event: &Event,
    alert: Option<&Alert>,
    case: Option<&Case>,
) -> bool {
    explain_with(when, event, alert, case).is_ok()
}

/// Shows a list of values for a reason: `["a", "b"]`.
fn list(values: &[String]) -> String {
    format!("{values:?}")
}

/// What a value was, for a reason: `"x"`, or `none`.
fn shown(value: Option<&str>) -> String {
    value.map_or("none".to_owned(), |v| format!("{v:?}"))
}

/// [`matches`], saying which condition decided: `Err` names the first
/// condition that does not hold and what the event had instead (e.g.
/// `urgency_min = 70: the alert's urgency is 63`); `Ok` says that every
/// condition held.
pub fn explain(when: &When, event: &Event, alert: Option<&Alert>) -> Result<String, String> {
    explain_with(when, event, alert, None)
}

/// The case conditions (`case_priority`, `case_status`, `case_verdict`,
/// `assignees`, `tags`, `case_mode`): `Err` names the first that does not
/// hold and what the case had.
fn explain_case(
    when: &When,
    event: &Event,
    case: Option<&Case>,
    held: &mut Vec<String>,
) -> Result<(), String> {
    let missing = |key: &str, wanted: &Vec<String>| {
        if event.subject() != crate::event::Subject::Case {
            format!(
                "{key} = {}: the event is about {} {}, not a case",
                list(wanted),
                if event.subject() == crate::event::Subject::Alert {
                    "an"
                } else {
                    "a"
                },
                event.subject().as_str()
            )
        } else {
            format!(
                "{key} = {}: the case's details are unavailable",
                list(wanted)
            )
        }
    };
    let one = |key: &str, wanted: &Vec<String>, value: Option<&str>| -> Result<(), String> {
        match case {
            None => Err(missing(key, wanted)),
            Some(_) if any_eq(wanted, value) => Ok(()),
            Some(_) => Err(format!(
                "{key} = {}: the case's {} is {}",
                list(wanted),
                key.trim_start_matches("case_"),
                shown(value)
            )),
        }
    };
    let many = |key: &str, wanted: &Vec<String>, values: Option<&Vec<String>>| match (case, values)
    {
        (None, _) | (_, None) => Err(missing(key, wanted)),
        (Some(_), Some(v)) if v.iter().any(|x| any_eq(wanted, Some(x))) => Ok(()),
        (Some(_), Some(v)) => Err(format!(
            "{key} = {}: the case's {key} are {}",
            list(wanted),
            if v.is_empty() {
                "none".to_owned()
            } else {
                list(v)
            }
        )),
    };
    if let Some(w) = &when.case_priority {
        one("case_priority", w, case.and_then(|c| c.priority.as_deref()))?;
        held.push("case_priority".into());
    }
    if let Some(w) = &when.case_status {
        one("case_status", w, case.and_then(|c| c.status.as_deref()))?;
        held.push("case_status".into());
    }
    if let Some(w) = &when.case_verdict {
        one("case_verdict", w, case.and_then(|c| c.verdict.as_deref()))?;
        held.push("case_verdict".into());
    }
    if let Some(w) = &when.assignees {
        many("assignees", w, case.map(|c| &c.assignees))?;
        held.push("assignees".into());
    }
    if let Some(w) = &when.tags {
        many("tags", w, case.map(|c| &c.tags))?;
        held.push("tags".into());
    }
    if let Some(w) = &when.case_mode {
        // The webhook says it too: this holds without the case's details.
        let manual = case.and_then(|c| c.manual).or_else(|| {
            (event.subject() == crate::event::Subject::Case)
                .then(|| event.raw().pointer("/attributes/manual")?.as_bool())
                .flatten()
        });
        let mode = manual.map(|m| if m { "manual" } else { "automatic" });
        if !any_eq(w, mode) {
            return Err(match mode {
                None => missing("case_mode", w),
                Some(m) => format!("case_mode = {}: the case is {m}", list(w)),
            });
        }
        held.push("case_mode".into());
    }
    Ok(())
}

/// [`explain`] for an event that may be about a case.
pub fn explain_with(
    when: &When,
    event: &Event,
    alert: Option<&Alert>,
    case: Option<&Case>,
) -> Result<String, String> {
    let mut held: Vec<String> = Vec::new();
    if let Some(types) = &when.type_ {
        if !any_eq(types, Some(&event.kind)) {
            return Err(format!(
                "type = {}: the event's type is {:?}",
                list(types),
                event.kind
            ));
        }
        held.push("type".into());
    }
    if let Some(actions) = &when.action {
        if !any_eq(actions, Some(&event.action)) {
            return Err(format!(
                "action = {}: the event's action is {:?}",
                list(actions),
                event.action
            ));
        }
        held.push("action".into());
    }
    let urgency = alert.and_then(|a| a.urgency.as_ref()).map(|u| u.value);
    let no_alert = || {
        if alert.is_none() {
            "the alert's details are unavailable".to_owned()
        } else {
            "the alert has no urgency".to_owned()
        }
    };
    if let Some(min) = when.urgency_min {
        match urgency {
            None => return Err(format!("urgency_min = {min}: {}", no_alert())),
            Some(u) if u < min => {
                return Err(format!("urgency_min = {min}: the alert's urgency is {u}"))
            }
            Some(u) => held.push(format!("urgency_min = {min} (urgency {u})")),
        }
    }
    if let Some(max) = when.urgency_max {
        match urgency {
            None => return Err(format!("urgency_max = {max}: {}", no_alert())),
            Some(u) if u > max => {
                return Err(format!("urgency_max = {max}: the alert's urgency is {u}"))
            }
            Some(u) => held.push(format!("urgency_max = {max} (urgency {u})")),
        }
    }
    if let Some(min) = when.similar_min {
        let similar = alert
            .and_then(|a| a.raw().get("similar"))
            .and_then(|v| v.as_u64());
        match (alert, similar) {
            (None, _) => {
                return Err(format!(
                    "similar_min = {min}: the alert's details are unavailable"
                ))
            }
            (_, None) => {
                return Err(format!(
                    "similar_min = {min}: the alert has no similar count"
                ))
            }
            (_, Some(n)) if n < u64::from(min) => {
                return Err(format!("similar_min = {min}: the alert has {n} similar"))
            }
            (_, Some(n)) => held.push(format!("similar_min = {min} ({n} similar)")),
        }
    }
    if let Some(min) = when.asset_criticality_min {
        let Some(a) = alert else {
            return Err(format!(
                "asset_criticality_min = {min}: the alert's details are unavailable"
            ));
        };
        let total = a.asset_uuids().len();
        let highest = a.assets.iter().filter_map(|x| x.criticality).max();
        match highest {
            _ if total == 0 => {
                return Err(format!("asset_criticality_min = {min}: the alert has no assets"))
            }
            None => {
                return Err(format!(
                    "asset_criticality_min = {min}: the criticality of the alert's {total} assets is unknown"
                ))
            }
            Some(h) if h < min => {
                return Err(format!(
                    "asset_criticality_min = {min}: the highest criticality among the alert's assets is {h}"
                ))
            }
            Some(h) => held.push(format!("asset_criticality_min = {min} (highest {h})")),
        }
    }
    if let Some(statuses) = &when.status {
        let from_update = update_status(event);
        let from_alert = alert.and_then(|a| a.status.as_deref());
        if !(any_eq(statuses, from_alert) || any_eq(statuses, from_update)) {
            return Err(format!(
                "status = {}: the status is {}",
                list(statuses),
                shown(from_update.or(from_alert))
            ));
        }
        held.push("status".into());
    }
    let text_condition =
        |key: &str, wanted: &Vec<String>, value: Option<&str>| -> Result<(), String> {
            if any_eq(wanted, value) {
                Ok(())
            } else if alert.is_none() {
                Err(format!(
                    "{key} = {}: the alert's details are unavailable",
                    list(wanted)
                ))
            } else {
                Err(format!(
                    "{key} = {}: the alert's {key} is {}",
                    list(wanted),
                    shown(value)
                ))
            }
        };
    if let Some(rules) = &when.rule {
        text_condition("rule", rules, alert.and_then(|a| a.rule.as_deref()))?;
        held.push("rule".into());
    }
    if let Some(entities) = &when.entity {
        text_condition("entity", entities, alert.and_then(|a| a.entity.as_deref()))?;
        held.push("entity".into());
    }
    if let Some(types) = &when.alert_type {
        let cat = alert.and_then(|a| a.alert_type_category.as_deref());
        let full = alert.and_then(|a| {
            Some(format!(
                "{}/{}",
                a.alert_type_category.as_deref()?,
                a.alert_type_value.as_deref()?
            ))
        });
        if !(any_eq(types, cat) || any_eq(types, full.as_deref())) {
            text_condition("alert_type", types, full.as_deref().or(cat))?;
        }
        held.push("alert_type".into());
    }
    if let Some(assets) = &when.asset {
        let alert_assets = alert
            .and_then(|a| a.raw().get("assets"))
            .and_then(|v| v.as_array())
            .map(|v| v.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>())
            .unwrap_or_default();
        if !alert_assets.iter().any(|a| any_eq(assets, Some(a))) {
            return Err(if alert.is_none() {
                format!(
                    "asset = {}: the alert's details are unavailable",
                    list(assets)
                )
            } else {
                format!(
                    "asset = {}: none of the alert's {} assets",
                    list(assets),
                    alert_assets.len()
                )
            });
        }
        held.push("asset".into());
    }
    if let Some(communities) = &when.community {
        let from_event = event
            .raw()
            .pointer("/metadata/community_uuid")
            .and_then(|v| v.as_str());
        let from_alert = alert
            .and_then(|a| a.raw().get("community_uuid"))
            .and_then(|v| v.as_str());
        if !(any_eq(communities, from_event) || any_eq(communities, from_alert)) {
            return Err(format!(
                "community = {}: the community is {}",
                list(communities),
                shown(from_event.or(from_alert))
            ));
        }
        held.push("community".into());
    }
    if let Some(fields) = &when.updated {
        let changed = event
            .updated
            .as_ref()
            .map(|u| u.keys().map(|k| k.to_lowercase()).collect::<Vec<_>>())
            .unwrap_or_default();
        let hit = fields.iter().any(|f| {
            let f = f.to_lowercase();
            changed
                .iter()
                .any(|k| *k == f || k.split('_').any(|part| part == f))
        });
        if !hit {
            return Err(format!(
                "updated = {}: the event changed {}",
                list(fields),
                if changed.is_empty() {
                    "nothing".to_owned()
                } else {
                    list(&changed)
                }
            ));
        }
        held.push("updated".into());
    }
    explain_case(when, event, case, &mut held)?;
    if let Some(inner) = &when.not {
        if let Ok(why) = explain_with(inner, event, alert, case) {
            return Err(format!("not: its conditions all hold ({why})"));
        }
        held.push("not".into());
    }
    Ok(if held.is_empty() {
        "no conditions: matches every event".into()
    } else {
        format!(
            "{} {}",
            held.join(", "),
            if held.len() == 1 { "holds" } else { "hold" }
        )
    })
}

/// One route's verdict for an event, in order: whether it matched and why
/// (or why not), and whether evaluation stopped there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub route: String,
    pub matched: bool,
    pub reason: String,
}

/// Every route's verdict, as [`route`] evaluates them: routes after the
/// first match without `continue` are reported as not evaluated.
pub fn decisions(
    routes: &[RouteConfig],
    hook: &str,
    event: &Event,
    alert: Option<&Alert>,
    clock: &Clock,
) -> Vec<Decision> {
    route_explained(routes, hook, event, alert, clock).1
}

/// Evaluates routes in order: the first match wins unless it says
/// `continue = true`. A destination named by several matching routes gets
/// the event once (from the first of them).
///
/// A route muted or inactive at the clock's time does not match (the
/// next route is tried); the destinations it would have reached are
/// returned with `muted` set, unless a later route reaches them.
pub fn route(
    routes: &[RouteConfig],
    hook: &str,
    event: &Event,
    alert: Option<&Alert>,
    clock: &Clock,
) -> Vec<Target> {
    route_explained(routes, hook, event, alert, clock).0
}

/// [`route`] and [`decisions`] in one pass (the pipeline records both):
/// each route's conditions are evaluated once.
pub fn route_explained(
    routes: &[RouteConfig],
    hook: &str,
    event: &Event,
    alert: Option<&Alert>,
    clock: &Clock,
) -> (Vec<Target>, Vec<Decision>) {
    route_explained_with(routes, hook, event, alert, None, clock)
}

/// [`route_explained`] for an event that may be about a case.
pub fn route_explained_with(
    routes: &[RouteConfig],
    hook: &str,
    event: &Event,
    alert: Option<&Alert>,
    case: Option<&Case>,
    clock: &Clock,
) -> (Vec<Target>, Vec<Decision>) {
    let mut out: Vec<Target> = Vec::new();
    let mut verdicts = Vec::with_capacity(routes.len());
    let mut stopped: Option<&str> = None;
    for r in routes {
        let mut verdict = |matched, reason: String| {
            verdicts.push(Decision {
                route: r.name.clone(),
                matched,
                reason,
            })
        };
        if let Some(by) = stopped {
            verdict(
                false,
                format!("not evaluated: route {by:?} matched first (without continue = true)"),
            );
            continue;
        }
        if let Some(hooks) = &r.hooks {
            if !hooks.iter().any(|h| h == hook) {
                verdict(
                    false,
                    format!("hooks = {}: the event came in on {hook:?}", list(hooks)),
                );
                continue;
            }
        }
        let why = match explain_with(&r.when, event, alert, case) {
            Ok(why) => why,
            Err(why) => {
                verdict(false, why);
                continue;
            }
        };
        let off = clock.on_duty(r).err();
        match &off {
            None => verdict(true, why),
            Some(off) => verdict(false, format!("{why}, but {off}")),
        }
        let muted = off.map(|why| format!("route {:?} {why}", r.name));
        for d in &r.to {
            let target = Target {
                route: r.name.clone(),
                destination: d.clone(),
                dedup: r.dedup,
                dedup_key: r
                    .dedup_key
                    .clone()
                    .unwrap_or_else(|| vec![DedupField::Alert, DedupField::Action]),
                muted: muted.clone(),
                mention: r.mention,
            };
            match out.iter_mut().find(|t| &t.destination == d) {
                None => out.push(target),
                // A route on duty reaches what a muted one could not.
                Some(t) if t.muted.is_some() && muted.is_none() => *t = target,
                Some(_) => {}
            }
        }
        if muted.is_none() && !r.continue_ {
            stopped = Some(&r.name);
        }
    }
    (out, verdicts)
}

#[cfg(test)]
mod tests {
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
            serde_json::from_str(include_str!("../tests/fixtures/alert-full.json")).unwrap();
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
                (false, r#"soc-only: hooks = ["other"]: the event came in on "soc""#.to_owned()),
                (false, "critical: urgency_min = 70: the alert's urgency is 63".to_owned()),
                (false, "recurring: similar_min = 5: the alert has 2 similar".to_owned()),
                (true, "pending: type, status hold".to_owned()),
                (false, r#"rest: not evaluated: route "pending" matched first (without continue = true)"#.to_owned()),
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
        let five =
            routes("[[routes]]\nname = \"r\"\nto = [\"a\"]\n[routes.when]\nsimilar_min = 2\n");
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
}
