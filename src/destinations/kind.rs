//! What a destination kind is ([`Kind`]) and where it connects ([`Reach`]):
//! the contract every kind's folder implements, below them all.

use super::common::{ApiError, Call, HttpRequest, Outcome, Posted};
use crate::config::DestinationConfig;
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
        super::common::classify_http(status, body, retry_after)
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
