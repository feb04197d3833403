//! The facts of an event about an alert, in the order cards show them.

use super::escape::clean;
use super::facts::{format_epoch, format_iso, FACT_MAX};
use crate::enrich::{Alert, Urgency};
use crate::event::Event;
use serde_json::Value;

/// The alert's assets as the asset API described them: names and
/// criticality, and how many are unknown; `None` when they were not looked
/// up.
fn assets_fact(a: &Alert) -> Option<String> {
    if a.assets.is_empty() {
        return None;
    }
    let mut known: Vec<&crate::enrich::Asset> =
        a.assets.iter().filter(|x| x.name.is_some()).collect();
    known.sort_by_key(|x| std::cmp::Reverse(x.criticality));
    let mut parts: Vec<String> = known
        .iter()
        .take(5)
        .map(|x| match x.criticality {
            Some(c) => format!("{} (criticality {c})", x.name.as_deref().unwrap_or("?")),
            None => x.name.clone().unwrap_or_default(),
        })
        .collect();
    if known.len() > 5 {
        parts.push(format!("{} more", known.len() - 5));
    }
    let unknown = a.assets.len() - known.len();
    if unknown > 0 {
        parts.push(format!(
            "{unknown} unknown (the asset API did not describe them)"
        ));
    }
    Some(parts.join(", "))
}

/// What an `updated` event changed, in words.
fn change_summary(event: &Event) -> Option<String> {
    let updated = event.updated.as_ref()?;
    let mut parts = Vec::new();
    if let Some(s) = updated.get("status_name").and_then(Value::as_str) {
        parts.push(format!("status → {s}"));
    }
    for key in ["dynamic_urgency_value", "urgency"] {
        if let Some(v) = updated.get(key).and_then(Value::as_f64) {
            parts.push(format!("urgency → {}", v.round() as i64));
        }
    }
    if parts.is_empty() {
        let keys: Vec<&str> = updated
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "status")
            .collect();
        if keys.is_empty() {
            return None;
        }
        parts.push(keys.join(", "));
    }
    Some(parts.join(", "))
}

/// The facts of an event about an alert, in the order cards show them.
pub(super) fn alert_facts(
    event: &Event,
    alert: Option<&Alert>,
    urgency: Option<&Urgency>,
    short_id: Option<&str>,
    summary: &str,
) -> Vec<(&'static str, String)> {
    let mut facts: Vec<(&'static str, String)> = Vec::new();
    let mut push = |label: &'static str, value: Option<String>| {
        if let Some(v) = value {
            let v = clean(&v, FACT_MAX);
            if !v.is_empty() {
                facts.push((label, v));
            }
        }
    };
    push(
        "Urgency",
        urgency
            .as_ref()
            .map(|u| format!("{} ({})", u.display, u.value)),
    );
    // The event's own word on a status change is fresher than an alert
    // API that may lag behind it.
    let status = event
        .updated
        .as_ref()
        .and_then(|u| u.get("status_name")?.as_str().map(str::to_owned))
        .or_else(|| alert.and_then(|a| a.status.clone()));
    push("Status", status);
    push("Change", change_summary(event));
    push("Rule", alert.and_then(|a| a.rule.clone()));
    push("Assets", alert.and_then(assets_fact));
    push("Entity", alert.and_then(|a| a.entity.clone()));
    push(
        "Alert type",
        alert.and_then(|a| match (&a.alert_type.category, &a.alert_type.value) {
            (Some(c), Some(v)) => Some(format!("{c} / {v}")),
            (Some(c), None) => Some(c.clone()),
            (None, Some(v)) => Some(v.clone()),
            (None, None) => None,
        }),
    );
    push("Alert", short_id.map(str::to_owned));
    push("Event", Some(summary.to_owned()));
    let time = event
        .created_at
        .as_deref()
        .and_then(format_iso)
        .or_else(|| alert.and_then(|a| a.created_at).and_then(format_epoch));
    push("Time", time);
    if short_id.is_none() && alert.is_none() {
        push("UUID", event.uuid.map(|u| u.to_string()));
    }
    facts
}
