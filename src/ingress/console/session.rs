//! Console sessions and CSRF tokens.
//!
//! A session is a cookie `hookrelay_console=<expiry>.<epoch>.<nonce>.<mac>`:
//! the MAC (HMAC-SHA256) is keyed by a key derived from the console
//! password with Argon2id and a random salt kept in the spool, so every
//! replica with the same password and spool accepts it, a new password
//! ends every session, and a captured cookie costs an Argon2id run per
//! password guessed (not one HMAC). The epoch is the spool's session
//! epoch when the cookie was issued: a logout moves it on, and a cookie of
//! another epoch is refused by every replica. A form's CSRF token is the
//! MAC of the session's nonce. Without a password (loopback only) there is
//! no login, and the CSRF key is random per process.

use crate::config::constant_time_eq as same;
use crate::config::ConsoleConfig;
use crate::store::{Store, StoreError};
use axum::http::{header, HeaderMap};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::net::IpAddr;
use std::sync::Arc;

const COOKIE: &str = "hookrelay_console";
/// Login attempts per client address per minute.
const LOGINS_PER_MINUTE: u32 = 10;
/// Argon2id's cost: 32 MiB, 2 passes, one lane. About 65 ms of CPU
/// (measured on the development machine), paid once per password (at start, or at the first request
/// after a reload that changed it), never per request; an attacker with a
/// cookie pays it per guess.
const KDF_MEMORY_KIB: u32 = 32 * 1024;
const KDF_PASSES: u32 = 2;
/// Bytes of random salt made at first use.
const SALT_LEN: usize = 16;

/// The process's own key, the derived session key and the login rate limit.
pub struct Keys {
    local: [u8; 32],
    logins: crate::ingress::PerMinute,
    /// The session key, derived again only when the password changes.
    /// The lock makes concurrent first requests derive it once.
    derived: tokio::sync::Mutex<Option<Derived>>,
}

/// A session key and the fingerprint (a MAC under `Keys::local`) of the
/// password it was derived from.
struct Derived {
    fingerprint: [u8; 32],
    key: Arc<[u8; 32]>,
}

impl Default for Keys {
    fn default() -> Self {
        let mut local = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut local);
        Keys {
            local,
            logins: Default::default(),
            derived: Default::default(),
        }
    }
}

/// What a request's cookie is checked against: the session key and the
/// spool's session epoch now.
#[derive(Clone)]
pub struct Sealer {
    key: Arc<[u8; 32]>,
    epoch: i64,
}

/// Why the console cannot check sessions now.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("cannot derive the session key: {0}")]
    Kdf(String),
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

/// The session key of `password` with `salt` (Argon2id).
fn derive(password: &[u8], salt: &[u8]) -> Result<[u8; 32], KeyError> {
    use argon2::{Algorithm, Argon2, Params, Version};
    let kdf = |e: argon2::Error| KeyError::Kdf(e.to_string());
    let params = Params::new(KDF_MEMORY_KIB, KDF_PASSES, 1, Some(32)).map_err(kdf)?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password, salt, &mut out)
        .map_err(kdf)?;
    Ok(out)
}

impl Keys {
    /// The session key and epoch to check and issue cookies with; `None`
    /// without a password. The key is derived (Argon2id, off the async
    /// threads) the first time a password is seen, with the spool's salt
    /// (made now if the spool has none); later calls find it cached.
    pub async fn sealer(
        &self,
        console: &ConsoleConfig,
        store: &Store,
    ) -> Result<Option<Sealer>, KeyError> {
        let Some(password) = &console.password else {
            return Ok(None);
        };
        let fingerprint: [u8; 32] = mac(&self.local, &[b"password", password.expose().as_bytes()])
            .try_into()
            .expect("HMAC-SHA256 is 32 bytes");
        let key = {
            let mut derived = self.derived.lock().await;
            match derived.as_ref() {
                Some(d) if same(&d.fingerprint, &fingerprint) => d.key.clone(),
                _ => {
                    let mut candidate = vec![0u8; SALT_LEN];
                    rand::thread_rng().fill_bytes(&mut candidate);
                    let salt = store.console_salt(candidate).await?;
                    let pw = password.expose().as_bytes().to_vec();
                    let started = std::time::Instant::now();
                    let key = tokio::task::spawn_blocking(move || derive(&pw, &salt))
                        .await
                        .map_err(|e| KeyError::Kdf(e.to_string()))??;
                    tracing::debug!(
                        message = "Console session key derived.",
                        ms = started.elapsed().as_millis() as u64
                    );
                    let key = Arc::new(key);
                    *derived = Some(Derived {
                        fingerprint,
                        key: key.clone(),
                    });
                    key
                }
            }
        };
        let epoch = store.console_epoch().await?;
        Ok(Some(Sealer { key, epoch }))
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

    /// A new session's `Set-Cookie` value, sealed with `sealer`.
    pub fn issue(console: &ConsoleConfig, sealer: &Sealer) -> String {
        let expires = crate::store::now_ms() + console.session_ttl.as_millis() as i64;
        let mut raw = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut raw);
        let nonce = hex::encode(raw);
        let body = format!("{expires}.{}.{nonce}", sealer.epoch);
        let tag = hex::encode(mac(&sealer.key[..], &[body.as_bytes()]));
        format!(
            "{COOKIE}={body}.{tag}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{}",
            console.session_ttl.as_secs(),
            if console.secure() { "; Secure" } else { "" }
        )
    }

    /// The `Set-Cookie` value that ends a session.
    pub fn clear(console: &ConsoleConfig) -> String {
        format!(
            "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if console.secure() { "; Secure" } else { "" }
        )
    }
}

/// The request's session: always one without a password (`sealer` is
/// `None`); else a valid, unexpired cookie's of the current epoch.
pub fn current(keys: &Keys, sealer: Option<&Sealer>, headers: &HeaderMap) -> Option<Session> {
    let Some(sealer) = sealer else {
        return Some(keys.session(keys.local.to_vec(), "local"));
    };
    let value = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, v)| v)?;
    let (body, tag) = value.rsplit_once('.')?;
    let (expires, rest) = body.split_once('.')?;
    let (epoch, nonce) = rest.split_once('.')?;
    let tag = hex::decode(tag).ok()?;
    if !same(&tag, &mac(&sealer.key[..], &[body.as_bytes()])) {
        return None;
    }
    if expires.parse::<i64>().ok()? <= crate::store::now_ms() {
        return None;
    }
    // Issued before the last logout (or under a spool since replaced).
    if epoch.parse::<i64>().ok()? != sealer.epoch {
        return None;
    }
    Some(keys.session(sealer.key.to_vec(), nonce))
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
            secure_cookies: Some(true),
            session_ttl: Duration::from_secs(3600),
            public_url: None,
            allowed_hosts: Vec::new(),
        }
    }

    fn sealer(password: &str, epoch: i64) -> Sealer {
        Sealer {
            key: Arc::new(derive(password.as_bytes(), &[7; SALT_LEN]).unwrap()),
            epoch,
        }
    }

    fn cookie_headers(set_cookie: &str) -> HeaderMap {
        let pair = set_cookie.split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, format!("other=1; {pair}").parse().unwrap());
        h
    }

    #[test]
    fn a_session_holds_for_its_password_and_epoch_only() {
        let keys = Keys::default();
        let c = console(Some("correct horse battery"));
        let s0 = sealer("correct horse battery", 0);
        let set = Keys::issue(&c, &s0);
        assert!(
            set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Secure")
        );
        let s = current(&keys, Some(&s0), &cookie_headers(&set)).expect("a valid session");
        assert!(s.csrf_ok(&s.csrf));
        assert!(!s.csrf_ok("00"));
        assert!(!s.csrf_ok("not hex"));
        // Another replica with the same password and spool accepts it.
        assert!(current(&Keys::default(), Some(&s0), &cookie_headers(&set)).is_some());
        // A new password ends it; so does a logout (the next epoch).
        let other = sealer("another password!", 0);
        assert!(current(&keys, Some(&other), &cookie_headers(&set)).is_none());
        let after_logout = sealer("correct horse battery", 1);
        assert!(current(&keys, Some(&after_logout), &cookie_headers(&set)).is_none());
        // A forged or truncated cookie is nothing; so is an epoch changed
        // by hand (the MAC covers it).
        let forged = set.replacen("hookrelay_console=", "hookrelay_console=9", 1);
        assert!(current(&keys, Some(&s0), &cookie_headers(&forged)).is_none());
        let moved = set.replacen(".0.", ".1.", 1);
        assert!(current(&keys, Some(&after_logout), &cookie_headers(&moved)).is_none());
        assert!(current(&keys, Some(&s0), &HeaderMap::new()).is_none());
    }

    #[test]
    fn the_key_depends_on_password_and_salt() {
        let a = derive(b"correct horse battery", &[1; SALT_LEN]).unwrap();
        assert_eq!(a, derive(b"correct horse battery", &[1; SALT_LEN]).unwrap());
        assert_ne!(a, derive(b"correct horse battery", &[2; SALT_LEN]).unwrap());
        assert_ne!(a, derive(b"correct horse batterz", &[1; SALT_LEN]).unwrap());
        // Not the old constant-salted HMAC of the password.
        assert_ne!(
            a.to_vec(),
            mac(b"correct horse battery", &[b"hookrelay console session v1"])
        );
    }

    #[tokio::test]
    async fn the_key_is_derived_once_per_password_with_the_spools_salt() {
        let dir = tempfile::tempdir().unwrap();
        let config = crate::config::StoreConfig {
            path: dir.path().join("spool.db"),
            ..Default::default()
        };
        let store = Store::open_now(&config, Duration::from_secs(5))
            .await
            .unwrap();
        let c = console(Some("correct horse battery"));
        let (one, two) = (Keys::default(), Keys::default());
        let a = one.sealer(&c, &store).await.unwrap().unwrap();
        // Cached: the same key, without deriving again.
        let again = one.sealer(&c, &store).await.unwrap().unwrap();
        assert!(Arc::ptr_eq(&a.key, &again.key));
        // Another process on the same spool gets the same key.
        let b = two.sealer(&c, &store).await.unwrap().unwrap();
        assert_eq!(a.key, b.key);
        // A new password: a new key.
        let changed = one
            .sealer(&console(Some("another password!")), &store)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(a.key, changed.key);
        // A logout moves the epoch every sealer reads.
        store.end_console_sessions().await.unwrap();
        assert_eq!(one.sealer(&c, &store).await.unwrap().unwrap().epoch, 1);
        assert!(one.sealer(&console(None), &store).await.unwrap().is_none());
    }

    #[test]
    fn cookies_are_secure_by_default_over_https() {
        let mut c = console(Some("correct horse battery"));
        c.secure_cookies = None;
        assert!(!c.secure());
        c.public_url = Some("http://relay.example.org".into());
        assert!(!c.secure());
        c.public_url = Some("HTTPS://relay.example.org".into());
        assert!(c.secure());
        assert!(Keys::issue(&c, &sealer("correct horse battery", 0)).ends_with("; Secure"));
        assert!(Keys::clear(&c).ends_with("; Secure"));
        // An explicit setting wins.
        c.secure_cookies = Some(false);
        assert!(!c.secure());
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
