//! Messages about what is neither an alert nor a case: intelligence
//! (`content-proposal`, a report), the rules catalog, platform health
//! (an intake without events, a playbook or connector error, a rule
//! rate-limited), and any type the relay does not know yet. Each names
//! its kind and object and lists the attributes it carried; nothing in
//! it is titled or linked as an alert.
//!
//! The payloads of the health and catalog notifications are not in
//! Sekoia.io's public documentation: the object is named from
//! `attributes.name` (else `title`, `short_id`) and every other
//! attribute is listed, so whatever Sekoia.io sends is readable.

use super::escape::clean;
use super::facts::{format_iso, Facts, Level};
use super::facts::{FACT_MAX, TITLE_MAX};
use crate::config::Links;
use crate::event::{Event, Subject};
use serde_json::Value;

/// Attributes listed at most.
const ATTRIBUTES_SHOWN: usize = 20;
/// Longest attribute value shown.
const VALUE_MAX: usize = 200;
/// Longest list of attributes.
const BODY_MAX: usize = 2400;
/// Longest attribute name shown.
const NAME_MAX: usize = 60;

/// An attribute's value on one line: a string as is, anything else as
/// compact JSON; bounded.
fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => clean(s, VALUE_MAX),
        Value::Null => "null".into(),
        other => clean(&other.to_string(), VALUE_MAX),
    }
}

/// The object a notification is about: its name (or title, short id);
/// a bare uuid names nothing a person reads (it is listed with the
/// attributes).
fn object_name(attributes: Option<&serde_json::Map<String, Value>>) -> Option<String> {
    let a = attributes?;
    ["name", "title", "short_id"]
        .iter()
        .find_map(|k| a.get(*k)?.as_str().filter(|s| !s.trim().is_empty()))
        .map(|s| clean(s, TITLE_MAX))
}

/// The UI's address (`https://app.sekoia.io`), from the origin's alert
/// link template.
fn ui_base(links: Links<'_>) -> Option<&str> {
    let template = links.alert.or(links.case)?;
    template.split_once("/operations/").map(|(ui, _)| ui)
}

/// A UI page for the object, where one can be built: intakes and
/// playbooks by uuid, intelligence objects by STIX id.
fn object_link(event: &Event, links: Links) -> Option<String> {
    let base = ui_base(links)?;
    let uuid = event.uuid.map(|u| u.to_string());
    let kind = event.kind.to_ascii_lowercase();
    let stix = event
        .raw()
        .pointer("/attributes/stix_id")
        .or_else(|| event.raw().pointer("/attributes/id"))
        .and_then(Value::as_str)
        .filter(|s| {
            s.len() <= 120
                && s.contains("--")
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    match event.subject() {
        Subject::Intelligence => match (stix, kind.as_str()) {
            (Some(id), _) => Some(format!("{base}/intelligence/objects/{id}")),
            (None, "content-proposal") => {
                Some(format!("{base}/intelligence/content-proposals/{}", uuid?))
            }
            _ => None,
        },
        Subject::Health if kind.starts_with("intake") => {
            Some(format!("{base}/operations/intakes/{}", uuid?))
        }
        Subject::Health if kind.starts_with("playbook") => {
            Some(format!("{base}/operations/playbooks/{}", uuid?))
        }
        _ => None,
    }
}

/// What the kind of object is called in a headline.
fn kind_words(event: &Event) -> (&'static str, String) {
    let kind = clean(&event.kind.replace(['-', '_'], " "), 60);
    let action = clean(&event.action.replace(['-', '_'], " "), 60);
    match event.subject() {
        Subject::Intelligence if event.kind.eq_ignore_ascii_case("content-proposal") => {
            ("Intelligence report", format!("{kind} {action}"))
        }
        Subject::Intelligence => ("Intelligence", format!("{kind} {action}")),
        Subject::Rules => ("Rules catalog", format!("{kind} {action}")),
        Subject::Health => ("Platform health", format!("{kind} {action}")),
        _ => ("Sekoia.io notification", format!("{kind} {action}")),
    }
}

/// The facts of an event about anything but an alert or a case.
pub fn facts(event: &Event, links: Links) -> Facts {
    let attributes = event.raw().get("attributes").and_then(Value::as_object);
    let name = object_name(attributes);
    let (family, what) = kind_words(event);
    let headline = match (event.subject(), &name) {
        (Subject::Unknown, _) => clean(&format!("{family}: {what}"), TITLE_MAX),
        (_, Some(n)) => clean(&format!("{family}: {n}"), TITLE_MAX),
        (_, None) => clean(&format!("{family}: {what}"), TITLE_MAX),
    };
    let summary = clean(
        &format!("{} {}", event.kind.replace('-', " "), event.action),
        FACT_MAX,
    );
    let level = match event.subject() {
        Subject::Health => Level::High,
        _ => Level::Unknown,
    };
    let mut facts: Vec<(&'static str, String)> = Vec::new();
    facts.push(("Type", clean(&event.kind, FACT_MAX)));
    facts.push(("Action", clean(&event.action, FACT_MAX)));
    if let Some(n) = &name {
        if event.subject() != Subject::Unknown {
            facts.push(("Name", clean(n, FACT_MAX)));
        }
    }
    facts.push(("Event", summary.clone()));
    if let Some(t) = event.created_at.as_deref().and_then(format_iso) {
        facts.push(("Time", t));
    }
    // Every attribute, one line each: a type Sekoia.io adds tomorrow is
    // readable today.
    let mut lines: Vec<String> = Vec::new();
    if let Some(a) = attributes {
        for (k, v) in a.iter().take(ATTRIBUTES_SHOWN) {
            lines.push(format!("{}: {}", clean(k, NAME_MAX), shown(v)));
        }
        if a.len() > ATTRIBUTES_SHOWN {
            lines.push(format!("… and {} more", a.len() - ATTRIBUTES_SHOWN));
        }
    }
    Facts {
        headline,
        summary,
        level,
        facts,
        body: (!lines.is_empty())
            .then(|| super::escape::truncate(&lines.join("\n"), BODY_MAX).to_string()),
        degraded: None,
        link: object_link(event, links),
        link_label: "Open in Sekoia.io",
        links: Vec::new(),
        actions: Vec::new(),
        interactive: false,
        mentions: Vec::new(),
    }
}
