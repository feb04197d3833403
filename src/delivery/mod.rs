//! Delivery: one worker per destination drains that destination's pending
//! deliveries from the spool, so a failing or slow destination never delays
//! another.
//!
//! A worker learns of new deliveries directly from the pipeline (right after
//! their commit) and by scanning the spool (at start, for retries that came
//! due, for replays done by another process, and when its in-memory queue
//! overflowed). A delivery row stays `pending` until its outcome is
//! committed, so a crash at any point leaves it to be resumed: at least
//! once, never lost.

mod pacing;
mod worker;

pub use pacing::{backoff, TokenBucket};

use crate::config::{DeliveryConfig, DestinationConfig};
use crate::store::{DueDelivery, Store};
use crate::telemetry::Metrics;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What every worker shares.
#[derive(Clone)]
pub struct Shared {
    pub store: Store,
    pub http: reqwest::Client,
    pub metrics: Arc<Metrics>,
    pub delivery: DeliveryConfig,
    /// In-flight work gets this long to finish after shutdown starts.
    pub shutdown_grace: Duration,
}

/// Hands new deliveries to their destination's worker.
#[derive(Clone, Default)]
pub struct Dispatcher {
    workers: HashMap<String, mpsc::UnboundedSender<DueDelivery>>,
}

impl Dispatcher {
    /// Starts one worker per destination on `tracker`; they stop when
    /// `cancel` fires (after draining in-flight requests within the grace).
    pub fn start(
        shared: Shared,
        destinations: &std::collections::BTreeMap<String, DestinationConfig>,
        tracker: &TaskTracker,
        cancel: &CancellationToken,
    ) -> Dispatcher {
        let mut workers = HashMap::new();
        for (name, dest) in destinations {
            let (tx, rx) = mpsc::unbounded_channel();
            let w = worker::Worker::new(
                name.clone(),
                dest.clone(),
                shared.clone(),
                rx,
                cancel.child_token(),
            );
            tracker.spawn(w.run());
            workers.insert(name.clone(), tx);
        }
        Dispatcher { workers }
    }

    /// Passes a just-committed delivery to its worker. If the worker is
    /// gone (shutdown), the row stays pending in the spool for next start.
    pub fn submit(&self, d: DueDelivery) {
        if let Some(tx) = self.workers.get(&d.destination) {
            let _ = tx.send(d);
        }
    }
}
