//! Opsgenie Alert API: one alert per alert (`alias` = its uuid), created,
//! acknowledged, closed, with notes for other updates.

use crate::render::paging::{alert_uuid, assets, details, lifecycle, source, title, Lifecycle};
use crate::render::{truncate, Facts, Level};
use serde_json::{json, Value};

/// Opsgenie: `{"op", "alias", "body"}`; the sink picks the endpoint from
/// `op` (create, acknowledge, close, note) and adds the key.
pub fn opsgenie(f: &Facts, doc: &Value) -> Value {
    let alias = alert_uuid(doc);
    let op = match (lifecycle(doc), &alias) {
        (_, None) | (Lifecycle::Opened, _) => "create",
        (Lifecycle::Acknowledged, _) => "acknowledge",
        (Lifecycle::Resolved, _) => "close",
        (Lifecycle::Updated, _) => "note",
    };
    let what = match &f.body {
        Some(body) => format!("{}: {body}", f.summary),
        None => f.summary.clone(),
    };
    let body = match op {
        "create" => {
            let priority = match f.level {
                Level::Urgent => "P1",
                Level::Major => "P2",
                Level::High => "P3",
                Level::Moderate => "P4",
                _ => "P5",
            };
            let mut description = what.clone();
            for (label, value) in &f.facts {
                description.push_str(&format!("\n{label}: {value}"));
            }
            if let Some(link) = &f.link {
                description.push_str(&format!("\n{link}"));
            }
            let mut details = details(f);
            if let Some(a) = assets(doc) {
                details.insert(
                    "assets".into(),
                    json!(a.as_array().map(|l| l
                        .iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(", "))),
                );
            }
            let mut b = json!({
                "message": title(f, 130),
                "description": truncate(&description, 15_000),
                "priority": priority,
                "details": details,
                "source": source(doc),
                "tags": ["hookrelay", f.level.name()],
            });
            if let Some(a) = &alias {
                b["alias"] = json!(a);
            }
            b
        }
        _ => json!({"source": source(doc), "note": truncate(&what, 25_000)}),
    };
    json!({"op": op, "alias": alias, "body": body})
}
