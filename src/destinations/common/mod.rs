//! What every kind's way out shares: the HTTP request and its sending,
//! the classification of answers by status ([`sink`]), and the chat API
//! client of the kinds with an API mode, Slack and Mattermost
//! ([`chat_api`]: post, reply, edit).

pub mod chat_api;
pub mod sink;

pub use chat_api::{ApiError, Call, Posted};
pub use sink::{
    classify, classify_http, retry_after_in_body, HttpRequest, Outcome, Sink, DEFAULT_TIMEOUT,
};

/// The stored payload as JSON, for a kind whose request reads it.
pub fn stored(payload: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(payload).map_err(|e| format!("the stored message is not JSON ({e})"))
}

/// A request URL built by a kind, parsed.
pub fn parse_url(url: &str) -> Result<reqwest::Url, String> {
    reqwest::Url::parse(url).map_err(|e| format!("the request URL is invalid ({e})"))
}
