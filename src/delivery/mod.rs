//! Delivery: one worker per destination drains that destination's pending
//! deliveries from the spool, so a failing or slow destination never delays
//! another.
//!
//! A worker learns of new deliveries directly from the pipeline (right
//! after their routing is recorded) and by scanning the spool (at start,
//! for retries that came due, for replays done by another process, and
//! when its in-memory queue overflowed). It sends each one and records its
//! outcome itself; nothing goes back to the pipeline. A plain destination's
//! worker may also be handed an event's routing before it is recorded,
//! send first and record the routing with the outcome (`first.rs`). A
//! delivery row stays `pending` until its outcome is committed, so a crash
//! at any point leaves it to be resumed: at least once, never lost.
//!
//! A reload that changes a destination replaces its worker. The new one
//! starts only once the old one has finished its in-flight sends and
//! committed their outcomes (within the shutdown grace), and takes over
//! its memory of finished ids, so a reload never sends a message twice;
//! what was still queued goes out under the new settings.

mod attempt;
mod digest;
mod first;
mod pacing;
mod queue;
mod shared;
mod thread;
mod worker;

pub use attempt::message_id;
pub use first::{sends_first, FirstSends};
pub use pacing::backoff;
pub use shared::Shared;

use crate::destinations::Destination;
use crate::store::{spool_log, DueDelivery};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use worker::{Handed, Handover, Worker};

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

/// A delivery's destination has no worker (a reload removed it).
#[derive(Debug)]
pub struct NoWorker(pub String);

/// Resolves once a removed worker has stopped (its in-flight sends
/// answered, and the routings they were sent before recorded).
pub struct Stopped(oneshot::Receiver<Handover>);

impl Stopped {
    pub async fn wait(self) {
        let _ = self.0.await;
    }
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
    /// removed ones stop. Returns the removed names, each with what
    /// resolves once its worker has stopped.
    pub fn reconcile(
        &self,
        destinations: &BTreeMap<String, Arc<Destination>>,
    ) -> Vec<(String, Stopped)> {
        let mut workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let names: Vec<String> = workers
            .keys()
            .filter(|k| !destinations.contains_key(*k))
            .cloned()
            .collect();
        let mut removed = Vec::with_capacity(names.len());
        for name in names {
            if let Some(h) = workers.remove(&name) {
                h.cancel.cancel();
                removed.push((name, Stopped(h.exited)));
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

    /// Passes a just-recorded delivery to its worker; fails when no worker
    /// exists for its destination (removed by a reload).
    pub fn submit(&self, d: DueDelivery) -> Result<(), NoWorker> {
        let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
        let Some(h) = workers.get(&d.destination) else {
            return Err(NoWorker(d.destination));
        };
        // A worker stopping at shutdown leaves the row pending in the
        // spool for the next start; a worker behind finds it there with
        // its next scan.
        if let Err(mpsc::error::TrySendError::Full(_)) = h.tx.try_send(Handed::Recorded(d)) {
            h.missed.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Whether a worker runs for `destination`.
    pub fn runs(&self, destination: &str) -> bool {
        self.workers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains_key(destination)
    }

    /// Hands an event's routing to the workers of its deliveries, to send
    /// first where their destination may, and to record it once every
    /// share is done. A share whose worker cannot take it (none, or its
    /// hand-overs are full) is declined at once: recorded pending, and
    /// found by that worker's scan. Then the hand-over's own share is done
    /// ([`FirstSends::handed`], which records the routing if every other
    /// share is done already).
    pub async fn send_first(&self, sends: Arc<FirstSends>) {
        let declined: Vec<_> = {
            let workers = self.workers.lock().unwrap_or_else(|p| p.into_inner());
            sends
                .shares(|name| {
                    workers
                        .get(name)
                        .is_some_and(|h| first::sends_first(&h.dest))
                })
                .into_iter()
                .filter_map(|(name, share)| {
                    let Some(h) = workers.get(&name) else {
                        return Some(share);
                    };
                    match h.tx.try_send(Handed::First(share)) {
                        Ok(()) => None,
                        Err(e) => {
                            h.missed.store(true, Ordering::Release);
                            match e.into_inner() {
                                Handed::First(share) => Some(share),
                                Handed::Recorded(_) => None,
                            }
                        }
                    }
                })
                .collect()
        };
        for share in declined {
            // Recorded pending with the routing; its worker's scan finds it.
            share.give_up().await;
        }
        sends.handed().await;
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
