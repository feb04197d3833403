//! E-mail: the same facts and link as the chat cards, as a plain-text part
//! and an HTML part (every untrusted value HTML-escaped). The spool keeps
//! `{"subject", "text", "html"}`; the SMTP sink builds the MIME message.

use crate::render::{html_escape, Facts};
use serde_json::{json, Value};
use std::fmt::Write;

/// The default subject: `[Urgency] headline — summary`.
pub fn subject(f: &Facts) -> String {
    f.one_line()
}

/// A tenant's `subject`: plain text in which `{urgency}`, `{headline}` and
/// `{summary}` are replaced by the message's own, in one pass (a value
/// that contains a placeholder is not expanded again), as one clean line.
/// No template engine: a tenant programs nothing on the relay.
pub fn plain_subject(pattern: &str, f: &Facts) -> String {
    let urgency = f
        .facts
        .iter()
        .find(|(l, _)| *l == "Urgency")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let mut out = String::with_capacity(pattern.len() + f.headline.len());
    let mut rest = pattern;
    while let Some(at) = rest.find('{') {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let value = [
            ("{urgency}", urgency),
            ("{headline}", f.headline.as_str()),
            ("{summary}", f.summary.as_str()),
        ]
        .into_iter()
        .find(|(p, _)| from.starts_with(p));
        match value {
            Some((p, v)) => {
                out.push_str(v);
                rest = from.get(p.len()..).unwrap_or("");
            }
            None => {
                out.push('{');
                rest = from.get(1..).unwrap_or("");
            }
        }
    }
    out.push_str(rest);
    crate::render::clean(&out, 250)
}

pub fn text(f: &Facts) -> String {
    let mut t = format!("{}\n{}\n", f.headline, f.summary);
    if let Some(note) = &f.degraded {
        let _ = write!(t, "\n{note}\n");
    }
    if let Some(body) = &f.body {
        let _ = write!(t, "\n{body}\n");
    }
    if !f.facts.is_empty() {
        t.push('\n');
        let width = f.facts.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
        for (label, value) in &f.facts {
            let _ = writeln!(t, "{label:<width$}  {value}");
        }
    }
    for (label, url) in &f.links {
        let _ = writeln!(t, "{label}: {url}");
    }
    for b in &f.actions {
        let _ = writeln!(t, "{}: {}", b.label, b.url);
    }
    if let Some(link) = &f.link {
        let _ = write!(t, "\n{}: {link}\n", f.link_label);
    }
    t.push_str("\n-- \nSent by hookrelay\n");
    t
}

pub fn html(f: &Facts) -> String {
    let e = html_escape;
    let mut h = String::from(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head>\n<body style=\"font-family: sans-serif\">\n",
    );
    let _ = writeln!(
        h,
        "<div style=\"border-left: 6px solid {}; padding-left: 12px\">",
        f.level.hex()
    );
    let _ = writeln!(
        h,
        "<p style=\"color: #666; margin: 0\">{}</p>",
        e(&f.summary)
    );
    let _ = writeln!(h, "<h2 style=\"margin: 4px 0\">{}</h2>", e(&f.headline));
    if let Some(note) = &f.degraded {
        let _ = writeln!(h, "<p><em>{}</em></p>", e(note));
    }
    if let Some(body) = &f.body {
        let _ = writeln!(h, "<p>{}</p>", e(body).replace('\n', "<br>\n"));
    }
    if !f.facts.is_empty() {
        h.push_str("<table cellpadding=\"4\">\n");
        for (label, value) in &f.facts {
            let _ = writeln!(
                h,
                "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
                e(label),
                e(value)
            );
        }
        h.push_str("</table>\n");
    }
    if !f.links.is_empty() {
        h.push_str("<ul>\n");
        for (label, url) in &f.links {
            let _ = writeln!(h, "<li><a href=\"{}\">{}</a></li>", e(url), e(label));
        }
        h.push_str("</ul>\n");
    }
    if let Some(link) = &f.link {
        let _ = writeln!(h, "<p><a href=\"{}\">{}</a></p>", e(link), e(f.link_label));
    }
    if !f.actions.is_empty() {
        let buttons: Vec<String> = f
            .actions
            .iter()
            .map(|b| format!("<a href=\"{}\">{}</a>", e(&b.url), e(b.label)))
            .collect();
        let _ = writeln!(h, "<p>{}</p>", buttons.join(" · "));
    }
    h.push_str("</div>\n</body></html>\n");
    h
}

/// What the spool keeps for an e-mail delivery.
pub fn render(f: &Facts) -> Value {
    json!({"subject": subject(f), "text": text(f), "html": html(f)})
}
