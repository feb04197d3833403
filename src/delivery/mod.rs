//! Delivery: one worker per destination drains that destination's pending
//! deliveries from the spool, so a failing or slow destination never delays
//! another.
//!
//! A worker learns of new deliveries directly from the pipeline (right after
//! their commit, or before it: a plain message the worker can send at once,
//! whose outcome goes back to the pipeline to be recorded with the routing)
//! and by scanning the spool (at start, for retries that came
//! due, for replays done by another process, and when its in-memory queue
//! overflowed). A delivery row stays `pending` until its outcome is
//! committed, so a crash at any point leaves it to be resumed: at least
//! once, never lost.
//!
//! A reload that changes a destination replaces its worker. The new one
//! starts only once the old one has finished its in-flight sends and
//! committed their outcomes (within the shutdown grace), and takes over
//! its memory of finished ids, so a reload never sends a message twice;
//! what was still queued goes out under the new settings.

mod attempt;
mod pacing;
mod thread;
mod worker;

pub use attempt::message_id;
pub use pacing::backoff;

use crate::config::DeliveryConfig;
use crate::coord::Coordinator;
use crate::destinations::Destination;
use crate::live::Live;
use crate::store::{spool_log, Completion, DueDelivery, Store};
use crate::telemetry::Metrics;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use worker::{Handover, Worker};

/// What the pipeline hands a worker.
pub(crate) enum Handed {
    /// A delivery just committed as pending.
    Routed(DueDelivery),
    /// A delivery not recorded yet (its id is provisional, below zero): the
    /// worker queues it like any other, and the attempt's outcome goes back
    /// to the pipeline, which records it with the routing.
    Now(DueDelivery, Direct),
}

/// A send not recorded yet, as its worker holds it.
pub(crate) struct Direct {
    /// The first attempt's outcome; `None` when the worker would not queue
    /// it (paused, its queue full, stopping).
    reply: oneshot::Sender<Option<Completion>>,
    state: Arc<AtomicU8>,
}

/// A send not recorded yet, as the pipeline holds it.
pub struct Ticket {
    pub answer: oneshot::Receiver<Option<Completion>>,
    state: Arc<AtomicU8>,
}

/// [`Direct`]'s states: queued; being sent (from then on it is sent,
/// whatever happens); withdrawn by the pipeline before it was sent.
const QUEUED: u8 = 0;
const STARTED: u8 = 1;
const WITHDRAWN: u8 = 2;

impl Ticket {
    /// Withdraws the send unless its worker has started it: true when it
    /// never will be sent (the pipeline then records it as pending, as any
    /// other); false when it is out or going out.
    pub fn withdraw(&self) -> bool {
        self.state
            .compare_exchange(QUEUED, WITHDRAWN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

impl Direct {
    /// Marks it sent from now on; false if the pipeline withdrew it.
    fn start(&self) -> bool {
        self.state
            .compare_exchange(QUEUED, STARTED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

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

/// Hand-overs waiting for a worker at most. A worker that falls behind
/// (a destination that is down or slow) would otherwise hold every new
/// delivery's payload in memory; what does not fit stays pending in the
/// spool, and the worker is told to scan for it.
const HANDOVER_CAP: usize = 256;

/// One running worker.
struct Handle {
    tx: mpsc::Sender<Handed>,
    /// Set when a hand-over did not fit; the worker then scans the spool.
    missed: Arc<AtomicBool>,
    cancel: CancellationToken,
    /// The destination it runs, to tell whether a reload changed it.
    dest: Arc<Destination>,
    /// Resolves when the worker has stopped, with what its successor needs.
    exited: oneshot::Receiver<Handover>,
}

/// Hands new deliveries to their destination's worker, and starts, stops
/// or replaces workers when the configuration changes.
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
        destinations: &BTreeMap<String, Arc<Destination>>,
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

    fn spawn(
        &self,
        name: &str,
        dest: &Arc<Destination>,
        predecessor: Option<oneshot::Receiver<Handover>>,
    ) -> Handle {
        let (tx, rx) = mpsc::channel(HANDOVER_CAP);
        let missed = Arc::new(AtomicBool::new(false));
        let (exit_tx, exited) = oneshot::channel();
        let cancel = self.cancel.child_token();
        let w = Worker::new(
            name.to_owned(),
            dest.clone(),
            self.shared.clone(),
            (rx, missed.clone()),
            cancel.clone(),
        );
        self.tracker.spawn(w.run(predecessor, exit_tx));
        Handle {
            tx,
            missed,
            cancel,
            dest: dest.clone(),
            exited,
        }
    }

    /// Makes the running workers match `destinations`: new ones start,
    /// changed ones are replaced (the successor waits for its predecessor's
    /// in-flight sends, then picks the pending rows up from the spool),
    /// removed ones stop. Returns the removed names.
    pub fn reconcile(&self, destinations: &BTreeMap<String, Arc<Destination>>) -> Vec<String> {
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
            let predecessor = match workers.remove(name) {
                Some(h) if h.dest == *dest => {
                    workers.insert(name.clone(), h);
                    continue;
                }
                Some(h) => {
                    h.cancel.cancel();
                    Some(h.exited)
                }
                None => None,
            };
            let handle = self.spawn(name, dest, predecessor);
            workers.insert(name.clone(), handle);
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
                // the spool for the next start; a worker behind finds it
                // there with its next scan.
                if let Err(mpsc::error::TrySendError::Full(_)) = h.tx.try_send(Handed::Routed(d)) {
                    h.missed.store(true, Ordering::Release);
                }
                true
            }
            None => false,
        }
    }

    /// Whether a worker runs for `destination`.
    pub fn runs(&self, destination: &str) -> bool {
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(destination)
    }

    /// Hands a delivery that is not recorded yet to its worker, to send in
    /// its turn. The ticket's answer is the attempt's outcome, or `None`
    /// when the worker did not queue it; `None` here when no worker could
    /// take it (none for the destination, or its hand-overs are full).
    pub fn send_now(&self, d: DueDelivery) -> Option<Ticket> {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let h = workers.get(&d.destination)?;
        let (reply, answer) = oneshot::channel();
        let state = Arc::new(AtomicU8::new(QUEUED));
        let direct = Direct {
            reply,
            state: state.clone(),
        };
        h.tx.try_send(Handed::Now(d, direct)).ok()?;
        Some(Ticket { answer, state })
    }

    /// Dead-letters the pending deliveries of a destination that is no
    /// longer configured, so they are visible and replayable instead of stuck.
    pub async fn orphan(&self, destination: &str) {
        let store = &self.shared.store;
        let reason = format!("destination {destination:?} is no longer in the configuration");
        match store
            .orphan_destination(destination.to_owned(), reason)
            .await
        {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                message = "Pending deliveries to a removed destination became dead letters.",
                destination,
                count = n
            ),
            Err(e) => {
                tracing::error!(message = "Cannot dead-letter deliveries to a removed destination.", destination, error = %e)
            }
        }
    }

    /// At start: pending work for destinations the config no longer has.
    pub async fn orphan_unconfigured(&self, destinations: &BTreeMap<String, Arc<Destination>>) {
        let store = &self.shared.store;
        match store.queue_depths().await {
            Ok(depths) => {
                for d in depths
                    .iter()
                    .filter(|d| !destinations.contains_key(&d.destination))
                {
                    self.orphan(&d.destination).await;
                }
            }
            Err(e) => spool_log!(warn, store, message = "Cannot read queue depths.", error = %e),
        }
    }
}
