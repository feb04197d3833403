//! Slack's Web API and Mattermost's REST API (API mode, a token instead of
//! an incoming webhook): post a message (a root, or a reply in a thread)
//! and edit one, with each service's way of saying no.
//!
//! Slack answers HTTP 200 with `{"ok": false, "error": …}` for most
//! failures: the error code decides (a revoked token or a missing channel
//! is a dead letter, `ratelimited` pauses the destination, an internal
//! error is retried, `message_not_found` on an edit means the root was
//! deleted). Mattermost uses HTTP statuses. An answer that is not the
//! JSON expected (no `ts`, no `id`) is retried, never recorded.

use super::{classify, HttpRequest, Outcome, Sink, DEFAULT_TIMEOUT, ERROR_BODY_CAP};
use crate::config::DestinationKind;
use crate::enrich::error_chain;
use crate::http::{excerpt, read_capped, retry_after};
use crate::secret::scrub;
use serde_json::{json, Value};
use std::time::Duration;

/// A message the service accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    /// Slack's channel id, Mattermost's `channel_id`.
    pub channel: String,
    /// Slack's `ts`, Mattermost's post id.
    pub ts: String,
}

/// Why a call did not do what was asked.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// Retry, dead letter or pause, as the outcome says.
    Failed(Outcome),
    /// The message to edit is gone (deleted): post a new root instead.
    RootGone(String),
}

impl ApiError {
    /// The outcome of a delivery that stopped here.
    pub fn outcome(self) -> Outcome {
        match self {
            ApiError::Failed(o) => o,
            ApiError::RootGone(error) => Outcome::Permanent {
                status: None,
                error,
            },
        }
    }
}

/// One API call.
pub enum Call<'a> {
    /// A new message; in `thread` (the root's ts or post id) a reply,
    /// also shown in the channel with `broadcast` (Slack).
    Post {
        message: &'a Value,
        thread: Option<&'a str>,
        broadcast: bool,
    },
    /// Replaces the text of message `ts` in `channel`.
    Update {
        channel: &'a str,
        ts: &'a str,
        message: &'a Value,
    },
}

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

impl Sink {
    /// The request a call becomes (credential included; `preview` hides it).
    pub fn api_request(&self, call: &Call) -> Result<HttpRequest, String> {
        let dest = self.destination();
        let base = self.url.clone().ok_or("the destination has no API URL")?;
        let token = dest.token.as_ref().ok_or("no token")?;
        let at = |path: &str| {
            reqwest::Url::parse(&format!("{}{path}", base.as_str().trim_end_matches('/')))
                .map_err(|e| format!("the request URL is invalid ({e})"))
        };
        let (method, url, body) = match (dest.kind, call) {
            (
                DestinationKind::Slack,
                Call::Post {
                    message,
                    thread,
                    broadcast,
                },
            ) => {
                let mut body = slack_message(message);
                body["channel"] = json!(dest.channel.as_deref().unwrap_or_default());
                if let Some(ts) = thread {
                    body["thread_ts"] = json!(ts);
                    if *broadcast {
                        body["reply_broadcast"] = json!(true);
                    }
                }
                (reqwest::Method::POST, at("/chat.postMessage")?, body)
            }
            (
                DestinationKind::Slack,
                Call::Update {
                    channel,
                    ts,
                    message,
                },
            ) => {
                let mut body = slack_message(message);
                body["channel"] = json!(channel);
                body["ts"] = json!(ts);
                (reqwest::Method::POST, at("/chat.update")?, body)
            }
            (
                DestinationKind::Mattermost,
                Call::Post {
                    message, thread, ..
                },
            ) => {
                let mut body = mattermost_post(message);
                body["channel_id"] = json!(dest.channel_id.as_deref().unwrap_or_default());
                if let Some(root) = thread {
                    body["root_id"] = json!(root);
                }
                (reqwest::Method::POST, at("/api/v4/posts")?, body)
            }
            (DestinationKind::Mattermost, Call::Update { ts, message, .. }) => {
                let id: String = url::form_urlencoded::byte_serialize(ts.as_bytes()).collect();
                (
                    reqwest::Method::PUT,
                    at(&format!("/api/v4/posts/{id}/patch"))?,
                    mattermost_post(message),
                )
            }
            (kind, _) => return Err(format!("{} has no API mode", kind.as_str())),
        };
        let mut request = HttpRequest {
            method,
            url,
            body: body.to_string(),
            headers: vec![(
                "content-type".into(),
                "application/json; charset=utf-8".into(),
                false,
            )],
        };
        request.authorize(format!("Bearer {}", token.expose()));
        Ok(request)
    }

    /// Makes one call and reads the answer.
    pub async fn api_call(&self, call: Call<'_>) -> Result<Posted, ApiError> {
        let super::Transport::Http(http) = &self.transport else {
            return Err(ApiError::Failed(Outcome::Permanent {
                status: None,
                error: "not an HTTP destination".into(),
            }));
        };
        let dest = self.destination();
        let prepared = self.api_request(&call).map_err(|error| {
            ApiError::Failed(Outcome::Permanent {
                status: None,
                error,
            })
        })?;
        self.reachable(&prepared.url).map_err(ApiError::Failed)?;
        let mut request = http
            .request(prepared.method, prepared.url)
            .body(prepared.body)
            .timeout(dest.timeout.unwrap_or(DEFAULT_TIMEOUT));
        for (name, value, _) in prepared.headers {
            request = request.header(name, value);
        }
        let resp = match request.send().await {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else {
                    "request failed"
                };
                return Err(ApiError::Failed(Outcome::Retry {
                    status: None,
                    error: format!("{what}: {}", scrub(&error_chain(&e), &dest.secrets())),
                    retry_after: None,
                    throttled: false,
                }));
            }
        };
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = read_capped(resp, ERROR_BODY_CAP).await.unwrap_or_default();
        let update = matches!(call, Call::Update { .. });
        let answer = match dest.kind {
            DestinationKind::Slack => slack_answer(status, &headers, &body, update),
            _ => mattermost_answer(status, &headers, &body, update),
        };
        // Whatever a service echoes back, a credential never leaves here.
        answer.map_err(|e| match e {
            ApiError::Failed(o) => ApiError::Failed(scrub_outcome(o, &dest.secrets())),
            gone => gone,
        })
    }
}

fn scrub_outcome(o: Outcome, secrets: &[&crate::secret::Secret]) -> Outcome {
    match o {
        Outcome::Retry {
            status,
            error,
            retry_after,
            throttled,
        } => Outcome::Retry {
            status,
            error: scrub(&error, secrets),
            retry_after,
            throttled,
        },
        Outcome::Permanent { status, error } => Outcome::Permanent {
            status,
            error: scrub(&error, secrets),
        },
        d => d,
    }
}

/// The fields of a rendered message Slack's `chat.postMessage` and
/// `chat.update` take (a template may have produced more).
fn slack_message(message: &Value) -> Value {
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

/// A rendered message (an incoming-webhook document: `text`,
/// `attachments`) as a Mattermost post (`message`, `props.attachments`).
fn mattermost_post(message: &Value) -> Value {
    let mut post = json!({
        "message": message.get("text").cloned().unwrap_or(json!("")),
    });
    if let Some(a) = message.get("attachments") {
        post["props"] = json!({ "attachments": a });
    }
    post
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
        return Err(ApiError::Failed(classify(
            DestinationKind::Slack,
            status,
            body,
            after,
        )));
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
                match classify(
                    DestinationKind::Mattermost,
                    status,
                    body,
                    retry_after(headers),
                ) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderMap;

    fn slack(status: u16, body: &str, update: bool) -> Result<Posted, ApiError> {
        slack_answer(status, &HeaderMap::new(), body.as_bytes(), update)
    }

    #[test]
    fn slack_answers_are_read_by_their_error_code() {
        assert_eq!(
            slack(200, r#"{"ok":true,"channel":"C1","ts":"1.2"}"#, false),
            Ok(Posted {
                channel: "C1".into(),
                ts: "1.2".into()
            })
        );
        for code in [
            "invalid_auth",
            "token_revoked",
            "channel_not_found",
            "not_in_channel",
            "missing_scope",
            "account_inactive",
        ] {
            let r = slack(200, &format!(r#"{{"ok":false,"error":"{code}"}}"#), false);
            assert!(
                matches!(&r, Err(ApiError::Failed(Outcome::Permanent { error, .. })) if error == &format!("Slack: {code}")),
                "{code}: {r:?}"
            );
        }
        for code in ["internal_error", "fatal_error"] {
            let r = slack(200, &format!(r#"{{"ok":false,"error":"{code}"}}"#), false);
            assert!(
                matches!(
                    r,
                    Err(ApiError::Failed(Outcome::Retry {
                        throttled: false,
                        ..
                    }))
                ),
                "{code}"
            );
        }
        assert!(matches!(
            slack(200, r#"{"ok":false,"error":"ratelimited"}"#, false),
            Err(ApiError::Failed(Outcome::Retry {
                throttled: true,
                ..
            }))
        ));
        assert!(matches!(
            slack(429, r#"{"ok":false,"error":"ratelimited"}"#, false),
            Err(ApiError::Failed(Outcome::Retry {
                throttled: true,
                ..
            }))
        ));
        assert!(matches!(
            slack(503, "", false),
            Err(ApiError::Failed(Outcome::Retry { .. }))
        ));
        // A deleted root, only when editing.
        assert!(matches!(
            slack(200, r#"{"ok":false,"error":"message_not_found"}"#, true),
            Err(ApiError::RootGone(_))
        ));
        // Garbage is retried, never a thread keyed on it.
        for garbage in [
            "<html>oops</html>",
            r#"{"ok":true}"#,
            r#"{"ok":true,"channel":"C1","ts":""}"#,
        ] {
            assert!(
                matches!(
                    slack(200, garbage, false),
                    Err(ApiError::Failed(Outcome::Retry { .. }))
                ),
                "{garbage}"
            );
        }
    }

    #[test]
    fn mattermost_answers_are_read_by_status() {
        let mm = |status: u16, body: &str, update: bool| {
            mattermost_answer(status, &HeaderMap::new(), body.as_bytes(), update)
        };
        assert_eq!(
            mm(201, r#"{"id":"p1","channel_id":"c1"}"#, false),
            Ok(Posted {
                channel: "c1".into(),
                ts: "p1".into()
            })
        );
        assert!(matches!(
            mm(401, r#"{"message":"Invalid or expired session"}"#, false),
            Err(ApiError::Failed(Outcome::Permanent { .. }))
        ));
        assert!(matches!(mm(404, "{}", true), Err(ApiError::RootGone(_))));
        assert!(matches!(
            mm(404, "{}", false),
            Err(ApiError::Failed(Outcome::Permanent { .. }))
        ));
        let mut h = HeaderMap::new();
        h.insert("x-ratelimit-reset", "3".parse().unwrap());
        assert_eq!(
            mattermost_answer(429, &h, b"{}", false),
            Err(ApiError::Failed(Outcome::Retry {
                status: Some(429),
                error: "Mattermost: HTTP 429: {}".into(),
                retry_after: Some(Duration::from_secs(3)),
                throttled: true
            }))
        );
        assert!(matches!(
            mm(502, "", false),
            Err(ApiError::Failed(Outcome::Retry { .. }))
        ));
        assert!(matches!(
            mm(201, "not json", false),
            Err(ApiError::Failed(Outcome::Retry { .. }))
        ));
    }
}
