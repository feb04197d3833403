//! discord: its service's size limits, applied to a built-in message after
//! rendering (see `render::fit`).

use crate::render::fit::{chars, cut};
use serde_json::Value;

/// Discord: characters per embed in total.
pub const DISCORD_EMBED: usize = 6_000;

pub fn fit(v: &mut Value) {
    cut(v, "/content", 2_000);
    let Some(embed) = v.pointer_mut("/embeds/0") else {
        return;
    };
    cut(embed, "/title", 256);
    cut(embed, "/description", 4_096);
    if let Some(fields) = embed.get_mut("fields").and_then(Value::as_array_mut) {
        fields.truncate(25);
        for f in fields.iter_mut() {
            cut(f, "/name", 256);
            cut(f, "/value", 1_024);
        }
    }
    let total = |e: &Value| -> usize {
        chars(&e["title"])
            + chars(&e["description"])
            + chars(&e["footer"]["text"])
            + e.get("fields").and_then(Value::as_array).map_or(0, |f| {
                f.iter()
                    .map(|x| chars(&x["name"]) + chars(&x["value"]))
                    .sum()
            })
    };
    while total(embed) > DISCORD_EMBED {
        let over = total(embed) - DISCORD_EMBED;
        let d = chars(&embed["description"]);
        if d > 200 {
            cut(embed, "/description", d.saturating_sub(over).max(200));
            continue;
        }
        let Some(fields) = embed.get_mut("fields").and_then(Value::as_array_mut) else {
            break;
        };
        let keep = ["Urgency", "Status", "Alert"];
        match fields
            .iter()
            .rposition(|f| !keep.iter().any(|k| f["name"] == *k))
        {
            Some(i) => {
                fields.remove(i);
            }
            None => break,
        }
    }
}
