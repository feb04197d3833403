//! Microsoft Teams Office 365 connector: a `MessageCard` with the urgency
//! colour as `themeColor`.

use super::{defuse_markdown as md, Facts};
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
    if let Some(link) = &f.link {
        card["potentialAction"] = json!([{
            "@type": "OpenUri",
            "name": f.link_label,
            "targets": [{"os": "default", "uri": link}],
        }]);
    }
    card
}
