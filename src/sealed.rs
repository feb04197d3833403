//! Sealing tenants' documents at rest: XChaCha20-Poly1305 (an AEAD) with
//! the key of `admin.secrets_key_file` and a random 24-byte nonce per
//! seal. A copy of the spool alone reveals none of what is sealed; a
//! changed byte, or another key, fails to open.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

const NONCE: usize = 24;

/// `nonce || ciphertext` of `plaintext`; `context` (the tenant's name) is
/// bound to it, so a sealed document cannot be moved to another tenant.
pub fn seal(key: &[u8; 32], context: &str, plaintext: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut nonce = [0u8; NONCE];
    rand::thread_rng().fill_bytes(&mut nonce);
    let sealed = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            chacha20poly1305::aead::Payload {
                msg: plaintext,
                aad: context.as_bytes(),
            },
        )
        .expect("encryption does not fail for in-memory buffers");
    let mut out = Vec::with_capacity(NONCE + sealed.len());
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&sealed);
    out
}

/// The plaintext of [`seal`]'s output, or an error when the key, the
/// context or the bytes are not those it was sealed with.
pub fn open(key: &[u8; 32], context: &str, sealed: &[u8]) -> Result<Vec<u8>, String> {
    if sealed.len() < NONCE + 16 {
        return Err("the sealed document is truncated".into());
    }
    let (nonce, body) = sealed.split_at(NONCE);
    XChaCha20Poly1305::new(key.into())
        .decrypt(
            XNonce::from_slice(nonce),
            chacha20poly1305::aead::Payload {
                msg: body,
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| {
            "cannot decrypt (another admin.secrets_key_file than the one it was stored with?)"
                .into()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_opens_only_with_its_key_and_context() {
        let key = [7u8; 32];
        let s = seal(&key, "acme", b"api_key = sk-123");
        assert!(
            !s.windows(6).any(|w| w == b"sk-123"),
            "no plaintext in the sealed bytes"
        );
        assert_eq!(open(&key, "acme", &s).unwrap(), b"api_key = sk-123");
        assert!(open(&[8u8; 32], "acme", &s).is_err());
        assert!(open(&key, "other", &s).is_err());
        let mut flipped = s.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(open(&key, "acme", &flipped).is_err());
        assert!(open(&key, "acme", &s[..10]).is_err());
        assert_ne!(
            seal(&key, "acme", b"x"),
            seal(&key, "acme", b"x"),
            "a fresh nonce each time"
        );
    }
}
