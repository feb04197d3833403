//! Who may post to a hook: the client address (through trusted proxies)
//! against `allow_from`, and request signatures (Standard Webhooks or
//! GitHub style). All comparisons of secret material are constant-time
//! (`Mac::verify_slice`, `constant_time_eq`), and a request costs one MAC
//! per secret however many signatures it lists.

// Outside bytes: no indexing that could panic (see lib.rs).
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use crate::config::{HookConfig, SignatureScheme};
pub use crate::signing::{standard_webhooks_key, standard_webhooks_sign};
use axum::http::HeaderMap;
use base64::Engine;
use hmac::{Hmac, Mac};
use ipnet::IpNet;
use sha2::Sha256;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type HmacSha256 = Hmac<Sha256>;

/// Standard Webhooks timestamp tolerance (and replay memory).
pub const TOLERANCE: Duration = Duration::from_secs(300);

/// The client address: the peer, or — only when the peer is a trusted
/// proxy — the right-most `X-Forwarded-For` entry that is not itself a
/// trusted proxy. `None` when a trusted proxy sent an unparsable entry.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer = canonical(peer);
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let mut entries: Vec<&str> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(v) = value.to_str() else { return None };
        entries.extend(v.split(',').map(str::trim).filter(|s| !s.is_empty()));
    }
    let mut client = peer;
    for entry in entries.iter().rev() {
        let ip = parse_forwarded_ip(entry)?;
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    Some(client)
}

/// IPv4-mapped IPv6 peers (dual-stack sockets) compare as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// `1.2.3.4`, `1.2.3.4:5678`, `::1` or `[::1]:5678`.
fn parse_forwarded_ip(s: &str) -> Option<IpAddr> {
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(sa) = s.parse::<std::net::SocketAddr>() {
        return Some(canonical(sa.ip()));
    }
    None
}

pub fn allowed(hook: &HookConfig, client: Option<IpAddr>) -> bool {
    if hook.allow_from.is_empty() {
        return true;
    }
    client.is_some_and(|ip| hook.allow_from.iter().any(|n| n.contains(&ip)))
}

/// How long a `webhook-id` is refused after it was accepted: longer than
/// any timestamp the tolerance lets through.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(600);

/// Remembers recent Standard Webhooks message ids per hook, to refuse
/// replays within the tolerance window.
#[derive(Default)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<(String, String), Instant>>,
}

impl ReplayGuard {
    pub fn seen_recently(&self, hook: &str, id: &str) -> bool {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(&(hook.to_owned(), id.to_owned()))
            .is_some_and(|at| at.elapsed() < REPLAY_WINDOW)
    }

    pub fn remember(&self, hook: &str, id: &str) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > 10_000 {
            seen.retain(|_, at| at.elapsed() < REPLAY_WINDOW);
        }
        seen.insert((hook.to_owned(), id.to_owned()), Instant::now());
    }
}

/// Why a signature was refused (logged at debug; the sender only gets 401).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing header {0}")]
    Missing(&'static str),
    #[error("malformed header {0}")]
    Malformed(&'static str),
    #[error("timestamp outside the 5-minute tolerance")]
    Stale,
    #[error("no signature matches")]
    Mismatch,
    #[error("webhook-id already seen (replay)")]
    Replay,
}

/// The longest `webhook-signature` header read: room for
/// [`MAX_CANDIDATES`] signatures with their version prefix (a `v1,`
/// signature is 47 bytes).
pub const MAX_SIGNATURE_HEADER: usize = 2048;
/// The most signatures one `webhook-signature` may list (a sender
/// rotating keys lists two or three).
pub const MAX_CANDIDATES: usize = 16;
/// The longest `webhook-id` taken (the replay memory keeps it).
const MAX_WEBHOOK_ID: usize = 256;

/// The space-separated signatures of a `webhook-signature` header,
/// refused as malformed beyond [`MAX_SIGNATURE_HEADER`] bytes or
/// [`MAX_CANDIDATES`] entries, before any of them is looked at.
fn candidates(header: &str) -> Result<Vec<&str>, SignatureError> {
    const MALFORMED: SignatureError = SignatureError::Malformed("webhook-signature");
    if header.len() > MAX_SIGNATURE_HEADER {
        return Err(MALFORMED);
    }
    let list: Vec<&str> = header.split(' ').filter(|s| !s.is_empty()).collect();
    if list.len() > MAX_CANDIDATES {
        return Err(MALFORMED);
    }
    Ok(list)
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, SignatureError> {
    headers
        .get(name)
        .ok_or(SignatureError::Missing(name))?
        .to_str()
        .map_err(|_| SignatureError::Malformed(name))
}

/// How a request that passed [`verify`] on `hook` proved itself, for the
/// console's journey.
pub fn proof(hook: &HookConfig) -> &'static str {
    match (&hook.secret, hook.signature) {
        (None, _) => "none: the hook has no secret",
        (Some(_), Some(SignatureScheme::GithubSha256)) => "X-Hub-Signature-256 verified",
        (Some(_), _) => "Standard Webhooks signature verified",
    }
}

/// Verifies the request; returns the Standard Webhooks message id to
/// remember once the event is accepted.
pub fn verify(
    hook_name: &str,
    hook: &HookConfig,
    headers: &HeaderMap,
    body: &[u8],
    guard: &ReplayGuard,
) -> Result<Option<String>, SignatureError> {
    let Some(secret) = &hook.secret else {
        return Ok(None);
    };
    // After a rotation the previous secret is accepted until its deadline.
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let previous = hook
        .previous_secret
        .as_ref()
        .filter(|_| hook.previous_secret_until.is_some_and(|u| u > now_ms));
    match verify_with(hook_name, hook, secret, headers, body, guard) {
        Err(SignatureError::Mismatch) => match previous {
            Some(old) => verify_with(hook_name, hook, old, headers, body, guard),
            None => Err(SignatureError::Mismatch),
        },
        other => other,
    }
}

/// [`verify`] with one secret.
fn verify_with(
    hook_name: &str,
    hook: &HookConfig,
    secret: &crate::secret::Secret,
    headers: &HeaderMap,
    body: &[u8],
    guard: &ReplayGuard,
) -> Result<Option<String>, SignatureError> {
    match hook.signature.unwrap_or(SignatureScheme::StandardWebhooks) {
        SignatureScheme::GithubSha256 => {
            let value = header(headers, "x-hub-signature-256")?;
            let hex_sig = value
                .strip_prefix("sha256=")
                .filter(|h| h.len() == 64)
                .ok_or(SignatureError::Malformed("x-hub-signature-256"))?;
            let sig = hex::decode(hex_sig)
                .map_err(|_| SignatureError::Malformed("x-hub-signature-256"))?;
            let mut mac = HmacSha256::new_from_slice(secret.expose().as_bytes())
                .expect("HMAC takes any key length");
            mac.update(body);
            mac.verify_slice(&sig)
                .map_err(|_| SignatureError::Mismatch)?;
            Ok(None)
        }
        SignatureScheme::StandardWebhooks => {
            let id = header(headers, "webhook-id")?;
            if id.is_empty() || id.len() > MAX_WEBHOOK_ID {
                return Err(SignatureError::Malformed("webhook-id"));
            }
            let ts_text = header(headers, "webhook-timestamp")?;
            let sigs = header(headers, "webhook-signature")?;
            let ts: i64 = ts_text
                .trim()
                .parse()
                .map_err(|_| SignatureError::Malformed("webhook-timestamp"))?;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            if (now - ts).unsigned_abs() > TOLERANCE.as_secs() {
                return Err(SignatureError::Stale);
            }
            // Validation checked the whsec_ + base64 form.
            let key = standard_webhooks_key(secret.expose()).ok_or(SignatureError::Mismatch)?;
            // One MAC whatever the header holds: the expected signature is
            // computed once and every candidate compared with it.
            let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes any key length");
            mac.update(id.as_bytes());
            mac.update(b".");
            mac.update(ts_text.as_bytes());
            mac.update(b".");
            mac.update(body);
            let expected = mac.finalize().into_bytes();
            let mut matched = false;
            for candidate in candidates(sigs)? {
                let Some(b64) = candidate.strip_prefix("v1,") else {
                    continue;
                };
                let Ok(sig) = base64::engine::general_purpose::STANDARD.decode(b64) else {
                    continue;
                };
                matched |= crate::config::constant_time_eq(&expected, &sig);
            }
            if !matched {
                return Err(SignatureError::Mismatch);
            }
            if guard.seen_recently(hook_name, id) {
                return Err(SignatureError::Replay);
            }
            Ok(Some(id.to_owned()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn xff(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn client_ip_through_trusted_proxies_only() {
        let trusted: Vec<IpNet> = vec![
            "127.0.0.1/32".parse().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
        ];
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        let outside: IpAddr = "198.51.100.7".parse().unwrap();
        // Untrusted peer: its header is ignored.
        assert_eq!(
            client_ip(outside, &xff("203.0.113.9"), &trusted),
            Some(outside)
        );
        // Trusted peer: right-most untrusted entry; a forged left entry changes nothing.
        assert_eq!(
            client_ip(local, &xff("203.0.113.9, 198.51.100.1, 10.1.1.1"), &trusted),
            Some("198.51.100.1".parse().unwrap())
        );
        assert_eq!(client_ip(local, &HeaderMap::new(), &trusted), Some(local));
        assert_eq!(client_ip(local, &xff("garbage"), &trusted), None);
    }

    #[test]
    fn standard_webhooks_round_trip() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let hook = HookConfig {
            id: uuid::Uuid::nil(),
            origin: "o".into(),
            secret: Some(crate::secret::Secret::new(secret)),
            previous_secret: None,
            previous_secret_until: None,
            signature: Some(SignatureScheme::StandardWebhooks),
            allow_from: vec![],
            expect_within: None,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let body = br#"{"a":1}"#;
        let sig = standard_webhooks_sign(secret, "msg_1", now, body).unwrap();
        let mut h = HeaderMap::new();
        h.insert("webhook-id", HeaderValue::from_static("msg_1"));
        h.insert(
            "webhook-timestamp",
            HeaderValue::from_str(&now.to_string()).unwrap(),
        );
        h.insert(
            "webhook-signature",
            HeaderValue::from_str(&format!("v1,Zm9v {sig}")).unwrap(),
        );
        let guard = ReplayGuard::default();
        assert_eq!(
            verify("h", &hook, &h, body, &guard),
            Ok(Some("msg_1".into()))
        );
        assert_eq!(
            verify("h", &hook, &h, b"{\"a\":2}", &guard),
            Err(SignatureError::Mismatch)
        );
        guard.remember("h", "msg_1");
        assert_eq!(
            verify("h", &hook, &h, body, &guard),
            Err(SignatureError::Replay)
        );
        h.insert(
            "webhook-timestamp",
            HeaderValue::from_str(&(now - 301).to_string()).unwrap(),
        );
        assert_eq!(
            verify("h", &hook, &h, body, &guard),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn signature_headers_are_bounded_before_any_mac() {
        let sig = "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=";
        assert_eq!(
            candidates(&format!("v1,AAAA  {sig}")),
            Ok(vec!["v1,AAAA", sig])
        );
        let many = vec![sig; MAX_CANDIDATES].join(" ");
        assert_eq!(candidates(&many).map(|c| c.len()), Ok(MAX_CANDIDATES));
        let too_many = format!("{many} v1,");
        assert!(too_many.len() < MAX_SIGNATURE_HEADER);
        assert_eq!(
            candidates(&too_many),
            Err(SignatureError::Malformed("webhook-signature"))
        );
        assert_eq!(
            candidates(&"x".repeat(MAX_SIGNATURE_HEADER + 1)),
            Err(SignatureError::Malformed("webhook-signature"))
        );
    }

    #[test]
    fn a_rotated_secret_is_accepted_until_its_deadline() {
        let old = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let new = "whsec_dGhpcyBpcyB0aGUgbmV3IHNlY3JldCAhIQ==";
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let mut hook = HookConfig {
            id: uuid::Uuid::nil(),
            origin: "o".into(),
            secret: Some(crate::secret::Secret::new(new)),
            previous_secret: Some(crate::secret::Secret::new(old)),
            previous_secret_until: Some(now.as_millis() as i64 + 60_000),
            signature: None,
            allow_from: vec![],
            expect_within: None,
        };
        let body = br#"{"a":1}"#;
        let signed = |secret: &str, id: &str| {
            let sig = standard_webhooks_sign(secret, id, now.as_secs() as i64, body).unwrap();
            let mut h = HeaderMap::new();
            h.insert("webhook-id", HeaderValue::from_str(id).unwrap());
            h.insert(
                "webhook-timestamp",
                HeaderValue::from_str(&now.as_secs().to_string()).unwrap(),
            );
            h.insert("webhook-signature", HeaderValue::from_str(&sig).unwrap());
            h
        };
        let guard = ReplayGuard::default();
        assert!(verify("h", &hook, &signed(new, "m1"), body, &guard).is_ok());
        assert!(verify("h", &hook, &signed(old, "m2"), body, &guard).is_ok());
        hook.previous_secret_until = Some(now.as_millis() as i64 - 1);
        assert_eq!(
            verify("h", &hook, &signed(old, "m3"), body, &guard),
            Err(SignatureError::Mismatch)
        );
    }
}
