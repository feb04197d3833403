//! What an action page and a chat button share: checking a link's token
//! against the live configuration, admitting the client (address and
//! rate), and carrying the action out (recorded, the alert's status
//! checked now, changed through the origin's API, counted).

use super::auth::client_ip;
use super::hooks::not_found_response;
use super::pages::{self};
use super::IngressState;
use crate::action_link::{self, tag, Link, TokenError};
use crate::config::{ActionKind, Config, DestinationConfig};
use crate::enrich::{Alert, WorkflowError};
use crate::store::ActionRecord;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

pub(super) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A verified link and what it names.
pub(super) struct Resolved {
    pub(super) config: Arc<Config>,
    pub(super) link: Link,
    pub(super) destination: String,
    pub(super) origin: String,
}

impl Resolved {
    pub(super) fn action(&self) -> ActionKind {
        self.link.action
    }
    /// The actions secret (set: the link was verified with it).
    pub(super) fn secret(&self) -> &[u8] {
        self.config
            .actions
            .as_ref()
            .map_or(&[][..], |a| a.secret.expose().as_bytes())
    }
    pub(super) fn dest(&self) -> &DestinationConfig {
        &self.config.destinations[&self.destination]
    }
}

/// Checks a token against the live configuration.
pub(super) fn resolve(config: Arc<Config>, token: &str) -> Result<Resolved, Box<Response>> {
    let Some(actions) = &config.actions else {
        return Err(Box::new(not_found_response()));
    };
    let secret = actions.secret.expose().as_bytes();
    let link = action_link::verify(secret, token, now_secs()).map_err(|e| Box::new(match e {
        TokenError::Expired => pages::problem(
            StatusCode::GONE,
            "This link has expired",
            "Action links are valid for a limited time. Open the alert in Sekoia.io, or use the buttons of a newer message.",
            false,
        ),
        _ => invalid_link(),
    }))?;
    let destination = config
        .destinations
        .iter()
        .find(|(name, d)| {
            tag(secret, "destination", name) == link.destination
                && d.buttons
                    .as_ref()
                    .unwrap_or(&actions.buttons)
                    .contains(&link.action)
        })
        .map(|(name, _)| name.clone())
        .ok_or_else(|| Box::new(invalid_link()))?;
    let origin = config
        .origins
        .keys()
        .find(|name| tag(secret, "origin", name) == link.origin)
        .cloned()
        .ok_or_else(|| Box::new(invalid_link()))?;
    Ok(Resolved {
        config,
        link,
        destination,
        origin,
    })
}

pub(super) fn invalid_link() -> Response {
    pages::problem(
        StatusCode::FORBIDDEN,
        "This link is not valid",
        "It was changed, or it was made for a destination or an action this relay no longer offers.",
        false,
    )
}

/// The client address, allowed by `allow_from` (empty: anyone) and the
/// rate limit. An address that cannot be read (a trusted proxy sent an
/// `X-Forwarded-For` entry that is not one) is refused: the proxy's own
/// address may well be in `allow_from`.
pub(super) fn admit(
    state: &IngressState,
    config: &Config,
    allow_from: &[ipnet::IpNet],
    peer: SocketAddr,
    headers: &HeaderMap,
) -> Result<IpAddr, Box<Response>> {
    let forbidden = || {
        Box::new(pages::problem(
            StatusCode::FORBIDDEN,
            "Not from here",
            "Action pages are not open to your network.",
            false,
        ))
    };
    let Some(ip) = client_ip(peer.ip(), headers, &config.server.trusted_proxies) else {
        return Err(forbidden());
    };
    if !allow_from.is_empty() && !allow_from.iter().any(|n| n.contains(&ip)) {
        return Err(forbidden());
    }
    if !state.action_limiter.allow(ip, PER_MINUTE) {
        let mut r = pages::problem(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            "Wait a minute and try again.",
            false,
        );
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("60"));
        return Err(Box::new(r));
    }
    Ok(ip)
}

/// Who may open action pages: `[actions] allow_from`.
pub(super) fn page_allow(config: &Config) -> &[ipnet::IpNet] {
    config
        .actions
        .as_ref()
        .map_or(&[][..], |a| &a.allow_from[..])
}

/// Counts an action's outcome (`hookrelay_actions_total`).
pub(super) fn count(state: &IngressState, action: &str, result: &str) {
    state
        .metrics
        .operator
        .actions
        .get_or_create(&crate::telemetry::labels2(
            "action", action, "result", result,
        ))
        .inc();
}

/// What an action came to.
pub(super) enum Acted {
    Done,
    Already,
    Refused(String),
    Failed(String),
    Replayed,
}

impl Acted {
    pub(super) fn result(&self) -> &'static str {
        match self {
            Acted::Done => "done",
            Acted::Already => "already",
            Acted::Refused(_) => "refused",
            Acted::Failed(_) => "failed",
            Acted::Replayed => "replayed",
        }
    }
}

/// Performs `r`'s action for `client`: records it (spending `nonce`),
/// checks the alert's status now, changes it, records and counts the
/// outcome. `None` alert: the alert API could not be read.
pub(super) async fn act(
    state: &IngressState,
    r: &Resolved,
    client: &str,
    comment: &str,
    nonce: Option<String>,
) -> (Acted, Option<Arc<Alert>>) {
    match begin(state, r, client, nonce).await {
        Ok(id) => carry_out(state, r, id, client, comment).await,
        Err(acted) => (acted, None),
    }
}

/// Records the start of `r`'s action for `client`, spending `nonce`: the
/// record's id, or what it came to already (a replay, a spool failure).
pub(super) async fn begin(
    state: &IngressState,
    r: &Resolved,
    client: &str,
    nonce: Option<String>,
) -> Result<i64, Acted> {
    let action = r.action();
    let record = ActionRecord {
        at: crate::store::now_ms(),
        alert: r.link.alert.to_string(),
        action: action.as_str().into(),
        destination: r.destination.clone(),
        client: client.to_owned(),
        result: "pending".into(),
        detail: None,
    };
    match state.store.start_action(record, nonce).await {
        Ok(Some(id)) => Ok(id),
        Ok(None) => {
            count(state, action.as_str(), "replayed");
            Err(Acted::Replayed)
        }
        Err(e) => Err(Acted::Failed(format!("cannot record the action: {e}"))),
    }
}

/// Carries out the action begun as record `id`: checks the alert's
/// status now, changes it, records and counts the outcome.
pub(super) async fn carry_out(
    state: &IngressState,
    r: &Resolved,
    id: i64,
    client: &str,
    comment: &str,
) -> (Acted, Option<Arc<Alert>>) {
    let generation = state.live.get();
    let action = r.action();
    let alert = generation.enricher.fetch_now(&r.origin, r.link.alert).await;
    let (acted, alert) = match alert {
        Err(WorkflowError::Refused(m)) => (Acted::Refused(m), None),
        Err(WorkflowError::Failed(m)) => (Acted::Failed(m), None),
        Ok(a) if in_target(&a, action) => (Acted::Already, Some(a)),
        Ok(a) => {
            let comment = if comment.is_empty() {
                "(via hookrelay)".to_owned()
            } else {
                format!("{comment} (via hookrelay)")
            };
            match generation
                .enricher
                .change_status(&r.origin, r.link.alert, action.status_uuid(), &comment)
                .await
            {
                Ok(()) => (Acted::Done, Some(a)),
                Err(WorkflowError::Refused(m)) => (Acted::Refused(m), Some(a)),
                Err(WorkflowError::Failed(m)) => (Acted::Failed(m), Some(a)),
            }
        }
    };
    let detail = match &acted {
        Acted::Refused(m) | Acted::Failed(m) => Some(crate::render::clean(m, 300)),
        _ => None,
    };
    if let Err(e) = state
        .store
        .finish_action(id, acted.result(), detail.clone())
        .await
    {
        tracing::error!(message = "Cannot record an action's outcome.", error = %e);
    }
    count(state, action.as_str(), acted.result());
    tracing::info!(
        message = "Action on an alert.", action = action.as_str(), result = acted.result(),
        alert_uuid = %r.link.alert, destination = %r.destination, client, detail = detail.as_deref()
    );
    (acted, alert)
}

/// Page requests per client address per minute.
pub(super) const PER_MINUTE: u32 = 30;

/// Whether the alert already is where `action` would take it.
pub(super) fn in_target(a: &Alert, action: ActionKind) -> bool {
    a.raw().pointer("/status/uuid").and_then(|v| v.as_str()) == Some(action.status_uuid())
        || a.status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case(action.status_name()))
}
