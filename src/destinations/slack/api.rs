//! Slack's Web API (`chat.postMessage`, `chat.update`): the message a
//! call sends, and how Slack answers (`ok`, else its error code).

use crate::destinations::common::classify_http;
use crate::destinations::{ApiError, Outcome, Posted};
use crate::http::{excerpt, retry_after};
use serde_json::{json, Value};

/// Slack's errors that no retry will fix: the delivery is a dead letter
/// carrying the code.
const SLACK_PERMANENT: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "account_inactive",
    "not_in_channel",
    "channel_not_found",
    "is_archived",
    "missing_scope",
    "no_permission",
    "ekm_access_denied",
    "restricted_action",
    "invalid_blocks",
    "invalid_attachments",
    "msg_too_long",
    "no_text",
    "too_many_attachments",
    "invalid_arguments",
    "invalid_arg_name",
    "invalid_json",
    "json_not_object",
    "team_access_not_granted",
];

/// Slack's errors on an edit that mean the root is gone or can no longer
/// be edited: a new root takes its place.
const SLACK_ROOT_GONE: &[&str] = &[
    "message_not_found",
    "cant_update_message",
    "edit_window_closed",
];

/// The fields of a rendered message Slack's `chat.postMessage` and
/// `chat.update` take (a template may have produced more).
pub fn slack_message(message: &Value) -> Value {
    let mut body = json!({});
    for key in [
        "text",
        "blocks",
        "attachments",
        "mrkdwn",
        "unfurl_links",
        "unfurl_media",
    ] {
        if let Some(v) = message.get(key) {
            body[key] = v.clone();
        }
    }
    if body.get("unfurl_links").is_none() {
        body["unfurl_links"] = json!(false);
    }
    body
}

/// Reads Slack's answer: `ok`, else its error code.
pub fn slack_answer(
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
    update: bool,
) -> Result<Posted, ApiError> {
    let after = retry_after(headers);
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let code = parsed
        .as_ref()
        .and_then(|v| v.get("error")?.as_str())
        .map(str::to_owned);
    if status == 429 || code.as_deref() == Some("ratelimited") {
        return Err(ApiError::Failed(Outcome::Retry {
            status: Some(status),
            error: format!("Slack: {}", code.as_deref().unwrap_or("rate limited")),
            retry_after: after,
            throttled: true,
        }));
    }
    if status != 200 {
        return Err(ApiError::Failed(classify_http(status, body, after)));
    }
    let Some(v) = parsed else {
        return Err(ApiError::Failed(Outcome::Retry {
            status: Some(status),
            error: format!(
                "Slack answered something that is not JSON: {}",
                excerpt(body)
            ),
            retry_after: None,
            throttled: false,
        }));
    };
    if v.get("ok").and_then(Value::as_bool) != Some(true) {
        let code = code.unwrap_or_else(|| "no ok and no error in the answer".into());
        if update && SLACK_ROOT_GONE.contains(&code.as_str()) {
            return Err(ApiError::RootGone(format!("Slack: {code}")));
        }
        let error = format!("Slack: {code}");
        return Err(ApiError::Failed(
            if SLACK_PERMANENT.contains(&code.as_str()) {
                Outcome::Permanent {
                    status: Some(status),
                    error,
                }
            } else {
                // internal_error, fatal_error, service_unavailable,
                // request_timeout and codes Slack adds later.
                Outcome::Retry {
                    status: Some(status),
                    error,
                    retry_after: after,
                    throttled: false,
                }
            },
        ));
    }
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 64)
            .map(str::to_owned)
    };
    match (text("channel"), text("ts")) {
        (Some(channel), Some(ts)) => Ok(Posted { channel, ts }),
        _ => Err(ApiError::Failed(Outcome::Retry {
            status: Some(status),
            error: "Slack's answer has no channel or ts".into(),
            retry_after: None,
            throttled: false,
        })),
    }
}
