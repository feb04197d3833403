//! A route's conditions (`[routes.when]`) against one event: whether
//! they hold, and which one decided. Each step checks its conditions in
//! the order the reference lists them and names the first that fails.

use super::case::explain_case;
use super::values::{any_eq, list, shown, update_status};
use crate::config::When;
use crate::enrich::{Alert, Case};
use crate::event::Event;

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

/// [`matches`], saying which condition decided: `Err` names the first
/// condition that does not hold and what the event had instead (e.g.
/// `urgency_min = 70: the alert's urgency is 63`); `Ok` says that every
/// condition held.
pub fn explain(when: &When, event: &Event, alert: Option<&Alert>) -> Result<String, String> {
    explain_with(when, event, alert, None)
}

/// [`explain`] for an event that may be about a case.
pub fn explain_with(
    when: &When,
    event: &Event,
    alert: Option<&Alert>,
    case: Option<&Case>,
) -> Result<String, String> {
    let mut held: Vec<String> = Vec::new();
    event_kind(when, event, &mut held)?;
    alert_numbers(when, alert, &mut held)?;
    alert_fields(when, event, alert, &mut held)?;
    updated_fields(when, event, &mut held)?;
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

/// `type`, `action`: what the webhook says.
fn event_kind(when: &When, event: &Event, held: &mut Vec<String>) -> Result<(), String> {
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
    Ok(())
}

/// `urgency_min`, `urgency_max`, `similar_min`, `asset_criticality_min`:
/// numbers of the alert, none of which holds without its details.
fn alert_numbers(when: &When, alert: Option<&Alert>, held: &mut Vec<String>) -> Result<(), String> {
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
    Ok(())
}

/// `status`, `rule`, `entity`, `alert_type`, `asset`, `community`: the
/// alert's fields (the status and the community also from the webhook).
fn alert_fields(
    when: &When,
    event: &Event,
    alert: Option<&Alert>,
    held: &mut Vec<String>,
) -> Result<(), String> {
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
        let cat = alert.and_then(|a| a.alert_type.category.as_deref());
        let full = alert.and_then(|a| {
            Some(format!(
                "{}/{}",
                a.alert_type.category.as_deref()?,
                a.alert_type.value.as_deref()?
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
    Ok(())
}

/// `updated`: which of the alert's fields the event changed.
fn updated_fields(when: &When, event: &Event, held: &mut Vec<String>) -> Result<(), String> {
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
    Ok(())
}
