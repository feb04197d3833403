//! Microsoft Teams Office 365 connector: a `MessageCard` with the urgency
//! colour as `themeColor`.

use crate::render::{defuse_markdown as md, Facts};
use serde_json::{json, Value};

pub fn render(f: &Facts) -> Value {
    let facts: Vec<Value> = f
        .facts
        .iter()
        .map(|(name, value)| json!({"name": name, "value": md(value)}))
        .collect();
    let mut section = json!({
        "activityTitle": md(&f.summary),
        "facts": facts,
        "markdown": true,
    });
    let mut text: Vec<String> = [f.degraded.as_deref(), f.body.as_deref()]
        .into_iter()
        .flatten()
        .map(md)
        .collect();
    if let Some(links) = f.markdown_links() {
        text.push(links);
    }
    if !text.is_empty() {
        section["text"] = json!(text.join("\n\n"));
    }
    let mut card = json!({
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "themeColor": f.level.hex().trim_start_matches('#'),
        "summary": md(&f.one_line()),
        "title": md(&f.headline),
        "sections": [section],
    });
    let open = |name: &str, uri: &str| json!({"@type": "OpenUri", "name": name, "targets": [{"os": "default", "uri": uri}]});
    let actions: Vec<Value> = f
        .link
        .iter()
        .map(|link| open(f.link_label, link))
        .chain(f.actions.iter().map(|b| open(b.label, &b.url)))
        .collect();
    if !actions.is_empty() {
        card["potentialAction"] = json!(actions);
    }
    card
}
