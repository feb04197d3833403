//! `[console]`: the web console's settings.

use crate::secret::Secret;
use serde::Deserialize;
use std::time::Duration;

/// `[console]`: the web console on the admin listener, under `/console/`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {
    #[serde(default)]
    pub enabled: bool,
    /// The login; required when `admin.listen` is not a loopback address.
    #[serde(default = "default_console_user")]
    pub username: String,
    pub password: Option<Secret>,
    /// Mark the session cookie `Secure` (the console is reached over HTTPS,
    /// through a reverse proxy). Unset: on when `public_url` is `https`
    /// (see [`ConsoleConfig::secure`]).
    #[serde(default)]
    pub secure_cookies: Option<bool>,
    /// A login lasts this long.
    #[serde(default = "default_session_ttl", with = "humantime_serde")]
    pub session_ttl: Duration,
    /// How people reach the console (a reverse proxy to the admin
    /// listener), e.g. `https://relay.example.org`: digests link to the
    /// list of the alerts they stand for.
    pub public_url: Option<String>,
    /// Further `Host` names the console answers to (`name` or `name:port`;
    /// without a port, any port), besides the loopback names, the admin
    /// listener's own address and `public_url`'s host. Any other `Host` is
    /// answered 421: a page of another site whose name was made to resolve
    /// to this listener (DNS rebinding) reads nothing. Lower-cased at load.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
}

impl ConsoleConfig {
    /// Whether the session cookie is marked `Secure`: as set, else
    /// whenever the console is reached over HTTPS (`public_url`).
    pub fn secure(&self) -> bool {
        self.secure_cookies.unwrap_or_else(|| {
            self.public_url.as_deref().is_some_and(|u| {
                u.get(..8)
                    .is_some_and(|s| s.eq_ignore_ascii_case("https://"))
            })
        })
    }
}

fn default_console_user() -> String {
    "admin".into()
}

fn default_session_ttl() -> Duration {
    Duration::from_secs(8 * 3600)
}
