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

pub use pacing::{backoff, SlidingWindow, TokenBucket};

use crate::config::{DeliveryConfig, DestinationConfig};
use crate::store::{DueDelivery, Store};
use crate::telemetry::Metrics;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
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
    /// The live configuration, to render again a message that could not
    /// be rendered when it was routed (a replayed dead letter).
    pub live: Option<Arc<crate::app::Live>>,
}

/// One running worker.
struct Handle {
    tx: mpsc::UnboundedSender<DueDelivery>,
    cancel: CancellationToken,
    /// The settings it runs with, to tell whether a reload changed them.
    dest: DestinationConfig,
}

/// Hands new deliveries to their destination's worker, and starts, stops
/// or restarts workers when the configuration changes.
pub struct Dispatcher {
    workers: Mutex<HashMap<String, Handle>>,
    shared: Shared,
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Dispatcher {
    /// Starts one worker per destination on `tracker`; they stop when
    /// `cancel` fires (after draining in-flight requests within the grace).
    pub fn start(
        shared: Shared,
        destinations: &BTreeMap<String, DestinationConfig>,
        tracker: &TaskTracker,
        cancel: &CancellationToken,
    ) -> Dispatcher {
        let d = Dispatcher {
            workers: Mutex::new(HashMap::new()),
            shared,
            tracker: tracker.clone(),
            cancel: cancel.clone(),
        };
        d.reconcile(destinations);
        d
    }

    fn spawn(&self, name: &str, dest: &DestinationConfig) -> Handle {
        let (tx, rx) = mpsc::unbounded_channel();
        let cancel = self.cancel.child_token();
        let w = worker::Worker::new(
            name.to_owned(),
            dest.clone(),
            self.shared.clone(),
            rx,
            cancel.clone(),
        );
        self.tracker.spawn(w.run());
        Handle {
            tx,
            cancel,
            dest: dest.clone(),
        }
    }

    /// Makes the running workers match `destinations`: new ones start,
    /// changed ones restart (their pending rows are picked up again from
    /// the spool), removed ones stop. Returns the removed names.
    pub fn reconcile(&self, destinations: &BTreeMap<String, DestinationConfig>) -> Vec<String> {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let removed: Vec<String> = workers
            .keys()
            .filter(|k| !destinations.contains_key(*k))
            .cloned()
            .collect();
        for name in &removed {
            if let Some(h) = workers.remove(name) {
                h.cancel.cancel();
            }
        }
        for (name, dest) in destinations {
            match workers.get(name) {
                Some(h) if h.dest == *dest => {}
                existing => {
                    if let Some(h) = existing {
                        h.cancel.cancel();
                    }
                    let handle = self.spawn(name, dest);
                    workers.insert(name.clone(), handle);
                }
            }
        }
        removed
    }

    /// Passes a just-committed delivery to its worker. Returns false when
    /// no worker exists for its destination (removed by a reload).
    pub fn submit(&self, d: DueDelivery) -> bool {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        match workers.get(&d.destination) {
            Some(h) => {
                // A worker stopping at shutdown leaves the row pending in
                // the spool for the next start.
                let _ = h.tx.send(d);
                true
            }
            None => false,
        }
    }
}
