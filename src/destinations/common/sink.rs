//! A destination's way out: the HTTP request a stored payload becomes
//! (the kind adds its part, [`Kind::request`]) or the SMTP send, and how an
//! answer is classified. Any 2xx is delivered; connect errors, timeouts,
//! 408, 429 and 5xx are worth retrying (honouring `Retry-After`); other
//! 4xx are permanent. A kind's own quirks are its [`Kind::classify`].
//!
//! Errors never contain the webhook URL: its path or query is the secret.

use super::chat_api::Call;
use crate::config::DestinationConfig;
use crate::destinations::email::smtp;
use crate::destinations::{of, Capabilities, Kind};
use crate::enrich::error_chain;
use crate::http::{excerpt, read_capped, retry_after};
use crate::secret::{scrub, Secret};
use crate::signing::standard_webhooks_sign;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How much of an error answer we keep for logs and dead letters.
pub(crate) const ERROR_BODY_CAP: usize = 16 * 1024;

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
        /// The HTTP status or SMTP reply code, when there was an answer.
        status: Option<u16>,
        error: String,
    },
}

/// One destination's way out: an HTTP client, or an SMTP connection pool.
pub struct Sink {
    dest: Arc<DestinationConfig>,
    /// What its kind does.
    kind: &'static dyn Kind,
    pub(crate) transport: Transport,
    /// The destination's URL, parsed once (not on every request).
    pub(crate) url: Option<reqwest::Url>,
}

pub(crate) enum Transport {
    Http(reqwest::Client),
    Smtp(Box<smtp::Smtp>),
    /// The destination cannot be set up (reported on every attempt).
    Broken(String),
}

impl HttpRequest {
    /// Adds the credential header (hidden by `preview`).
    pub fn authorize(&mut self, value: String) {
        self.headers.push(("authorization".into(), value, true));
    }
}

/// One outgoing HTTP request, as sent (and as `preview` prints it).
pub struct HttpRequest {
    pub method: reqwest::Method,
    /// Where it goes: a secret (`preview` prints [`Sink::target`] instead).
    pub url: reqwest::Url,
    pub body: String,
    /// Header name, value, and whether the value is the operator's (and
    /// possibly a credential: `preview` hides it).
    pub headers: Vec<(String, String, bool)>,
}

impl Sink {
    pub fn new(dest: Arc<DestinationConfig>, http: reqwest::Client, concurrency: usize) -> Sink {
        let kind = of(dest.kind);
        let transport = if kind.smtp() {
            match smtp::Smtp::new(&dest, dest.timeout.unwrap_or(DEFAULT_TIMEOUT), concurrency) {
                Ok(s) => Transport::Smtp(Box::new(s)),
                Err(e) => Transport::Broken(e),
            }
        } else {
            // A tenant's destination resolves through the egress guard:
            // a client of its own (its connections are its own anyway).
            Transport::Http(match &dest.tenant {
                Some(mark) => crate::http::guarded_client(mark.egress.clone()),
                None => http,
            })
        };
        let url = dest
            .url
            .as_ref()
            .and_then(|u| reqwest::Url::parse(u.expose()).ok());
        Sink {
            dest,
            kind,
            transport,
            url,
        }
    }

    pub fn destination(&self) -> &DestinationConfig {
        &self.dest
    }

    /// What its kind does.
    pub fn kind(&self) -> &'static dyn Kind {
        self.kind
    }

    /// Where messages go, safe to print: a redacted URL or `smtp://host:port`.
    pub fn target(&self) -> String {
        match &self.transport {
            Transport::Smtp(s) => s.target.clone(),
            _ => self
                .dest
                .url
                .as_ref()
                .map(Secret::redacted)
                .unwrap_or_default(),
        }
    }

    /// The request a stored payload becomes: JSON to the destination's URL
    /// with the operator's own headers and, for a webhook with a `secret`,
    /// the Standard Webhooks signature; the paging and push kinds add their
    /// credential and pick their endpoint here (the spool never holds a
    /// key). `id` is the delivery's stable message id (a Matrix retry
    /// reuses it as its transaction id, so it never posts twice).
    pub fn http_request(
        &self,
        id: &str,
        payload: &str,
        timestamp: i64,
    ) -> Result<HttpRequest, String> {
        let dest = &*self.dest;
        // Parsed once when the sink was built (this is every delivery's path).
        let base = match &self.url {
            Some(url) => url.clone(),
            None => {
                let raw = dest.url.as_ref().ok_or("the destination has no URL")?;
                reqwest::Url::parse(raw.expose())
                    .map_err(|e| format!("the URL is invalid ({e})"))?
            }
        };
        let mut headers = vec![(
            "content-type".to_owned(),
            "application/json".to_owned(),
            false,
        )];
        for (name, value) in &dest.headers {
            headers.push((name.to_ascii_lowercase(), value.expose().to_owned(), true));
        }
        if let Some(secret) = &dest.secret {
            if let Some(signature) =
                standard_webhooks_sign(secret.expose(), id, timestamp, payload.as_bytes())
            {
                headers.push(("webhook-id".into(), id.to_owned(), false));
                headers.push(("webhook-timestamp".into(), timestamp.to_string(), false));
                headers.push(("webhook-signature".into(), signature, false));
            }
        }
        let mut request = HttpRequest {
            method: reqwest::Method::POST,
            url: base,
            body: payload.to_owned(),
            headers,
        };
        self.kind.request(dest, &mut request, id, payload)?;
        Ok(request)
    }

    /// The e-mail `preview` prints: the MIME message as it would be sent.
    pub fn email(&self, id: &str, payload: &str) -> Result<String, String> {
        match &self.transport {
            Transport::Smtp(s) => s
                .message(id, payload)
                .map(|m| String::from_utf8_lossy(&m.formatted()).into_owned()),
            Transport::Broken(e) => Err(e.clone()),
            Transport::Http(_) => Err("not an e-mail destination".into()),
        }
    }

    /// Sends one rendered payload; `id` is the delivery's stable message
    /// id (Standard Webhooks `webhook-id`, e-mail Message-ID, Matrix
    /// transaction id). A destination whose message carries it says so in
    /// `DestinationConfig::carries_delivery_id`.
    pub async fn send(&self, id: &str, payload: &str) -> (Outcome, Duration) {
        let started = Instant::now();
        // A threaded message sent plainly (its destination no longer
        // threads since a reload): its full message, unthreaded.
        let unwrapped = crate::render::thread::Threaded::unwrap(payload);
        let unwrapped = unwrapped.map(|t| t.message.to_string());
        let payload = unwrapped.as_deref().unwrap_or(payload);
        let outcome = if payload.is_empty() {
            // A delivery whose message could not be rendered, replayed.
            Outcome::Permanent {
                status: None,
                error: "nothing to send: the message could not be rendered".into(),
            }
        } else if self.dest.api_mode() {
            match serde_json::from_str::<serde_json::Value>(payload) {
                Err(e) => Outcome::Permanent {
                    status: None,
                    error: format!("the stored message is not JSON ({e})"),
                },
                Ok(message) => match self
                    .api_call(Call::Post {
                        message: &message,
                        thread: None,
                        broadcast: false,
                    })
                    .await
                {
                    Ok(_) => Outcome::Delivered { status: 200 },
                    Err(e) => e.outcome(),
                },
            }
        } else {
            match &self.transport {
                Transport::Http(http) => self.send_http(http, id, payload).await,
                Transport::Smtp(smtp) => smtp.send(id, payload).await,
                Transport::Broken(e) => Outcome::Permanent {
                    status: None,
                    error: e.clone(),
                },
            }
        };
        (outcome, started.elapsed())
    }

    /// A tenant's URL whose host is a literal IP the egress policy
    /// forbids (its client resolves names through the guard, but never a
    /// literal): a permanent failure, nothing sent.
    pub(crate) fn reachable(&self, url: &reqwest::Url) -> Result<(), Outcome> {
        match &self.dest.tenant {
            Some(mark) => mark.egress.check_url(url).map_err(|e| Outcome::Permanent {
                status: None,
                error: format!("not sent: {e}"),
            }),
            None => Ok(()),
        }
    }

    async fn send_http(&self, http: &reqwest::Client, id: &str, payload: &str) -> Outcome {
        let dest = &*self.dest;
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let prepared = match self.http_request(id, payload, timestamp) {
            Ok(p) => p,
            Err(error) => {
                return Outcome::Permanent {
                    status: None,
                    error,
                }
            }
        };
        if let Err(refused) = self.reachable(&prepared.url) {
            return refused;
        }
        let mut request = http
            .request(prepared.method, prepared.url)
            .body(prepared.body)
            .timeout(dest.timeout.unwrap_or(DEFAULT_TIMEOUT));
        for (name, value, _) in prepared.headers {
            request = request.header(name, value);
        }
        let secrets = dest.secrets();
        match request.send().await {
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else {
                    "request failed"
                };
                Outcome::Retry {
                    status: None,
                    error: format!("{what}: {}", scrub(&error_chain(&e), &secrets)),
                    retry_after: None,
                    throttled: false,
                }
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                let after = retry_after(resp.headers());
                let location = resp.headers().contains_key(reqwest::header::LOCATION);
                let body = read_capped(resp, ERROR_BODY_CAP).await.unwrap_or_default();
                let mut outcome = self.kind.classify(status, &body, after);
                if location && (300..400).contains(&status) {
                    outcome = Outcome::Permanent {
                        status: Some(status),
                        error: format!("HTTP {status}: the webhook URL redirects; redirects are not followed (fix the URL)"),
                    };
                }
                outcome
            }
        }
    }
}

/// Classifies an answer by its status alone (what most kinds do; a kind
/// with quirks checks them first, see [`Kind::classify`]).
pub fn classify_http(status: u16, body: &[u8], retry_after: Option<Duration>) -> Outcome {
    let text = excerpt(body);
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
        _ => Outcome::Permanent {
            status: Some(status),
            error,
        },
    }
}

/// How long a service says to wait, from a number in its JSON body
/// (Discord in seconds, Matrix in milliseconds: `per_second` 1000).
pub fn retry_after_in_body(body: &[u8], field: &str, per_second: f64) -> Option<Duration> {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get(field)?.as_f64())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64((s / per_second).min(3600.0)))
}

/// Classifies an answer of a destination of `kind` ([`Kind::classify`]).
pub fn classify(
    kind: crate::config::DestinationKind,
    status: u16,
    body: &[u8],
    retry_after: Option<Duration>,
) -> Outcome {
    of(kind).classify(status, body, retry_after)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DestinationKind::*;

    /// reqwest prints the URL as parsed (scheme and host lower-cased, the
    /// default port dropped), not as configured: that form must be
    /// scrubbed too, or a webhook's secret path reaches the logs.
    #[tokio::test]
    async fn errors_never_show_the_url_in_either_form() {
        for url in [
            "HTTP://127.0.0.1:9/hooks/secret-token-1",
            "http://LOCALHOST:9/hooks/secret-token-1",
        ] {
            let dest: DestinationConfig = serde_json::from_value(serde_json::json!({
                "kind": "slack", "url": url
            }))
            .unwrap();
            let sink = Sink::new(Arc::new(dest), crate::http::client(), 1);
            let (outcome, _) = sink.send("msg_1", "{}").await;
            let Outcome::Retry { error, .. } = outcome else {
                panic!("{url}: {outcome:?}");
            };
            assert!(!error.contains("secret-token"), "{url}: {error}");
        }
    }

    /// Every Matrix message carries `m.mentions`: one a template rendered
    /// (or an older version stored) without it gets an empty one; one that
    /// has it is sent as stored.
    #[test]
    fn a_matrix_message_always_carries_m_mentions() {
        let dest: DestinationConfig = serde_json::from_value(serde_json::json!({
            "kind": "matrix",
            "url": "https://matrix.example.org/_matrix/client/v3/rooms/%21r/send/m.room.message/",
            "access_token": "syt_secret",
        }))
        .unwrap();
        let sink = Sink::new(Arc::new(dest), crate::http::client(), 1);
        let sent = |payload: &str| {
            let r = sink
                .http_request("msg_7_1642172817000", payload, 0)
                .unwrap();
            assert_eq!(r.method, reqwest::Method::PUT);
            assert!(r
                .url
                .as_str()
                .ends_with("/send/m.room.message/msg_7_1642172817000"));
            serde_json::from_str::<serde_json::Value>(&r.body).unwrap()
        };
        assert_eq!(
            sent(r#"{"msgtype":"m.text","body":"hello @reader:example.org"}"#),
            serde_json::json!({"msgtype": "m.text", "body": "hello @reader:example.org", "m.mentions": {}})
        );
        let chosen =
            r#"{"msgtype":"m.text","body":"hi","m.mentions":{"user_ids":["@a:example.org"]}}"#;
        assert_eq!(
            sent(chosen),
            serde_json::from_str::<serde_json::Value>(chosen).unwrap()
        );
    }

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
                status: Some(404),
                error: "HTTP 404: channel_not_found".into()
            }
        );
        assert!(matches!(
            classify(Slack, 410, b"channel_is_archived", None),
            Outcome::Permanent { .. }
        ));
        let Outcome::Permanent { error, .. } = classify(TeamsLegacy, 403, b"Forbidden", None)
        else {
            panic!("a retired connector is permanent");
        };
        assert!(
            error.contains("use kind = \"teams\" with a Workflows webhook URL"),
            "{error}"
        );
        // Matrix: throttled with or without `retry_after_ms`; a revoked
        // token, a room the bot cannot post to and a proxy's HTML refusal
        // are permanent, with the answer as the reason.
        assert_eq!(
            classify(
                Matrix,
                429,
                br#"{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":1500}"#,
                None
            ),
            Outcome::Retry {
                status: Some(429),
                error: r#"HTTP 429: {"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests","retry_after_ms":1500}"#.into(),
                retry_after: Some(Duration::from_millis(1500)),
                throttled: true,
            }
        );
        assert!(matches!(
            classify(
                Matrix,
                429,
                br#"{"errcode":"M_LIMIT_EXCEEDED","error":"Too Many Requests"}"#,
                None
            ),
            Outcome::Retry {
                throttled: true,
                retry_after: None,
                ..
            }
        ));
        assert!(matches!(
            classify(
                Matrix,
                502,
                b"<html><body><h1>502 Bad Gateway</h1></body></html>",
                None
            ),
            Outcome::Retry {
                throttled: false,
                ..
            }
        ));
        for (status, body, reason) in [
            (401, &br#"{"errcode":"M_UNKNOWN_TOKEN","error":"Invalid access token passed.","soft_logout":false}"#[..], "M_UNKNOWN_TOKEN"),
            (403, br#"{"errcode":"M_FORBIDDEN","error":"User @relay:example.org not in room"}"#, "not in room"),
            (403, b"<html><head><title>403 Forbidden</title></head><body>blocked</body></html>", "403 Forbidden"),
        ] {
            let Outcome::Permanent { status: s, error } = classify(Matrix, status, body, None) else {
                panic!("{status} is permanent");
            };
            assert_eq!(s, Some(status));
            assert!(error.starts_with(&format!("HTTP {status}: ")) && error.contains(reason), "{error}");
        }
        assert!(matches!(
            classify(
                Teams,
                400,
                b"{\"error\":{\"code\":\"TriggerInputSchemaMismatch\"}}",
                None
            ),
            Outcome::Permanent {
                status: Some(400),
                ..
            }
        ));
    }
}
