//! Action links: `{public_url}/actions/{token}`, where the token is signed
//! with the actions secret (HMAC-SHA256) and binds the alert, the action,
//! the destination, the origin and an expiry. It carries no secret and
//! shows nothing but the alert's uuid: the destination and the origin are
//! keyed tags that only the relay can match to a name. Rotating the
//! secret revokes every link.
//!
//! The confirmation form carries a CSRF token of its own, signed over the
//! action token, its issue time and a random nonce; the nonce is spent
//! when the action is performed, so a form cannot be posted twice.

// Outside bytes: no indexing that could panic (see lib.rs).
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use crate::config::ActionKind;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

const VERSION: u8 = 1;
/// version, uuid, action, destination tag, origin tag, expiry.
const PAYLOAD: usize = 1 + 16 + 1 + 8 + 8 + 8;
/// Bytes of the MAC kept (128 bits).
const MAC: usize = 16;
/// A token longer than this is garbage (checked before decoding).
pub const MAX_TOKEN: usize = 128;
/// A CSRF token is good this long after its page was shown.
pub const CSRF_TTL_SECS: u64 = 3600;

/// What an action link says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    pub alert: Uuid,
    pub action: ActionKind,
    pub destination: [u8; 8],
    pub origin: [u8; 8],
    /// Unix seconds.
    pub expires: u64,
}

/// Why a token is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the link is malformed")]
    Malformed,
    #[error("the link's signature does not match")]
    Forged,
    #[error("the link has expired")]
    Expired,
}

fn mac(secret: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(secret).expect("HMAC takes any key length");
    for p in parts {
        m.update(&(p.len() as u32).to_be_bytes());
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

/// The keyed tag of a destination or origin name (`what` keeps the two
/// apart): the token names it without revealing it.
pub fn tag(secret: &[u8], what: &str, name: &str) -> [u8; 8] {
    let full = mac(secret, &[b"tag", what.as_bytes(), name.as_bytes()]);
    full[..8].try_into().expect("8 of 32 bytes")
}

/// The token of `link`.
pub fn sign(secret: &[u8], link: &Link) -> String {
    let mut bytes = Vec::with_capacity(PAYLOAD + MAC);
    bytes.push(VERSION);
    bytes.extend_from_slice(link.alert.as_bytes());
    bytes.push(link.action.to_byte());
    bytes.extend_from_slice(&link.destination);
    bytes.extend_from_slice(&link.origin);
    bytes.extend_from_slice(&link.expires.to_be_bytes());
    let m = mac(secret, &[b"link", &bytes]);
    bytes.extend_from_slice(&m[..MAC]);
    B64.encode(bytes)
}

/// Checks a token at `now` (unix seconds): the signature first, so a
/// forged token is refused as such whatever its expiry says.
pub fn verify(secret: &[u8], token: &str, now: u64) -> Result<Link, TokenError> {
    if token.len() > MAX_TOKEN {
        return Err(TokenError::Malformed);
    }
    let bytes = B64.decode(token).map_err(|_| TokenError::Malformed)?;
    if bytes.len() != PAYLOAD + MAC || bytes.first() != Some(&VERSION) {
        return Err(TokenError::Malformed);
    }
    let (payload, given) = bytes.split_at(PAYLOAD);
    let want = mac(secret, &[b"link", payload]);
    if !crate::config::constant_time_eq(want.get(..MAC).unwrap_or_default(), given) {
        return Err(TokenError::Forged);
    }
    let [action] = bytes_at::<1>(payload, 17).ok_or(TokenError::Malformed)?;
    let action = ActionKind::from_byte(action).ok_or(TokenError::Malformed)?;
    let link = Link {
        alert: Uuid::from_bytes(bytes_at(payload, 1).ok_or(TokenError::Malformed)?),
        action,
        destination: bytes_at(payload, 18).ok_or(TokenError::Malformed)?,
        origin: bytes_at(payload, 26).ok_or(TokenError::Malformed)?,
        expires: u64::from_be_bytes(bytes_at(payload, 34).ok_or(TokenError::Malformed)?),
    };
    if link.expires <= now {
        return Err(TokenError::Expired);
    }
    Ok(link)
}

/// A CSRF token for the form of action `token`, issued at `now`.
pub fn csrf(secret: &[u8], token: &str, now: u64) -> String {
    let nonce: [u8; 16] = rand::random();
    let mut bytes = Vec::with_capacity(8 + 16 + MAC);
    bytes.extend_from_slice(&now.to_be_bytes());
    bytes.extend_from_slice(&nonce);
    let m = mac(secret, &[b"csrf", token.as_bytes(), &bytes]);
    bytes.extend_from_slice(&m[..MAC]);
    B64.encode(bytes)
}

/// Checks a form's CSRF token for action `token`; returns its nonce (hex),
/// which the caller spends so the form cannot be replayed.
pub fn verify_csrf(secret: &[u8], token: &str, csrf: &str, now: u64) -> Option<String> {
    if csrf.len() > MAX_TOKEN {
        return None;
    }
    let bytes = B64.decode(csrf).ok()?;
    if bytes.len() != 8 + 16 + MAC {
        return None;
    }
    let (signed, given) = bytes.split_at(24);
    let want = mac(secret, &[b"csrf", token.as_bytes(), signed]);
    if !crate::config::constant_time_eq(want.get(..MAC).unwrap_or_default(), given) {
        return None;
    }
    let (issued, nonce) = signed.split_at(8);
    let issued = u64::from_be_bytes(issued.try_into().ok()?);
    if issued > now + 60 || now.saturating_sub(issued) > CSRF_TTL_SECS {
        return None;
    }
    Some(hex::encode(nonce))
}

/// `N` bytes of `b` from `at`, if it has them.
fn bytes_at<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at.checked_add(N)?)?.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn link() -> Link {
        Link {
            alert: Uuid::parse_str("5696845f-9ecf-4431-9f0f-48ee0ee2eff1").unwrap(),
            action: ActionKind::Close,
            destination: tag(SECRET, "destination", "teams"),
            origin: tag(SECRET, "origin", "sekoia"),
            expires: 1_000,
        }
    }

    #[test]
    fn a_link_round_trips_and_reveals_only_the_alert() {
        let token = sign(SECRET, &link());
        assert!(token.len() <= MAX_TOKEN);
        assert_eq!(verify(SECRET, &token, 999), Ok(link()));
        let bytes = B64.decode(&token).unwrap();
        let shown = String::from_utf8_lossy(&bytes);
        assert!(!shown.contains("teams") && !shown.contains("sekoia"));
    }

    #[test]
    fn tampered_expired_and_garbage_tokens_are_refused() {
        let token = sign(SECRET, &link());
        assert_eq!(verify(SECRET, &token, 1_000), Err(TokenError::Expired));
        assert_eq!(
            verify(b"another secret, rotated........", &token, 1),
            Err(TokenError::Forged)
        );
        // Every single byte changed is caught (a later expiry, another action…).
        let bytes = B64.decode(&token).unwrap();
        for i in 0..bytes.len() {
            let mut b = bytes.clone();
            b[i] ^= 0x01;
            let r = verify(SECRET, &B64.encode(&b), 1);
            assert!(
                matches!(r, Err(TokenError::Forged | TokenError::Malformed)),
                "byte {i}: {r:?}"
            );
        }
        for garbage in ["", "x", "!!!!", &"A".repeat(500), &token[..token.len() - 2]] {
            assert_eq!(
                verify(SECRET, garbage, 1),
                Err(TokenError::Malformed),
                "{garbage}"
            );
        }
    }

    #[test]
    fn csrf_tokens_are_bound_to_their_link_and_expire() {
        let token = sign(SECRET, &link());
        let c = csrf(SECRET, &token, 100);
        let nonce = verify_csrf(SECRET, &token, &c, 200).unwrap();
        assert_eq!(nonce.len(), 32);
        assert_ne!(csrf(SECRET, &token, 100), c, "each page gets its own nonce");
        let other = sign(
            SECRET,
            &Link {
                action: ActionKind::Reject,
                ..link()
            },
        );
        assert_eq!(verify_csrf(SECRET, &other, &c, 200), None);
        assert_eq!(
            verify_csrf(SECRET, &token, &c, 100 + CSRF_TTL_SECS + 1),
            None
        );
        assert_eq!(verify_csrf(SECRET, &token, "garbage", 200), None);
    }
}
