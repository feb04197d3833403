//! `POST /hooks/{id}`: the checks, in the contract's order (404 → 405 →
//! 403 → 415 → 413 → 401 → 400 → 503), then the durable insert and the
//! 202. This is the one place request errors become status codes.

use super::conns::{ConnState, Phase};
use super::{auth, IngressState};
use crate::config::{HookConfig, ServerConfig};
use crate::event::{self, Event};
use crate::pipeline::Accepted;
use crate::store::{NewEvent, StoreError};
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::json;
use sha2::Digest;
use std::net::SocketAddr;
use std::sync::Arc;

/// A rejection: its status, the message the sender sees, the metric label.
struct Reject {
    status: StatusCode,
    message: String,
    reason: &'static str,
    retry_after: Option<u32>,
}

impl Reject {
    fn new(status: StatusCode, reason: &'static str, message: impl Into<String>) -> Self {
        Reject {
            status,
            message: message.into(),
            reason,
            retry_after: None,
        }
    }
}

impl IntoResponse for Reject {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(json!({"error": self.message}))).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::METHOD_NOT_ALLOWED {
            resp.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
        }
        resp
    }
}

/// The same answer for every unknown path and hook: no hint that a hook
/// exists.
pub(super) fn not_found_response() -> Response {
    (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))).into_response()
}

pub(super) async fn not_found() -> Response {
    not_found_response()
}

fn is_json(content_type: &HeaderValue) -> bool {
    let Ok(v) = content_type.to_str() else {
        return false;
    };
    let essence = v
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

pub(super) async fn hook(
    State(state): State<Arc<IngressState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(id): Path<String>,
    conn: Option<Extension<Arc<ConnState>>>,
    method: Method,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let config = state.live.get().config.clone();
    let Some((name, hook)) = config.hook_by_id(&id) else {
        state.metrics.received("unknown", "not_found");
        return not_found_response();
    };
    let request = HookRequest {
        state: &state,
        server: &config.server,
        name,
        hook,
        peer,
        method,
        headers,
    };
    let handled = match request.check(body).await {
        Ok(checked) => {
            // The whole request is in: this connection is never shed now.
            if let Some(Extension(conn)) = &conn {
                conn.enter(Phase::Handling);
            }
            request.store_and_admit(checked).await
        }
        Err(reject) => Err(reject),
    };
    handled.unwrap_or_else(|reject| {
        state.metrics.received(name, reject.reason);
        state
            .reject_log
            .log(name, reject.reason, reject.status.as_u16(), &reject.message);
        reject.into_response()
    })
}

/// One request to a known hook, as the checks see it.
struct HookRequest<'a> {
    state: &'a IngressState,
    server: &'a ServerConfig,
    /// The hook's name in the configuration.
    name: &'a str,
    hook: &'a HookConfig,
    peer: SocketAddr,
    method: Method,
    headers: HeaderMap,
}

/// A request that passed every check: what is stored.
struct Checked {
    bytes: Bytes,
    event: Event,
    /// The Standard Webhooks id, remembered once stored (replays).
    message_id: Option<String>,
}

impl HookRequest<'_> {
    /// Method, source, type, size, signature and body: each failure is a
    /// precise 4xx; nothing is stored before all have passed.
    async fn check(&self, body: Body) -> Result<Checked, Reject> {
        self.check_head()?;
        let bytes = self.read_body(body).await?;
        let message_id = auth::verify(
            self.name,
            self.hook,
            &self.headers,
            &bytes,
            &self.state.replays,
        )
        .map_err(|e| {
            tracing::debug!(message = "Signature refused.", hook = self.name, reason = %e);
            unauthorized()
        })?;
        let event = event::parse(&bytes)
            .map_err(|e| Reject::new(StatusCode::BAD_REQUEST, "bad_request", e.0))?;
        let nonstandard = if !event.has_metadata {
            Some("no_metadata")
        } else if event.version.is_some_and(|v| v != 2) {
            Some("version")
        } else {
            None
        };
        if event.subject() == crate::event::Subject::Unknown {
            self.state.metrics.unknown_type(&event.kind);
        }
        if let Some(reason) = nonstandard {
            self.state
                .metrics
                .events
                .nonstandard
                .get_or_create(&vec![("reason", reason.to_owned())])
                .inc();
        }
        Ok(Checked {
            bytes,
            event,
            message_id,
        })
    }

    /// What can be judged before the body is read.
    fn check_head(&self) -> Result<(), Reject> {
        if self.method != Method::POST {
            return Err(Reject::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "only POST is accepted",
            ));
        }
        let client = auth::client_ip(self.peer.ip(), &self.headers, &self.server.trusted_proxies);
        if !auth::allowed(self.hook, client) {
            return Err(Reject::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                "source address not allowed",
            ));
        }
        if let Some(ct) = self.headers.get(header::CONTENT_TYPE) {
            if !is_json(ct) {
                return Err(Reject::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "Content-Type must be application/json",
                ));
            }
        }
        let declared = self
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > self.server.max_body_bytes as u64) {
            return Err(self.too_large());
        }
        Ok(())
    }

    /// The body, capped whatever Content-Length said (or if it was
    /// absent), within `server.request_timeout`.
    async fn read_body(&self, body: Body) -> Result<Bytes, Reject> {
        let limited = http_body_util::Limited::new(body, self.server.max_body_bytes);
        match tokio::time::timeout(self.server.request_timeout, limited.collect()).await {
            Err(_) => Err(Reject::new(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "request body not received in time",
            )),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(self.too_large()),
            Ok(Err(_)) => Err(Reject::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "could not read the request body",
            )),
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
        }
    }

    fn too_large(&self) -> Reject {
        Reject::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("body larger than {} bytes", self.server.max_body_bytes),
        )
    }

    /// Stores the event (202 only once committed) and hands it to the
    /// pipeline; a sender retry within the dedup window gets the original id.
    async fn store_and_admit(&self, c: Checked) -> Result<Response, Reject> {
        let name = self.name;
        let Checked {
            bytes,
            event,
            message_id,
        } = c;
        let new = NewEvent {
            hook: name.to_owned(),
            sha256: sha2::Sha256::digest(&bytes).into(),
            body: bytes.to_vec(),
            kind: event.kind.clone(),
            action: event.action.clone(),
            short_id: event.short_id.clone(),
            dedup_window_ms: self.server.dedup_window.as_millis() as i64,
            message_id: message_id
                .clone()
                .map(|m| (m, auth::REPLAY_WINDOW.as_millis() as i64)),
            // The conversation (alert or case) its deliveries keep in order.
            alert_uuid: event.thread_key().map(|u| u.to_string()),
            client: Some(
                match auth::client_ip(self.peer.ip(), &self.headers, &self.server.trusted_proxies) {
                    Some(ip) => ip.to_string(),
                    None => format!("{} (a trusted proxy; bad X-Forwarded-For)", self.peer.ip()),
                },
            ),
            auth: Some(auth::proof(self.hook).to_owned()),
        };
        let received_at = crate::store::now_ms();
        let inserted = self.state.store.insert_event(new).await.map_err(|e| {
            if let StoreError::Replay = e {
                tracing::debug!(message = "Signature refused.", hook = name, reason = %e);
                return unauthorized();
            }
            let (retry, reason) = match e {
                StoreError::Full(_) => (5, "spool_full"),
                _ => (30, "spool_unavailable"),
            };
            tracing::error!(message = "Event refused: the spool cannot take it.", hook = name, error = %e);
            Reject {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "temporarily unable to accept events; retry later".into(),
                reason,
                retry_after: Some(retry),
            }
        })?;
        if let Some(mid) = message_id {
            self.state.replays.remember(name, &mid);
        }
        if inserted.duplicate {
            self.state.metrics.received(name, "duplicate");
            tracing::info!(
                message = "Sender retry: same body within the dedup window; not stored again.",
                hook = name,
                event_id = inserted.id
            );
        } else {
            self.state.metrics.received(name, "accepted");
            self.state.watch.saw(name);
            tracing::info!(
                message = "Event accepted.", hook = name, event_id = inserted.id,
                alert_short_id = event.short_id.as_deref(), kind = %event.kind, action = %event.action
            );
            self.state
                .intake
                .admit(Accepted {
                    id: inserted.id,
                    hook: name.to_owned(),
                    event,
                    received_at,
                })
                .await;
        }
        // `{"id": "<event id>"}`: an integer needs no escaping.
        Ok((
            StatusCode::ACCEPTED,
            [(header::CONTENT_TYPE, "application/json")],
            format!("{{\"id\":\"{}\"}}", inserted.id),
        )
            .into_response())
    }
}

fn unauthorized() -> Reject {
    Reject::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "missing or invalid signature",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_content_types() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/cloudevents+json",
        ] {
            assert!(is_json(&HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
        ] {
            assert!(!is_json(&HeaderValue::from_static(bad)), "{bad}");
        }
    }
}
