//! Standard Webhooks signatures (`whsec_…` secrets, `v1,<base64 HMAC>`):
//! the one definition that ingress verifies with, outgoing webhooks sign
//! with, and the config checks secrets against.

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
