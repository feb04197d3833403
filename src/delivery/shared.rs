//! What every worker, attempt and commit task shares.

use crate::config::DeliveryConfig;
use crate::coord::Coordinator;
use crate::live::Live;
use crate::store::Store;
use crate::telemetry::Metrics;
use std::sync::Arc;
use std::time::Duration;

/// What every worker shares.
#[derive(Clone)]
pub struct Shared {
    pub store: Store,
    /// Pauses, send windows and digest turns, for the whole deployment.
    pub coord: Coordinator,
    pub http: reqwest::Client,
    pub metrics: Arc<Metrics>,
    pub delivery: DeliveryConfig,
    /// In-flight work gets this long to finish after shutdown starts.
    pub shutdown_grace: Duration,
    /// The live configuration, to render again a message that could not
    /// be rendered when it was routed (a replayed dead letter).
    pub live: Option<Arc<Live>>,
}
