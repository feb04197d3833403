//! Standard Webhooks signatures (`whsec_…` secrets, `v1,<base64 HMAC>`):
//! the one definition that ingress verifies with, outgoing webhooks sign
//! with, and the config checks secrets against.

// Outside bytes: no indexing that could panic (see lib.rs).
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The HMAC key of a `whsec_<base64>` secret.
pub fn standard_webhooks_key(secret: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_")?)
        .ok()
}

/// The shortest key accepted: Standard Webhooks asks for 24 to 64 random
/// bytes; fewer can be guessed offline from one signed request.
pub const MIN_KEY_BYTES: usize = 24;

/// Why `secret` cannot be a Standard Webhooks secret, if it cannot: the
/// words `check` shows after the key's name (never the value).
pub fn secret_problem(secret: &str) -> Option<String> {
    match standard_webhooks_key(secret) {
        None => Some("a standard-webhooks secret is \"whsec_\" followed by base64".into()),
        Some(key) if key.len() < MIN_KEY_BYTES => Some(format!(
            "a standard-webhooks key of {} bytes is too short to keep: use at least {MIN_KEY_BYTES} random bytes (\"whsec_\" + base64, e.g. `echo whsec_$(head -c 32 /dev/urandom | base64)`)",
            key.len()
        )),
        Some(_) => None,
    }
}

/// Signs like a Standard Webhooks sender (tests, the demo, outgoing
/// webhooks): `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
pub fn standard_webhooks_sign(
    secret: &str,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> Option<String> {
    let key = standard_webhooks_key(secret)?;
    let mut mac = HmacSha256::new_from_slice(&key).ok()?;
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    Some(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}
