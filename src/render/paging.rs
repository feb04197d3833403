//! What the paging kinds (PagerDuty, Opsgenie) share: they follow the
//! alert's life, one incident per alert
//! (keyed by its uuid), triggered when it is created, acknowledged and
//! resolved with it, updated otherwise. What to do is read from the event
//! itself ([`Lifecycle`]). The stored payload carries no credential: the
//! sink adds the routing key or API key when it sends.

use super::escape;
use super::facts::Facts;
use serde_json::{json, Map, Value};

/// What an event means for the alert's incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lifecycle {
    /// A new alert (or a message with no alert: a digest, a test).
    Opened,
    Acknowledged,
    /// Closed or Rejected.
    Resolved,
    /// Anything else about the alert: another status, urgency, a comment.
    Updated,
}

/// The event's type, action and new status name, read from the message
/// document's raw event.
pub fn lifecycle(doc: &Value) -> Lifecycle {
    let event = &doc["event"];
    let kind = event["type"].as_str().unwrap_or("");
    let action = event["action"].as_str().unwrap_or("");
    let status = event["attributes"]["updated"]["status_name"]
        .as_str()
        .unwrap_or("");
    match (kind, action) {
        ("alert", "created") => Lifecycle::Opened,
        ("alert", "updated") if status.eq_ignore_ascii_case("acknowledged") => {
            Lifecycle::Acknowledged
        }
        ("alert", "updated")
            if status.eq_ignore_ascii_case("closed") || status.eq_ignore_ascii_case("rejected") =>
        {
            Lifecycle::Resolved
        }
        ("alert", _) | ("alert-comment", _) => Lifecycle::Updated,
        // A case opens one incident, resolved when the case closes.
        ("case", "created") => Lifecycle::Opened,
        ("case", _) if doc["case"]["closed"].as_bool() == Some(true) => Lifecycle::Resolved,
        ("case", _) | ("case-comment", _) => Lifecycle::Updated,
        _ => Lifecycle::Opened,
    }
}

/// The alert's uuid, or the case's: the incident's key. None for a
/// message hookrelay makes itself (a digest, a test) or an event about
/// neither.
pub fn alert_uuid(doc: &Value) -> Option<String> {
    let attributes = &doc["event"]["attributes"];
    let uuid = match doc["event"]["type"].as_str() {
        Some("alert") | Some("case") => attributes["uuid"].as_str(),
        Some("case-comment") => attributes["case_uuid"].as_str(),
        _ => attributes["alert_uuid"].as_str(),
    }?;
    // It goes into URLs: a uuid's characters only.
    (!uuid.is_empty()
        && uuid.len() <= 64
        && uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
    .then(|| uuid.to_owned())
}

pub fn short_id(f: &Facts) -> Option<&str> {
    f.facts
        .iter()
        .find(|(label, _)| *label == "Alert")
        .map(|(_, v)| v.as_str())
}

/// "headline (short id)", at most `max` characters.
pub fn title(f: &Facts, max: usize) -> String {
    let t = match short_id(f) {
        Some(id) if !f.headline.contains(id) => format!("{} ({id})", f.headline),
        _ => f.headline.clone(),
    };
    escape::truncate(&t, max)
}

pub fn details(f: &Facts) -> Map<String, Value> {
    let mut out: Map<String, Value> = f
        .facts
        .iter()
        .map(|(label, value)| (label.to_ascii_lowercase(), json!(value)))
        .collect();
    if let Some(link) = &f.link {
        out.insert("link".into(), json!(link));
    }
    if let Some(reason) = &f.degraded {
        out.insert("degraded".into(), json!(reason));
    }
    out
}

/// The alert's assets (their uuids, as the alert API lists them), cleaned
/// and bounded.
pub fn assets(doc: &Value) -> Option<Value> {
    let list: Vec<String> = doc["alert"]["assets"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .take(20)
        .map(|a| escape::clean(a, 100))
        .collect();
    (!list.is_empty()).then(|| json!(list))
}

pub fn source(doc: &Value) -> String {
    match doc["route"]["hook"].as_str() {
        Some(hook) => format!("hookrelay/{hook}"),
        None => "hookrelay".into(),
    }
}
