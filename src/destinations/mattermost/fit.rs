//! mattermost: its service's size limits, applied to a built-in message after
//! rendering (see `render::fit`).

use crate::render::fit::{chars, cut};
use serde_json::Value;

/// Mattermost: characters per post.
pub const MATTERMOST_POST: usize = 16_383;

pub fn fit(v: &mut Value) {
    let total = |v: &Value| -> usize {
        chars(&v["text"])
            + v.pointer("/attachments/0")
                .map_or(0, |a| a.to_string().chars().count())
    };
    cut(v, "/text", 4_000);
    if total(v) <= MATTERMOST_POST {
        return;
    }
    if let Some(a) = v.pointer_mut("/attachments/0") {
        cut(a, "/text", 4_000);
        if let Some(fields) = a.get_mut("fields").and_then(Value::as_array_mut) {
            for f in fields {
                cut(f, "/value", 500);
            }
        }
    }
    if total(v) > MATTERMOST_POST {
        if let Some(a) = v.pointer_mut("/attachments/0") {
            cut(a, "/text", 1_000);
        }
    }
}
