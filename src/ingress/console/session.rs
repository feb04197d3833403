//! Console sessions and CSRF tokens.
//!
//! A session is a cookie `hookrelay_console=<expiry>.<nonce>.<mac>`: the
//! MAC (HMAC-SHA256) is keyed by a key derived from the console password,
//! so every replica with the same password accepts it, a new password
//! ends every session, and the server keeps nothing. A form's CSRF token
//! is the MAC of the session's nonce. Without a password (loopback only)
//! there is no login, and the CSRF key is random per process.

use crate::config::constant_time_eq as same;
use crate::config::ConsoleConfig;
use axum::http::{header, HeaderMap};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::net::IpAddr;

const COOKIE: &str = "hookrelay_console";
/// Login attempts per client address per minute.
const LOGINS_PER_MINUTE: u32 = 10;

/// The process's own key and the login rate limit.
pub struct Keys {
    local: [u8; 32],
    logins: crate::ingress::PerMinute,
}

impl Default for Keys {
    fn default() -> Self {
        let mut local = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut local);
        Keys {
            local,
            logins: Default::default(),
        }
    }
}

/// A request's session: its CSRF token for the forms it shows.
#[derive(Clone)]
pub struct Session {
    pub csrf: String,
    nonce: String,
    key: Vec<u8>,
}

fn mac(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    for p in parts {
        m.update(p);
        m.update(b"\x00");
    }
    m.finalize().into_bytes().to_vec()
}

impl Keys {
    fn key(&self, console: &ConsoleConfig) -> Vec<u8> {
        match &console.password {
            Some(p) => mac(p.expose().as_bytes(), &[b"hookrelay console session v1"]),
            None => self.local.to_vec(),
        }
    }

    fn session(&self, key: Vec<u8>, nonce: &str) -> Session {
        Session {
            csrf: hex::encode(mac(&key, &[b"csrf", nonce.as_bytes()])),
            nonce: nonce.to_owned(),
            key,
        }
    }

    /// Whether `ip` may try to log in now.
    pub fn login_allowed(&self, ip: IpAddr) -> bool {
        self.logins.allow(ip, LOGINS_PER_MINUTE)
    }

    /// Whether the user name and password are right, compared in constant
    /// time (the same work whichever is wrong).
    pub fn credentials_match(&self, console: &ConsoleConfig, user: &str, password: &str) -> bool {
        let Some(expected) = &console.password else {
            return true;
        };
        let u = same(
            &mac(&self.local, &[user.as_bytes()]),
            &mac(&self.local, &[console.username.as_bytes()]),
        );
        let p = same(
            &mac(&self.local, &[password.as_bytes()]),
            &mac(&self.local, &[expected.expose().as_bytes()]),
        );
        u & p
    }

    /// A new session's `Set-Cookie` value.
    pub fn issue(&self, console: &ConsoleConfig) -> String {
        let key = self.key(console);
        let expires = crate::store::now_ms() + console.session_ttl.as_millis() as i64;
        let mut raw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut raw);
        let nonce = hex::encode(raw);
        let body = format!("{expires}.{nonce}");
        let tag = hex::encode(mac(&key, &[body.as_bytes()]));
        format!(
            "{COOKIE}={body}.{tag}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{}",
            console.session_ttl.as_secs(),
            if console.secure_cookies {
                "; Secure"
            } else {
                ""
            }
        )
    }

    /// The `Set-Cookie` value that ends a session.
    pub fn clear(console: &ConsoleConfig) -> String {
        format!(
            "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if console.secure_cookies {
                "; Secure"
            } else {
                ""
            }
        )
    }
}

/// The request's session: always one without a password; else a valid,
/// unexpired cookie's.
pub fn current(keys: &Keys, console: &ConsoleConfig, headers: &HeaderMap) -> Option<Session> {
    let key = keys.key(console);
    if console.password.is_none() {
        return Some(keys.session(key, "local"));
    }
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v)?;
    let (body, tag) = value.rsplit_once('.')?;
    let (expires, nonce) = body.split_once('.')?;
    let tag = hex::decode(tag).ok()?;
    if !same(&tag, &mac(&key, &[body.as_bytes()])) {
        return None;
    }
    if expires.parse::<i64>().ok()? <= crate::store::now_ms() {
        return None;
    }
    Some(keys.session(key, nonce))
}

impl Session {
    /// Whether a form's token is this session's.
    pub fn csrf_ok(&self, token: &str) -> bool {
        let want = mac(&self.key, &[b"csrf", self.nonce.as_bytes()]);
        hex::decode(token).is_ok_and(|t| same(&t, &want))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use std::time::Duration;

    fn console(password: Option<&str>) -> ConsoleConfig {
        ConsoleConfig {
            enabled: true,
            username: "admin".into(),
            password: password.map(Secret::new),
            secure_cookies: true,
            session_ttl: Duration::from_secs(3600),
            public_url: None,
        }
    }

    fn cookie_headers(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("other=1; {pair}").parse().unwrap());
        h
    }

    #[test]
    fn a_session_holds_for_its_password_only() {
        let keys = Keys::default();
        let c = console(Some("correct horse battery"));
        let set = keys.issue(&c);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure")
        );
        let s = current(&keys, &c, &cookie_headers(&set)).expect("a valid session");
        assert!(s.csrf_ok(&s.csrf));
        assert!(!s.csrf_ok("00"));
        assert!(!s.csrf_ok("not hex"));
        // Another replica with the same password accepts it.
        assert!(current(&Keys::default(), &c, &cookie_headers(&set)).is_some());
        // A new password ends it; a forged or truncated cookie is nothing.
        assert!(current(
            &keys,
            &console(Some("another password!")),
            &cookie_headers(&set)
        )
        .is_none());
        let forged = set.replacen("hookrelay_console=", "hookrelay_console=9", 1);
        assert!(current(&keys, &c, &cookie_headers(&forged)).is_none());
        assert!(current(&keys, &c, &HeaderMap::new()).is_none());
    }

    #[test]
    fn credentials_are_checked_together() {
        let keys = Keys::default();
        let c = console(Some("correct horse battery"));
        assert!(keys.credentials_match(&c, "admin", "correct horse battery"));
        assert!(!keys.credentials_match(&c, "root", "correct horse battery"));
        assert!(!keys.credentials_match(&c, "admin", "wrong"));
    }

    #[test]
    fn logins_are_rate_limited_per_address() {
        let keys = Keys::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!((0..LOGINS_PER_MINUTE).all(|_| keys.login_allowed(ip)));
        assert!(!keys.login_allowed(ip));
        assert!(keys.login_allowed("192.0.2.2".parse().unwrap()));
    }
}
