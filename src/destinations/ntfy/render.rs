//! ntfy: a JSON publish (phone push).

use crate::render::{truncate, Facts, Level};
use serde_json::{json, Value};

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
        "title": truncate(&f.headline, 250),
        "message": truncate(&message, 4000),
        "priority": priority,
        "tags": ["hookrelay", f.level.name()],
    });
    if let Some(link) = &f.link {
        out["click"] = json!(link);
    }
    out
}
