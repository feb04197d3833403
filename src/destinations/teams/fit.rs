//! teams: its service's size limits, applied to a built-in message after
//! rendering (see `render::fit`).

use crate::render::fit::cut;
use serde_json::Value;

/// Teams Workflows: bytes per request (28 KB, with room for the envelope).
pub const TEAMS_BYTES: usize = 27_000;

/// Teams: text after the headline shrinks, then facts other than urgency,
/// status and the alert go, then the free text; the title and the buttons
/// stay.
pub fn fit(v: &mut Value) {
    let fits = |v: &Value| v.to_string().len() <= TEAMS_BYTES;
    if fits(v) {
        return;
    }
    // A bare card (`shape = "card"`) or the message envelope.
    let body_ptr = if v.get("type").and_then(Value::as_str) == Some("AdaptiveCard") {
        "/body"
    } else {
        "/attachments/0/content/body"
    };
    for limit in [2_000, 1_000, 500, 200] {
        if let Some(body) = v.pointer_mut(body_ptr).and_then(Value::as_array_mut) {
            for b in body.iter_mut().skip(2) {
                cut(b, "/text", limit);
                if let Some(facts) = b.get_mut("facts").and_then(Value::as_array_mut) {
                    for f in facts {
                        cut(f, "/value", limit.min(500));
                    }
                }
            }
        }
        if fits(v) {
            return;
        }
    }
    if let Some(body) = v.pointer_mut(body_ptr).and_then(Value::as_array_mut) {
        let keep = ["Urgency", "Status", "Alert"];
        for b in body.iter_mut() {
            if let Some(facts) = b.get_mut("facts").and_then(Value::as_array_mut) {
                facts.retain(|f| keep.iter().any(|k| f["title"] == *k));
            }
        }
        // Free text after the headline goes last.
        let mut i = body.len();
        while i > 2 {
            i -= 1;
            if body[i]["type"] == "TextBlock" {
                body.remove(i);
            }
        }
    }
}
