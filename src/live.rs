//! The live configuration: one [`Generation`] (a validated config and what
//! is built from it), swapped as a whole by a reload. The composition root
//! (`app`) builds and swaps it; ingress, the pipeline, the workers and the
//! silence watch read it. It lives apart from `app` so that none of them
//! imports the module that composes them.

use crate::config::{Config, ConfigErrors};
use crate::enrich::Enricher;
use crate::render::Destination;
use crate::telemetry::Metrics;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// One configuration and what is built from it; replaced as a whole.
pub struct Generation {
    pub config: Arc<Config>,
    pub enricher: Arc<Enricher>,
    /// Each destination with its compiled templates, by name.
    pub destinations: BTreeMap<String, Arc<Destination>>,
}

impl Generation {
    /// Builds what runs from `config`: compiles the destinations' templates
    /// (an error names the key, as a config error does) and the alert API
    /// clients. Template warnings join the config's warnings.
    pub fn build(
        mut config: Config,
        http: &reqwest::Client,
        metrics: &Arc<Metrics>,
    ) -> Result<Generation, ConfigErrors> {
        let (destinations, warnings) = crate::render::destinations(&config)?;
        config.warnings.extend(warnings);
        Ok(Generation {
            enricher: Arc::new(Enricher::new(
                &config.origins,
                http.clone(),
                metrics.clone(),
            )),
            config: Arc::new(config),
            destinations,
        })
    }
}

impl Generation {
    /// The facts of a message about an event to `destination`, with its
    /// action buttons when `[actions]` is set: only for an alert the relay
    /// could fetch (a degraded message has none), signed for this
    /// destination and the hook's origin, expiring after `actions.ttl`.
    pub fn with_actions<'a>(
        &self,
        facts: &'a crate::render::Facts,
        destination: &str,
        hook: &str,
        event: &crate::event::Event,
        enrichment: &crate::enrich::Enrichment,
    ) -> std::borrow::Cow<'a, crate::render::Facts> {
        use crate::action_link::{sign, tag, Link};
        use std::borrow::Cow;
        let (Some(actions), Some(alert), Some(dest), Some(origin)) = (
            &self.config.actions,
            event.alert_uuid,
            self.config.destinations.get(destination),
            self.config.hooks.get(hook).map(|h| &h.origin),
        ) else {
            return Cow::Borrowed(facts);
        };
        if !matches!(enrichment, crate::enrich::Enrichment::Fetched(_)) {
            return Cow::Borrowed(facts);
        }
        let buttons = dest.buttons.as_ref().unwrap_or(&actions.buttons);
        if buttons.is_empty() || !action_kind(dest.kind) {
            return Cow::Borrowed(facts);
        }
        let secret = actions.secret.expose().as_bytes();
        let expires = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            + actions.ttl.as_secs();
        let (destination_tag, origin_tag) = (
            tag(secret, "destination", destination),
            tag(secret, "origin", origin),
        );
        let mut f = facts.clone();
        f.actions = buttons
            .iter()
            .map(|kind| {
                let token = sign(
                    secret,
                    &Link {
                        alert,
                        action: *kind,
                        destination: destination_tag,
                        origin: origin_tag,
                        expires,
                    },
                );
                crate::render::Button {
                    name: kind.as_str(),
                    label: kind.label(),
                    url: format!("{}/actions/{token}", actions.public_url),
                    token,
                }
            })
            .collect();
        f.interactive = dest.api_mode()
            && (dest.kind == crate::config::DestinationKind::Mattermost
                || dest.signing_secret.is_some());
        Cow::Owned(f)
    }
}

/// The kinds whose messages carry action buttons (not the paging kinds,
/// which have their own acknowledge, nor Matrix and ntfy).
fn action_kind(kind: crate::config::DestinationKind) -> bool {
    use crate::config::DestinationKind::*;
    matches!(
        kind,
        Teams | TeamsLegacy | Slack | Mattermost | Discord | GoogleChat | Email | Webhook
    )
}

/// The current [`Generation`], swapped atomically by a reload. Readers take
/// an `Arc` and keep a consistent view for as long as they hold it.
pub struct Live {
    current: RwLock<Arc<Generation>>,
}

impl Live {
    pub fn new(generation: Generation) -> Live {
        Live {
            current: RwLock::new(Arc::new(generation)),
        }
    }

    pub fn get(&self) -> Arc<Generation> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set(&self, generation: Generation) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(generation);
    }
}

/// A configuration to switch to, or the errors of a file that failed to
/// load (SIGHUP, the console's reload button, tests); `done` hears whether
/// it was applied.
pub struct ReloadRequest {
    pub config: Result<Config, ConfigErrors>,
    pub done: Option<tokio::sync::oneshot::Sender<Result<(), ConfigErrors>>>,
}

impl From<Result<Config, ConfigErrors>> for ReloadRequest {
    fn from(config: Result<Config, ConfigErrors>) -> Self {
        ReloadRequest { config, done: None }
    }
}
