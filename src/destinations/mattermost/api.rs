//! Mattermost's REST API (`/api/v4/posts`): the post a call sends, and
//! how Mattermost answers.

use crate::destinations::common::classify_http;
use crate::destinations::{ApiError, Outcome, Posted};
use crate::http::{excerpt, retry_after};
use serde_json::{json, Value};
use std::time::Duration;

/// A rendered message (an incoming-webhook document: `text`,
/// `attachments`) as a Mattermost post (`message`, `props.attachments`).
pub fn mattermost_post(message: &Value) -> Value {
    let mut post = json!({
        "message": message.get("text").cloned().unwrap_or(json!("")),
    });
    if let Some(a) = message.get("attachments") {
        post["props"] = json!({ "attachments": a });
    }
    post
}

/// Reads Mattermost's answer: the post, else an HTTP error.
pub fn mattermost_answer(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    update: bool,
) -> Result<Posted, ApiError> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let message = parsed
        .as_ref()
        .and_then(|v| v.get("message")?.as_str())
        .map(|m| excerpt(m.as_bytes()))
        .unwrap_or_else(|| excerpt(body));
    let error = format!("Mattermost: HTTP {status}: {message}");
    match status {
        200 | 201 => {}
        404 if update => return Err(ApiError::RootGone(error)),
        429 => {
            // Mattermost says when its window resets, in seconds.
            let reset = headers
                .get("x-ratelimit-reset")
                .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
                .map(|s| Duration::from_secs(s.min(3600)));
            return Err(ApiError::Failed(Outcome::Retry {
                status: Some(429),
                error,
                retry_after: retry_after(headers).or(reset),
                throttled: true,
            }));
        }
        401 | 403 => {
            return Err(ApiError::Failed(Outcome::Permanent {
                status: Some(status),
                error,
            }))
        }
        _ => {
            return Err(ApiError::Failed(
                match classify_http(status, body, retry_after(headers)) {
                    Outcome::Retry {
                        retry_after,
                        throttled,
                        ..
                    } => Outcome::Retry {
                        status: Some(status),
                        error,
                        retry_after,
                        throttled,
                    },
                    _ => Outcome::Permanent {
                        status: Some(status),
                        error,
                    },
                },
            ))
        }
    }
    let field = |k: &str| {
        parsed
            .as_ref()?
            .get(k)?
            .as_str()
            .filter(|s| !s.is_empty() && s.len() <= 64)
            .map(str::to_owned)
    };
    match (field("channel_id"), field("id")) {
        (Some(channel), Some(ts)) => Ok(Posted { channel, ts }),
        _ => Err(ApiError::Failed(Outcome::Retry {
            status: Some(status),
            error: "Mattermost's answer has no post id".into(),
            retry_after: None,
            throttled: false,
        })),
    }
}
