//! slack: its service's size limits, applied to a built-in message after
//! rendering (see `render::fit`).

use crate::render::fit::{chars, cut};
use serde_json::Value;

/// Slack: one section's text.
pub const SLACK_SECTION: usize = 3_000;
/// Slack: one field's text.
pub const SLACK_FIELD: usize = 2_000;
/// Slack: blocks per message.
pub const SLACK_BLOCKS: usize = 50;
/// Slack: characters of block text in total (what Slack accepts in
/// practice before `msg_too_long`).
pub const SLACK_BLOCKS_TEXT: usize = 12_000;

pub fn fit(v: &mut Value) {
    cut(v, "/text", SLACK_SECTION);
    let Some(blocks) = v
        .pointer_mut("/attachments/0/blocks")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for b in blocks.iter_mut() {
        cut(b, "/text/text", SLACK_SECTION);
        if let Some(fields) = b.get_mut("fields").and_then(Value::as_array_mut) {
            for f in fields {
                cut(f, "/text", SLACK_FIELD);
            }
        }
    }
    let total = |blocks: &Vec<Value>| -> usize {
        blocks
            .iter()
            .map(|b| {
                chars(&b["text"]["text"])
                    + b.get("fields")
                        .and_then(Value::as_array)
                        .map_or(0, |f| f.iter().map(|x| chars(&x["text"])).sum())
            })
            .sum()
    };
    // Too much in all: the body sections (after the title, before the
    // facts) shrink, then go; the title, the facts and the buttons stay.
    while blocks.len() > SLACK_BLOCKS || total(blocks) > SLACK_BLOCKS_TEXT {
        let body = blocks
            .iter()
            .enumerate()
            .skip(1)
            .filter(|(_, b)| b["type"] == "section" && b.get("fields").is_none())
            .max_by_key(|(_, b)| chars(&b["text"]["text"]))
            .map(|(i, _)| i);
        match body {
            Some(i) if chars(&blocks[i]["text"]["text"]) > 500 => {
                let n = chars(&blocks[i]["text"]["text"]) / 2;
                cut(&mut blocks[i], "/text/text", n);
            }
            Some(i) => {
                blocks.remove(i);
            }
            None => {
                blocks.truncate(SLACK_BLOCKS);
                break;
            }
        }
    }
}
