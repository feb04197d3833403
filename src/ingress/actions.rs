//! Acting on an alert from the chat: `GET /actions/{token}` shows the
//! alert as it is now and a confirmation form (a GET never changes
//! anything: link previews and mail scanners open links), `POST` performs
//! the status change through the origin's API. Slack (with a signing
//! secret) and Mattermost (API mode) post button clicks to
//! `/integrations/slack` and `/integrations/mattermost` instead; the
//! change then runs after the answer, and the alert's thread says who did
//! what.
//!
//! Every performed action is recorded (the history, `events show`),
//! logged and counted; pages are rate-limited per client address.
//!
//! Nothing here trusts more than it must: bodies are capped at
//! [`BODY_MAX`] before they are read to the end; a client address that
//! cannot be read (a trusted proxy's garbled `X-Forwarded-For`) is refused,
//! never replaced by the proxy's; a Slack interaction is matched to the
//! one destination its button's token names before that destination's
//! signature is checked (one MAC, whatever the configuration); Mattermost
//! requests are admitted by address and rate, spent once per token and
//! user, and attributed to the `user_id` Mattermost's server sets, looked
//! up with the destination's bot token; the work after the answer runs
//! in a bounded number of tasks.

use super::acting::*;
use super::hooks::not_found_response;
use super::pages::{self, AlertView};
use super::IngressState;
use crate::action_link::{self};
use crate::config::{DestinationConfig, DestinationKind};
use crate::destinations::Capabilities;
use crate::enrich::{Alert, WorkflowError};
use crate::render::thread::Markup;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

/// Largest form or interaction body read: Slack's `block_actions`
/// payload (which carries the message the button was in) is a few KB, a
/// confirmation form or a Mattermost request less. Larger is 413, refused
/// as soon as it is known (its `Content-Length`, or the first byte past
/// the cap), before anything is checked.
pub const BODY_MAX: usize = 64 * 1024;
/// How long looking up who clicked in Mattermost may take.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest comment passed on.
const COMMENT_MAX: usize = 1000;
/// Slack refuses requests older than this; so do we.
const SLACK_SKEW: u64 = 300;

pub fn routes() -> Router<Arc<IngressState>> {
    Router::new()
        .route("/actions/{token}", get(show).post(perform))
        .route("/integrations/slack", post(slack))
        .route("/integrations/mattermost", post(mattermost))
        .layer(DefaultBodyLimit::max(BODY_MAX))
}

/// The answer when every slot is taken: 503, try again in a moment (in
/// Mattermost's shape; Slack shows its own error).
fn busy() -> Response {
    let mut r = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({
            "ephemeral_text": "hookrelay is busy; try again in a moment."
        })),
    )
        .into_response();
    r.headers_mut()
        .insert("retry-after", axum::http::HeaderValue::from_static("5"));
    r
}

fn view(a: &Alert, uuid: &uuid::Uuid) -> AlertView {
    AlertView {
        title: crate::render::clean(a.title.as_deref().unwrap_or("(no title)"), 250),
        short_id: crate::render::clean(a.short_id.as_deref().unwrap_or(&uuid.to_string()), 64),
        urgency: a
            .urgency
            .as_ref()
            .map(|u| crate::render::clean(&format!("{} ({})", u.display, u.value), 64))
            .unwrap_or_else(|| "unknown".into()),
        status: crate::render::clean(a.status.as_deref().unwrap_or("unknown"), 64),
    }
}

fn unreachable_page(e: &WorkflowError) -> Response {
    match e {
        WorkflowError::Refused(m) => pages::problem(
            StatusCode::CONFLICT,
            "Sekoia.io refused",
            &crate::render::clean(m, 300),
            false,
        ),
        WorkflowError::Failed(_) => pages::problem(
            StatusCode::BAD_GATEWAY,
            "Sekoia.io did not answer",
            "Nothing was changed. Try again in a moment.",
            true,
        ),
    }
}

async fn show(
    State(state): State<Arc<IngressState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
) -> Response {
    let generation = state.live.get();
    let r = match resolve(generation.config.clone(), &token) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if let Err(resp) = admit(&state, &r.config, page_allow(&r.config), peer, &headers) {
        return *resp;
    }
    let alert = match generation.enricher.fetch_now(&r.origin, r.link.alert).await {
        Ok(a) => a,
        Err(e) => return unreachable_page(&e),
    };
    let v = view(&alert, &r.link.alert);
    if in_target(&alert, r.action()) {
        return pages::already(&v, r.action().status_name());
    }
    let secret = r.secret();
    let csrf = action_link::csrf(secret, &token, now_secs());
    pages::confirm(&v, r.action().label(), r.action().status_name(), &csrf)
}

async fn perform(
    State(state): State<Arc<IngressState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let generation = state.live.get();
    let r = match resolve(generation.config.clone(), &token) {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let ip = match admit(&state, &r.config, page_allow(&r.config), peer, &headers) {
        Ok(ip) => ip,
        Err(resp) => return *resp,
    };
    let form: HashMap<String, String> = url::form_urlencoded::parse(&body).into_owned().collect();
    let secret = r.secret();
    let Some(nonce) = form
        .get("csrf")
        .and_then(|c| action_link::verify_csrf(secret, &token, c, now_secs()))
    else {
        return pages::problem(
            StatusCode::FORBIDDEN,
            "This form is not valid",
            "It expired or was not issued by this relay. Open the link again.",
            false,
        );
    };
    let comment = form
        .get("comment")
        .map(|c| crate::render::clean(c, COMMENT_MAX))
        .unwrap_or_default();
    let (acted, alert) = act(&state, &r, &ip.to_string(), &comment, Some(nonce)).await;
    let target = r.action().status_name();
    let v = |a: &Option<Arc<Alert>>| a.as_ref().map(|a| view(a, &r.link.alert));
    match acted {
        Acted::Done => {
            let mut shown = v(&alert).unwrap_or_else(|| AlertView {
                title: String::new(),
                short_id: r.link.alert.to_string(),
                urgency: String::new(),
                status: String::new(),
            });
            shown.status = target.to_owned();
            pages::done(&shown, target)
        }
        Acted::Already => match v(&alert) {
            Some(shown) => pages::already(&shown, target),
            None => pages::problem(
                StatusCode::OK,
                "Nothing to do",
                "The alert is already there.",
                false,
            ),
        },
        Acted::Refused(m) => unreachable_page(&WorkflowError::Refused(m)),
        Acted::Failed(m) => unreachable_page(&WorkflowError::Failed(m)),
        Acted::Replayed => pages::problem(
            StatusCode::FORBIDDEN,
            "This form was already sent",
            "Open the link again to act on the alert.",
            false,
        ),
    }
}

/// `v0=` + hex HMAC-SHA256 over `v0:{timestamp}:{body}` (Slack's request
/// signature), compared in constant time.
pub fn slack_signature_ok(secret: &str, timestamp: &str, body: &[u8], given: &str) -> bool {
    use hmac::{Hmac, Mac};
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(b"v0:");
    mac.update(timestamp.as_bytes());
    mac.update(b":");
    mac.update(body);
    let want = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    crate::config::constant_time_eq(want.as_bytes(), given.as_bytes())
}

/// Slack's interaction payloads (`block_actions`): the button's value is
/// hookrelay's own signed token, which names the destination; the request
/// must then carry a valid signature of that destination's signing secret
/// (one MAC, whatever the number of destinations), at most 5 minutes old.
/// Slack gets its 200 at once and the change runs after. A payload that
/// names no action of ours (another interaction, a link button) is
/// answered 200 and nothing is done: nothing is checked for it either.
async fn slack(
    State(state): State<Arc<IngressState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = state.live.get().config.clone();
    if config.actions.is_none() {
        return not_found_response();
    }
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let (ts, signature) = (
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
    );
    let unauthorized = || {
        count(&state, "-", "unauthorized");
        (StatusCode::UNAUTHORIZED, "invalid signature\n").into_response()
    };
    let payload = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "payload")
        .and_then(|(_, v)| serde_json::from_str::<serde_json::Value>(&v).ok());
    let Some(p) = payload else {
        return (StatusCode::BAD_REQUEST, "no payload\n").into_response();
    };
    if p["type"] != "block_actions" {
        return StatusCode::OK.into_response();
    }
    let Some(token) = p.pointer("/actions/0/value").and_then(|v| v.as_str()) else {
        return StatusCode::OK.into_response();
    };
    // The token is checked with the actions secret first (a MAC over a
    // few dozen bytes); a forged one is refused like a bad signature,
    // without telling which was wrong.
    let Ok(r) = resolve(config.clone(), token) else {
        return unauthorized();
    };
    let fresh = ts
        .parse::<u64>()
        .is_ok_and(|t| now_secs().abs_diff(t) <= SLACK_SKEW);
    let signed = r.dest().kind == DestinationKind::Slack
        && r.dest()
            .signing_secret
            .as_ref()
            .is_some_and(|s| slack_signature_ok(s.expose(), ts, &body, signature));
    if !(fresh && signed) {
        return unauthorized();
    }
    let user = ["/user/username", "/user/name", "/user/id"]
        .iter()
        .find_map(|k| p.pointer(k).and_then(|v| v.as_str()))
        .map(|u| crate::render::clean(u, 64))
        .unwrap_or_else(|| "someone".into());
    let Some(slot) = state.interactions.slot() else {
        return busy();
    };
    let client = format!("slack:@{user}");
    let id = match begin(&state, &r, &client, None).await {
        Ok(id) => id,
        // The spool refused the record: Slack shows the click failed.
        Err(_) => return busy(),
    };
    tokio::spawn(act_and_tell(state.clone(), r, id, slot, client, user));
    StatusCode::OK.into_response()
}

/// Mattermost's interactive buttons post `{user_id, user_name, context:
/// {token}, ...}`. Mattermost signs nothing: the token (in the button's
/// integration context, which Mattermost keeps on its server and never
/// shows to its clients) is the credential, and the request is admitted by
/// address (`[actions] mattermost_allow_from`, else `allow_from`) and rate
/// like the action pages. Each token is spent once per user: a replay of
/// the same click is refused. Who clicked is the `user_id` Mattermost's
/// server sets, looked up with the destination's bot token; `user_name`
/// from the body is never shown. Answered at once.
async fn mattermost(
    State(state): State<Arc<IngressState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = state.live.get().config.clone();
    let Some(actions) = &config.actions else {
        return not_found_response();
    };
    let allow = if actions.mattermost_allow_from.is_empty() {
        &actions.allow_from
    } else {
        &actions.mattermost_allow_from
    };
    if let Err(resp) = admit(&state, &config, allow, peer, &headers) {
        count(&state, "-", "forbidden");
        return *resp;
    }
    let Ok(p) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON\n").into_response();
    };
    let Some(token) = p.pointer("/context/token").and_then(|v| v.as_str()) else {
        return (StatusCode::BAD_REQUEST, "no token\n").into_response();
    };
    let r = match resolve(config.clone(), token) {
        Ok(r) if r.dest().kind == DestinationKind::Mattermost && r.dest().api_mode() => r,
        _ => return (StatusCode::FORBIDDEN, "invalid action\n").into_response(),
    };
    let Some(user_id) = p["user_id"]
        .as_str()
        .filter(|u| !u.is_empty() && u.len() <= 64 && u.bytes().all(|b| b.is_ascii_alphanumeric()))
    else {
        return (StatusCode::BAD_REQUEST, "no user_id\n").into_response();
    };
    let Some(slot) = state.interactions.slot() else {
        return busy();
    };
    let nonce = {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"mattermost\0");
        h.update(token.as_bytes());
        h.update(b"\0");
        h.update(user_id.as_bytes());
        format!("mattermost:{}", hex::encode(h.finalize()))
    };
    let client = format!("mattermost:{user_id}");
    let id = match begin(&state, &r, &client, Some(nonce)).await {
        Ok(id) => id,
        Err(Acted::Replayed) => {
            return (
                StatusCode::CONFLICT,
                axum::Json(serde_json::json!({"ephemeral_text": "Already requested."})),
            )
                .into_response()
        }
        Err(_) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(serde_json::json!({"ephemeral_text": "hookrelay cannot record the action now; try again in a moment."})),
            )
                .into_response()
        }
    };
    let text = format!("{} requested.", r.action().label());
    let user_id = user_id.to_owned();
    tokio::spawn(async move {
        let user = mattermost_user(r.dest(), &user_id).await;
        act_and_tell(
            state.clone(),
            r,
            id,
            slot,
            format!("mattermost:@{user}"),
            user,
        )
        .await
    });
    axum::Json(serde_json::json!({"ephemeral_text": text})).into_response()
}

/// The user name of Mattermost user `id`, from Mattermost's API with the
/// destination's bot token; if it cannot be had, the id, marked as such.
async fn mattermost_user(dest: &DestinationConfig, id: &str) -> String {
    let fallback = || format!("{id} (a user id, as reported by Mattermost)");
    let (Some(server), Some(token)) = (dest.server_url.as_deref(), dest.token.as_ref()) else {
        return fallback();
    };
    let url = format!("{}/api/v4/users/{id}", server.trim_end_matches('/'));
    let answer = crate::http::client()
        .get(url)
        .bearer_auth(token.expose())
        .timeout(LOOKUP_TIMEOUT)
        .send()
        .await;
    let user = match answer {
        Ok(r) if r.status().is_success() => r.json::<serde_json::Value>().await.ok(),
        _ => None,
    };
    user.as_ref()
        .and_then(|u| u["username"].as_str())
        .filter(|u| !u.is_empty())
        .map(|u| crate::render::clean(u, 64))
        .unwrap_or_else(fallback)
}

/// Carries out a chat user's action begun as record `id` (holding a
/// slot) and says how it went in the alert's thread (or the channel, when
/// the destination does not thread).
async fn act_and_tell(
    state: Arc<IngressState>,
    r: Resolved,
    id: i64,
    _slot: OwnedSemaphorePermit,
    client: String,
    user: String,
) {
    let comment = format!("{} by {client}", r.action().label());
    let (acted, _) = carry_out(&state, &r, id, &client, &comment).await;
    let dest = r.dest().clone();
    let who = match crate::destinations::of(dest.kind).markup() {
        Markup::Slack => crate::render::escape_slack(&format!("@{user}")),
        Markup::Markdown => crate::render::defuse_markdown(&format!("@{user}")),
    };
    let status = r.action().status_name();
    let text = match &acted {
        Acted::Done => format!("{status} by {who}"),
        Acted::Already => format!("Already {status} ({who} asked)"),
        Acted::Refused(m) => format!(
            "{who} could not set {status}: Sekoia.io refused ({})",
            crate::render::clean(m, 200)
        ),
        Acted::Failed(_) => {
            format!("{who} could not set {status}: Sekoia.io did not answer; try again")
        }
        Acted::Replayed => return,
    };
    let sink = crate::destinations::Sink::new(Arc::new(dest), crate::http::client(), 1);
    let root = state
        .store
        .thread_root(&r.destination, &r.link.alert.to_string())
        .await
        .ok()
        .flatten();
    let message = serde_json::json!({ "text": text });
    let posted = sink
        .api_call(crate::destinations::Call::Post {
            message: &message,
            thread: root.as_ref().map(|t| t.ts.as_str()),
            broadcast: false,
        })
        .await;
    if let Err(e) = posted {
        tracing::warn!(message = "Cannot tell the channel about an action.", destination = %r.destination, error = ?e.outcome());
    }
}

#[cfg(test)]
mod tests {
    use super::super::limits::{Interactions, INTERACTIONS_AT_ONCE};
    use super::*;

    #[test]
    fn interactions_past_the_slots_are_answered_busy() {
        let i = Interactions::default();
        let held: Vec<_> = (0..INTERACTIONS_AT_ONCE)
            .map(|_| i.slot().expect("a free slot"))
            .collect();
        assert!(i.slot().is_none(), "no slot left");
        let answer = busy();
        assert_eq!(answer.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer.headers()["retry-after"], "5");
        drop(held);
        assert!(i.slot().is_some(), "slots come back when the work ends");
    }

    /// Slack's documented example: secret, timestamp, body and signature.
    #[test]
    fn slack_signatures_are_checked_byte_exact() {
        let secret = "8f742231b10e8888abcd99yyyzzz85a5";
        let ts = "1531420618";
        let body = b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c";
        let sig = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";
        assert!(slack_signature_ok(secret, ts, body, sig));
        assert!(!slack_signature_ok("another secret", ts, body, sig));
        assert!(!slack_signature_ok(secret, "1531420619", body, sig));
        let mut changed = body.to_vec();
        changed[0] = b'T';
        assert!(!slack_signature_ok(secret, ts, &changed, sig));
        assert!(!slack_signature_ok(secret, ts, body, &sig.to_uppercase()));
    }
}
