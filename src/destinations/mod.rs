//! Destinations: one folder per kind, in the spirit of vector's sinks.
//! Each kind's folder holds its rendering (`render.rs`), its size limits
//! (`fit.rs`), what its requests add or change, how its answers are
//! classified, and what it can do, as one [`Kind`]: shared code asks a
//! destination what it can do instead of matching its kind.
//!
//! [`of`] is the one place the kinds are listed (besides the config's
//! `DestinationKind`, which names them in the file). Adding a kind is its
//! folder, one line there, docs, golden files and tests.
//!
//! What the kinds share stays shared: the pure parts (facts, escaping,
//! templates, the message document, the fitting helpers) in `render`, the
//! HTTP and SMTP machinery and the chat API client of Slack and
//! Mattermost in [`common`].

pub mod common;
mod destination;
mod kind;
mod payload;

pub mod discord;
pub mod email;
pub mod google_chat;
pub mod matrix;
pub mod mattermost;
pub mod ntfy;
pub mod opsgenie;
pub mod pagerduty;
pub mod slack;
pub mod teams;
pub mod teams_legacy;
pub mod webhook;

pub use common::{ApiError, Call, HttpRequest, Outcome, Posted, Sink, DEFAULT_TIMEOUT};
pub use destination::{destinations, Destination, Destinations};
pub use kind::{Kind, Reach};
pub(crate) use payload::trial;
pub use payload::{event_payload, own_message, payload, render};

use crate::config::{DestinationConfig, DestinationKind};
use serde_json::Value;

/// The kind's behaviour. The one place kinds are listed: one line each.
pub fn of(kind: DestinationKind) -> &'static dyn Kind {
    match kind {
        DestinationKind::Teams => &teams::Teams,
        DestinationKind::TeamsLegacy => &teams_legacy::TeamsLegacy,
        DestinationKind::Slack => &slack::Slack,
        DestinationKind::Mattermost => &mattermost::Mattermost,
        DestinationKind::Discord => &discord::Discord,
        DestinationKind::GoogleChat => &google_chat::GoogleChat,
        DestinationKind::Email => &email::Email,
        DestinationKind::Webhook => &webhook::Webhook,
        DestinationKind::Pagerduty => &pagerduty::Pagerduty,
        DestinationKind::Opsgenie => &opsgenie::Opsgenie,
        DestinationKind::Matrix => &matrix::Matrix,
        DestinationKind::Ntfy => &ntfy::Ntfy,
    }
}

/// Cuts a built-in message of `kind` to its service's limits ([`Kind::fit`]).
pub fn fit(kind: DestinationKind, v: &mut Value) {
    of(kind).fit(v)
}

/// A destination's capabilities, asked of its config (`dest.threaded()`).
pub trait Capabilities {
    /// See [`Kind::api_mode`].
    fn api_mode(&self) -> bool;
    /// See [`Kind::threaded`].
    fn threaded(&self) -> bool;
    /// See [`Kind::carries_delivery_id`].
    fn carries_delivery_id(&self) -> bool;
    /// See [`Kind::in_order`].
    fn in_order(&self) -> bool;
}

impl Capabilities for DestinationConfig {
    fn api_mode(&self) -> bool {
        of(self.kind).api_mode(self)
    }
    fn threaded(&self) -> bool {
        of(self.kind).threaded(self)
    }
    fn carries_delivery_id(&self) -> bool {
        of(self.kind).carries_delivery_id(self)
    }
    fn in_order(&self) -> bool {
        of(self.kind).in_order()
    }
}

/// `kind.in_order()` where only the kind is at hand.
pub trait KindCapabilities {
    /// See [`Kind::in_order`].
    fn in_order(self) -> bool;
}

impl KindCapabilities for DestinationKind {
    fn in_order(self) -> bool {
        of(self).in_order()
    }
}

#[cfg(test)]
mod tests;
