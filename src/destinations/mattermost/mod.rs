//! Mattermost: an incoming webhook (Slack-style attachment), or the REST
//! API with a bot or personal access token (API mode: one thread per
//! alert, buttons answered in the chat).

pub mod api;
pub mod fit;
pub mod render;

use super::{ApiError, Call, Kind, Posted, Reach};
use crate::config::DestinationConfig;
use crate::render::Facts;
use serde_json::Value;

pub struct Mattermost;

impl Kind for Mattermost {
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
        self.api_mode(dest)
    }

    fn api_mode(&self, dest: &DestinationConfig) -> bool {
        dest.token.is_some()
    }

    fn api_call(
        &self,
        dest: &DestinationConfig,
        call: &Call,
    ) -> Result<(reqwest::Method, String, Value), String> {
        Ok(match call {
            Call::Post {
                message, thread, ..
            } => {
                let mut body = api::mattermost_post(message);
                body["channel_id"] =
                    serde_json::json!(dest.channel_id.as_deref().unwrap_or_default());
                if let Some(root) = thread {
                    body["root_id"] = serde_json::json!(root);
                }
                (reqwest::Method::POST, "/api/v4/posts".into(), body)
            }
            Call::Update { ts, message, .. } => {
                let id: String = url::form_urlencoded::byte_serialize(ts.as_bytes()).collect();
                (
                    reqwest::Method::PUT,
                    format!("/api/v4/posts/{id}/patch"),
                    api::mattermost_post(message),
                )
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
        api::mattermost_answer(status, headers, body, update)
    }

    fn reach(&self, dest: &DestinationConfig) -> Option<Reach> {
        match &dest.server_url {
            Some(u) => Some(Reach::Url("server_url", u.clone())),
            None => dest
                .url
                .as_ref()
                .map(|u| Reach::Url("url", u.expose().to_owned())),
        }
    }
}
