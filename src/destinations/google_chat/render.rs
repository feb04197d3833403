//! Google Chat space webhook: one formatted `text` message (`*bold*`,
//! `<url|label>` links). Mentions and links need a literal `<`, which is
//! broken in untrusted text like for the Markdown targets; the only live
//! links are the ones built here. A message must stay under 32,000 bytes.

use crate::render::truncate;
use crate::render::{defuse_markdown as md, Facts};
use serde_json::{json, Value};

pub fn render(f: &Facts) -> Value {
    let mut lines = vec![
        format!("*{}*", md(&f.headline)),
        format!("_{}_", md(&f.summary)),
    ];
    lines.extend(
        [f.degraded.as_deref(), f.body.as_deref()]
            .into_iter()
            .flatten()
            .map(md),
    );
    lines.push(
        f.facts
            .iter()
            .map(|(label, value)| format!("*{label}:* {}", md(value)))
            .collect::<Vec<_>>()
            .join("\n"),
    );
    if let Some(links) = f.angle_links() {
        lines.push(links);
    }
    if let Some(actions) = f.angle_actions() {
        lines.push(actions);
    }
    if let Some(link) = &f.link {
        lines.push(format!("<{link}|{}>", f.link_label));
    }
    json!({"text": truncate(&lines.join("\n"), 8000)})
}
