//! Slack: an incoming webhook (Block Kit in an attachment with the
//! urgency colour), or the Web API with a bot token (API mode: one thread
//! per alert, its root kept current, one-click buttons with a signing
//! secret).

pub mod api;
pub mod fit;
pub mod render;

use super::{ApiError, Call, Kind, Posted, Reach};
use crate::config::DestinationConfig;
use crate::render::thread::Markup;
use crate::render::Facts;
use serde_json::{json, Value};

pub struct Slack;

impl Kind for Slack {
    fn render(&self, facts: &Facts, _doc: &dyn Fn() -> Value) -> Value {
        render::render(facts)
    }

    fn fit(&self, v: &mut Value) {
        fit::fit(v)
    }

    fn compact_updates(&self) -> bool {
        true
    }

    fn action_buttons(&self) -> bool {
        true
    }

    fn interactive(&self, dest: &DestinationConfig) -> bool {
        self.api_mode(dest) && dest.signing_secret.is_some()
    }

    fn api_mode(&self, dest: &DestinationConfig) -> bool {
        dest.token.is_some()
    }

    fn markup(&self) -> Markup {
        Markup::Slack
    }

    fn api_call(
        &self,
        dest: &DestinationConfig,
        call: &Call,
    ) -> Result<(reqwest::Method, String, Value), String> {
        Ok(match call {
            Call::Post {
                message,
                thread,
                broadcast,
            } => {
                let mut body = api::slack_message(message);
                body["channel"] = json!(dest.channel.as_deref().unwrap_or_default());
                if let Some(ts) = thread {
                    body["thread_ts"] = json!(ts);
                    if *broadcast {
                        body["reply_broadcast"] = json!(true);
                    }
                }
                (reqwest::Method::POST, "/chat.postMessage".into(), body)
            }
            Call::Update {
                channel,
                ts,
                message,
            } => {
                let mut body = api::slack_message(message);
                body["channel"] = json!(channel);
                body["ts"] = json!(ts);
                (reqwest::Method::POST, "/chat.update".into(), body)
            }
        })
    }

    fn api_answer(
        &self,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
        update: bool,
    ) -> Result<Posted, ApiError> {
        api::slack_answer(status, headers, body, update)
    }

    fn reach(&self, dest: &DestinationConfig) -> Option<Reach> {
        if self.api_mode(dest) {
            // Without api_url it goes to Slack's own endpoint.
            return dest.api_url.clone().map(|u| Reach::Url("api_url", u));
        }
        dest.url
            .as_ref()
            .map(|u| Reach::Url("url", u.expose().to_owned()))
    }
}
