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

use super::sink::{HttpRequest, Outcome, Sink, DEFAULT_TIMEOUT, ERROR_BODY_CAP};
use crate::enrich::error_chain;
use crate::http::read_capped;
use crate::secret::scrub;
use serde_json::Value;

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
        let (method, path, body) = self.kind().api_call(dest, call)?;
        let url = at(&path)?;
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
        let super::sink::Transport::Http(http) = &self.transport else {
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
        let answer = self.kind().api_answer(status, &headers, &body, update);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destinations::mattermost::api::mattermost_answer;
    use crate::destinations::slack::api::slack_answer;
    use reqwest::header::HeaderMap;
    use std::time::Duration;

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
