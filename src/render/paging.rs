//! Paging and push targets: PagerDuty (Events API v2), Opsgenie (Alert
//! API), Matrix (`m.room.message`) and ntfy (JSON publishing).
//!
//! PagerDuty and Opsgenie follow the alert's life: one incident per alert
//! (keyed by its uuid), triggered when it is created, acknowledged and
//! resolved with it, updated otherwise. What to do is read from the event
//! itself ([`Lifecycle`]). The stored payload carries no credential: the
//! sink adds the routing key or API key when it sends.

use super::email::html_escape;
use super::{escape, Facts, Level};
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

fn short_id(f: &Facts) -> Option<&str> {
    f.facts
        .iter()
        .find(|(label, _)| *label == "Alert")
        .map(|(_, v)| v.as_str())
}

/// "headline (short id)", at most `max` characters.
fn title(f: &Facts, max: usize) -> String {
    let t = match short_id(f) {
        Some(id) if !f.headline.contains(id) => format!("{} ({id})", f.headline),
        _ => f.headline.clone(),
    };
    escape::truncate(&t, max)
}

fn details(f: &Facts) -> Map<String, Value> {
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
fn assets(doc: &Value) -> Option<Value> {
    let list: Vec<String> = doc["alert"]["assets"]
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
        .take(20)
        .map(|a| escape::clean(a, 100))
        .collect();
    (!list.is_empty()).then(|| json!(list))
}

fn source(doc: &Value) -> String {
    match doc["route"]["hook"].as_str() {
        Some(hook) => format!("hookrelay/{hook}"),
        None => "hookrelay".into(),
    }
}

/// PagerDuty Events API v2 (without `routing_key`, added by the sink).
pub fn pagerduty(f: &Facts, doc: &Value) -> Value {
    let dedup = alert_uuid(doc);
    let action = match lifecycle(doc) {
        Lifecycle::Acknowledged if dedup.is_some() => "acknowledge",
        Lifecycle::Resolved if dedup.is_some() => "resolve",
        // A new alert, and any other update: PagerDuty folds a trigger with
        // the same dedup_key into the open incident.
        _ => "trigger",
    };
    let mut out = json!({"event_action": action});
    if let Some(key) = &dedup {
        out["dedup_key"] = json!(key);
    }
    if action != "trigger" {
        return out;
    }
    let severity = match f.level {
        Level::Urgent => "critical",
        Level::Major => "error",
        Level::High => "warning",
        _ => "info",
    };
    let mut custom = details(f);
    custom.insert("event".into(), json!(f.summary));
    if let Some(a) = assets(doc) {
        custom.insert("assets".into(), a);
    }
    if let Some(body) = &f.body {
        custom.insert("comment".into(), json!(body));
    }
    out["payload"] = json!({
        "summary": title(f, 1024),
        "source": source(doc),
        "severity": severity,
        "custom_details": custom,
    });
    out["client"] = json!("hookrelay");
    if let Some(link) = &f.link {
        out["links"] = json!([{"href": link, "text": f.link_label}]);
        out["client_url"] = json!(link);
    }
    out
}

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
                "description": escape::truncate(&description, 15_000),
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
        _ => json!({"source": source(doc), "note": escape::truncate(&what, 25_000)}),
    };
    json!({"op": op, "alias": alias, "body": body})
}

/// A Matrix `m.room.message`: plain text and escaped HTML. Its
/// `m.mentions` (intentional mentions, spec v1.7) lists exactly the
/// operator's `mentions` on a route with `mention = true`, and is empty
/// otherwise: a message that has it is exempt from the legacy push rules
/// that notify a member whose display name or user name appears anywhere
/// in the body, so no alert text can highlight anyone.
pub fn matrix(f: &Facts) -> Value {
    let mut text = f.one_line();
    let mut html = format!(
        "<b>{}</b><br>{}",
        html_escape(&f.headline),
        html_escape(&f.summary)
    );
    if let Some(reason) = &f.degraded {
        text.push_str(&format!("\n{reason}"));
        html.push_str(&format!("<br><i>{}</i>", html_escape(reason)));
    }
    if let Some(body) = &f.body {
        text.push_str(&format!("\n{body}"));
        html.push_str(&format!("<blockquote>{}</blockquote>", html_escape(body)));
    }
    if !f.facts.is_empty() {
        html.push_str("<ul>");
        for (label, value) in &f.facts {
            text.push_str(&format!("\n{label}: {value}"));
            html.push_str(&format!(
                "<li><b>{}</b>: {}</li>",
                html_escape(label),
                html_escape(value)
            ));
        }
        html.push_str("</ul>");
    }
    if let Some(link) = &f.link {
        text.push_str(&format!("\n{}: {link}", f.link_label));
        html.push_str(&format!(
            "<a href=\"{}\">{}</a>",
            html_escape(link),
            html_escape(f.link_label)
        ));
    }
    // Matrix notifies on "@room" and on a user's id or name in the body: a
    // word joiner after every "@" keeps untrusted text from pinging anyone
    // (the alert link has none).
    let defuse = |s: String| s.replace('@', "@\u{2060}");
    // The operator's mentions (user ids checked at load) lead the message,
    // as pills in the HTML, and are the only ones `m.mentions` lists.
    let users: Vec<&str> = f
        .mentions
        .iter()
        .filter_map(|m| match m {
            crate::config::Mention::Text(id) => Some(id.as_str()),
            crate::config::Mention::Named { .. } => None,
        })
        .collect();
    let mut body = String::new();
    let mut formatted = String::new();
    for id in &users {
        body.push_str(id);
        body.push(' ');
        // matrix.to's form: the id as is, other than what a URL fragment
        // cannot hold (historical localparts allow `/`, `+`, `#`, …).
        let link: String = id
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '@' | ':' | '.' | '_' | '=' | '-' => {
                    c.to_string()
                }
                c => format!("%{:02X}", c as u32),
            })
            .collect();
        formatted.push_str(&format!(
            "<a href=\"https://matrix.to/#/{}\">{}</a> ",
            html_escape(&link),
            html_escape(id)
        ));
    }
    body.push_str(&defuse(text));
    formatted.push_str(&defuse(html));
    let mentions = if users.is_empty() {
        json!({})
    } else {
        json!({ "user_ids": users })
    };
    json!({
        "msgtype": "m.text",
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": formatted,
        "m.mentions": mentions,
    })
}

/// An ntfy JSON publish (the sink adds `topic`).
pub fn ntfy(f: &Facts) -> Value {
    let priority = match f.level {
        Level::Urgent => 5,
        Level::Major => 4,
        Level::High | Level::Unknown => 3,
        Level::Moderate => 2,
        Level::Low => 1,
    };
    let mut message = f.summary.clone();
    if let Some(reason) = &f.degraded {
        message.push_str(&format!("\n{reason}"));
    }
    if let Some(body) = &f.body {
        message.push_str(&format!("\n{body}"));
    }
    for (label, value) in &f.facts {
        message.push_str(&format!("\n{label}: {value}"));
    }
    let mut out = json!({
        "title": escape::truncate(&f.headline, 250),
        "message": escape::truncate(&message, 4000),
        "priority": priority,
        "tags": ["hookrelay", f.level.name()],
    });
    if let Some(link) = &f.link {
        out["click"] = json!(link);
    }
    out
}
