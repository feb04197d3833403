//! The TOML schema: [`Config`] and its sections.

use super::actions::ActionsConfig;
use super::console::ConsoleConfig;
use super::destination::DestinationConfig;
use super::intervals::TimeIntervalConfig;
use super::tenant_mark::TenantMark;
use super::when::When;
use crate::secret::Secret;
use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The whole configuration, validated.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub store: StoreConfig,
    pub delivery: DeliveryConfig,
    pub origins: BTreeMap<String, OriginConfig>,
    pub hooks: BTreeMap<String, HookConfig>,
    pub destinations: BTreeMap<String, DestinationConfig>,
    pub routes: Vec<RouteConfig>,
    /// Action buttons in messages (`[actions]`); absent: none.
    pub actions: Option<ActionsConfig>,
    /// Named on-call hours and maintenance windows for routes.
    pub time_intervals: BTreeMap<String, TimeIntervalConfig>,
    /// The web console (`[console]`); absent: off.
    pub console: Option<ConsoleConfig>,
    /// Non-fatal findings of `validate` (printed by `check`, logged at start).
    pub warnings: Vec<String>,
    /// The file it was read from, and when (unix ms).
    pub source: Option<std::path::PathBuf>,
    pub loaded_at: i64,
    /// The configuration as read (environment overrides and `${VAR}`
    /// expanded, `*_file` secrets read) with every secret replaced by
    /// `"<redacted>"`: what the console's config page shows.
    pub effective: serde_json::Value,
    /// The tenants merged in (see [`tenant::merge`]), by name.
    pub tenants: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    #[serde(with = "humantime_serde")]
    pub dedup_window: Duration,
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// A client that has not sent its whole request head by then is cut off
    /// (from the connection's start, or from the first byte of a later
    /// request on a keep-alive connection).
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// Upper bound for reading one request body (408 after it).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// A keep-alive connection idle this long between requests is closed.
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Open connections on the public listener at most. At the cap the
    /// listener keeps accepting and closes the connection that has made
    /// the least progress (never one whose request is complete).
    pub max_connections: usize,
    /// Open connections from one peer address at most (0: no cap); peers in
    /// `trusted_proxies` are exempt. Beyond it, the newest is closed at once.
    pub max_connections_per_ip: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:8080".parse().expect("literal address"),
            max_body_bytes: 65536,
            trusted_proxies: vec![
                "127.0.0.1/32".parse().expect("literal net"),
                "::1/128".parse().expect("literal net"),
            ],
            dedup_window: Duration::from_secs(600),
            shutdown_grace: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_connections_per_ip: 32,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    pub listen: SocketAddr,
    /// Enables the tenants API (`/api/v1/`) on the admin listener: the
    /// bearer token its clients send.
    pub api_token: Option<Secret>,
    /// 32 random bytes (raw, hex or base64) that encrypt the tenants'
    /// secrets in the spool; required with `api_token`.
    pub secrets_key_file: Option<std::path::PathBuf>,
    /// The key read from `secrets_key_file` (by validation).
    #[serde(skip)]
    pub secrets_key: Option<SecretsKey>,
    /// Hosts and ranges tenants' destinations and origins may reach although
    /// they are loopback, link-local, private or the relay's own
    /// (`"mail.internal"`, `"10.0.0.0/8"`); empty: only public addresses.
    pub tenant_allow_hosts: Vec<String>,
    /// `tenant_allow_hosts`, parsed (by validation).
    #[serde(skip)]
    pub tenant_allow: Vec<crate::http::guard::Allowed>,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:9091".parse().expect("literal address"),
            api_token: None,
            secrets_key_file: None,
            secrets_key: None,
            tenant_allow_hosts: Vec::new(),
            tenant_allow: Vec::new(),
        }
    }
}

/// The key that encrypts tenants' documents at rest; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretsKey(pub [u8; 32]);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

impl SecretsKey {
    /// The key in a file: 32 raw bytes, or 64 hex digits, or their base64.
    pub fn read(path: &std::path::Path) -> Result<SecretsKey, String> {
        use base64::Engine;
        let raw =
            std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        if raw.len() == 32 {
            return Ok(SecretsKey(raw.try_into().expect("32 bytes")));
        }
        let text = String::from_utf8_lossy(&raw);
        let text = text.trim();
        let decoded = hex::decode(text)
            .ok()
            .or_else(|| base64::engine::general_purpose::STANDARD.decode(text).ok())
            .filter(|k| k.len() == 32);
        match decoded {
            Some(k) => Ok(SecretsKey(k.try_into().expect("32 bytes"))),
            None => Err(format!(
                "{} must hold 32 random bytes (raw, hex or base64), e.g. `head -c 32 /dev/urandom > {}`",
                path.display(),
                path.display()
            )),
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    /// fsync on every commit: survives a power cut.
    Full,
    /// fsync at checkpoints: survives a process crash, not a power cut.
    Normal,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub kind: StoreKind,
    pub path: PathBuf,
    pub sync: SyncMode,
    /// Beyond this many undelivered events + deliveries, hooks answer 503.
    pub max_pending: u64,
    /// Delivered and dead events older than this are pruned.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// PostgreSQL: `postgres://user:password@host:5432/db` (or `url_file`).
    pub url: Option<Secret>,
    /// PostgreSQL: how long a replica's claim on work lasts without
    /// renewal; a dead replica's work is taken over after about this long.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// PostgreSQL: PEM certificates of a private CA to trust besides the
    /// Mozilla roots (a managed database's CA), relative to the config
    /// file. Validation fills `ca_certs` from it.
    pub ca_file: Option<PathBuf>,
    #[serde(skip)]
    pub ca_certs: Vec<Vec<u8>>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            kind: StoreKind::Sqlite,
            path: PathBuf::from("/var/lib/hookrelay/hookrelay.db"),
            sync: SyncMode::Full,
            max_pending: 1_000_000,
            retention: Duration::from_secs(7 * 24 * 3600),
            url: None,
            lease: Duration::from_secs(15),
            ca_file: None,
            ca_certs: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    #[serde(with = "humantime_serde")]
    pub max_age: Duration,
    #[serde(with = "humantime_serde")]
    pub initial_backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Requests in flight per destination (a destination may override it).
    pub concurrency: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(24 * 3600),
            initial_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(600),
            concurrency: 8,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OriginKind {
    Sekoia,
}

/// An origin's UI link templates (`{short_id}`, `{uuid}`), as messages
/// use them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Links<'a> {
    /// `alert_link`.
    pub alert: Option<&'a str>,
    /// `case_link`.
    pub case: Option<&'a str>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OriginConfig {
    pub kind: OriginKind,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub base_url: Option<String>,
    pub api_key: Option<Secret>,
    /// UI link to an alert; `{short_id}` and `{uuid}` are substituted.
    #[serde(default)]
    pub alert_link: Option<String>,
    /// UI link to a case; `{short_id}` and `{uuid}` are substituted.
    #[serde(default)]
    pub case_link: Option<String>,
    #[serde(default = "default_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default = "default_origin_concurrency")]
    pub concurrency: usize,
    #[serde(default = "default_cache_ttl", with = "humantime_serde")]
    pub cache_ttl: Duration,
    #[serde(default = "default_enrich_deadline", with = "humantime_serde")]
    pub enrich_deadline: Duration,
    /// Set by `tenant::merge` on a tenant's origins (never read from a
    /// document): whose it is and where it may connect.
    #[serde(skip)]
    pub tenant: Option<TenantMark>,
}

impl Config {
    /// Where tenants may connect: `[admin] tenant_allow_hosts`, never the
    /// addresses the relay listens on.
    pub fn tenant_egress(&self) -> crate::http::guard::Egress {
        crate::http::guard::Egress::new(
            self.admin.tenant_allow.clone(),
            vec![self.server.listen.ip(), self.admin.listen.ip()],
        )
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_origin_concurrency() -> usize {
    16
}
fn default_cache_ttl() -> Duration {
    Duration::from_secs(30)
}
fn default_enrich_deadline() -> Duration {
    Duration::from_secs(120)
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SignatureScheme {
    StandardWebhooks,
    GithubSha256,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    pub id: uuid::Uuid,
    pub origin: String,
    #[serde(default)]
    pub secret: Option<Secret>,
    /// The secret before the last rotation, still accepted until
    /// `previous_secret_until` (unix ms) so the sender can be updated
    /// (set by the tenants API's rotate-secret; usable in the file too).
    #[serde(default)]
    pub previous_secret: Option<Secret>,
    #[serde(default)]
    pub previous_secret_until: Option<i64>,
    #[serde(default)]
    pub signature: Option<SignatureScheme>,
    #[serde(default)]
    pub allow_from: Vec<IpNet>,
    /// Silence detection: a `hookrelay.silence` event when nothing arrives
    /// for this long, `hookrelay.recovered` when events resume.
    #[serde(default, with = "humantime_serde")]
    pub expect_within: Option<Duration>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    /// Hook names this route listens to; `None` means every hook.
    #[serde(default)]
    pub hooks: Option<Vec<String>>,
    pub to: Vec<String>,
    /// Same alert + action to the same destination at most once per window.
    #[serde(default, with = "humantime_serde")]
    pub dedup: Option<Duration>,
    /// What makes two events "the same" for `dedup` (default: alert, action).
    #[serde(default)]
    pub dedup_key: Option<Vec<DedupField>>,
    #[serde(default, rename = "continue")]
    pub continue_: bool,
    #[serde(default)]
    pub when: When,
    /// The route only matches during one of these `[time_intervals]`
    /// (`"!name"`: outside it).
    /// The destinations add their configured `mentions` (people or groups
    /// to notify) to this route's messages.
    #[serde(default)]
    pub mention: bool,
    #[serde(default)]
    pub active_during: Vec<String>,
    /// The route does not match during any of these.
    #[serde(default)]
    pub muted_during: Vec<String>,
}

/// A part of a route's dedup key.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DedupField {
    /// The alert's uuid (or the event's own uuid when it has no alert).
    Alert,
    Action,
    /// The alert's status (or the status an update set).
    Status,
    /// The event type.
    Type,
}

/// A minimal valid config for unit tests (origin `o`, hook `soc`, Slack
/// destination `a`), with `extra` TOML appended.
#[cfg(test)]
pub(crate) fn test_config_text(extra: &str) -> String {
    format!(
        r#"
        [origins.o]
        kind = "sekoia"
        base_url = "http://127.0.0.1:1"
        api_key = "k"
        [hooks.soc]
        id = "67a7472b-b43c-415d-b1ce-c135fb1dfb0e"
        origin = "o"
        [destinations.a]
        kind = "slack"
        url = "http://127.0.0.1:1/a"
        {extra}
        "#
    )
}

impl Config {
    /// The alert link template of the origin behind `hook`.
    pub fn alert_link(&self, hook: &str) -> Option<&str> {
        let origin = &self.hooks.get(hook)?.origin;
        self.origins.get(origin)?.alert_link.as_deref()
    }

    /// Every link template of the origin behind `hook`.
    pub fn links(&self, hook: &str) -> Links<'_> {
        let origin = self
            .hooks
            .get(hook)
            .and_then(|h| self.origins.get(&h.origin));
        Links {
            alert: origin.and_then(|o| o.alert_link.as_deref()),
            case: origin.and_then(|o| o.case_link.as_deref()),
        }
    }

    /// The hook whose id is `id`, compared in constant time against every
    /// configured hook so the answer time does not tell how close a guess was.
    pub fn hook_by_id(&self, id: &str) -> Option<(&str, &HookConfig)> {
        let mut found = None;
        for (name, hook) in &self.hooks {
            let candidate = hook.id.hyphenated().to_string();
            if constant_time_eq(candidate.as_bytes(), id.as_bytes()) {
                found = Some((name.as_str(), hook));
            }
        }
        found
    }

    /// Every secret in the configuration: the one list of what must never
    /// be printed (the security tests check logs, metrics and `check`
    /// output against it).
    pub fn secrets(&self) -> Vec<&Secret> {
        let mut out: Vec<&Secret> = Vec::new();
        out.extend(self.origins.values().filter_map(|o| o.api_key.as_ref()));
        out.extend(self.hooks.values().filter_map(|h| h.secret.as_ref()));
        out.extend(self.destinations.values().flat_map(|d| d.secrets()));
        out.extend(self.store.url.as_ref());
        out.extend(self.actions.as_ref().map(|a| &a.secret));
        out
    }
}

/// Length may leak (all hook ids have the same length), content does not.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
