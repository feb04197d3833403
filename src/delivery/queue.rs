//! A worker's queue: the deliveries it holds in memory, in order (recorded
//! ones, and shares of routings to send before they are recorded), with
//! what it knows of delivery ids (held, recently finished) so that a spool
//! scan and the pipeline's hand-over of the same delivery cannot both send
//! it; and, on a threaded destination, which alerts have a delivery out.

use super::first::First;
use crate::recent::RecentIds;
use crate::store::{spool_log, DueDelivery, Store};
use std::collections::{HashMap, HashSet, VecDeque};
use tokio::time::Instant;

/// Deliveries held in memory with their payload; beyond this they stay in
/// the spool and are read back by a scan when the queue drains.
const QUEUE_CAP: usize = 512;
/// Finished delivery ids remembered, so a late hand-over from the
/// pipeline of a delivery a scan already sent is not sent twice.
/// 7/8 of 16,384: its set settles at 32,768 buckets, where 16,384 ids
/// took 65,536 (see `RecentIds`).
const FINISHED_MEMORY: usize = 14_336;

/// One item of the queue.
pub(super) enum Queued {
    /// A delivery recorded in the spool.
    Recorded(DueDelivery),
    /// A share of a routing not recorded yet (`delivery::first`).
    First(First),
}

pub(super) struct Queue {
    items: VecDeque<Queued>,
    /// Ids queued, in flight or committing: never fetched twice.
    known: HashSet<i64>,
    /// Ids recently finished.
    finished: RecentIds,
    /// Deliveries were left in the spool because the queue was full.
    pub overflow: bool,
    /// Scan position (ids are monotonic); 0 restarts from the oldest.
    pub cursor: i64,
    pub next_scan: Instant,
    /// When to renew the claims on what this worker holds, if it must.
    pub next_renew: Instant,
}

impl Queue {
    /// Empty, with a scan due at once (the spool may hold work).
    pub fn new(now: Instant) -> Queue {
        Queue {
            items: VecDeque::new(),
            known: HashSet::new(),
            finished: RecentIds::new(FINISHED_MEMORY),
            overflow: true,
            cursor: 0,
            next_scan: now,
            next_renew: now,
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn get(&self, at: usize) -> Option<&Queued> {
        self.items.get(at)
    }

    /// Takes the item at `at` out to send it (a delivery's id stays known
    /// until its outcome is committed).
    pub fn take(&mut self, at: usize) -> Option<Queued> {
        self.items.remove(at)
    }

    /// The ids of the queued recorded deliveries that are not digests.
    pub fn messages(&self) -> Vec<i64> {
        self.items
            .iter()
            .filter_map(|q| match q {
                Queued::Recorded(d) if !d.digest => Some(d.id),
                _ => None,
            })
            .collect()
    }

    /// Queues a share of a routing not recorded yet.
    pub fn push_first(&mut self, first: First) {
        self.items.push_back(Queued::First(first));
    }

    /// Takes out the shares that waited past their time (they are declined:
    /// their routing must not wait for a queue that does not move, say a
    /// paused destination's); makes sure the loop wakes for the others.
    pub fn stale_firsts(&mut self, wake_at: &mut Instant) -> Vec<First> {
        let mut stale = Vec::new();
        let mut i = 0;
        while i < self.items.len() {
            match &self.items[i] {
                Queued::First(f) if !f.sendable() => {
                    if let Some(Queued::First(f)) = self.items.remove(i) {
                        stale.push(f);
                    }
                }
                Queued::First(f) => {
                    *wake_at = (*wake_at).min(f.deadline());
                    i += 1;
                }
                Queued::Recorded(_) => i += 1,
            }
        }
        stale
    }

    /// Takes every share of a routing not recorded yet out of the queue.
    pub fn take_firsts(&mut self) -> Vec<First> {
        let (firsts, rest): (VecDeque<Queued>, VecDeque<Queued>) = std::mem::take(&mut self.items)
            .into_iter()
            .partition(|q| matches!(q, Queued::First(_)));
        self.items = rest;
        firsts
            .into_iter()
            .filter_map(|q| match q {
                Queued::First(f) => Some(f),
                Queued::Recorded(_) => None,
            })
            .collect()
    }

    /// The ids this worker holds (queued, in flight, committing).
    pub fn held(&self) -> Vec<i64> {
        self.known.iter().copied().collect()
    }

    /// Queues a delivery read from the spool (or a replay), unless it is
    /// held already. A full queue leaves it in the spool for a later scan.
    pub fn enqueue(&mut self, d: DueDelivery) {
        if self.known.contains(&d.id) {
            return;
        }
        if self.items.len() >= QUEUE_CAP {
            // Still pending in the spool; a later scan picks it up.
            self.overflow = true;
            return;
        }
        self.known.insert(d.id);
        self.items.push_back(Queued::Recorded(d));
    }

    /// Takes a delivery handed over by the pipeline just after its
    /// routing was recorded. A scan may already have found, sent and
    /// finished it while this hand-over waited in the channel: then it is
    /// not sent again.
    pub fn submitted(&mut self, d: DueDelivery) {
        if self.finished.contains(d.id) {
            return;
        }
        self.enqueue(d);
    }

    /// Puts a digest first: it goes out before the messages queued.
    pub fn push_front(&mut self, d: DueDelivery) {
        self.known.insert(d.id);
        self.items.push_front(Queued::Recorded(d));
    }

    /// Drops the deliveries held for the next digest (recorded as held in
    /// the spool), remembering them as finished.
    pub fn drop_held(&mut self, ids: &[i64]) {
        let held: HashSet<i64> = ids.iter().copied().collect();
        self.items
            .retain(|q| !matches!(q, Queued::Recorded(d) if held.contains(&d.id)));
        for id in ids {
            self.finish(*id);
        }
    }

    /// Remembers a delivery whose outcome is committed.
    pub fn finish(&mut self, id: i64) {
        self.known.remove(&id);
        self.finished.insert(id);
    }

    /// Takes over a predecessor's memory of finished ids (a reload).
    pub fn absorb(&mut self, finished: RecentIds) {
        self.finished.absorb(finished);
    }

    /// The memory of finished ids, for a successor.
    pub fn into_finished(self) -> RecentIds {
        self.finished
    }

    /// The queue position of the next delivery that may go out: the front,
    /// or on a threaded destination the first whose alert has nothing in
    /// flight and nothing earlier still pending (checked in the spool,
    /// which sees other replicas and retries; a delivery that must wait is
    /// left to the spool, whose scans return it once it is its turn).
    pub async fn next_ready(
        &mut self,
        threads: Option<&mut Threads>,
        store: &Store,
        name: &str,
    ) -> Option<usize> {
        let Some(threads) = threads else {
            return (!self.items.is_empty()).then_some(0);
        };
        let mut i = 0;
        while i < self.items.len() {
            let Queued::Recorded(d) = &self.items[i] else {
                return Some(i);
            };
            let Some(key) = &d.thread_key else {
                return Some(i);
            };
            if threads.busy.contains(key) {
                i += 1;
                continue;
            }
            match store.thread_ready(d.id).await {
                Ok(true) => return Some(i),
                Ok(false) => {
                    let id = d.id;
                    self.items.remove(i);
                    self.known.remove(&id);
                    threads.waiting = true;
                }
                Err(e) => {
                    spool_log!(error, store, message = "Cannot tell whether an alert's earlier messages are out; waiting.", destination = %name, error = %e);
                    return None;
                }
            }
        }
        None
    }
}

/// On a threaded destination (one conversation per alert), deliveries
/// about one alert go out one at a time, in order.
#[derive(Default)]
pub(super) struct Threads {
    /// Alerts with a delivery in flight or committing.
    busy: HashSet<String>,
    /// The alert of each such delivery, by delivery id.
    of: HashMap<i64, String>,
    /// A delivery was left to the spool to wait for an earlier one about
    /// its alert: scan again as soon as one finishes.
    waiting: bool,
}

impl Threads {
    /// A delivery about an alert goes out: the alert is busy until it is done.
    pub fn start(&mut self, d: &DueDelivery) {
        if let Some(key) = &d.thread_key {
            self.busy.insert(key.clone());
            self.of.insert(d.id, key.clone());
        }
    }

    /// A delivery's outcome is committed: its alert is free again. True
    /// when a later message about that alert may be waiting in the spool.
    pub fn finish(&mut self, id: i64) -> bool {
        let Some(key) = self.of.remove(&id) else {
            return false;
        };
        self.busy.remove(&key);
        std::mem::take(&mut self.waiting)
    }
}
