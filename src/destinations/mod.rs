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
pub(crate) use payload::trial;
pub use payload::{event_payload, own_message, payload, render};

use crate::config::{DestinationConfig, DestinationKind};
use crate::render::thread::Markup;
use crate::render::{Escape, Facts};
use serde_json::Value;
use std::time::Duration;

/// The kind of a destination: everything that differs from one chat,
/// paging or mail service to the next. Defaults are what most kinds do.
pub trait Kind: Sync {
    /// The built-in message. `doc` is the hookrelay message document
    /// (`render::context`), built only when a kind needs it.
    fn render(&self, facts: &Facts, doc: &dyn Fn() -> Value) -> Value;

    /// The built-in message within the service's size limits, serialized:
    /// what the spool keeps. A kind may take a faster road to the same text.
    fn render_string(
        &self,
        dest: &DestinationConfig,
        facts: &Facts,
        doc: &dyn Fn() -> Value,
    ) -> String {
        let _ = dest;
        let mut v = self.render(facts, doc);
        self.fit(&mut v);
        v.to_string()
    }

    /// Cuts a built-in message to the service's size limits.
    fn fit(&self, v: &mut Value) {
        let _ = v;
    }

    /// The message with the destination's templates, when the kind
    /// renders them itself (e-mail: a subject and an HTML body); `None`:
    /// the body template's output is the JSON the service takes.
    fn templated(
        &self,
        templates: &crate::render::Templates,
        facts: &Facts,
        ctx: &Value,
    ) -> Option<Result<String, crate::render::RenderError>> {
        let _ = (templates, facts, ctx);
        None
    }

    /// How the operator's template escapes what it interpolates.
    fn template_escape(&self) -> Escape {
        Escape::Json
    }

    /// Whether it takes a `subject` template (e-mail).
    fn takes_subject(&self) -> bool {
        false
    }

    /// A chat service, where a later event about an alert is a compact
    /// card (not e-mail, the webhook document or the paging kinds, which
    /// follow their own rules).
    fn compact_updates(&self) -> bool {
        false
    }

    /// Whether its messages carry action buttons (the paging kinds have
    /// their own acknowledge; Matrix and ntfy have none).
    fn action_buttons(&self) -> bool {
        false
    }

    /// Whether a button click is answered inside the chat (Slack with a
    /// signing secret, Mattermost, both in API mode) instead of on a page.
    fn interactive(&self, dest: &DestinationConfig) -> bool {
        let _ = dest;
        false
    }

    /// Through the service's API with a token (which returns message ids,
    /// so messages can be threaded and edited) instead of a webhook.
    fn api_mode(&self, dest: &DestinationConfig) -> bool {
        let _ = dest;
        false
    }

    /// One conversation per alert: API mode with `thread` not turned off.
    fn threaded(&self, dest: &DestinationConfig) -> bool {
        self.api_mode(dest) && dest.thread != Some(false)
    }

    /// An incident's trigger, acknowledge and resolve go out in order: one
    /// at a time unless the destination says otherwise, and never ahead of
    /// their routing.
    fn in_order(&self) -> bool {
        false
    }

    /// Whether its messages carry the delivery's id, which every retry
    /// must repeat (so the message cannot go out before the delivery is
    /// recorded): a signed message's `webhook-id`, an e-mail's
    /// Message-ID, a Matrix transaction id.
    fn carries_delivery_id(&self, dest: &DestinationConfig) -> bool {
        dest.secret.is_some()
    }

    /// Sent over SMTP instead of HTTP.
    fn smtp(&self) -> bool {
        false
    }

    /// What its request adds to or changes in the plain JSON POST of the
    /// stored payload to `url` (credentials, endpoint, method). `id` is
    /// the delivery's stable message id.
    fn request(
        &self,
        dest: &DestinationConfig,
        request: &mut HttpRequest,
        id: &str,
        payload: &str,
    ) -> Result<(), String> {
        let _ = (dest, request, id, payload);
        Ok(())
    }

    /// Classifies an HTTP answer. Pure, so each service's quirks are
    /// unit-tested.
    fn classify(&self, status: u16, body: &[u8], retry_after: Option<Duration>) -> Outcome {
        common::classify_http(status, body, retry_after)
    }

    /// Its API mode (Slack's Web API, Mattermost's REST API): the request
    /// a call becomes, as (method, path under the API base, JSON body).
    fn api_call(
        &self,
        dest: &DestinationConfig,
        call: &Call,
    ) -> Result<(reqwest::Method, String, Value), String> {
        let _ = (dest, call);
        Err("this kind has no API mode".into())
    }

    /// Its API's answer to a call.
    fn api_answer(
        &self,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
        update: bool,
    ) -> Result<Posted, ApiError> {
        let _ = (headers, update);
        Err(ApiError::Failed(self.classify(status, body, None)))
    }

    /// The markup of a thread's replies.
    fn markup(&self) -> Markup {
        Markup::Markdown
    }

    /// Where a tenant's destination connects, to check before it is
    /// stored: a URL or an SMTP host and port, with the key that sets it.
    fn reach(&self, dest: &DestinationConfig) -> Option<Reach> {
        dest.url
            .as_ref()
            .map(|u| Reach::Url("url", u.expose().to_owned()))
    }
}

/// Where a destination connects (see [`Kind::reach`]).
pub enum Reach {
    /// The key that sets it, and the URL.
    Url(&'static str, String),
    /// The key that sets it, the host and the port.
    Host(&'static str, String, u16),
}

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
