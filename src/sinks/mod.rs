//! Sinks: the HTTP request to one destination and how its answer is
//! classified. Any 2xx is delivered; connect errors, timeouts, 408, 429 and
//! 5xx are worth retrying (honouring `Retry-After`); other 4xx are
//! permanent. Target-specific quirks live in [`classify`].
//!
//! Errors never contain the webhook URL: its path or query is the secret.

use crate::config::{DestinationConfig, DestinationKind};
use crate::enrich::error_chain;
use crate::http::{excerpt, read_capped, retry_after};
use crate::secret::scrub;
use std::time::{Duration, Instant};

/// How much of an error answer we keep for logs and dead letters.
const ERROR_BODY_CAP: usize = 16 * 1024;

/// Default per-request timeout when a destination sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Delivered {
        status: u16,
    },
    /// Worth trying again; `retry_after` is the target's own pacing hint.
    Retry {
        status: Option<u16>,
        error: String,
        retry_after: Option<Duration>,
        /// The target is rate-limiting: pace the whole destination.
        throttled: bool,
    },
    Permanent {
        status: u16,
        error: String,
    },
}

/// Sends one rendered payload.
pub async fn send(
    http: &reqwest::Client,
    dest: &DestinationConfig,
    payload: &str,
) -> (Outcome, Duration) {
    let started = Instant::now();
    let url = dest.url();
    let result = http
        .post(url.expose())
        .header("content-type", "application/json")
        .body(payload.to_owned())
        .timeout(dest.timeout.unwrap_or(DEFAULT_TIMEOUT))
        .send()
        .await;
    let outcome = match result {
        Err(e) => {
            let what = if e.is_timeout() {
                "timed out"
            } else {
                "request failed"
            };
            Outcome::Retry {
                status: None,
                error: format!("{what}: {}", scrub(&error_chain(&e), &[url])),
                retry_after: None,
                throttled: false,
            }
        }
        Ok(resp) => {
            let status = resp.status().as_u16();
            let after = retry_after(resp.headers());
            let location = resp.headers().contains_key(reqwest::header::LOCATION);
            let body = read_capped(resp, ERROR_BODY_CAP).await.unwrap_or_default();
            let mut outcome = classify(dest.kind, status, &body, after);
            if location && (300..400).contains(&status) {
                outcome = Outcome::Permanent {
                    status,
                    error: format!("HTTP {status}: the webhook URL redirects; redirects are not followed (fix the URL)"),
                };
            }
            outcome
        }
    };
    (outcome, started.elapsed())
}

/// Classifies an answer. Pure, so each target's quirks are unit-tested.
pub fn classify(
    kind: DestinationKind,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Outcome {
    let text = excerpt(body);
    // Legacy Teams connectors report throttling inside a 200/4xx body.
    if kind == DestinationKind::TeamsLegacy && text.contains("HTTP error 429") {
        return Outcome::Retry {
            status: Some(429),
            error: format!("HTTP {status}: {text}"),
            retry_after,
            throttled: true,
        };
    }
    // Discord says how long to wait in its JSON body as well.
    let retry_after = match (kind, status, retry_after) {
        (DestinationKind::Discord, 429, None) => serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("retry_after")?.as_f64())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(3600.0))),
        _ => retry_after,
    };
    let error = if text.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {text}")
    };
    match status {
        200..=299 => Outcome::Delivered { status },
        408 | 425 | 500..=599 => Outcome::Retry {
            status: Some(status),
            error,
            retry_after,
            throttled: false,
        },
        429 => Outcome::Retry {
            status: Some(status),
            error,
            retry_after,
            throttled: true,
        },
        _ => Outcome::Permanent { status, error },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use DestinationKind::*;

    #[test]
    fn answers_are_classified() {
        assert_eq!(
            classify(Teams, 202, b"", None),
            Outcome::Delivered { status: 202 }
        );
        assert_eq!(
            classify(Slack, 200, b"ok", None),
            Outcome::Delivered { status: 200 }
        );
        assert_eq!(
            classify(TeamsLegacy, 200, b"1", None),
            Outcome::Delivered { status: 200 }
        );
        assert!(matches!(
            classify(
                TeamsLegacy,
                200,
                b"Microsoft Teams endpoint returned HTTP error 429 with ContextId",
                None
            ),
            Outcome::Retry {
                throttled: true,
                ..
            }
        ));
        assert!(matches!(
            classify(Slack, 429, b"rate_limited", Some(Duration::from_secs(2))),
            Outcome::Retry {
                throttled: true,
                retry_after: Some(_),
                ..
            }
        ));
        assert!(matches!(
            classify(Slack, 500, b"rollup_error", None),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            classify(Mattermost, 408, b"", None),
            Outcome::Retry { .. }
        ));
        assert_eq!(
            classify(Slack, 404, b"channel_not_found", None),
            Outcome::Permanent {
                status: 404,
                error: "HTTP 404: channel_not_found".into()
            }
        );
        assert!(matches!(
            classify(Slack, 410, b"channel_is_archived", None),
            Outcome::Permanent { .. }
        ));
        assert!(matches!(
            classify(
                Teams,
                400,
                b"{\"error\":{\"code\":\"TriggerInputSchemaMismatch\"}}",
                None
            ),
            Outcome::Permanent { status: 400, .. }
        ));
    }
}
