//! One conversation per alert (Slack and Mattermost in API mode): what
//! the spool keeps for a threaded delivery, and the words of a reply.
//!
//! A threaded delivery is rendered at routing like any other (the full
//! message, from the alert as fetched for its event) and wrapped with what
//! a reply needs: the alert's status and urgency, a comment's text, what
//! happened. Whether it becomes the alert's root, or a reply plus an edit
//! of the root, is decided when it is sent, from the root recorded in the
//! spool (deliveries of one alert go out in order, so that record is
//! exactly what the channel shows). Pure: no IO.

use super::escape::{clean, defuse_markdown, escape_slack};
use super::facts::{Facts, FACT_MAX};
use crate::enrich::Enrichment;
use crate::event::Event;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The key a threaded delivery's stored payload is wrapped in.
const ENVELOPE: &str = "hookrelay_thread";

/// Longest comment quoted in a reply.
const COMMENT_MAX: usize = 1500;

/// A threaded delivery as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Threaded {
    /// The alert's uuid: the conversation.
    pub alert: String,
    /// The full message (the root), as the destination's renderer or
    /// template made it.
    pub message: Value,
    /// The alert's status and urgency (0–100) as of this event.
    pub status: Option<String>,
    pub urgency: Option<i64>,
    /// A comment's text (cleaned, not yet escaped).
    pub comment: Option<String>,
    /// What happened, in words ("alert updated: status → Closed").
    pub event: String,
    /// Only a reply in the conversation, never its root nor an edit of
    /// it: an alert's thread told that a case took it. Without a thread
    /// there is nothing to reply to.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reply_only: bool,
    /// A link the relay built (label, URL), shown after the reply's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<(String, String)>,
}

impl Threaded {
    /// The threaded form of an event's message, when the event is about
    /// an alert (`None`: it goes out as a plain channel message).
    pub fn build(
        event: &Event,
        enrichment: &Enrichment,
        facts: &Facts,
        message: &str,
    ) -> Option<Threaded> {
        // The alert's conversation, or the case's.
        let alert = event.thread_key()?.to_string();
        let message: Value = serde_json::from_str(message).ok()?;
        let urgency = enrichment
            .alert()
            .and_then(|a| a.urgency.as_ref())
            .map(|u| i64::from(u.value))
            .or_else(|| updated_urgency(event));
        let change = facts.fact("Change");
        let words = match &change {
            Some(c) => format!("{}: {c}", facts.summary),
            None => facts.summary.clone(),
        };
        Some(Threaded {
            alert,
            message,
            status: facts.fact("Status"),
            urgency,
            comment: event
                .content
                .as_deref()
                .map(|c| super::facts::clean_multiline(c, COMMENT_MAX)),
            event: clean(&words, FACT_MAX),
            reply_only: false,
            link: None,
        })
    }

    /// A reply in alert `alert`'s thread: `words` (cleaned here, escaped
    /// when sent) and a link hookrelay built.
    pub fn note(alert: String, words: &str, link: Option<(String, String)>) -> Threaded {
        Threaded {
            alert,
            message: Value::Null,
            status: None,
            urgency: None,
            comment: None,
            event: clean(words, FACT_MAX),
            reply_only: true,
            link,
        }
    }

    /// The stored payload.
    pub fn wrap(&self) -> String {
        json!({ ENVELOPE: self }).to_string()
    }

    /// A stored payload's threaded form, if it is one.
    pub fn unwrap(payload: &str) -> Option<Threaded> {
        // `wrap` writes the envelope as the only key: a plain message is
        // told apart by its first bytes, without reading it all.
        let rest = payload.strip_prefix("{\"")?;
        if !rest.starts_with(ENVELOPE) {
            return None;
        }
        let mut v: Value = serde_json::from_str(payload).ok()?;
        serde_json::from_value(v.get_mut(ENVELOPE)?.take()).ok()
    }

    /// What a reply says happened since the root last showed `status`
    /// and `urgency`.
    pub fn change(&self, status: Option<&str>, urgency: Option<i64>) -> Change {
        let mut lines = Vec::new();
        let mut closed = false;
        if let Some(now) = &self.status {
            if status != Some(now.as_str()) {
                lines.push(Line::Status {
                    from: status.map(str::to_owned),
                    to: now.clone(),
                });
                closed = is_closed(now);
            }
        }
        if let (Some(now), Some(before)) = (self.urgency, urgency) {
            if now != before {
                lines.push(Line::Urgency {
                    from: before,
                    to: now,
                });
            }
        }
        if let Some(c) = &self.comment {
            lines.push(Line::Comment(c.clone()));
        }
        if lines.is_empty() || self.reply_only {
            lines = vec![Line::Event(self.event.clone())];
            closed = false;
        }
        if let Some((label, url)) = &self.link {
            lines.push(Line::Link {
                label: label.clone(),
                url: url.clone(),
            });
        }
        Change {
            lines,
            broadcast: closed,
        }
    }
}

/// The status names that end an alert's life.
pub fn is_closed(status: &str) -> bool {
    status.eq_ignore_ascii_case("closed") || status.eq_ignore_ascii_case("rejected")
}

/// `dynamic_urgency_value` or `urgency` of an `updated` event.
fn updated_urgency(event: &Event) -> Option<i64> {
    let updated = event.updated.as_ref()?;
    ["dynamic_urgency_value", "urgency"]
        .iter()
        .find_map(|k| updated.get(*k)?.as_f64())
        .map(|v| v.round() as i64)
}

/// One line of a reply.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    Status {
        from: Option<String>,
        to: String,
    },
    Urgency {
        from: i64,
        to: i64,
    },
    Comment(String),
    Event(String),
    /// A link hookrelay built (the URL is its own, the label escaped).
    Link {
        label: String,
        url: String,
    },
}

/// What a reply says; `broadcast` when the alert was closed or rejected
/// (Slack also shows the reply in the channel).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub lines: Vec<Line>,
    pub broadcast: bool,
}

/// How a thread's replies are written: Slack's mrkdwn, or the Markdown
/// of the others (Mattermost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    Slack,
    Markdown,
}

impl Change {
    /// The reply's text in `markup` (Slack mrkdwn or Markdown), every
    /// value from the alert escaped.
    pub fn text(&self, markup: Markup) -> String {
        let esc = |s: &str| match markup {
            Markup::Slack => escape_slack(s),
            Markup::Markdown => defuse_markdown(s),
        };
        let bold = |s: &str| match markup {
            Markup::Slack => format!("*{s}*"),
            Markup::Markdown => format!("**{s}**"),
        };
        self.lines
            .iter()
            .map(|line| match line {
                Line::Status { from: Some(f), to } => {
                    format!("{} {} → {}", bold("Status:"), esc(f), bold(&esc(to)))
                }
                Line::Status { from: None, to } => {
                    format!("{} {}", bold("Status:"), bold(&esc(to)))
                }
                Line::Urgency { from, to } => format!("{} {from} → {to}", bold("Urgency:")),
                Line::Comment(c) => format!("{}\n{}", bold("Comment:"), esc(c)),
                Line::Event(e) => esc(e),
                Line::Link { label, url } => match markup {
                    Markup::Slack => format!("<{url}|{}>", esc(label)),
                    Markup::Markdown => format!("[{}]({url})", esc(label)),
                },
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// How a delivery to a threaded destination would go out, for `preview`.
pub fn describe(root: Option<(&str, Option<&str>, Option<i64>)>, t: &Threaded) -> String {
    match root {
        None => "a new root message (the alert's first on this destination)".into(),
        Some((ts, status, urgency)) => {
            let change = t.change(status, urgency);
            format!(
                "an edit of root {ts} (the alert's current state) and a reply in its thread{}",
                if change.broadcast {
                    ", also shown in the channel (closed)"
                } else {
                    ""
                }
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threaded(status: Option<&str>, urgency: Option<i64>, comment: Option<&str>) -> Threaded {
        Threaded {
            alert: "5696845f-9ecf-4431-9f0f-48ee0ee2eff1".into(),
            message: json!({"text": "t"}),
            status: status.map(str::to_owned),
            urgency,
            comment: comment.map(str::to_owned),
            event: "alert updated".into(),
            reply_only: false,
            link: None,
        }
    }

    #[test]
    fn a_note_in_an_alerts_thread_is_a_reply_with_the_case_link() {
        let t = Threaded::note(
            "5696845f-9ecf-4431-9f0f-48ee0ee2eff1".into(),
            "added to case CA42 — <!channel> *Ransomware*",
            Some((
                "CA42".into(),
                "https://app.sekoia.io/operations/cases/CA42".into(),
            )),
        );
        let c = t.change(Some("Ongoing"), Some(63));
        assert!(!c.broadcast);
        let slack = c.text(Markup::Slack);
        assert!(!slack.contains("<!channel>"), "{slack}");
        assert!(
            slack.ends_with("\n<https://app.sekoia.io/operations/cases/CA42|CA42>"),
            "{slack}"
        );
        let mm = c.text(Markup::Markdown);
        assert!(
            mm.ends_with("\n[CA42](https://app.sekoia.io/operations/cases/CA42)"),
            "{mm}"
        );
        assert_eq!(Threaded::unwrap(&t.wrap()), Some(t));
        // An alert's own delivery is stored as before.
        let plain = threaded(None, None, None).wrap();
        assert!(
            !plain.contains("reply_only") && !plain.contains("link"),
            "{plain}"
        );
    }

    #[test]
    fn a_reply_says_what_changed_since_the_root() {
        let t = threaded(Some("Acknowledged"), Some(80), None);
        let c = t.change(Some("Pending"), Some(40));
        assert_eq!(
            c.text(Markup::Slack),
            "*Status:* Pending → *Acknowledged*\n*Urgency:* 40 → 80"
        );
        assert!(!c.broadcast);
        assert_eq!(
            c.text(Markup::Markdown),
            "**Status:** Pending → **Acknowledged**\n**Urgency:** 40 → 80"
        );
        // Nothing the root shows changed: the event in words.
        let same = t.change(Some("Acknowledged"), Some(80));
        assert_eq!(same.text(Markup::Slack), "alert updated");
        // A close is broadcast.
        let closed = threaded(Some("Closed"), Some(80), None).change(Some("Ongoing"), Some(80));
        assert!(closed.broadcast);
    }

    #[test]
    fn alert_text_in_a_reply_is_inert() {
        let t = threaded(
            Some("<!channel> Closed"),
            None,
            Some("<@U123> see *this* [x](http://evil)"),
        );
        let slack = t.change(None, None).text(Markup::Slack);
        assert!(!slack.contains("<!channel>"), "{slack}");
        assert!(!slack.contains("<@U123>"), "{slack}");
        let mm = t.change(None, None).text(Markup::Markdown);
        assert!(!mm.contains("](http"), "{mm}");
    }

    #[test]
    fn the_envelope_round_trips_and_plain_payloads_are_not_threaded() {
        let t = threaded(Some("Pending"), Some(63), Some("hi"));
        assert_eq!(Threaded::unwrap(&t.wrap()), Some(t));
        assert_eq!(Threaded::unwrap(r#"{"text": "digest"}"#), None);
        assert_eq!(Threaded::unwrap("not json hookrelay_thread"), None);
        // A message that mentions the envelope's name is not one.
        assert_eq!(
            Threaded::unwrap(r#"{"text": "hookrelay_thread", "hookrelay_thread": 1}"#),
            None
        );
    }
}
