//! What every worker, attempt and commit task shares, and the news
//! they hear from the deployment (`coord`'s wake-ups).

use crate::config::DeliveryConfig;
use crate::coord::Coordinator;
use crate::live::Live;
use crate::store::Store;
use crate::telemetry::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;

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

/// The next piece of news; never once the channel is closed. A receiver
/// that fell behind reads as "look at everything".
pub(super) async fn next_news(news: &mut Option<broadcast::Receiver<String>>) -> String {
    use tokio::sync::broadcast::error::RecvError;
    let Some(rx) = news else {
        return std::future::pending().await;
    };
    match rx.recv().await {
        Ok(about) => about,
        Err(RecvError::Lagged(_)) => String::new(),
        Err(RecvError::Closed) => {
            *news = None;
            std::future::pending().await
        }
    }
}
