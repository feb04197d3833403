//! The hookrelay message document: what `kind = "webhook"` posts by default
//! and what operator templates are rendered with. Its shape is a contract
//! (`"schema": "hookrelay.message/v1"`, documented in docs/destinations.md): fields
//! may be added, never renamed or removed within v1.

use super::facts::{Facts, Level};
use crate::enrich::Enrichment;
use crate::event::Event;
use serde_json::{json, Map, Value};

pub const SCHEMA: &str = "hookrelay.message/v1";

/// Where a message is going, for the document's `route` fields.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target<'a> {
    pub hook: Option<&'a str>,
    pub route: Option<&'a str>,
    pub destination: &'a str,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Urgent => "urgent",
            Level::Major => "major",
            Level::High => "high",
            Level::Moderate => "moderate",
            Level::Low => "low",
            Level::Unknown => "unknown",
        }
    }
}

/// The `message` part: the sanitized facts every built-in renderer shows.
fn message(f: &Facts) -> Value {
    let facts: Vec<Value> = f
        .facts
        .iter()
        .map(|(label, value)| json!({"label": label, "value": value}))
        .collect();
    let links: Vec<Value> = f
        .links
        .iter()
        .map(|(label, url)| json!({"label": label, "url": url}))
        .collect();
    let actions: Vec<Value> = f
        .actions
        .iter()
        .map(|b| json!({"name": b.name, "label": b.label, "url": b.url}))
        .collect();
    json!({
        "actions": actions,
        "headline": f.headline,
        "summary": f.summary,
        "level": f.level.name(),
        "color": f.level.hex(),
        "facts": facts,
        "body": f.body,
        "degraded": f.degraded,
        "link": f.link,
        "link_label": f.link_label,
        "links": links,
        "one_line": f.one_line(),
    })
}

/// The document for one routed event.
pub fn for_event(event: &Event, enrichment: &Enrichment, facts: &Facts, to: Target) -> Value {
    let alert = enrichment.alert();
    // The reason's category only, as in the message itself.
    let reason = enrichment.shown_reason();
    let status = match enrichment {
        Enrichment::Fetched(_) | Enrichment::Case(_) => "ok",
        Enrichment::NotApplicable => "not-applicable",
        Enrichment::Unavailable(_) => "unavailable",
    };
    let urgency = alert.and_then(|a| a.urgency.as_ref()).map(|u| {
        json!({"value": u.value, "display": u.display, "level": facts.level.name(), "color": facts.level.hex()})
    });
    let mut doc = base("event", facts, to);
    doc.insert("event".into(), event.raw().clone());
    doc.insert(
        "alert".into(),
        alert.map(|a| a.raw().clone()).unwrap_or(Value::Null),
    );
    doc.insert(
        "enrichment".into(),
        json!({"status": status, "reason": reason}),
    );
    if let Some(c) = enrichment.case() {
        // The case as the API sent it, and the names the relay looked up.
        let alerts: Vec<Value> = c
            .alerts
            .iter()
            .map(|a| json!({"uuid": a.uuid, "short_id": a.short_id, "title": a.title,
                "urgency": a.urgency.as_ref().map(|u| json!({"value": u.value, "display": u.display}))}))
            .collect();
        doc.insert(
            "case".into(),
            json!({"object": c.raw(), "uuid": c.uuid, "short_id": c.short_id, "title": c.title,
                "status": c.status, "closed": c.closed, "priority": c.priority, "verdict": c.verdict,
                "assignees": c.assignees, "tags": c.tags, "manual": c.manual, "alerts": alerts}),
        );
    } else if event.subject() == crate::event::Subject::Case {
        doc.insert("case".into(), Value::Null);
    }
    doc.insert("urgency".into(), urgency.unwrap_or(Value::Null));
    doc.insert("link".into(), json!(facts.link));
    let actions: Vec<Value> = facts
        .actions
        .iter()
        .map(|b| json!({"name": b.name, "url": b.url}))
        .collect();
    doc.insert("actions".into(), json!(actions));
    Value::Object(doc)
}

/// The document for a message hookrelay makes itself (a digest, a test
/// message): no event, no alert.
pub fn for_message(kind: &str, facts: &Facts, to: Target) -> Value {
    let mut doc = base(kind, facts, to);
    doc.insert("event".into(), Value::Null);
    doc.insert("alert".into(), Value::Null);
    doc.insert(
        "enrichment".into(),
        json!({"status": "not-applicable", "reason": null}),
    );
    doc.insert("urgency".into(), Value::Null);
    doc.insert("link".into(), json!(facts.link));
    Value::Object(doc)
}

fn base(kind: &str, facts: &Facts, to: Target) -> Map<String, Value> {
    let mut doc = Map::new();
    doc.insert("schema".into(), json!(SCHEMA));
    doc.insert("kind".into(), json!(kind));
    doc.insert(
        "route".into(),
        json!({"hook": to.hook, "name": to.route, "destination": to.destination}),
    );
    doc.insert("message".into(), message(facts));
    doc
}
