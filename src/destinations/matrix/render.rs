//! Matrix: an `m.room.message` through the client-server API.

use crate::render::{html_escape, Facts};
use serde_json::{json, Value};

/// A Matrix `m.room.message`: plain text and escaped HTML. Its
/// `m.mentions` (intentional mentions, spec v1.7) lists exactly the
/// operator's `mentions` on a route with `mention = true`, and is empty
/// otherwise: a message that has it is exempt from the legacy push rules
/// that notify a member whose display name or user name appears anywhere
/// in the body, so no alert text can highlight anyone.
pub fn matrix(f: &Facts) -> Value {
    let mut text = f.one_line();
    let mut html = format!(
        "<b>{}</b><br>{}",
        html_escape(&f.headline),
        html_escape(&f.summary)
    );
    if let Some(reason) = &f.degraded {
        text.push_str(&format!("\n{reason}"));
        html.push_str(&format!("<br><i>{}</i>", html_escape(reason)));
    }
    if let Some(body) = &f.body {
        text.push_str(&format!("\n{body}"));
        html.push_str(&format!("<blockquote>{}</blockquote>", html_escape(body)));
    }
    if !f.facts.is_empty() {
        html.push_str("<ul>");
        for (label, value) in &f.facts {
            text.push_str(&format!("\n{label}: {value}"));
            html.push_str(&format!(
                "<li><b>{}</b>: {}</li>",
                html_escape(label),
                html_escape(value)
            ));
        }
        html.push_str("</ul>");
    }
    if let Some(link) = &f.link {
        text.push_str(&format!("\n{}: {link}", f.link_label));
        html.push_str(&format!(
            "<a href=\"{}\">{}</a>",
            html_escape(link),
            html_escape(f.link_label)
        ));
    }
    // Matrix notifies on "@room" and on a user's id or name in the body: a
    // word joiner after every "@" keeps untrusted text from pinging anyone
    // (the alert link has none).
    let defuse = |s: String| s.replace('@', "@\u{2060}");
    // The operator's mentions (user ids checked at load) lead the message,
    // as pills in the HTML, and are the only ones `m.mentions` lists.
    let users: Vec<&str> = f
        .mentions
        .iter()
        .filter_map(|m| match m {
            crate::config::Mention::Text(id) => Some(id.as_str()),
            crate::config::Mention::Named { .. } => None,
        })
        .collect();
    let mut body = String::new();
    let mut formatted = String::new();
    for id in &users {
        body.push_str(id);
        body.push(' ');
        // matrix.to's form: the id as is, other than what a URL fragment
        // cannot hold (historical localparts allow `/`, `+`, `#`, …).
        let link: String = id
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '@' | ':' | '.' | '_' | '=' | '-' => {
                    c.to_string()
                }
                c => format!("%{:02X}", c as u32),
            })
            .collect();
        formatted.push_str(&format!(
            "<a href=\"https://matrix.to/#/{}\">{}</a> ",
            html_escape(&link),
            html_escape(id)
        ));
    }
    body.push_str(&defuse(text));
    formatted.push_str(&defuse(html));
    let mentions = if users.is_empty() {
        json!({})
    } else {
        json!({ "user_ids": users })
    };
    json!({
        "msgtype": "m.text",
        "body": body,
        "format": "org.matrix.custom.html",
        "formatted_body": formatted,
        "m.mentions": mentions,
    })
}
