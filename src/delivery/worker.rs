//! One destination's worker: its queue, pacing, concurrency and outcomes.
//! [`Worker::run`] is a loop of named steps: dispatch what may go out,
//! send the digest when it is due, refill the queue from the spool, then
//! wait for the next thing to happen; at shutdown, drain.

use super::attempt::{attempt, commit, Done};
use super::{Direct, Handed, Shared};
use crate::coord::{Limits, Pace, Sending};
use crate::destinations::Sink;
use crate::destinations::{own_message, Capabilities, Destination, KindCapabilities};
use crate::recent::RecentIds;
use crate::render::{Facts, Summary};
use crate::store::{now_ms, spool_log, Claimed, DueDelivery, NewDigest};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Deliveries held in memory with their payload; beyond this they stay in
/// the spool and are read back by a scan when the queue drains.
const QUEUE_CAP: usize = 512;
/// Rows read per scan.
const SCAN_BATCH: usize = 256;
/// Finished delivery ids remembered, so a late hand-over from the
/// pipeline of a delivery a scan already sent is not sent twice.
/// 7/8 of 16,384: its set settles at 32,768 buckets, where 16,384 ids
/// took 65,536 (see `RecentIds`).
const FINISHED_MEMORY: usize = 14_336;
/// Outcomes waiting for their commit at most before the worker stops
/// sending more (at least the destination's concurrency).
const COMMIT_BACKLOG: usize = 256;
/// How often an idle worker looks at the spool (retries that came due,
/// replays from the CLI).
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Held deliveries folded into one digest at most.
const DIGEST_MAX: usize = 10_000;

/// What a stopped worker leaves to the one that replaces it (a reload).
pub(super) struct Handover {
    finished: RecentIds,
}

pub(super) struct Worker {
    /// Shared with the commit tasks, for their logs.
    name: Arc<str>,
    dest: Arc<Destination>,
    limits: Limits,
    sink: Arc<Sink>,
    /// Shared by reference with every attempt and commit task.
    shared: Arc<Shared>,
    rx: mpsc::Receiver<Handed>,
    /// Set by the dispatcher when a hand-over did not fit in `rx`.
    missed: Arc<AtomicBool>,
    cancel: CancellationToken,
    queue: VecDeque<DueDelivery>,
    /// Ids queued, in flight or committing: never fetched twice.
    known: HashSet<i64>,
    /// Ids recently finished.
    finished: RecentIds,
    /// Deliveries were left in the spool because the queue was full.
    overflow: bool,
    /// Scan position (ids are monotonic); 0 restarts from the oldest.
    cursor: i64,
    next_scan: Instant,
    /// When to renew the claims on what this worker holds, if it must.
    next_renew: Instant,
    /// The target asked us to slow down (429 / Retry-After) until then.
    paused_until: Option<Instant>,
    /// With `digest = true`: how often held deliveries go out as a digest.
    digest_every: Option<Duration>,
    next_digest: Instant,
    concurrency: usize,
    inflight: JoinSet<Done>,
    /// Outcomes being committed; their ids stay `known` until then, so a
    /// scan cannot pick up a delivery that is already done.
    committing: JoinSet<i64>,
    /// A threaded destination (one conversation per alert): deliveries
    /// about one alert go out one at a time, in order.
    threaded: bool,
    /// Alerts with a delivery in flight or committing, and by delivery id.
    busy_threads: HashSet<String>,
    thread_of: HashMap<i64, String>,
    /// A delivery was left to the spool to wait for an earlier one about
    /// its alert: scan again as soon as one finishes.
    thread_waiting: bool,
    /// Sends of deliveries not recorded yet, by provisional id: their
    /// outcome goes back to the pipeline instead of to the spool.
    direct: HashMap<i64, Direct>,
    /// Those waiting for a slot, in order.
    provisional: VecDeque<DueDelivery>,
    /// Whether a send not recorded yet goes next when both queues wait.
    direct_turn: bool,
}

/// What woke the loop up.
enum Event {
    Stop,
    Committed(i64),
    Attempted(Done),
    Submitted(DueDelivery),
    Now(DueDelivery, Direct),
    News(String),
    Timer,
}

impl Worker {
    pub(super) fn new(
        name: String,
        dest: Arc<Destination>,
        shared: Shared,
        (rx, missed): (mpsc::Receiver<Handed>, Arc<AtomicBool>),
        cancel: CancellationToken,
    ) -> Worker {
        let now = Instant::now();
        let config = &dest.config;
        let default = if config.kind.in_order() {
            1
        } else {
            shared.delivery.concurrency
        };
        let concurrency = config.concurrency.unwrap_or(default).max(1);
        let config_arc = Arc::new(config.clone());
        let threaded = config.threaded();
        Worker {
            sink: Arc::new(Sink::new(config_arc, shared.http.clone(), concurrency)),
            limits: Limits {
                max_per_minute: config.max_per_minute,
                rate: config.rate,
            },
            digest_every: config.digest.then_some(config.digest_interval),
            next_digest: now + config.digest_interval,
            concurrency,
            name: Arc::from(name),
            dest,
            shared: Arc::new(shared),
            rx,
            missed,
            cancel,
            queue: VecDeque::new(),
            known: HashSet::new(),
            finished: RecentIds::new(FINISHED_MEMORY),
            overflow: true,
            cursor: 0,
            next_scan: now,
            next_renew: now,
            paused_until: None,
            inflight: JoinSet::new(),
            committing: JoinSet::new(),
            threaded,
            busy_threads: HashSet::new(),
            thread_of: HashMap::new(),
            thread_waiting: false,
            direct: HashMap::new(),
            provisional: VecDeque::new(),
            direct_turn: true,
        }
    }

    /// Runs until cancelled, then drains. With a `predecessor` (a reload
    /// replaced it), starts only once that worker has stopped, so the two
    /// never send the same delivery; `exit` hands this one's memory on.
    pub(super) async fn run(
        mut self,
        predecessor: Option<oneshot::Receiver<Handover>>,
        exit: oneshot::Sender<Handover>,
    ) {
        if let Some(before) = predecessor {
            tokio::select! {
                _ = self.cancel.cancelled() => {}
                handed = before => {
                    if let Ok(h) = handed {
                        self.finished.absorb(h.finished);
                    }
                }
            }
        }
        let mut news = Some(self.shared.coord.wakeups());
        while !self.cancel.is_cancelled() {
            let now = Instant::now();
            let mut wake_at = now + IDLE_POLL;
            self.lift_pause(now, &mut wake_at);
            self.renew(now).await;
            self.dispatch(now, &mut wake_at).await;
            if self.digest(now, &mut wake_at).await {
                continue;
            }
            if self.refill(now, &mut wake_at).await {
                continue;
            }
            match self.next_event(wake_at, &mut news).await {
                Event::Stop => break,
                Event::Committed(id) => self.finish(id),
                Event::Attempted(done) => self.attempted(done).await,
                Event::Submitted(d) => self.submitted(d),
                Event::Now(d, direct) => self.send_now(d, direct),
                Event::News(about) => self.heard(about).await,
                Event::Timer => {}
            }
        }
        self.drain().await;
        let _ = exit.send(Handover {
            finished: self.finished,
        });
    }

    /// Takes a delivery handed over by the pipeline just after its commit.
    /// A scan may already have found, sent and finished it while this
    /// hand-over waited in the channel: then it is not sent again.
    fn submitted(&mut self, d: DueDelivery) {
        if self.finished.contains(d.id) {
            return;
        }
        self.enqueue(d);
    }

    /// Queues a delivery the pipeline has not recorded yet, unless the
    /// destination is paused or a round of them (its concurrency) waits
    /// already: its event waits for it, and a destination that hangs must
    /// not hold more events than that. Then it answers `None` and the
    /// pipeline records it as pending, as any other. It goes out in its
    /// turn, unless the pipeline withdraws it first.
    fn send_now(&mut self, d: DueDelivery, direct: Direct) {
        if self.cancel.is_cancelled()
            || self.paused_until.is_some()
            || self.provisional.len() >= self.concurrency
        {
            let _ = direct.reply.send(None);
            return;
        }
        self.direct.insert(d.id, direct);
        self.provisional.push_back(d);
    }

    /// The next send not recorded yet that may go out, if it is its turn:
    /// they alternate with the queue of recorded deliveries when both
    /// wait (an event waits on these; neither starves). Withdrawn ones are
    /// dropped on the way (the pipeline recorded them as pending).
    fn next_direct(&mut self) -> Option<DueDelivery> {
        if self.provisional.is_empty() || (!self.queue.is_empty() && !self.direct_turn) {
            self.direct_turn = true;
            return None;
        }
        self.direct_turn = false;
        while let Some(d) = self.provisional.pop_front() {
            if self.direct.get(&d.id).is_some_and(Direct::start) {
                return Some(d);
            }
            self.direct.remove(&d.id);
        }
        None
    }

    /// Records a finished attempt: in the spool, or (a delivery sent
    /// before its routing was recorded) by answering the pipeline.
    fn record(&mut self, done: Done) {
        match self.direct.remove(&done.id) {
            // Dropped only if the pipeline's task is gone: the event stays
            // unrouted in the spool and is routed again (at least once).
            Some(direct) => drop(direct.reply.send(Some(done.completion))),
            None => {
                self.committing.spawn(commit(
                    self.shared.clone(),
                    self.name.clone(),
                    done.id,
                    done.completion,
                ));
            }
        }
    }

    /// Remembers a delivery whose outcome is committed.
    fn finish(&mut self, id: i64) {
        self.known.remove(&id);
        self.finished.insert(id);
        if let Some(key) = self.thread_of.remove(&id) {
            self.busy_threads.remove(&key);
            if self.thread_waiting {
                // The next message about that alert may be waiting in the spool.
                self.thread_waiting = false;
                self.next_scan = Instant::now();
            }
        }
    }

    /// The queue position of the next delivery that may go out: the front,
    /// or on a threaded destination the first whose alert has nothing in
    /// flight and nothing earlier still pending (checked in the spool,
    /// which sees other replicas and retries; a delivery that must wait is
    /// left to the spool, whose scans return it once it is its turn).
    async fn next_ready(&mut self) -> Option<usize> {
        if !self.threaded {
            return (!self.queue.is_empty()).then_some(0);
        }
        let mut i = 0;
        while i < self.queue.len() {
            let d = &self.queue[i];
            let Some(key) = &d.thread_key else {
                return Some(i);
            };
            if self.busy_threads.contains(key) {
                i += 1;
                continue;
            }
            match self.shared.store.thread_ready(d.id).await {
                Ok(true) => return Some(i),
                Ok(false) => {
                    let id = d.id;
                    self.queue.remove(i);
                    self.known.remove(&id);
                    self.thread_waiting = true;
                }
                Err(e) => {
                    spool_log!(error, self.shared.store, message = "Cannot tell whether an alert's earlier messages are out; waiting.", destination = %self.name, error = %e);
                    return None;
                }
            }
        }
        None
    }

    fn enqueue(&mut self, d: DueDelivery) {
        if self.known.contains(&d.id) {
            return;
        }
        if self.queue.len() >= QUEUE_CAP {
            // Still pending in the spool; a later scan picks it up.
            self.overflow = true;
            return;
        }
        self.known.insert(d.id);
        self.queue.push_back(d);
    }

    fn lift_pause(&mut self, now: Instant, wake_at: &mut Instant) {
        if let Some(p) = self.paused_until {
            if p <= now {
                self.paused_until = None;
            } else {
                *wake_at = (*wake_at).min(p);
            }
        }
    }

    fn pause_until(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |u| u.max(until)));
    }

    /// Extends the claims on what this worker holds, when claims exist.
    async fn renew(&mut self, now: Instant) {
        let Some(every) = self.shared.coord.renew_every() else {
            return;
        };
        if now < self.next_renew {
            return;
        }
        self.next_renew = now + every;
        // Not the sends not recorded yet (their ids are provisional).
        let ids: Vec<i64> = self.known.iter().copied().filter(|id| *id > 0).collect();
        if let Err(e) = self.shared.coord.renew(Claimed::Deliveries, ids).await {
            spool_log!(warn, self.shared.store, message = "Cannot renew delivery leases; another replica may take them over.", destination = %self.name, error = %e);
        }
    }

    /// Sends what pacing and concurrency allow from the queue. Over
    /// `max_per_minute` with `digest = true`, deliveries are held for the
    /// next digest instead.
    async fn dispatch(&mut self, now: Instant, wake_at: &mut Instant) {
        while self.paused_until.is_none()
            && self.inflight.len() < self.concurrency
            && self.committing.len() < COMMIT_BACKLOG.max(self.concurrency)
        {
            // Plain messages only (no limit, no thread): no pacing to ask.
            if let Some(d) = self.next_direct() {
                self.inflight
                    .spawn(attempt(self.shared.clone(), self.sink.clone(), d));
                continue;
            }
            let Some(next) = self.next_ready().await else {
                return;
            };
            let front = &self.queue[next];
            let sending = if front.digest {
                Sending::Digest
            } else {
                Sending::Message
            };
            let pace = self
                .shared
                .coord
                .pace(&self.name, self.limits, sending)
                .await;
            match pace {
                Ok(Pace::Go) => {}
                Ok(Pace::OverLimit(wait)) if self.digest_every.is_some() => {
                    if self.hold(next).await {
                        continue;
                    }
                    *wake_at = (*wake_at).min(now + wait);
                    return;
                }
                Ok(Pace::OverLimit(wait) | Pace::Wait(wait)) => {
                    *wake_at = (*wake_at).min(now + wait);
                    return;
                }
                Err(e) => {
                    tracing::error!(message = "Cannot read the destination's send window; waiting.", destination = %self.name, error = %e);
                    *wake_at = (*wake_at).min(now + IDLE_POLL);
                    return;
                }
            }
            let Some(d) = self.queue.remove(next) else {
                return;
            };
            if let Some(key) = &d.thread_key {
                if self.threaded {
                    self.busy_threads.insert(key.clone());
                    self.thread_of.insert(d.id, key.clone());
                }
            }
            self.inflight
                .spawn(attempt(self.shared.clone(), self.sink.clone(), d));
        }
    }

    /// Sets the delivery at `at` aside for the next digest. On a
    /// destination without threads, every other message waiting goes with
    /// it, with what the pipeline has handed over meanwhile, in one commit:
    /// a storm is held as fast as it arrives, not one commit per alert.
    /// False if the spool could not record that (they stay queued).
    async fn hold(&mut self, at: usize) -> bool {
        let ids: Vec<i64> = if self.threaded {
            self.queue.get(at).map(|d| d.id).into_iter().collect()
        } else {
            while let Ok(h) = self.rx.try_recv() {
                match h {
                    Handed::Routed(d) => self.submitted(d),
                    // Over the limit: recorded as pending, then held.
                    Handed::Now(_, direct) => drop(direct.reply.send(None)),
                }
            }
            self.queue
                .iter()
                .filter(|d| !d.digest)
                .map(|d| d.id)
                .collect()
        };
        if ids.is_empty() {
            return false;
        }
        match self.shared.store.hold(ids.clone()).await {
            Ok(()) => {
                let held: HashSet<i64> = ids.iter().copied().collect();
                self.queue.retain(|d| !held.contains(&d.id));
                for id in ids {
                    self.finish(id);
                }
                true
            }
            Err(e) => {
                tracing::error!(message = "Cannot hold deliveries for the digest.", destination = %self.name, deliveries = ids.len(), error = %e);
                false
            }
        }
    }

    /// Queues the digest of held deliveries when it is due and it is this
    /// process's turn. True when the loop should start over (it queued one
    /// or tried to).
    async fn digest(&mut self, now: Instant, wake_at: &mut Instant) -> bool {
        let Some(every) = self.digest_every else {
            return false;
        };
        if now < self.next_digest {
            *wake_at = (*wake_at).min(self.next_digest);
            return false;
        }
        self.next_digest = Instant::now() + every;
        match self.shared.coord.digest_turn(&self.name, every).await {
            Ok(true) => self.queue_digest(every).await,
            Ok(false) => {}
            Err(e) => {
                tracing::error!(message = "Cannot tell whose turn the digest is; trying again.", destination = %self.name, error = %e);
                self.next_digest = Instant::now() + IDLE_POLL;
            }
        }
        true
    }

    /// Replaces the held deliveries by one digest message, queued first.
    async fn queue_digest(&mut self, every: Duration) {
        let held = match self.shared.store.held(&self.name, DIGEST_MAX).await {
            Ok(h) if !h.is_empty() => h,
            Ok(_) => return,
            Err(e) => {
                tracing::error!(message = "Cannot read held deliveries.", destination = %self.name, error = %e);
                return;
            }
        };
        let summaries: Vec<Summary> = held
            .iter()
            .map(|(_, s)| {
                s.as_deref()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or(Summary {
                        headline: "(no summary)".into(),
                        urgency: None,
                        short_id: None,
                        link: None,
                    })
            })
            .collect();
        // The console lists exactly these: the held deliveries to this
        // destination in this id range (held are read in id order).
        let everything = match (&self.dest.console_url, held.first(), held.last()) {
            (Some(base), Some((first, _)), Some((last, _))) => Some(format!(
                "{base}/console/events?digest={}",
                url::form_urlencoded::byte_serialize(
                    format!("{}:{first}-{last}", self.name).as_bytes()
                )
                .collect::<String>()
            )),
            _ => None,
        };
        let payload = own_message(
            &self.dest,
            &self.name,
            "digest",
            &Facts::digest(&summaries, every, everything.as_deref()),
        );
        let digest = NewDigest {
            destination: self.name.to_string(),
            payload,
            held: held.iter().map(|(id, _)| *id).collect(),
        };
        match self.shared.store.digest(digest).await {
            Ok(d) => {
                tracing::info!(message = "Digest of held alerts queued.", destination = %self.name, count = held.len(), delivery_id = d.id);
                self.known.insert(d.id);
                self.queue.push_front(d);
            }
            Err(e) => {
                tracing::error!(message = "Cannot create a digest; the alerts stay held.", destination = %self.name, error = %e)
            }
        }
    }

    /// Reads more from the spool when the queue runs low and a scan is due.
    /// True when the loop should start over (something can go out now).
    async fn refill(&mut self, now: Instant, wake_at: &mut Instant) -> bool {
        if self.missed.swap(false, Ordering::Acquire) {
            self.overflow = true;
        }
        if self.queue.len() >= SCAN_BATCH {
            return false;
        }
        if self.overflow || now >= self.next_scan {
            self.scan().await;
            if !self.queue.is_empty()
                && self.inflight.len() < self.concurrency
                && self.paused_until.is_none()
            {
                return true;
            }
        }
        *wake_at = (*wake_at).min(self.next_scan);
        false
    }

    async fn scan(&mut self) {
        let now = now_ms();
        // Another replica may have been told to slow down.
        self.shared_pause().await;
        let result = self
            .shared
            .store
            .due(&self.name, now, self.cursor, SCAN_BATCH)
            .await;
        match result {
            Ok(rows) => {
                let full = rows.len() == SCAN_BATCH;
                self.cursor = if full {
                    rows.last().map_or(0, |r| r.id)
                } else {
                    0
                };
                for d in rows {
                    self.enqueue(d);
                }
                self.overflow = full;
                self.next_scan = if full {
                    Instant::now()
                } else {
                    Instant::now() + IDLE_POLL
                };
            }
            Err(e) => {
                spool_log!(error, self.shared.store, message = "Cannot read pending deliveries from the spool.", destination = %self.name, error = %e);
                self.next_scan = Instant::now() + IDLE_POLL;
            }
        }
    }

    /// Takes on a pause the deployment knows of (another replica's 429, or
    /// a predecessor's).
    async fn shared_pause(&mut self) {
        match self.shared.coord.paused_until(&self.name).await {
            Ok(Some(until)) => {
                let left = Duration::from_millis((until - now_ms()).max(0) as u64);
                self.pause_until(Instant::now() + left);
            }
            Ok(None) => {}
            Err(e) => {
                spool_log!(warn, self.shared.store, message = "Cannot read the destination's shared pause.", destination = %self.name, error = %e)
            }
        }
    }

    async fn next_event(
        &mut self,
        wake_at: Instant,
        news: &mut Option<broadcast::Receiver<String>>,
    ) -> Event {
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Event::Stop,
            Some(id) = self.committing.join_next(), if !self.committing.is_empty() => {
                id.map_or(Event::Timer, Event::Committed)
            }
            Some(done) = self.inflight.join_next(), if !self.inflight.is_empty() => match done {
                Ok(done) => Event::Attempted(done),
                Err(e) => {
                    tracing::error!(message = "Delivery task failed.", destination = %self.name, error = %e);
                    Event::Timer
                }
            },
            Some(h) = self.rx.recv() => match h {
                Handed::Routed(d) => Event::Submitted(d),
                Handed::Now(d, direct) => Event::Now(d, direct),
            },
            about = next_news(news) => Event::News(about),
            _ = tokio::time::sleep_until(wake_at) => Event::Timer,
        }
    }

    /// An attempt finished: commit its outcome, schedule its retry, and
    /// pause the destination (everywhere) if it asked to slow down.
    async fn attempted(&mut self, done: Done) {
        let (retry_in, pause) = (done.retry_in, done.pause);
        self.record(done);
        if let Some(r) = retry_in {
            // Scan when the retry comes due, not at the next idle poll.
            self.next_scan = self.next_scan.min(Instant::now() + r);
        }
        if let Some(p) = pause {
            self.pause_until(Instant::now() + p);
            let until = now_ms() + p.as_millis() as i64;
            if let Err(e) = self.shared.coord.pause(&self.name, until).await {
                tracing::warn!(message = "Cannot share the destination's pause with other replicas.", destination = %self.name, error = %e);
            }
        }
    }

    /// News from elsewhere: a pause, or work to look at now.
    async fn heard(&mut self, about: String) {
        tracing::debug!(message = "Woken by news.", news = %about, destination = %self.name);
        if about.is_empty() || about == *self.name {
            // Before anything else is sent: a pause applies now.
            self.shared_pause().await;
            self.next_scan = Instant::now();
        }
    }

    /// Shutdown (or replacement): lets in-flight attempts finish and commit
    /// within the grace period; what does not finish stays pending.
    async fn drain(&mut self) {
        let grace = tokio::time::sleep(self.shared.shutdown_grace);
        tokio::pin!(grace);
        while !self.inflight.is_empty() || !self.committing.is_empty() {
            tokio::select! {
                _ = &mut grace => {
                    tracing::warn!(message = "Shutdown grace expired; unfinished deliveries stay queued.", destination = %self.name, in_flight = self.inflight.len());
                    self.inflight.abort_all();
                    return;
                }
                Some(Ok(done)) = self.inflight.join_next(), if !self.inflight.is_empty() => {
                    self.record(done);
                }
                Some(id) = self.committing.join_next(), if !self.committing.is_empty() => {
                    if let Ok(id) = id {
                        self.finish(id);
                    }
                }
            }
        }
    }
}

/// The next piece of news; never once the channel is closed. A receiver
/// that fell behind reads as "look at everything".
async fn next_news(news: &mut Option<broadcast::Receiver<String>>) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeliveryConfig, StoreConfig};
    use crate::coord::Coordinator;
    use crate::store::Store;

    fn delivery(id: i64) -> DueDelivery {
        DueDelivery {
            id,
            event_id: id,
            destination: "chat".into(),
            payload: "{}".into(),
            attempts: 0,
            created_at: 0,
            accepted_at: 0,
            hook: "soc".into(),
            short_id: None,
            digest: false,
            thread_key: None,
        }
    }

    /// A worker for a Slack destination at a closed port, over a fresh
    /// spool (kept as long as the directory).
    fn worker() -> (Worker, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig {
            path: dir.path().join("spool.db"),
            ..StoreConfig::default()
        })
        .unwrap();
        let shared = Shared {
            coord: Coordinator::for_store(&store),
            store,
            http: reqwest::Client::new(),
            metrics: Arc::new(crate::telemetry::Metrics::new()),
            delivery: DeliveryConfig::default(),
            shutdown_grace: Duration::from_secs(1),
            live: None,
        };
        let dest: crate::config::DestinationConfig = serde_json::from_value(serde_json::json!({
            "kind": "slack", "url": "http://127.0.0.1:9/x"
        }))
        .unwrap();
        let (_tx, rx) = mpsc::channel(1);
        let w = Worker::new(
            "chat".into(),
            Arc::new(Destination::plain(dest)),
            shared,
            (rx, Arc::new(AtomicBool::new(false))),
            CancellationToken::new(),
        );
        (w, dir)
    }

    /// A delivery not recorded yet is queued and sent in its turn, its
    /// outcome going back to the pipeline, never to the spool; the
    /// pipeline can withdraw it until it is sent. A paused destination does
    /// not take it (the pipeline records it as pending).
    #[tokio::test]
    async fn a_delivery_not_recorded_yet_is_sent_in_its_turn_unless_withdrawn() {
        use crate::store::Completion;
        let (mut w, _dir) = worker();
        fn hand(w: &mut Worker, id: i64) -> super::super::Ticket {
            let (reply, answer) = oneshot::channel();
            let state = Arc::new(std::sync::atomic::AtomicU8::new(super::super::QUEUED));
            let d = DueDelivery {
                created_at: now_ms(),
                ..delivery(id)
            };
            w.send_now(
                d,
                Direct {
                    reply,
                    state: state.clone(),
                },
            );
            super::super::Ticket { answer, state }
        }
        let far = Instant::now() + Duration::from_secs(60);

        // Paused (the service asked to slow down): not taken.
        w.pause_until(far);
        let mut t = hand(&mut w, -1);
        assert!(t.answer.try_recv().unwrap().is_none());
        assert!(w.provisional.is_empty());
        w.paused_until = None;

        // Withdrawn before its turn: never sent.
        let t = hand(&mut w, -2);
        assert!(t.withdraw());
        let mut wake = far;
        w.dispatch(Instant::now(), &mut wake).await;
        assert!(w.inflight.is_empty() && w.provisional.is_empty() && w.direct.is_empty());

        // In its turn: sent (to a closed port, a retry), answered to the
        // pipeline, and no longer withdrawable once started.
        let t = hand(&mut w, -3);
        w.dispatch(Instant::now(), &mut wake).await;
        assert!(!t.withdraw(), "it is out");
        let done = w.inflight.join_next().await.unwrap().unwrap();
        w.record(done);
        match t.answer.await.unwrap() {
            Some(Completion::Retry {
                id: -3,
                status: None,
                ..
            }) => {}
            other => panic!("{other:?}"),
        }
        assert!(w.committing.is_empty(), "nothing was written to the spool");
        assert!(w.direct.is_empty());

        // With recorded deliveries queued too, the two take turns.
        w.enqueue(DueDelivery {
            created_at: now_ms(),
            ..delivery(7)
        });
        let _a = hand(&mut w, -4);
        let _b = hand(&mut w, -5);
        w.concurrency = 1;
        w.direct_turn = true;
        let mut left = Vec::new();
        for _ in 0..3 {
            w.dispatch(Instant::now(), &mut wake).await;
            left.push((w.provisional.len(), w.queue.len(), w.inflight.len()));
            if let Some(done) = w.inflight.join_next().await {
                w.record(done.unwrap());
            }
        }
        assert_eq!(left, [(1, 1, 1), (1, 0, 1), (0, 0, 1)]);
    }

    /// The pipeline hands a delivery over just after committing it; a
    /// spool scan may have found, sent and finished it first. That late
    /// hand-over must not queue it again (it would be sent twice).
    #[tokio::test]
    async fn a_late_hand_over_of_a_finished_delivery_is_dropped() {
        let (mut w, _dir) = worker();

        // Found by a scan, sent, its outcome committed.
        w.enqueue(delivery(7));
        let d = w.queue.pop_front().unwrap();
        w.finish(d.id);
        // The pipeline's hand-over arrives afterwards.
        w.submitted(delivery(7));
        assert!(w.queue.is_empty());
        // Other deliveries still go through, and a scan (a replayed dead
        // letter) may queue a finished id again.
        w.submitted(delivery(8));
        w.enqueue(delivery(7));
        let ids: Vec<i64> = w.queue.iter().map(|d| d.id).collect();
        assert_eq!(ids, [8, 7]);
    }
}
