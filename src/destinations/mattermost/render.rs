//! Mattermost incoming webhook: Markdown `text` plus a Slack-compatible
//! attachment. One message must stay one post (≤ 16,383 chars).

use crate::render::{defuse_markdown as md, Facts};
use serde_json::{json, Value};

pub fn render(f: &Facts) -> Value {
    let mut text = format!(
        "{}**{}** · {}",
        f.mention_prefix(|t| format!("{t} ")),
        md(&f.headline),
        md(&f.summary)
    );
    if let Some(link) = &f.link {
        text.push_str(&format!(" · [{}]({link})", f.link_label));
    }
    let fields: Vec<Value> = f
        .facts
        .iter()
        .map(|(title, value)| json!({"short": true, "title": title, "value": md(value)}))
        .collect();
    let mut attachment = json!({
        "fallback": md(&f.one_line()),
        "color": f.level.hex(),
        "title": md(&f.headline),
        "fields": fields,
    });
    if let Some(link) = &f.link {
        attachment["title_link"] = json!(link);
    }
    let mut notes: Vec<String> = [f.degraded.as_deref(), f.body.as_deref()]
        .into_iter()
        .flatten()
        .map(md)
        .collect();
    if let Some(links) = f.markdown_links() {
        notes.push(links);
    }
    if f.interactive {
        // Clicked in Mattermost: the server posts the context (the signed
        // token) to the relay's integration URL.
        let actions: Vec<Value> = f
            .actions
            .iter()
            .map(|b| {
                let integration = b
                    .url
                    .rsplit_once("/actions/")
                    .map(|(base, _)| format!("{base}/integrations/mattermost"))
                    .unwrap_or_default();
                json!({
                    "id": format!("hookrelay{}", b.name),
                    "name": b.label,
                    "type": "button",
                    "integration": {"url": integration, "context": {"token": b.token}},
                })
            })
            .collect();
        if !actions.is_empty() {
            attachment["actions"] = json!(actions);
        }
    } else if let Some(actions) = f.markdown_actions() {
        notes.push(actions);
    }
    if !notes.is_empty() {
        attachment["text"] = json!(notes.join("\n\n"));
    }
    json!({"text": text, "attachments": [attachment]})
}
