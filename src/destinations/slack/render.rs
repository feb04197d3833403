//! Slack incoming webhook: a `text` fallback (notifications, screen
//! readers) plus an attachment whose colour shows the urgency and whose
//! blocks carry the facts. Limits: ≤ 10 fields of ≤ 2,000 chars per
//! section, ≤ 3,000 chars per section text, ≤ 50 blocks.

use crate::render::{escape_slack as esc, Facts};
use serde_json::{json, Value};

pub fn render(f: &Facts) -> Value {
    let mut head = format!("*{}*\n{}", esc(&f.headline), esc(&f.summary));
    if let Some(note) = &f.degraded {
        head.push_str(&format!("\n_{}_", esc(note)));
    }
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": head}})];
    if let Some(text) = &f.body {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": esc(text)}}));
    }
    let fields: Vec<Value> = f
        .facts
        .iter()
        .map(|(label, value)| json!({"type": "mrkdwn", "text": format!("*{label}*\n{}", esc(value))}))
        .collect();
    for chunk in fields.chunks(10) {
        blocks.push(json!({"type": "section", "fields": chunk}));
    }
    if let Some(text) = f.angle_links() {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    let mut buttons: Vec<Value> = f
        .link
        .iter()
        .map(|link| {
            json!({
                "type": "button",
                "text": {"type": "plain_text", "text": f.link_label},
                "url": link,
            })
        })
        .collect();
    for b in &f.actions {
        let mut button = json!({
            "type": "button",
            "text": {"type": "plain_text", "text": b.label},
            "action_id": format!("hookrelay_{}", b.name),
        });
        if f.interactive {
            // Clicked in Slack: Slack posts the signed token back to the
            // relay (POST /integrations/slack).
            button["value"] = json!(b.token);
        } else {
            button["url"] = json!(b.url);
        }
        if b.name == "close" || b.name == "reject" {
            button["style"] = json!("danger");
        }
        buttons.push(button);
    }
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    let mut text = format!(
        "{}{}",
        f.mention_prefix(|t| format!("{t} ")),
        esc(&f.one_line())
    );
    if let Some(link) = &f.link {
        text.push_str(&format!(" <{link}|{}>", f.link_label));
    }
    json!({
        "text": text,
        "attachments": [{
            "color": f.level.hex(),
            "fallback": esc(&f.one_line()),
            "blocks": blocks,
        }]
    })
}
