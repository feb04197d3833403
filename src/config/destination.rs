//! `[destinations.<name>]`: the kinds and the keys a destination takes
//! (which kind takes which key is checked by `destination_keys`).

use super::actions::ActionKind;
use super::rate::Rate;
use super::tenant_mark::TenantMark;
use crate::secret::Secret;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum DestinationKind {
    /// Teams Workflows webhook: an Adaptive Card in a message envelope.
    Teams,
    /// Teams Office 365 connector: a MessageCard.
    TeamsLegacy,
    Slack,
    Mattermost,
    /// Discord webhook: an embed with the urgency colour, no mentions.
    Discord,
    /// Google Chat space webhook: a formatted text message.
    GoogleChat,
    /// E-mail over SMTP: a multipart text + HTML message.
    Email,
    /// Any URL: the hookrelay message document (or a template), optionally
    /// signed the Standard Webhooks way.
    Webhook,
    /// PagerDuty Events API v2: one incident per alert (`dedup_key` = the
    /// alert's uuid), triggered, acknowledged and resolved with it.
    Pagerduty,
    /// Opsgenie Alert API: one alert per alert (`alias` = its uuid),
    /// created, acknowledged, closed, with notes for other updates.
    Opsgenie,
    /// A Matrix room, through the client-server API.
    Matrix,
    /// An ntfy topic (phone push), JSON publishing.
    Ntfy,
}

impl DestinationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Teams => "teams",
            Self::TeamsLegacy => "teams-legacy",
            Self::Slack => "slack",
            Self::Mattermost => "mattermost",
            Self::Discord => "discord",
            Self::GoogleChat => "google-chat",
            Self::Email => "email",
            Self::Webhook => "webhook",
            Self::Pagerduty => "pagerduty",
            Self::Opsgenie => "opsgenie",
            Self::Matrix => "matrix",
            Self::Ntfy => "ntfy",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DestinationConfig {
    pub kind: DestinationKind,
    pub url: Option<Secret>,
    /// Proactive pacing, e.g. `"1/s"` or `"20/min"`.
    #[serde(default)]
    pub rate: Option<Rate>,
    /// At most this many messages in any 60 s; beyond, deliveries wait their
    /// turn (nothing is dropped).
    #[serde(default)]
    pub max_per_minute: Option<u32>,
    /// With `max_per_minute`: send the held alerts as one digest message per
    /// `digest_interval` instead of at N per minute.
    #[serde(default)]
    pub digest: bool,
    #[serde(default = "default_digest_interval", with = "humantime_serde")]
    pub digest_interval: Duration,
    #[serde(default, with = "humantime_serde")]
    pub timeout: Option<Duration>,
    #[serde(default)]
    pub concurrency: Option<usize>,
    /// A minijinja template for the message (see `render::template`).
    #[serde(default)]
    pub template: Option<PathBuf>,

    // kind = "email"
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: Option<SmtpTls>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<Secret>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Vec<String>,
    /// A one-line minijinja template for the subject.
    #[serde(default)]
    pub subject: Option<String>,

    // kind = "pagerduty"
    /// The Events API v2 integration key.
    #[serde(default)]
    pub routing_key: Option<Secret>,
    // kind = "opsgenie"
    /// An Opsgenie API integration key (`Authorization: GenieKey …`).
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// pagerduty: the events endpoint; opsgenie: the API base (the EU
    /// instance is `https://api.eu.opsgenie.com`).
    #[serde(default)]
    pub api_url: Option<String>,
    // kind = "matrix"
    /// The homeserver's base URL, e.g. `https://matrix.example.org`.
    #[serde(default)]
    pub homeserver: Option<String>,
    #[serde(default)]
    pub access_token: Option<Secret>,
    /// A room id, not an alias: `!opaque:server` (room versions 1–11) or
    /// `!` and the create event's hash (version 12 and later).
    #[serde(default)]
    pub room_id: Option<String>,
    // kind = "ntfy" (also username + password)
    /// An ntfy access token (`tk_…`); Slack's bot token (`xoxb-…`) or
    /// Mattermost's bot or personal access token in API mode.
    #[serde(default)]
    pub token: Option<Secret>,
    // kind = "slack" in API mode (token + channel instead of url)
    /// The channel id (`C0123ABCD`), not its name.
    #[serde(default)]
    pub channel: Option<String>,
    /// API mode: one conversation per alert (a root message kept current,
    /// the alert's history as replies). Default true.
    #[serde(default)]
    pub thread: Option<bool>,
    // kind = "mattermost" in API mode (server_url + token + channel_id)
    #[serde(default)]
    pub server_url: Option<String>,
    #[serde(default)]
    pub channel_id: Option<String>,

    // kind = "webhook"
    /// Extra request headers (values may be credentials: never logged).
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// `whsec_…`: sign requests the Standard Webhooks way.
    #[serde(default)]
    pub secret: Option<Secret>,

    /// The action buttons of this destination's messages, instead of
    /// `[actions] buttons` (`[]`: none).
    #[serde(default)]
    pub buttons: Option<Vec<ActionKind>>,
    /// Teams: `"message"` (the default: the Workflows message envelope) or
    /// `"card"` (a bare Adaptive Card, for flows that want one).
    #[serde(default)]
    pub shape: Option<TeamsShape>,
    /// Slack API mode: the app's signing secret, for one-click buttons
    /// (`POST /integrations/slack`).
    #[serde(default)]
    pub signing_secret: Option<Secret>,
    /// Who a route with `mention = true` notifies here, chosen by the
    /// operator (alert text never can): Teams `{ id, name }` tables, Slack
    /// `<@U…>` / `<!subteam^S…>`, Mattermost `@name`, Discord role ids,
    /// Matrix user ids (`@alice:example.org`).
    #[serde(default)]
    pub mentions: Vec<Mention>,

    /// The text of `template` (relative to the config file's directory),
    /// read at load; `destinations::destinations` compiles it with `subject`.
    #[serde(skip)]
    pub template_source: Option<String>,
    /// Set by `tenant::merge` on a tenant's destinations (never read from
    /// a document): its `subject` is plain text, its connections guarded.
    #[serde(skip)]
    pub tenant: Option<TenantMark>,
}

/// How an e-mail destination secures its SMTP connection.
#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required), port 587.
    #[default]
    Starttls,
    /// TLS from the first byte (SMTPS), port 465.
    Implicit,
    /// No encryption (a relay on localhost), port 25.
    None,
}

impl SmtpTls {
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        }
    }
}

impl DestinationConfig {
    /// The webhook URL. Validation guarantees it is set.
    pub fn url(&self) -> &Secret {
        self.url
            .as_ref()
            .expect("validate() rejects destinations without url")
    }
}

/// What a Teams destination posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TeamsShape {
    Message,
    Card,
}

/// One entry of a destination's `mentions`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Mention {
    /// Slack, Mattermost, Discord, Matrix.
    Text(String),
    /// Teams: the user's or tag's id and the name shown.
    Named { id: String, name: String },
}

fn default_digest_interval() -> Duration {
    Duration::from_secs(60)
}

impl DestinationConfig {
    /// This destination's secrets: its URL, header values, signing secret,
    /// passwords, keys and tokens. The sinks scrub foreign error texts of them.
    pub fn secrets(&self) -> Vec<&Secret> {
        let mut out: Vec<&Secret> = Vec::new();
        out.extend(self.url.as_ref());
        out.extend(self.headers.values());
        out.extend(self.secret.as_ref());
        out.extend(self.password.as_ref());
        out.extend(self.routing_key.as_ref());
        out.extend(self.api_key.as_ref());
        out.extend(self.access_token.as_ref());
        out.extend(self.token.as_ref());
        out.extend(self.signing_secret.as_ref());
        out
    }
}
