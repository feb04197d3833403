//! Microsoft Teams Workflows webhook: an Adaptive Card in a `message`
//! envelope. `contentUrl: null` must be present (omitting it gives 400
//! `TriggerInputSchemaMismatch`); colours are Adaptive Card names.

use super::{defuse_markdown as md, Facts};
use serde_json::{json, Value};

pub fn render(f: &Facts) -> Value {
    let mut body = vec![
        json!({"type": "TextBlock", "text": md(&f.summary), "size": "Small",
               "weight": "Bolder", "color": f.level.adaptive(), "wrap": true}),
        json!({"type": "TextBlock", "text": md(&f.headline), "size": "Large",
               "weight": "Bolder", "wrap": true}),
    ];
    if let Some(note) = &f.degraded {
        body.push(
            json!({"type": "TextBlock", "text": md(note), "color": "Warning",
                         "isSubtle": true, "wrap": true}),
        );
    }
    if let Some(text) = &f.body {
        body.push(json!({"type": "TextBlock", "text": md(text), "wrap": true}));
    }
    let facts: Vec<Value> = f
        .facts
        .iter()
        .map(|(title, value)| json!({"title": title, "value": md(value)}))
        .collect();
    body.push(json!({"type": "FactSet", "facts": facts}));
    if let Some(text) = f.markdown_links() {
        body.push(json!({"type": "TextBlock", "text": text, "wrap": true}));
    }
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": body,
    });
    if let Some(link) = &f.link {
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": f.link_label, "url": link}]);
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": card,
        }]
    })
}
