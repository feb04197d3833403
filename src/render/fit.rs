//! Messages that always fit: each chat service's size limits, applied to
//! a built-in message after rendering, so a huge alert (a 100 KB title,
//! hundreds of assets, a digest of thousands) never bounces off a channel
//! (Slack `invalid_blocks` / `msg_too_long`, Teams' 28 KB Workflows limit,
//! Discord's 6,000 characters per embed, Mattermost's 16,383 per post).
//!
//! Text is cut first (with "…"); if that is not enough, the least
//! important parts go (extra sections, then facts other than urgency,
//! status and the alert), always keeping the title, urgency, status and
//! the link. Pure.

use super::escape::truncate;
use crate::config::DestinationKind;
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
/// Teams Workflows: bytes per request (28 KB, with room for the envelope).
pub const TEAMS_BYTES: usize = 27_000;
/// Discord: characters per embed in total.
pub const DISCORD_EMBED: usize = 6_000;
/// Mattermost: characters per post.
pub const MATTERMOST_POST: usize = 16_383;

fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// Cuts the string at JSON pointer `at` under `v` to `max` characters;
/// nothing happens when there is none (indexing would insert a null).
fn cut(v: &mut Value, at: &str, max: usize) {
    if let Some(slot) = v.pointer_mut(at) {
        if let Some(s) = slot.as_str() {
            if s.chars().count() > max {
                *slot = Value::String(truncate(s, max));
            }
        }
    }
}

/// Fits a built-in message for `kind` within its service's limits.
pub fn fit(kind: DestinationKind, v: &mut Value) {
    match kind {
        DestinationKind::Slack => slack(v),
        DestinationKind::Teams => teams(v),
        DestinationKind::TeamsLegacy => teams_legacy(v),
        DestinationKind::Discord => discord(v),
        DestinationKind::Mattermost => mattermost(v),
        _ => {}
    }
}

fn slack(v: &mut Value) {
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

/// Teams: text after the headline shrinks, then facts other than urgency,
/// status and the alert go, then the free text; the title and the buttons
/// stay.
fn teams(v: &mut Value) {
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

fn teams_legacy(v: &mut Value) {
    if v.to_string().len() <= TEAMS_BYTES {
        return;
    }
    cut(v, "/sections/0/text", 2_000);
    if let Some(facts) = v
        .pointer_mut("/sections/0/facts")
        .and_then(Value::as_array_mut)
    {
        for f in facts {
            cut(f, "/value", 500);
        }
    }
}

fn discord(v: &mut Value) {
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

fn mattermost(v: &mut Value) {
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
