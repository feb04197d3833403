//! Rendering: (event, enrichment, origin) → the JSON each chat service gets.
//! Pure: no IO, no clock.
//!
//! [`Facts`] gathers what every message shows, already sanitized (no control
//! or bidi characters, lengths bounded). Each kind's `render.rs` (under
//! `destinations/`) then applies its own markup escaping with the helpers
//! here, so untrusted alert text can never break the
//! JSON, ping people, or make a link live; the only live link is the alert
//! link hookrelay builds itself.

mod alert;
pub mod case;
pub mod context;
mod escape;
mod facts;
pub mod fit;
mod notice;
pub mod paging;
mod template;
pub mod thread;

pub use escape::{clean, defuse_markdown, escape_slack, html_escape, truncate};
pub use facts::{Button, Facts, Level, Summary};
pub use template::{Escape, Templates};

use facts::{clean_multiline, format_iso, safe_short_id, BODY_MAX, FACT_MAX, TITLE_MAX};

use crate::enrich::{Alert, Enrichment};
use crate::event::Event;
use serde_json::Value;

pub use crate::config::Links;

impl Facts {
    /// Gathers the facts of one event. `alert_link` is the origin's link
    /// template (`{short_id}`, `{uuid}`).
    pub fn build(event: &Event, enrichment: &Enrichment, alert_link: Option<&str>) -> Facts {
        Facts::build_linked(
            event,
            enrichment,
            Links {
                alert: alert_link,
                case: None,
            },
        )
    }

    /// [`Facts::build`] with every link template of the origin: each kind
    /// of object gets its own words and link, and only an alert is
    /// titled or linked as one.
    pub fn build_linked(event: &Event, enrichment: &Enrichment, links: Links) -> Facts {
        use crate::event::Subject;
        match event.subject() {
            Subject::Alert => Facts::alert(event, enrichment, links.alert),
            Subject::Case => case::facts(event, enrichment, links),
            Subject::Hookrelay => {
                Facts::silence(event).unwrap_or_else(|| notice::facts(event, links))
            }
            _ => notice::facts(event, links),
        }
    }

    /// The facts of an event about an alert.
    fn alert(event: &Event, enrichment: &Enrichment, alert_link: Option<&str>) -> Facts {
        let alert: Option<&Alert> = enrichment.alert();
        let short_id = alert
            .and_then(|a| a.short_id.clone())
            .or_else(|| event.short_id.clone())
            .filter(|s| safe_short_id(s));
        let uuid = event.alert_uuid.map(|u| u.to_string());
        let urgency = alert.and_then(|a| a.urgency.clone());
        let level = Level::from_urgency(urgency.as_ref());
        let kind_words = event.kind.replace('-', " ");

        let status_now = event
            .updated
            .as_ref()
            .and_then(|u| u.get("status_name")?.as_str())
            .or_else(|| alert.and_then(|a| a.status.as_deref()));
        let headline = match (alert.and_then(|a| a.title.as_deref()), &short_id) {
            // A closed alert reads as closed at a glance.
            (Some(title), _) if status_now.is_some_and(thread::is_closed) => clean(
                &format!("[{}] {title}", status_now.unwrap_or_default()),
                TITLE_MAX,
            ),
            (Some(title), _) => clean(title, TITLE_MAX),
            (None, Some(id)) if event.kind == "alert-comment" => format!("Comment on alert {id}"),
            (None, Some(id)) => format!("Alert {id}"),
            (None, None) => clean(&format!("Sekoia.io {kind_words}"), TITLE_MAX),
        };
        let summary = clean(&format!("{kind_words} {}", event.action), FACT_MAX);

        let facts = alert::alert_facts(
            event,
            alert,
            urgency.as_ref(),
            short_id.as_deref(),
            &summary,
        );

        let link = match (alert_link, &short_id) {
            (Some(template), Some(id)) => Some(
                template
                    .replace("{short_id}", id)
                    .replace("{uuid}", uuid.as_deref().unwrap_or("")),
            ),
            _ => None,
        };
        // Only a category (timeout, refused, HTTP 503…): the API's words
        // and the connection's details stay in the log and the journey.
        let degraded = match (enrichment, enrichment.shown_reason()) {
            (Enrichment::Unavailable(_), Some(why)) => Some(clean(
                &format!("Alert details unavailable ({why})."),
                FACT_MAX,
            )),
            (Enrichment::Unavailable(_), None) => Some("Alert details unavailable.".to_owned()),
            _ => None,
        };
        Facts {
            headline,
            summary,
            level,
            facts,
            body: event
                .content
                .as_deref()
                .map(|c| clean_multiline(c, BODY_MAX)),
            degraded,
            link,
            link_label: "Open in Sekoia.io",
            links: Vec::new(),
            actions: Vec::new(),
            interactive: false,
            mentions: Vec::new(),
        }
    }

    /// The words for hookrelay's own `hookrelay.silence` and
    /// `hookrelay.recovered` events.
    fn silence(event: &Event) -> Option<Facts> {
        let recovered = match event.kind.as_str() {
            "hookrelay.silence" => false,
            "hookrelay.recovered" => true,
            _ => return None,
        };
        let attr = |k: &str| event.raw().pointer(&format!("/attributes/{k}"));
        let hook = clean(
            attr("hook").and_then(Value::as_str).unwrap_or("?"),
            FACT_MAX,
        );
        let secs = attr("silent_for").and_then(Value::as_u64).unwrap_or(0);
        let silent_for =
            humantime::format_duration(std::time::Duration::from_secs(secs)).to_string();
        let last = attr("last_event_at")
            .and_then(Value::as_str)
            .and_then(format_iso);
        let headline = if recovered {
            format!("Hook {hook} is receiving events again after {silent_for} of silence")
        } else {
            format!("Hook {hook} has received no events for {silent_for}")
        };
        let mut facts = vec![("Hook", hook.clone()), ("Silent for", silent_for)];
        if let Some(last) = last {
            facts.push(("Last event before", last));
        }
        Some(Facts {
            headline,
            summary: if recovered {
                "intake recovered".into()
            } else {
                "intake silent".into()
            },
            level: if recovered { Level::Low } else { Level::High },
            facts,
            body: None,
            degraded: None,
            link: None,
            link_label: "Open in Sekoia.io",
            links: Vec::new(),
            actions: Vec::new(),
            interactive: false,
            mentions: Vec::new(),
        })
    }
}

/// Why a message cannot be rendered: the delivery is dead-lettered with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// The operator's template failed: its file and line, and what.
    #[error("{0}")]
    Template(String),
    /// The template's output is not the JSON its target needs.
    #[error("template {template} rendered invalid JSON ({error}); output starts {start:?}")]
    InvalidJson {
        template: String,
        error: String,
        start: String,
    },
    /// A failure inside the relay while rendering (a panic, caught): the
    /// delivery is kept as a dead letter and rendered again on replay.
    #[error("internal error: {0}")]
    Internal(String),
}

/// For a case's `alerts-updated` on a threaded destination: a reply in
/// each added (or removed) alert's own thread, "added to case CA42 —
/// title" with the case's link, as (alert uuid, stored payload).
pub fn case_alert_notes(
    event: &Event,
    enrichment: &Enrichment,
    facts: &Facts,
) -> Vec<(String, String)> {
    if !event.is_case() {
        return Vec::new();
    }
    let (added, removed) = crate::enrich::alert_changes(event.updated.as_ref());
    let case = facts.fact("Case").unwrap_or_else(|| "a case".to_owned());
    let title = enrichment
        .case()
        .and_then(|c| c.title.as_deref())
        .map(|t| clean(t, 120));
    let link = facts
        .link
        .clone()
        .map(|url| (facts.fact("Case").unwrap_or_else(|| "case".into()), url));
    let words = |what: &str| match &title {
        Some(t) => format!("{what} case {case} — {t}"),
        None => format!("{what} case {case}"),
    };
    added
        .iter()
        .take(case::ALERTS_SHOWN)
        .map(|u| (u, words("added to")))
        .chain(
            removed
                .iter()
                .take(case::ALERTS_SHOWN)
                .map(|u| (u, words("removed from"))),
        )
        .map(|(u, w)| {
            let t = thread::Threaded::note(u.to_string(), &w, link.clone());
            (u.to_string(), t.wrap())
        })
        .collect()
}

#[cfg(test)]
mod tests;
