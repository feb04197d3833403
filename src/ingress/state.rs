//! What request handlers share: the state every listener's routes hold.

use super::auth;
use super::console::Keys;
use super::limits::{Interactions, LogLimiter, PerMinute};
use crate::live::Live;
use crate::pipeline::Intake;
use crate::store::Store;
use crate::telemetry::Metrics;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// What request handlers share.
pub struct IngressState {
    /// The current configuration (swapped on reload).
    pub live: Arc<Live>,
    pub store: Store,
    /// Accepted events go to the pipeline through this.
    pub intake: Intake,
    /// Last event per hook, for silence detection.
    pub watch: Arc<crate::silence::Watch>,
    pub metrics: Arc<Metrics>,
    /// Standard Webhooks message ids seen recently (replay protection).
    pub replays: auth::ReplayGuard,
    /// `/readyz`: the spool is open, the config loaded, not shutting down.
    pub ready: AtomicBool,
    /// Rate limit for logging rejected requests (an attacker must not be
    /// able to flood the journal).
    pub reject_log: LogLimiter,
    /// Action pages per client address.
    pub action_limiter: PerMinute,
    /// Slots for the chat interactions carried out after their answer.
    pub interactions: Interactions,
    /// The console's session key and login rate limit.
    pub console_keys: Keys,
    /// Pauses (for the console) and wake-ups after a replay.
    pub coord: crate::coord::Coordinator,
    /// Where the console's reload button sends the configuration.
    pub reload: tokio::sync::mpsc::UnboundedSender<crate::live::ReloadRequest>,
}
