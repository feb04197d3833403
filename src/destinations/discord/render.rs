//! Discord webhook: `content` (the notification line) plus one embed with
//! the urgency colour, fields and the alert link as the embed URL.
//! `allowed_mentions: {"parse": []}` means nothing in the message can ping
//! anyone; Markdown links in text are still broken like for the other
//! Markdown targets. Limits: content 2,000, title 256, description 4,096,
//! 25 fields of 256/1,024, 6,000 characters per embed in total.

use crate::render::truncate;
use crate::render::{defuse_markdown as md, Facts};
use serde_json::{json, Value};

pub fn render(f: &Facts) -> Value {
    let mut description: Vec<String> = vec![md(&f.summary)];
    description.extend(
        [f.degraded.as_deref(), f.body.as_deref()]
            .into_iter()
            .flatten()
            .map(md),
    );
    if let Some(links) = f.markdown_links() {
        description.push(links);
    }
    if let Some(actions) = f.markdown_actions() {
        description.push(actions);
    }
    let fields: Vec<Value> = f
        .facts
        .iter()
        .take(25)
        .map(|(name, value)| json!({"name": name, "value": truncate(&md(value), 1024), "inline": true}))
        .collect();
    let color = u32::from_str_radix(f.level.hex().trim_start_matches('#'), 16).unwrap_or(0x808080);
    let mut embed = json!({
        "title": truncate(&md(&f.headline), 256),
        "description": truncate(&description.join("\n\n"), 3000),
        "color": color,
        "fields": fields,
        "footer": {"text": "hookrelay"},
    });
    if let Some(link) = &f.link {
        embed["url"] = json!(link);
    }
    // Only the operator's roles may ping: allowed_mentions lists exactly them.
    let roles: Vec<&str> = f
        .mentions
        .iter()
        .filter_map(|m| match m {
            crate::config::Mention::Text(id) => Some(id.as_str()),
            _ => None,
        })
        .collect();
    let mut allowed = json!({"parse": []});
    if !roles.is_empty() {
        allowed["roles"] = json!(roles);
    }
    json!({
        "content": truncate(&format!("{}{}", f.mention_prefix(|t| format!("<@&{t}> ")), md(&f.one_line())), 2000),
        "allowed_mentions": allowed,
        "embeds": [embed],
    })
}
