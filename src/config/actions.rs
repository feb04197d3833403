//! `[actions]`: the buttons in messages that change an alert's status,
//! and what each does.

use crate::secret::Secret;
use ipnet::IpNet;
use serde::Deserialize;
use std::time::Duration;

/// `[actions]`: buttons in every message about an alert that lead back
/// to the relay, which changes the alert's status through the origin's API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionsConfig {
    /// How people in the chat reach the relay's public listener, e.g.
    /// `https://relay.example.org` (a path prefix is kept).
    pub public_url: String,
    /// Signs action links (HMAC-SHA256); at least 32 bytes. Rotating it
    /// revokes every link sent so far.
    pub secret: Secret,
    /// Links expire after this long.
    #[serde(default = "default_action_ttl", with = "humantime_serde")]
    pub ttl: Duration,
    /// The buttons every message about an alert carries, in order.
    #[serde(default = "default_buttons")]
    pub buttons: Vec<ActionKind>,
    /// Who may open action pages (client addresses through
    /// `server.trusted_proxies`); empty: anyone with a link.
    #[serde(default)]
    pub allow_from: Vec<IpNet>,
    /// Who may post to `/integrations/mattermost`: the Mattermost
    /// server's addresses (it makes the request, not the person's
    /// browser). Empty: `allow_from` applies.
    #[serde(default)]
    pub mattermost_allow_from: Vec<IpNet>,
}

fn default_action_ttl() -> Duration {
    Duration::from_secs(7 * 86_400)
}

fn default_buttons() -> Vec<ActionKind> {
    vec![ActionKind::Acknowledge, ActionKind::Close]
}

/// What a button does to the alert: move it to a workflow status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionKind {
    Acknowledge,
    Ongoing,
    Close,
    Reject,
}

impl ActionKind {
    pub const ALL: [ActionKind; 4] = [
        ActionKind::Acknowledge,
        ActionKind::Ongoing,
        ActionKind::Close,
        ActionKind::Reject,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Acknowledge => "acknowledge",
            ActionKind::Ongoing => "ongoing",
            ActionKind::Close => "close",
            ActionKind::Reject => "reject",
        }
    }

    /// The button's label.
    pub fn label(self) -> &'static str {
        match self {
            ActionKind::Acknowledge => "Acknowledge",
            ActionKind::Ongoing => "Mark ongoing",
            ActionKind::Close => "Close",
            ActionKind::Reject => "Reject",
        }
    }

    /// The status the alert moves to, as Sekoia.io names it.
    pub fn status_name(self) -> &'static str {
        match self {
            ActionKind::Acknowledge => "Acknowledged",
            ActionKind::Ongoing => "Ongoing",
            ActionKind::Close => "Closed",
            ActionKind::Reject => "Rejected",
        }
    }

    /// Sekoia.io's fixed uuid of that status (the workflow's `action_uuid`).
    pub fn status_uuid(self) -> &'static str {
        match self {
            ActionKind::Acknowledge => "8f206505-af6d-433e-93f4-775d46dc7d0f",
            ActionKind::Ongoing => "1f2f88d5-ff5b-48bf-bbbc-00c2fff82d9f",
            ActionKind::Close => "1738b1c1-767d-489e-bada-19176621a007",
            ActionKind::Reject => "4f68da89-38e0-4703-a6ab-652f02bdf24e",
        }
    }

    pub fn from_byte(b: u8) -> Option<ActionKind> {
        ActionKind::ALL.get(b as usize).copied()
    }

    pub fn to_byte(self) -> u8 {
        ActionKind::ALL.iter().position(|a| *a == self).unwrap_or(0) as u8
    }
}
