//! Rendering: (event, enrichment, origin) → the JSON each chat service gets.
//! Pure: no IO, no clock.
//!
//! [`Facts`] gathers what every message shows, already sanitized (no control
//! or bidi characters, lengths bounded). Each target's module then applies
//! its own markup escaping, so untrusted alert text can never break the
//! JSON, ping people, or make a link live; the only live link is the alert
//! link hookrelay builds itself.

mod case;
pub mod context;
mod destination;
mod discord;
pub mod email;
mod escape;
pub mod fit;
mod google_chat;
mod mattermost;
mod notice;
pub mod paging;
mod slack;
mod teams;
mod teams_legacy;
mod template;
pub mod thread;

pub use destination::{destinations, Destination, Destinations};
pub use escape::{clean, defuse_markdown, escape_slack};
pub use template::{Escape, Templates};

use crate::config::DestinationKind;
use crate::enrich::{Alert, Enrichment, Urgency};
use crate::event::Event;
use serde_json::Value;

/// Longest title shown; titles are one line.
const TITLE_MAX: usize = 250;
/// Longest value of one fact.
const FACT_MAX: usize = 200;
/// Longest comment or note body.
const BODY_MAX: usize = 1500;
/// Room for a digest's compact list of short ids (well inside every chat
/// service's limit for one text).
const DIGEST_IDS_MAX: usize = 2400;

/// Urgency bands, as Sekoia names them; they pick the colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Urgent,
    Major,
    High,
    Moderate,
    Low,
    Unknown,
}

impl Level {
    pub fn from_urgency(u: Option<&Urgency>) -> Level {
        match u.map(|u| u.value) {
            None => Level::Unknown,
            Some(0..=19) => Level::Low,
            Some(20..=39) => Level::Moderate,
            Some(40..=59) => Level::High,
            Some(60..=79) => Level::Major,
            Some(_) => Level::Urgent,
        }
    }

    /// `#rrggbb` for Slack/Mattermost attachments and MessageCards.
    pub fn hex(self) -> &'static str {
        match self {
            Level::Urgent => "#D32F2F",
            Level::Major => "#E8912D",
            Level::High => "#F2C744",
            Level::Moderate => "#439FE0",
            Level::Low => "#2EB67D",
            Level::Unknown => "#808080",
        }
    }

    /// Adaptive Card colour names.
    pub fn adaptive(self) -> &'static str {
        match self {
            Level::Urgent | Level::Major => "Attention",
            Level::High => "Warning",
            Level::Moderate => "Accent",
            Level::Low => "Good",
            Level::Unknown => "Default",
        }
    }
}

/// What a message says, target-neutral and sanitized but not yet escaped.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// The big line: the alert title, or a description of the event.
    pub headline: String,
    /// The small line above it: "alert created", "alert updated", …
    pub summary: String,
    pub level: Level,
    /// Label → value, in display order; absent values are left out.
    pub facts: Vec<(&'static str, String)>,
    /// Free text shown below the headline (a comment's content).
    pub body: Option<String>,
    /// Set when the alert could not be fetched.
    pub degraded: Option<String>,
    /// The alert page in the origin's UI.
    pub link: Option<String>,
    /// Label of the link button.
    pub link_label: &'static str,
    /// Further links hookrelay built (a digest's alerts): (label, URL).
    pub links: Vec<(String, String)>,
    /// Action buttons (`[actions]`): set per destination by the pipeline,
    /// only on messages about an alert the relay could fetch.
    pub actions: Vec<Button>,
    /// With `actions`: buttons the chat service posts back to the relay
    /// (Slack with a signing secret, Mattermost in API mode) instead of
    /// links to the confirmation page.
    pub interactive: bool,
    /// Who to notify (the destination's `mentions`, on a route with
    /// `mention = true`): the operator's words, never the alert's.
    pub mentions: Vec<crate::config::Mention>,
}

/// One action button: its label, the action link, and the signed token
/// (the same as in the link) for interactive buttons.
#[derive(Debug, Clone, PartialEq)]
pub struct Button {
    /// `acknowledge`, `ongoing`, `close`, `reject`.
    pub name: &'static str,
    pub label: &'static str,
    pub url: String,
    pub token: String,
}

/// What a digest needs to know of one held delivery.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    pub headline: String,
    pub urgency: Option<String>,
    pub short_id: Option<String>,
    pub link: Option<String>,
}

pub use crate::config::Links;

/// An alert's link from the `alert_link` template.
fn alert_link(template: Option<&str>, short_id: &str, uuid: Option<&str>) -> Option<String> {
    Some(
        template?
            .replace("{short_id}", short_id)
            .replace("{uuid}", uuid.unwrap_or("")),
    )
}

/// Short ids go into URLs; anything but a plain token gets no link.
fn safe_short_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `2022-01-14T15:06:57.398005+00:00` → `2022-01-14 15:06:57 UTC`.
/// Anything else (outside text of any shape) is `None`: shown as the
/// alert's own time, or not at all, never a reason to fail.
fn format_iso(s: &str) -> Option<String> {
    // `get` rather than slicing: the text is the sender's, and byte 19 may
    // fall inside a character.
    let (head, mut rest) = (s.get(..19)?, s.get(19..)?);
    let b = head.as_bytes();
    if b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return None;
    }
    if b.get(13) != Some(&b':') || b.get(16) != Some(&b':') {
        return None;
    }
    if !head
        .chars()
        .all(|c| c.is_ascii_digit() || "-:T ".contains(c))
    {
        return None;
    }
    let base = head.replace('T', " ");
    if let Some(frac) = rest.strip_prefix('.') {
        rest = frac.trim_start_matches(|c: char| c.is_ascii_digit());
    }
    let zone = match rest {
        "" | "Z" | "z" | "+00:00" | "-00:00" => "UTC".to_owned(),
        other
            if other.len() <= 6
                && other
                    .chars()
                    .all(|c| c.is_ascii_digit() || "+-:".contains(c)) =>
        {
            format!("UTC{other}")
        }
        _ => return None,
    };
    Some(format!("{base} {zone}"))
}

/// Seconds since the epoch (the alert API's `created_at`) → `2022-01-14
/// 15:06:57 UTC`; `None` before 1970 or past what a calendar date can
/// show (year 9999), which an origin may well answer.
fn format_epoch(secs: i64) -> Option<String> {
    if secs < 0 {
        return None;
    }
    let t = jiff::Timestamp::from_second(secs).ok()?;
    // `format`, not `Display`: a formatting error is a `None`, never a panic.
    jiff::fmt::strtime::format("%Y-%m-%d %H:%M:%S UTC", t).ok()
}

/// The alert's assets as the asset API described them: names and
/// criticality, and how many are unknown; `None` when they were not looked
/// up.
fn assets_fact(a: &Alert) -> Option<String> {
    if a.assets.is_empty() {
        return None;
    }
    let mut known: Vec<&crate::enrich::Asset> =
        a.assets.iter().filter(|x| x.name.is_some()).collect();
    known.sort_by_key(|x| std::cmp::Reverse(x.criticality));
    let mut parts: Vec<String> = known
        .iter()
        .take(5)
        .map(|x| match x.criticality {
            Some(c) => format!("{} (criticality {c})", x.name.as_deref().unwrap_or("?")),
            None => x.name.clone().unwrap_or_default(),
        })
        .collect();
    if known.len() > 5 {
        parts.push(format!("{} more", known.len() - 5));
    }
    let unknown = a.assets.len() - known.len();
    if unknown > 0 {
        parts.push(format!(
            "{unknown} unknown (the asset API did not describe them)"
        ));
    }
    Some(parts.join(", "))
}

/// What an `updated` event changed, in words.
fn change_summary(event: &Event) -> Option<String> {
    let updated = event.updated.as_ref()?;
    let mut parts = Vec::new();
    if let Some(s) = updated.get("status_name").and_then(Value::as_str) {
        parts.push(format!("status → {s}"));
    }
    for key in ["dynamic_urgency_value", "urgency"] {
        if let Some(v) = updated.get(key).and_then(Value::as_f64) {
            parts.push(format!("urgency → {}", v.round() as i64));
        }
    }
    if parts.is_empty() {
        let keys: Vec<&str> = updated
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "status")
            .collect();
        if keys.is_empty() {
            return None;
        }
        parts.push(keys.join(", "));
    }
    Some(parts.join(", "))
}

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

        let mut facts: Vec<(&'static str, String)> = Vec::new();
        let mut push = |label: &'static str, value: Option<String>| {
            if let Some(v) = value {
                let v = clean(&v, FACT_MAX);
                if !v.is_empty() {
                    facts.push((label, v));
                }
            }
        };
        push(
            "Urgency",
            urgency
                .as_ref()
                .map(|u| format!("{} ({})", u.display, u.value)),
        );
        // The event's own word on a status change is fresher than an alert
        // API that may lag behind it.
        let status = event
            .updated
            .as_ref()
            .and_then(|u| u.get("status_name")?.as_str().map(str::to_owned))
            .or_else(|| alert.and_then(|a| a.status.clone()));
        push("Status", status.clone());
        push("Change", change_summary(event));
        push("Rule", alert.and_then(|a| a.rule.clone()));
        push("Assets", alert.and_then(assets_fact));
        push("Entity", alert.and_then(|a| a.entity.clone()));
        push(
            "Alert type",
            alert.and_then(|a| match (&a.alert_type.category, &a.alert_type.value) {
                (Some(c), Some(v)) => Some(format!("{c} / {v}")),
                (Some(c), None) => Some(c.clone()),
                (None, Some(v)) => Some(v.clone()),
                (None, None) => None,
            }),
        );
        push("Alert", short_id.clone());
        push("Event", Some(summary.clone()));
        let time = event
            .created_at
            .as_deref()
            .and_then(format_iso)
            .or_else(|| alert.and_then(|a| a.created_at).and_then(format_epoch));
        push("Time", time);
        if short_id.is_none() && alert.is_none() {
            push("UUID", event.uuid.map(|u| u.to_string()));
        }

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

    /// The value of one fact, if shown.
    pub fn fact(&self, label: &str) -> Option<String> {
        self.facts
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, v)| v.clone())
    }

    /// The compact form of an update (a status change, a comment) for
    /// channels that cannot thread: the alert, what changed and where it
    /// stands, not a repeat of the first message.
    pub fn compact(&self) -> Facts {
        const KEEP: &[&str] = &[
            "Urgency", "Priority", "Status", "Verdict", "Change", "Alert", "Case",
        ];
        let mut f = self.clone();
        f.facts.retain(|(label, _)| KEEP.contains(label));
        f
    }

    /// The root of an alert's conversation: the alert as it stands, not
    /// the event that last changed it (that is the reply's).
    pub fn as_root(&self) -> Facts {
        self.as_root_of("alert")
    }

    /// [`Facts::as_root`] of a conversation about `what` (an alert, a case).
    pub fn as_root_of(&self, what: &str) -> Facts {
        let mut f = self.clone();
        f.summary = match self.fact("Status") {
            Some(status) => format!("{what} · {status}"),
            None => what.into(),
        };
        f.facts
            .retain(|(label, _)| !matches!(*label, "Event" | "Change"));
        f.body = None;
        f
    }

    /// The one-line summary a digest lists for this message.
    pub fn summary(&self) -> Summary {
        let fact = |label: &str| self.fact(label);
        Summary {
            headline: self.headline.clone(),
            urgency: fact("Urgency").map(|u| u.split(" (").next().unwrap_or_default().to_owned()),
            short_id: fact("Alert"),
            link: self.link.clone(),
        }
    }

    /// One message for alerts held back by a destination's `max_per_minute`:
    /// how many, by urgency, and a list with links; `everything` is the
    /// console's list of exactly these alerts, when the console is reachable.
    pub fn digest(
        items: &[Summary],
        interval: std::time::Duration,
        everything: Option<&str>,
    ) -> Facts {
        let mut by_urgency: Vec<(String, usize)> = Vec::new();
        for s in items {
            let u = s.urgency.clone().unwrap_or_else(|| "No urgency".into());
            match by_urgency.iter_mut().find(|(name, _)| *name == u) {
                Some((_, n)) => *n += 1,
                None => by_urgency.push((u, 1)),
            }
        }
        let counts = by_urgency
            .iter()
            .map(|(u, n)| format!("{n} {u}"))
            .collect::<Vec<_>>()
            .join(", ");
        let period = humantime::format_duration(interval).to_string();
        let noun = if items.len() == 1 { "alert" } else { "alerts" };
        let shown = 20;
        let mut lines: Vec<String> = items
            .iter()
            .take(shown)
            .map(|s| {
                clean(
                    &format!("{} — {}", s.short_id.as_deref().unwrap_or("-"), s.headline),
                    FACT_MAX,
                )
            })
            .collect();
        if items.len() > shown {
            // Every held alert is named: the rest by short id, as many as
            // fit a chat message; only beyond that a count.
            let mut ids = String::new();
            let mut listed = 0;
            for s in &items[shown..] {
                let id = s.short_id.as_deref().unwrap_or("-");
                if ids.len() + id.len() + 2 > DIGEST_IDS_MAX {
                    break;
                }
                if !ids.is_empty() {
                    ids.push_str(", ");
                }
                ids.push_str(id);
                listed += 1;
            }
            lines.push(format!("Also: {ids}"));
            let left = items.len() - shown - listed;
            if left > 0 {
                lines.push(match everything {
                    Some(_) => format!(
                        "… and {left} more: all {} are listed in the console (the link below)",
                        items.len()
                    ),
                    None => {
                        format!("… and {left} more (all are in the history: hookrelay events list)")
                    }
                });
            }
        }
        Facts {
            headline: format!("{} more {noun} in the last {period}: {counts}", items.len()),
            summary: "digest".into(),
            level: Level::Unknown,
            facts: vec![("Alerts", items.len().to_string())],
            body: Some(lines.join("\n")),
            degraded: None,
            link: everything.map(str::to_owned),
            link_label: if everything.is_some() {
                "List them in the console"
            } else {
                "Open in Sekoia.io"
            },
            links: items
                .iter()
                .take(shown)
                .filter_map(|s| Some((s.short_id.clone()?, s.link.clone()?)))
                .collect(),
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

    /// The message `hookrelay send-test` sends.
    pub fn test_message(destination: &str) -> Facts {
        Facts {
            headline: "hookrelay test message".into(),
            summary: "test".into(),
            level: Level::Low,
            facts: vec![("Destination", clean(destination, FACT_MAX))],
            body: Some("If you can read this, hookrelay can deliver to this destination.".into()),
            degraded: None,
            link: None,
            link_label: "Open in Sekoia.io",
            links: Vec::new(),
            actions: Vec::new(),
            interactive: false,
            mentions: Vec::new(),
        }
    }

    /// The mentions as text (Slack `<@U…>`, Mattermost `@name`, Discord
    /// `<@&role>`), space-separated with a trailing space; empty without.
    pub fn mention_prefix(&self, kind: DestinationKind) -> String {
        let mut out = String::new();
        for m in &self.mentions {
            if let crate::config::Mention::Text(t) = m {
                if kind == DestinationKind::Discord {
                    out.push_str(&format!("<@&{t}> "));
                } else {
                    out.push_str(t);
                    out.push(' ');
                }
            }
        }
        out
    }

    /// The action links as Markdown, `None` when there are none.
    pub fn markdown_actions(&self) -> Option<String> {
        (!self.actions.is_empty()).then(|| {
            self.actions
                .iter()
                .map(|b| format!("[{}]({})", b.label, b.url))
                .collect::<Vec<_>>()
                .join(" · ")
        })
    }

    /// The action links in Slack/Google Chat form, `None` when there are none.
    pub fn angle_actions(&self) -> Option<String> {
        (!self.actions.is_empty()).then(|| {
            self.actions
                .iter()
                .map(|b| format!("<{}|{}>", b.url, b.label))
                .collect::<Vec<_>>()
                .join(" · ")
        })
    }

    /// The extra links as Markdown (`[label](url)`), `None` when there are none.
    pub fn markdown_links(&self) -> Option<String> {
        self.join_links(|label, url| format!("[{label}]({url})"))
    }

    /// The extra links in Slack/Google Chat form (`<url|label>`).
    pub fn angle_links(&self) -> Option<String> {
        self.join_links(|label, url| format!("<{url}|{label}>"))
    }

    fn join_links(&self, one: impl Fn(&str, &str) -> String) -> Option<String> {
        if self.links.is_empty() {
            return None;
        }
        Some(
            self.links
                .iter()
                .map(|(label, url)| one(label, url))
                .collect::<Vec<_>>()
                .join(" · "),
        )
    }

    /// One line for notification previews and fallbacks.
    pub fn one_line(&self) -> String {
        let urgency = self
            .facts
            .iter()
            .find(|(l, _)| *l == "Urgency")
            .map(|(_, v)| format!("[{v}] "))
            .unwrap_or_default();
        format!("{urgency}{} — {}", self.headline, self.summary)
    }
}

/// Like [`clean`] but keeps line breaks (normalized to `\n`, at most two in a row).
fn clean_multiline(s: &str, max: usize) -> String {
    let lines: Vec<String> = s
        .replace("\r\n", "\n")
        .split(['\n', '\r'])
        .map(|l| clean(l, max))
        .collect();
    let joined = lines.join("\n");
    let mut out = String::new();
    let mut newlines = 0;
    for c in joined.trim().chars() {
        if c == '\n' {
            newlines += 1;
            if newlines > 2 {
                continue;
            }
        } else {
            newlines = 0;
        }
        out.push(c);
    }
    escape::truncate(&out, max)
}

/// The built-in message for a destination kind. `doc` is the hookrelay
/// message document ([`context`]), built only when a kind needs it.
pub fn render(kind: DestinationKind, facts: &Facts, doc: &dyn Fn() -> Value) -> Value {
    match kind {
        DestinationKind::Teams => teams::render(facts),
        DestinationKind::TeamsLegacy => teams_legacy::render(facts),
        DestinationKind::Slack => slack::render(facts),
        DestinationKind::Mattermost => mattermost::render(facts),
        DestinationKind::Discord => discord::render(facts),
        DestinationKind::GoogleChat => google_chat::render(facts),
        DestinationKind::Email => email::render(facts),
        DestinationKind::Webhook => doc(),
        DestinationKind::Pagerduty => paging::pagerduty(facts, &doc()),
        DestinationKind::Opsgenie => paging::opsgenie(facts, &doc()),
        DestinationKind::Matrix => paging::matrix(facts),
        DestinationKind::Ntfy => paging::ntfy(facts),
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

/// What the spool keeps for one delivery: the built-in message, or the
/// destination's template rendered with the message document. `Err` is
/// why it cannot be rendered: the delivery is dead-lettered with that
/// reason.
pub fn payload(
    dest: &Destination,
    facts: &Facts,
    doc: &dyn Fn() -> Value,
) -> Result<String, RenderError> {
    let Some(templates) = &dest.templates else {
        let kind = dest.config.kind;
        let card = kind == DestinationKind::Teams
            && dest.config.shape == Some(crate::config::TeamsShape::Card);
        return Ok(match kind {
            // The hot path: serialized straight to a string, unless it must be cut.
            DestinationKind::Teams if !card => {
                let text = teams::render_string(facts);
                if text.len() <= fit::TEAMS_BYTES {
                    text
                } else {
                    let mut v = render(kind, facts, doc);
                    fit::fit(kind, &mut v);
                    v.to_string()
                }
            }
            _ => {
                let mut v = render(kind, facts, doc);
                // A tenant's subject: plain text with placeholders, never
                // compiled (see `destination::compile`).
                if let (DestinationKind::Email, Some(pattern), Some(_)) =
                    (kind, &dest.config.subject, &dest.config.tenant)
                {
                    v["subject"] = Value::String(email::plain_subject(pattern, facts));
                }
                if card {
                    // A bare Adaptive Card, for flows that want one.
                    v = v["attachments"][0]["content"].take();
                }
                fit::fit(kind, &mut v);
                v.to_string()
            }
        });
    };
    let ctx = doc();
    if dest.config.kind == DestinationKind::Email {
        let subject = templates
            .subject(&ctx)
            .transpose()
            .map_err(RenderError::Template)?
            .unwrap_or_else(|| email::subject(facts));
        let html = templates
            .body(&ctx)
            .transpose()
            .map_err(RenderError::Template)?
            .unwrap_or_else(|| email::html(facts));
        return Ok(
            serde_json::json!({"subject": subject, "text": email::text(facts), "html": html})
                .to_string(),
        );
    }
    match templates.body(&ctx) {
        None => Ok(render(dest.config.kind, facts, &|| ctx.clone()).to_string()),
        Some(out) => {
            let out = out.map_err(RenderError::Template)?;
            let value: Value =
                serde_json::from_str(&out).map_err(|e| RenderError::InvalidJson {
                    template: dest
                        .config
                        .template
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    error: e.to_string(),
                    start: escape::truncate(&out, 120).to_string(),
                })?;
            Ok(value.to_string())
        }
    }
}

/// The payload of one routed event's delivery: [`payload`] with the
/// message document of that event, built only if the destination needs it.
pub fn event_payload(
    dest: &Destination,
    event: &Event,
    enrichment: &Enrichment,
    facts: &Facts,
    target: context::Target,
) -> Result<String, RenderError> {
    let config = &dest.config;
    if config.threaded() && event.thread_key().is_some() {
        let root = facts.as_root_of(match event.subject() {
            crate::event::Subject::Case => "case",
            _ => "alert",
        });
        let message = payload(dest, &root, &|| {
            context::for_event(event, enrichment, &root, target)
        })?;
        return Ok(
            match thread::Threaded::build(event, enrichment, facts, &message) {
                Some(t) => t.wrap(),
                None => message,
            },
        );
    }
    let compact;
    let facts = if is_update(event) && !config.api_mode() && chat_kind(config.kind) {
        compact = facts.compact();
        &compact
    } else {
        facts
    };
    payload(dest, facts, &|| {
        context::for_event(event, enrichment, facts, target)
    })
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

/// A later event in an alert's life (a change, a comment), as opposed to
/// its creation.
fn is_update(event: &Event) -> bool {
    (event.alert_uuid.is_some()
        && !(event.is_alert() && event.action == "created")
        && (event.is_alert() || event.kind == "alert-comment"))
        || (event.is_case() && event.action != "created")
}

/// The chat kinds, where an update is a compact card (not the e-mail, the
/// webhook document or the paging kinds, which follow their own rules).
fn chat_kind(kind: DestinationKind) -> bool {
    matches!(
        kind,
        DestinationKind::Teams
            | DestinationKind::TeamsLegacy
            | DestinationKind::Slack
            | DestinationKind::Mattermost
            | DestinationKind::Discord
            | DestinationKind::GoogleChat
            | DestinationKind::Matrix
    )
}

/// A message hookrelay makes itself (`"digest"`, `"test"`) for
/// destination `name`. A template that fails on it is logged and the
/// built-in message is sent instead: held alerts must still reach people.
pub fn own_message(dest: &Destination, name: &str, kind: &str, facts: &Facts) -> String {
    let doc = || {
        context::for_message(
            kind,
            facts,
            context::Target {
                hook: None,
                route: None,
                destination: name,
            },
        )
    };
    payload(dest, facts, &doc).unwrap_or_else(|reason| {
        tracing::error!(message = "The destination's template cannot render this message; sending the built-in one.", destination = %name, kind, error = %reason);
        render(dest.config.kind, facts, &doc).to_string()
    })
}

/// Renders a destination's templates with sample messages (the fixture
/// alert, the same event with its alert unavailable, a digest) and returns
/// what went wrong, for `check` to warn about before a real alert is
/// dead-lettered by it.
pub(crate) fn trial(dest: &Destination, name: &str) -> Vec<String> {
    use crate::enrich::{Alert, Enrichment};
    const EVENT: &str = include_str!("../../tests/fixtures/event-alert-created.json");
    const ALERT: &str = include_str!("../../tests/fixtures/alert-full.json");
    const LINK: &str = "https://app.sekoia.io/operations/alerts/{short_id}";
    let Ok(event) = crate::event::parse(EVENT.as_bytes()) else {
        return Vec::new();
    };
    let fetched = match Alert::from_slice(ALERT.as_bytes()) {
        Ok(a) => Enrichment::Fetched(std::sync::Arc::new(a)),
        Err(_) => return Vec::new(),
    };
    let unavailable =
        Enrichment::Unavailable("timeout (sample: the alert API did not answer)".into());
    let target = context::Target {
        hook: Some("sample"),
        route: Some("sample"),
        destination: name,
    };
    let mut problems = Vec::new();
    for (what, enrichment) in [
        ("a sample alert", &fetched),
        ("a sample event whose alert is unavailable", &unavailable),
    ] {
        let facts = Facts::build(&event, enrichment, Some(LINK));
        if let Err(e) = event_payload(dest, &event, enrichment, &facts, target) {
            problems.push(format!("fails on {what}: {e}"));
        }
    }
    let digest = Facts::digest(&[], std::time::Duration::from_secs(60), None);
    if let Err(e) = payload(dest, &digest, &|| {
        context::for_message("digest", &digest, target)
    }) {
        problems.push(format!(
            "fails on a digest (the built-in message is sent instead): {e}"
        ));
    }
    problems
}

#[cfg(test)]
mod case_tests;
#[cfg(test)]
mod tests;
