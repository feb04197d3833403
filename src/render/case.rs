//! The words of a message about a case: its title, priority, status,
//! verdict, assignees, tags, the alerts it holds and what changed, with a
//! link to the case. Everything from the case or the event is outside
//! text: cleaned and bounded here, escaped by each target's renderer.

use super::escape::clean;
use super::facts::{clean_multiline, format_iso, safe_short_id, Facts, Level};
use super::facts::{FACT_MAX, TITLE_MAX};
use crate::config::Links;
use crate::enrich::{alert_changes, Case, Enrichment};
use crate::event::Event;
use serde_json::Value;

/// Alerts listed in a case's message at most (the rest are counted).
pub const ALERTS_SHOWN: usize = 10;
/// Longest description shown.
const DESCRIPTION_MAX: usize = 600;
/// Assignees and tags shown at most.
const NAMES_SHOWN: usize = 10;

/// A priority's name → the colour band.
fn level(priority: Option<&str>) -> Level {
    let p = priority.unwrap_or_default().to_ascii_lowercase();
    if p.contains("crit") || p.contains("urgent") {
        Level::Urgent
    } else if p.contains("high") || p.contains("major") {
        Level::Major
    } else if p.contains("medium") || p.contains("moderate") {
        Level::Moderate
    } else if p.contains("low") || p.contains("info") {
        Level::Low
    } else {
        Level::Unknown
    }
}

/// A list of names, at most [`NAMES_SHOWN`], each cleaned.
fn names(list: &[String]) -> Option<String> {
    if list.is_empty() {
        return None;
    }
    let mut parts: Vec<String> = list
        .iter()
        .take(NAMES_SHOWN)
        .map(|n| clean(n, 60))
        .collect();
    if list.len() > NAMES_SHOWN {
        parts.push(format!("{} more", list.len() - NAMES_SHOWN));
    }
    Some(parts.join(", "))
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(o) => ["name", "display_name", "email", "avatar_uuid"]
                        .iter()
                        .find_map(|k| o.get(*k)?.as_str().map(str::to_owned)),
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default()
}

/// What an `updated` or `alerts-updated` event changed, in words, with
/// names (never uuids) for statuses, priorities, verdicts and alerts.
pub fn change_summary(event: &Event, case: Option<&Case>) -> Option<String> {
    let updated = event.updated.as_ref()?;
    let name = |key: &str| -> Option<String> {
        let uuid = updated.get(key)?.as_str()?;
        Some(match case.and_then(|c| c.name_of(uuid)) {
            Some(n) => n.to_owned(),
            None => "(name unavailable)".to_owned(),
        })
    };
    let mut parts: Vec<String> = Vec::new();
    if updated.contains_key("title") {
        parts.push(match updated.get("title").and_then(Value::as_str) {
            Some(t) => format!("title → {}", clean(t, 80)),
            None => "title".into(),
        });
    }
    if updated.contains_key("description") {
        parts.push("description".into());
    }
    if let Some(n) = name("status_uuid").or_else(|| name("custom_status_uuid")) {
        parts.push(format!("status → {n}"));
    }
    if let Some(n) = name("custom_priority_uuid") {
        parts.push(format!("priority → {n}"));
    }
    if updated.contains_key("verdict_uuid") {
        parts.push(match name("verdict_uuid") {
            Some(n) => format!("verdict → {n}"),
            None => "verdict cleared".into(),
        });
    }
    if updated.contains_key("assignees") {
        let list = strings(updated.get("assignees"));
        // The event names avatars by uuid: the case's own list has names.
        let shown = match case {
            Some(c) if !c.assignees.is_empty() => names(&c.assignees),
            _ if list.iter().all(|a| uuid::Uuid::try_parse(a).is_err()) => names(&list),
            _ => None,
        };
        parts.push(match shown {
            Some(s) => format!("assignees → {s}"),
            None if list.is_empty() => "assignees cleared".into(),
            None => format!("assignees → {} people", list.len()),
        });
    }
    if updated.contains_key("tags") {
        parts.push(match names(&strings(updated.get("tags"))) {
            Some(s) => format!("tags → {s}"),
            None => "tags cleared".into(),
        });
    }
    let (added, removed) = alert_changes(Some(updated));
    let alert_word = |u: &uuid::Uuid| -> String {
        case.and_then(|c| c.alert(&u.to_string()))
            .and_then(|a| a.short_id.clone())
            .filter(|s| safe_short_id(s))
            .unwrap_or_else(|| "an alert".into())
    };
    let list = |l: &[uuid::Uuid]| -> String {
        let mut words: Vec<String> = l.iter().take(ALERTS_SHOWN).map(alert_word).collect();
        if l.len() > ALERTS_SHOWN {
            words.push(format!("{} more", l.len() - ALERTS_SHOWN));
        }
        words.join(", ")
    };
    if !added.is_empty() {
        parts.push(format!("alerts added: {}", list(&added)));
    }
    if !removed.is_empty() {
        parts.push(format!("alerts removed: {}", list(&removed)));
    }
    if parts.is_empty() {
        let keys: Vec<&str> = updated.keys().map(String::as_str).take(10).collect();
        if keys.is_empty() {
            return None;
        }
        parts.push(keys.join(", "));
    }
    Some(parts.join("; "))
}

/// The alerts a case holds, one line each: `ALx — title (Major 63)`,
/// and how many more.
fn alert_lines(case: &Case) -> Vec<String> {
    let total = case
        .number_of_alerts
        .map(|n| n as usize)
        .unwrap_or(0)
        .max(case.alerts.len());
    let mut lines: Vec<String> = case
        .alerts
        .iter()
        .take(ALERTS_SHOWN)
        .map(|a| {
            let id = a
                .short_id
                .as_deref()
                .map(|s| clean(s, 40))
                .unwrap_or_else(|| "alert".into());
            let title = a.title.as_deref().map(|t| clean(t, 120));
            let urgency = a
                .urgency
                .as_ref()
                .map(|u| format!(" ({} {})", clean(&u.display, 20), u.value))
                .unwrap_or_default();
            match title {
                Some(t) => format!("• {id} — {t}{urgency}"),
                None => format!("• {id}{urgency}"),
            }
        })
        .collect();
    if total > lines.len() {
        lines.push(format!("… and {} more", total - lines.len()));
    }
    lines
}

/// The link to a case from the origin's `case_link` template.
pub fn link(template: Option<&str>, short_id: Option<&str>, uuid: Option<&str>) -> Option<String> {
    let template = template?;
    let short_id = short_id.filter(|s| safe_short_id(s));
    if template.contains("{short_id}") && short_id.is_none() {
        return None;
    }
    let uuid = uuid.filter(|u| uuid::Uuid::try_parse(u).is_ok());
    if template.contains("{uuid}") && uuid.is_none() {
        return None;
    }
    Some(
        template
            .replace("{short_id}", short_id.unwrap_or(""))
            .replace("{uuid}", uuid.unwrap_or("")),
    )
}

/// The facts of an event about a case, in the order cards show them;
/// `named` is its priority and status.
fn case_facts(
    event: &Event,
    case: Option<&Case>,
    named: [Option<&str>; 2],
    short_id: Option<&str>,
    uuid: Option<&str>,
    summary: &str,
) -> Vec<(&'static str, String)> {
    let attr = |k: &str| event.raw().pointer(&format!("/attributes/{k}")).cloned();
    let [priority, status] = named;
    let mut facts: Vec<(&'static str, String)> = Vec::new();
    let mut push = |label: &'static str, value: Option<String>| {
        if let Some(v) = value {
            let v = clean(&v, FACT_MAX);
            if !v.is_empty() {
                facts.push((label, v));
            }
        }
    };
    push("Priority", priority.map(str::to_owned));
    push("Status", status.map(str::to_owned));
    push("Verdict", case.and_then(|c| c.verdict.clone()));
    push("Assignees", case.and_then(|c| names(&c.assignees)));
    push("Tags", case.and_then(|c| names(&c.tags)));
    let manual = case
        .and_then(|c| c.manual)
        .or_else(|| attr("manual").and_then(|v| v.as_bool()));
    push(
        "Mode",
        manual.map(|m| if m { "manual" } else { "automatic" }.to_owned()),
    );
    push("Change", change_summary(event, case));
    push("Case", short_id.map(str::to_owned));
    push(
        "Alerts",
        case.map(|c| {
            c.number_of_alerts
                .map(|n| n as usize)
                .unwrap_or(0)
                .max(c.alerts.len())
                .to_string()
        }),
    );
    push("Event", Some(summary.to_owned()));
    push(
        "Time",
        event
            .created_at
            .as_deref()
            .and_then(format_iso)
            .or_else(|| attr("created_at").and_then(|v| v.as_str().and_then(format_iso))),
    );
    if short_id.is_none() {
        push("UUID", uuid.map(str::to_owned));
    }
    facts
}

/// A case's words (the comment, its description, the list of its
/// alerts) and the links to the alerts shown.
fn body_and_links(
    event: &Event,
    case: Option<&Case>,
    links: Links,
) -> (Option<String>, Vec<(String, String)>) {
    let mut body = Vec::new();
    // A comment on the case: its words first.
    if let Some(c) = event.content.as_deref() {
        let c = clean_multiline(c, DESCRIPTION_MAX);
        if !c.is_empty() {
            body.push(c);
        }
    }
    if let Some(d) = case.and_then(|c| c.description.as_deref()) {
        let d = clean_multiline(d, DESCRIPTION_MAX);
        if !d.is_empty() {
            body.push(d);
        }
    }
    let mut alert_links = Vec::new();
    if let Some(c) = case {
        let lines = alert_lines(c);
        if !lines.is_empty() {
            body.push(format!("Alerts in this case:\n{}", lines.join("\n")));
        }
        for a in c.alerts.iter().take(ALERTS_SHOWN) {
            let Some(id) = a.short_id.as_deref().filter(|s| safe_short_id(s)) else {
                continue;
            };
            if let Some(l) = super::facts::alert_link(links.alert, id, a.uuid.as_deref()) {
                alert_links.push((id.to_owned(), l));
            }
        }
    }
    ((!body.is_empty()).then(|| body.join("\n\n")), alert_links)
}

/// The facts of an event about a case.
pub fn facts(event: &Event, enrichment: &Enrichment, links: Links) -> Facts {
    let case = enrichment.case();
    let attr = |k: &str| event.raw().pointer(&format!("/attributes/{k}")).cloned();
    let short_id = case
        .and_then(|c| c.short_id.clone())
        .or_else(|| event.short_id.clone())
        .filter(|s| safe_short_id(s));
    let uuid = event.case_uuid.map(|u| u.to_string());
    let title = case
        .and_then(|c| c.title.clone())
        .or_else(|| attr("title").and_then(|v| v.as_str().map(str::to_owned)));
    let status = case.and_then(|c| c.status.clone());
    let priority = case.and_then(|c| c.priority.clone()).or_else(|| {
        // What the webhook carried, named if the case could be had.
        attr("custom_priority_uuid")
            .and_then(|v| v.as_str().map(str::to_owned))
            .and_then(|u| case?.name_of(&u).map(str::to_owned))
    });
    let headline = match (&title, &short_id) {
        (Some(t), _) if case.is_some_and(|c| c.closed) => clean(
            &format!("[{}] {t}", status.as_deref().unwrap_or_default()),
            TITLE_MAX,
        ),
        (Some(t), _) => clean(t, TITLE_MAX),
        (None, Some(id)) => format!("Case {id}"),
        (None, None) => "Sekoia.io case".to_owned(),
    };
    // "case created", "case alerts updated", "case comment created".
    let summary = clean(
        &format!(
            "{} {}",
            event.kind.replace('-', " "),
            event.action.replace('-', " ")
        ),
        FACT_MAX,
    );
    let facts = case_facts(
        event,
        case,
        [priority.as_deref(), status.as_deref()],
        short_id.as_deref(),
        uuid.as_deref(),
        &summary,
    );

    let (body, alert_links) = body_and_links(event, case, links);
    // Only a category, as for alerts: the API's words stay in the log and
    // the journey.
    let degraded = match (enrichment, enrichment.shown_reason()) {
        (Enrichment::Unavailable(_), Some(why)) => Some(clean(
            &format!("Case details unavailable ({why})."),
            FACT_MAX,
        )),
        (Enrichment::Unavailable(_), None) => Some("Case details unavailable.".to_owned()),
        _ => None,
    };
    Facts {
        headline,
        summary,
        level: level(priority.as_deref()),
        facts,
        body,
        degraded,
        link: link(links.case, short_id.as_deref(), uuid.as_deref()),
        link_label: "Open the case in Sekoia.io",
        links: alert_links,
        actions: Vec::new(),
        interactive: false,
        mentions: Vec::new(),
    }
}
