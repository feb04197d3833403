//! Microsoft Teams Workflows webhook: an Adaptive Card in a `message`
//! envelope. `contentUrl: null` must be present (omitting it gives 400
//! `TriggerInputSchemaMismatch`); colours are Adaptive Card names.
//!
//! Typed structs rather than `json!`: this is the hot path's most common
//! message, and serializing borrowed structs straight to a string costs a
//! fraction of building and dropping a `Value` tree.

use crate::render::{defuse_markdown as md, Facts};
use serde::Serialize;
use serde_json::Value;

#[derive(Serialize)]
struct Message<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    attachments: [Attachment<'a>; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Attachment<'a> {
    content_type: &'static str,
    content_url: Option<&'static str>,
    content: Card<'a>,
}

#[derive(Serialize)]
struct Card<'a> {
    #[serde(rename = "$schema")]
    schema: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
    version: &'static str,
    msteams: MsTeams<'a>,
    body: Vec<Block<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    actions: Option<Vec<Action<'a>>>,
}

#[derive(Serialize)]
struct MsTeams<'a> {
    width: &'static str,
    /// The `<at>…</at>` mentions in the card's text.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    entities: Vec<Entity<'a>>,
}

#[derive(Serialize)]
struct Entity<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
    mentioned: Mentioned<'a>,
}

#[derive(Serialize)]
struct Mentioned<'a> {
    id: &'a str,
    name: &'a str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Block<'a> {
    Text(TextBlock),
    Facts(FactSet<'a>),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct TextBlock {
    #[serde(rename = "type")]
    kind: &'static str,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    size: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    weight: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    color: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    is_subtle: Option<bool>,
    wrap: bool,
}

impl TextBlock {
    fn new(text: String) -> TextBlock {
        TextBlock {
            kind: "TextBlock",
            text,
            size: None,
            weight: None,
            color: None,
            is_subtle: None,
            wrap: true,
        }
    }
}

#[derive(Serialize)]
struct FactSet<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    facts: Vec<Fact<'a>>,
}

#[derive(Serialize)]
struct Fact<'a> {
    title: &'a str,
    value: String,
}

#[derive(Serialize)]
struct Action<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    url: &'a str,
}

fn message(f: &Facts) -> Message<'_> {
    let entities: Vec<Entity> = f
        .mentions
        .iter()
        .filter_map(|m| match m {
            crate::config::Mention::Named { id, name } => Some(Entity {
                kind: "mention",
                text: format!("<at>{name}</at>"),
                mentioned: Mentioned { id, name },
            }),
            _ => None,
        })
        .collect();
    let mut body = vec![
        Block::Text(TextBlock {
            size: Some("Small"),
            weight: Some("Bolder"),
            color: Some(f.level.adaptive()),
            ..TextBlock::new(md(&f.summary))
        }),
        Block::Text(TextBlock {
            size: Some("Large"),
            weight: Some("Bolder"),
            ..TextBlock::new(md(&f.headline))
        }),
    ];
    if !entities.is_empty() {
        let line: Vec<&str> = entities.iter().map(|e| e.text.as_str()).collect();
        body.insert(0, Block::Text(TextBlock::new(line.join(" "))));
    }
    if let Some(note) = &f.degraded {
        body.push(Block::Text(TextBlock {
            color: Some("Warning"),
            is_subtle: Some(true),
            ..TextBlock::new(md(note))
        }));
    }
    if let Some(text) = &f.body {
        body.push(Block::Text(TextBlock::new(md(text))));
    }
    body.push(Block::Facts(FactSet {
        kind: "FactSet",
        facts: f
            .facts
            .iter()
            .map(|(title, value)| Fact {
                title,
                value: md(value),
            })
            .collect(),
    }));
    if let Some(text) = f.markdown_links() {
        body.push(Block::Text(TextBlock::new(text)));
    }
    Message {
        kind: "message",
        attachments: [Attachment {
            content_type: "application/vnd.microsoft.card.adaptive",
            content_url: None,
            content: Card {
                schema: "http://adaptivecards.io/schemas/adaptive-card.json",
                kind: "AdaptiveCard",
                version: "1.4",
                msteams: MsTeams {
                    width: "Full",
                    entities,
                },
                body,
                actions: {
                    let actions: Vec<Action> = f
                        .link
                        .as_deref()
                        .map(|url| Action {
                            kind: "Action.OpenUrl",
                            title: f.link_label,
                            url,
                        })
                        .into_iter()
                        .chain(f.actions.iter().map(|b| Action {
                            kind: "Action.OpenUrl",
                            title: b.label,
                            url: &b.url,
                        }))
                        .collect();
                    (!actions.is_empty()).then_some(actions)
                },
            },
        }],
    }
}

pub fn render(f: &Facts) -> Value {
    serde_json::to_value(message(f)).expect("plain structs serialize")
}

/// The request body, serialized directly.
pub fn render_string(f: &Facts) -> String {
    serde_json::to_string(&message(f)).expect("plain structs serialize")
}
