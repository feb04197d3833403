//! What a message says ([`Facts`]), its urgency band and the limits every
//! message keeps: the part of rendering the message kinds below `mod.rs`
//! share.

use super::escape::{clean, truncate};
use crate::enrich::Urgency;

/// Longest title shown; titles are one line.
pub(super) const TITLE_MAX: usize = 250;
/// Longest value of one fact.
pub(super) const FACT_MAX: usize = 200;
/// Longest comment or note body.
pub(super) const BODY_MAX: usize = 1500;
/// Room for a digest's compact list of short ids (well inside every chat
/// service's limit for one text).
pub(super) const DIGEST_IDS_MAX: usize = 2400;

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

/// An alert's link from the `alert_link` template.
pub(super) fn alert_link(
    template: Option<&str>,
    short_id: &str,
    uuid: Option<&str>,
) -> Option<String> {
    Some(
        template?
            .replace("{short_id}", short_id)
            .replace("{uuid}", uuid.unwrap_or("")),
    )
}

/// Short ids go into URLs; anything but a plain token gets no link.
pub(super) fn safe_short_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// `2022-01-14T15:06:57.398005+00:00` → `2022-01-14 15:06:57 UTC`.
/// Anything else (outside text of any shape) is `None`: shown as the
/// alert's own time, or not at all, never a reason to fail.
pub(super) fn format_iso(s: &str) -> Option<String> {
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
pub(super) fn format_epoch(secs: i64) -> Option<String> {
    if secs < 0 {
        return None;
    }
    let t = jiff::Timestamp::from_second(secs).ok()?;
    // `format`, not `Display`: a formatting error is a `None`, never a panic.
    jiff::fmt::strtime::format("%Y-%m-%d %H:%M:%S UTC", t).ok()
}

impl Facts {
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

    /// The mentions as text, each written by `one` (Slack `<@U…>` and
    /// Mattermost `@name` as they are, Discord's role ids as `<@&role>`),
    /// with a trailing space each; empty without.
    pub fn mention_prefix(&self, one: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for m in &self.mentions {
            if let crate::config::Mention::Text(t) = m {
                out.push_str(&one(t));
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
pub(super) fn clean_multiline(s: &str, max: usize) -> String {
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
    truncate(&out, max)
}
