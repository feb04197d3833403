//! What enrichment found for one event: the alert, the case, or why
//! neither could be had (and what a message may say of it).

use super::alert::Alert;
use super::case::Case;
use std::sync::Arc;

/// What enrichment produced for one event.
#[derive(Debug, Clone)]
pub enum Enrichment {
    /// The alert object from the API.
    Fetched(Arc<Alert>),
    /// The case object from the API, its names looked up.
    Case(Arc<Case>),
    /// The event is about neither an alert nor a case (a content
    /// proposal, a platform health notice, …).
    NotApplicable,
    /// The alert could not be fetched: `"<category> (<detail>)"`. The
    /// detail (the API's answer, the connection's error) is for the log and
    /// the operator's journey; messages show only the category
    /// ([`Enrichment::shown_reason`]).
    Unavailable(String),
}

/// What a message may say of why an alert is unavailable. Anything else
/// (the API's text, connection refused vs reset, addresses, OS errors)
/// would let a tenant use its own messages to scan the relay's network.
const SHOWN: &[&str] = &[
    "timeout",
    "refused",
    "unreachable",
    "network error",
    "address not allowed",
    "invalid answer",
    "not configured",
    "unreadable",
    "shutting down",
];

impl Enrichment {
    pub fn alert(&self) -> Option<&Alert> {
        match self {
            Enrichment::Fetched(a) => Some(a),
            _ => None,
        }
    }

    /// Why the alert is unavailable, as a message may say it: `timeout`,
    /// `refused`, `HTTP 503`, `HTTP 404`, … (`None`: not unavailable, or a
    /// reason without a category, which messages then do not explain).
    pub fn shown_reason(&self) -> Option<String> {
        let Enrichment::Unavailable(reason) = self else {
            return None;
        };
        let head = reason.split(" (").next().unwrap_or_default();
        let http = |s: &str| {
            (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit())).then(|| format!("HTTP {s}"))
        };
        if SHOWN.contains(&head) {
            return Some(head.to_owned());
        }
        if let Some(code) = head.strip_prefix("HTTP ") {
            return http(code);
        }
        // Recorded before categories (a replayed dead letter).
        let code = reason.strip_prefix("alert API answered ")?.get(..3)?;
        http(code)
    }

    pub fn case(&self) -> Option<&Case> {
        match self {
            Enrichment::Case(c) => Some(c),
            _ => None,
        }
    }

    /// How the spool records it: a note (`ok`, `n/a`, `unavailable: …`,
    /// shown by `events show`) and the alert's JSON.
    pub fn stored(&self) -> (String, Option<String>) {
        match self {
            Enrichment::Fetched(alert) => ("ok".to_owned(), Some(alert.json.clone())),
            Enrichment::Case(case) => (CASE_NOTE.to_owned(), Some(case.json().to_owned())),
            Enrichment::NotApplicable => ("n/a".to_owned(), None),
            Enrichment::Unavailable(reason) => (format!("unavailable: {reason}"), None),
        }
    }

    /// Back from the spool's record (to render a message again).
    pub fn from_stored(note: Option<&str>, alert_json: Option<&str>) -> Enrichment {
        match (alert_json, note) {
            (Some(json), Some(CASE_NOTE)) => match Case::from_stored(json) {
                Ok(case) => Enrichment::Case(Arc::new(case)),
                Err(e) => Enrichment::Unavailable(format!("the stored case is unreadable: {e}")),
            },
            (Some(json), _) => match Alert::from_slice(json.as_bytes()) {
                Ok(alert) => Enrichment::Fetched(Arc::new(alert)),
                Err(e) => Enrichment::Unavailable(format!(
                    "unreadable (the stored alert is unreadable: {e})"
                )),
            },
            (None, Some(note)) => match note.strip_prefix("unavailable: ") {
                Some(reason) => Enrichment::Unavailable(reason.to_owned()),
                None => Enrichment::NotApplicable,
            },
            (None, None) => Enrichment::NotApplicable,
        }
    }
}

/// The spool's note for an enrichment that is a case.
const CASE_NOTE: &str = "ok: case";

/// Why one look-up failed, as shared between coalesced waiters.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EnrichError {
    #[error("alert API answered {status} ({text})")]
    Permanent { status: u16, text: String },
    #[error("alert API answer is not a valid alert: {0}")]
    Invalid(String),
    /// A tenant's origin at an address tenants may not reach.
    #[error("{0}")]
    NotAllowed(String),
    #[error("gave up after {attempts} attempts within the enrich deadline; last error: {last}")]
    Deadline {
        attempts: u32,
        last: String,
        /// The last error's category (see [`Enrichment::shown_reason`]).
        cause: &'static str,
    },
}

impl EnrichError {
    /// The category a message may show.
    pub(super) fn shown(&self) -> String {
        match self {
            EnrichError::Permanent { status, .. } => format!("HTTP {status}"),
            EnrichError::Invalid(_) => "invalid answer".into(),
            EnrichError::NotAllowed(_) => "address not allowed".into(),
            EnrichError::Deadline { cause, .. } => (*cause).to_owned(),
        }
    }
}
