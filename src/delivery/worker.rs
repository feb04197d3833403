//! One destination's worker: it sends its destination's deliveries and
//! records their outcomes (and, for a plain destination, sends shares of
//! routings before they are recorded: `delivery/first.rs`).
//! [`Worker::run`] is a loop of named steps:
//! dispatch what may go out, send the digest when it is due, refill the
//! queue from the spool, then wait for the next thing to happen; at
//! shutdown, drain.

use super::attempt::{attempt, commit, Done};
use super::digest::Digest;
use super::first::First;
use super::pacing::Pacing;
use super::queue::{Queue, Queued, Threads};
use super::shared::{next_news, Shared};
use crate::coord::{Limits, Pace, Sending};
use crate::destinations::{Capabilities, Destination, KindCapabilities, Sink};
use crate::recent::RecentIds;
use crate::store::{now_ms, spool_log, Claimed, DueDelivery};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Rows read per scan.
const SCAN_BATCH: usize = 256;
/// Outcomes waiting for their commit at most before the worker stops
/// sending more (at least the destination's concurrency).
const COMMIT_BACKLOG: usize = 256;
/// How often an idle worker looks at the spool (retries that came due,
/// replays from the CLI).
const IDLE_POLL: Duration = Duration::from_secs(1);

/// What a stopped worker leaves to the one that replaces it (a reload).
pub(super) struct Handover {
    finished: RecentIds,
}

/// What the pipeline hands a worker.
pub(crate) enum Handed {
    /// A delivery just recorded as pending.
    Recorded(DueDelivery),
    /// A share of a routing to send before it is recorded.
    First(First),
}

/// What the pipeline hands over.
struct Inbox {
    rx: mpsc::Receiver<Handed>,
    /// Set by the dispatcher when a hand-over did not fit in `rx`.
    missed: Arc<AtomicBool>,
}

/// Sends under way and outcomes being committed.
struct InFlight {
    /// Sends at once at most.
    concurrency: usize,
    sends: JoinSet<Done>,
    /// Outcomes being committed (their ids stay known to the queue until
    /// then, so a scan cannot pick up a delivery that is already done),
    /// and declined shares waiting for their routing's record.
    committing: JoinSet<Committed>,
    /// Shares of routings not recorded yet waiting in the queue: at most
    /// the concurrency (their events wait for them).
    firsts: usize,
}

/// What a task of [`InFlight::committing`] ends with.
enum Committed {
    /// The outcome of this delivery is committed (or could not be).
    Outcome(i64),
    /// A declined share's delivery, recorded pending, to queue.
    Declined(Option<DueDelivery>),
}

impl InFlight {
    /// Whether another send may start: a free slot, and not too many
    /// outcomes waiting for their commit.
    fn has_room(&self) -> bool {
        self.sends.len() < self.concurrency
            && self.committing.len() < COMMIT_BACKLOG.max(self.concurrency)
    }
}

pub(super) struct Worker {
    /// Shared with the commit tasks, for their logs.
    name: Arc<str>,
    dest: Arc<Destination>,
    sink: Arc<Sink>,
    /// Shared by reference with every attempt and commit task.
    shared: Arc<Shared>,
    cancel: CancellationToken,
    inbox: Inbox,
    /// What waits to go out, and what this worker knows of delivery ids.
    queue: Queue,
    pacing: Pacing,
    /// With `digest = true`: when held deliveries go out as one message.
    digest: Option<Digest>,
    inflight: InFlight,
    /// On a threaded destination: one delivery per alert at a time.
    threads: Option<Threads>,
}

/// What woke the loop up.
enum Event {
    Stop,
    Committed(Committed),
    Attempted(Done),
    Handed(Handed),
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
        Worker {
            sink: Arc::new(Sink::new(
                Arc::new(config.clone()),
                shared.http.clone(),
                concurrency,
            )),
            pacing: Pacing::new(Limits {
                max_per_minute: config.max_per_minute,
                rate: config.rate,
            }),
            digest: config
                .digest
                .then(|| Digest::new(config.digest_interval, now)),
            inflight: InFlight {
                concurrency,
                sends: JoinSet::new(),
                committing: JoinSet::new(),
                firsts: 0,
            },
            threads: config.threaded().then(Threads::default),
            name: Arc::from(name),
            shared: Arc::new(shared),
            inbox: Inbox { rx, missed },
            cancel,
            queue: Queue::new(now),
            dest,
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
                        self.queue.absorb(h.finished);
                    }
                }
            }
        }
        let mut news = Some(self.shared.coord.wakeups());
        while !self.cancel.is_cancelled() {
            let now = Instant::now();
            let mut wake_at = now + IDLE_POLL;
            self.pacing.lift(now, &mut wake_at);
            if self.inflight.firsts > 0 {
                for f in self.queue.stale_firsts(&mut wake_at) {
                    self.inflight.firsts -= 1;
                    self.decline(f);
                }
            }
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
                Event::Committed(c) => self.committed(c),
                Event::Attempted(done) => self.attempted(done).await,
                Event::Handed(h) => self.handed(h),
                Event::News(about) => self.heard(about).await,
                Event::Timer => {}
            }
        }
        self.drain().await;
        let _ = exit.send(Handover {
            finished: self.queue.into_finished(),
        });
    }

    /// Takes what the pipeline hands over: a recorded delivery (unless a
    /// scan already sent it), or a share of a routing to send before it is
    /// recorded, queued in its turn unless the destination is paused or a
    /// round of them (its concurrency) waits already: its event waits for
    /// it, and a destination that hangs must not hold more events than
    /// that. A share declined is recorded pending with its routing.
    fn handed(&mut self, h: Handed) {
        match h {
            Handed::Recorded(d) => self.queue.submitted(d),
            Handed::First(f)
                if f.sendable()
                    && !self.cancel.is_cancelled()
                    && !self.pacing.paused()
                    && self.inflight.firsts < self.inflight.concurrency =>
            {
                self.inflight.firsts += 1;
                self.queue.push_first(f);
            }
            Handed::First(f) => self.decline(f),
        }
    }

    /// Declines a share: its routing records the delivery pending, and it
    /// is queued then.
    fn decline(&mut self, f: First) {
        self.inflight
            .committing
            .spawn(async move { Committed::Declined(f.decline().await) });
    }

    /// A commit task finished.
    fn committed(&mut self, c: Committed) {
        match c {
            Committed::Outcome(id) => self.finish(id),
            Committed::Declined(Some(d)) => self.queue.submitted(d),
            Committed::Declined(None) => {}
        }
    }

    /// Records a finished attempt in the spool, apart from the loop (a
    /// concurrency slot is not held through the spool's fsync); a first
    /// attempt answered in time was recorded with its routing.
    fn record(&mut self, done: Done) {
        if let Some((id, completion)) = done.commit {
            let commit = commit(self.shared.clone(), self.name.clone(), id, completion);
            self.inflight
                .committing
                .spawn(async move { Committed::Outcome(commit.await) });
        }
    }

    /// Remembers a delivery whose outcome is committed.
    fn finish(&mut self, id: i64) {
        self.queue.finish(id);
        if self.threads.as_mut().is_some_and(|t| t.finish(id)) {
            // The next message about that alert may be waiting in the spool.
            self.queue.next_scan = Instant::now();
        }
    }

    /// Extends the claims on what this worker holds, when claims exist.
    async fn renew(&mut self, now: Instant) {
        let Some(every) = self.shared.coord.renew_every() else {
            return;
        };
        if now < self.queue.next_renew {
            return;
        }
        self.queue.next_renew = now + every;
        let ids = self.queue.held();
        if let Err(e) = self.shared.coord.renew(Claimed::Deliveries, ids).await {
            spool_log!(warn, self.shared.store, message = "Cannot renew delivery leases; another replica may take them over.", destination = %self.name, error = %e);
        }
    }

    /// Sends what pacing and concurrency allow from the queue. Over
    /// `max_per_minute` with `digest = true`, deliveries are held for the
    /// next digest instead.
    async fn dispatch(&mut self, now: Instant, wake_at: &mut Instant) {
        while !self.pacing.paused() && self.inflight.has_room() {
            let next = self
                .queue
                .next_ready(self.threads.as_mut(), &self.shared.store, &self.name)
                .await;
            let Some(next) = next else {
                return;
            };
            let sending = match self.queue.get(next) {
                Some(Queued::First(_)) => {
                    self.send_first(next);
                    continue;
                }
                Some(Queued::Recorded(d)) if d.digest => Sending::Digest,
                Some(Queued::Recorded(_)) => Sending::Message,
                None => return,
            };
            let pace = self
                .shared
                .coord
                .pace(&self.name, self.pacing.limits, sending)
                .await;
            match pace {
                Ok(Pace::Go) => {}
                Ok(Pace::OverLimit(wait)) if self.digest.is_some() => {
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
            let Some(Queued::Recorded(d)) = self.queue.take(next) else {
                return;
            };
            if let Some(threads) = &mut self.threads {
                threads.start(&d);
            }
            self.inflight
                .sends
                .spawn(attempt(self.shared.clone(), self.sink.clone(), d));
        }
    }

    /// Sends the share at `at` (a plain destination: no pacing to ask), or
    /// declines it if it waited past its time.
    fn send_first(&mut self, at: usize) {
        let Some(Queued::First(f)) = self.queue.take(at) else {
            return;
        };
        self.inflight.firsts = self.inflight.firsts.saturating_sub(1);
        if !f.sendable() {
            self.decline(f);
            return;
        }
        self.inflight
            .sends
            .spawn(f.send(self.shared.clone(), self.sink.clone()));
    }

    /// Sets the delivery at `at` aside for the next digest. On a
    /// destination without threads, every other message waiting goes with
    /// it, with what the pipeline has handed over meanwhile, in one commit:
    /// a storm is held as fast as it arrives, not one commit per alert.
    /// False if the spool could not record that (they stay queued).
    async fn hold(&mut self, at: usize) -> bool {
        let ids: Vec<i64> = if self.threads.is_some() {
            match self.queue.get(at) {
                Some(Queued::Recorded(d)) => vec![d.id],
                _ => Vec::new(),
            }
        } else {
            while let Ok(h) = self.inbox.rx.try_recv() {
                self.handed(h);
            }
            self.queue.messages()
        };
        if ids.is_empty() {
            return false;
        }
        match self.shared.store.hold(ids.clone()).await {
            Ok(()) => {
                self.queue.drop_held(&ids);
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
        let Some(digest) = &mut self.digest else {
            return false;
        };
        match digest.due(now, &self.shared, &self.name, &self.dest).await {
            Err(next) => {
                *wake_at = (*wake_at).min(next);
                false
            }
            Ok(Some(d)) => {
                self.queue.push_front(d);
                true
            }
            Ok(None) => true,
        }
    }

    /// Reads more from the spool when the queue runs low and a scan is due.
    /// True when the loop should start over (something can go out now).
    async fn refill(&mut self, now: Instant, wake_at: &mut Instant) -> bool {
        if self.inbox.missed.swap(false, Ordering::Acquire) {
            self.queue.overflow = true;
        }
        if self.queue.len() >= SCAN_BATCH {
            return false;
        }
        if self.queue.overflow || now >= self.queue.next_scan {
            self.scan().await;
            if !self.queue.is_empty()
                && self.inflight.sends.len() < self.inflight.concurrency
                && !self.pacing.paused()
            {
                return true;
            }
        }
        *wake_at = (*wake_at).min(self.queue.next_scan);
        false
    }

    async fn scan(&mut self) {
        let now = now_ms();
        // Another replica may have been told to slow down.
        self.shared_pause().await;
        let result = self
            .shared
            .store
            .due(&self.name, now, self.queue.cursor, SCAN_BATCH)
            .await;
        match result {
            Ok(rows) => {
                let full = rows.len() == SCAN_BATCH;
                self.queue.cursor = if full {
                    rows.last().map_or(0, |r| r.id)
                } else {
                    0
                };
                for d in rows {
                    self.queue.enqueue(d);
                }
                self.queue.overflow = full;
                self.queue.next_scan = if full {
                    Instant::now()
                } else {
                    Instant::now() + IDLE_POLL
                };
            }
            Err(e) => {
                spool_log!(error, self.shared.store, message = "Cannot read pending deliveries from the spool.", destination = %self.name, error = %e);
                self.queue.next_scan = Instant::now() + IDLE_POLL;
            }
        }
    }

    /// Takes on a pause the deployment knows of (another replica's 429, or
    /// a predecessor's).
    async fn shared_pause(&mut self) {
        match self.shared.coord.paused_until(&self.name).await {
            Ok(Some(until)) => {
                let left = Duration::from_millis((until - now_ms()).max(0) as u64);
                self.pacing.pause_until(Instant::now() + left);
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
        let inflight = &mut self.inflight;
        tokio::select! {
            biased;
            _ = self.cancel.cancelled() => Event::Stop,
            Some(c) = inflight.committing.join_next(), if !inflight.committing.is_empty() => {
                c.map_or(Event::Timer, Event::Committed)
            }
            Some(done) = inflight.sends.join_next(), if !inflight.sends.is_empty() => match done {
                Ok(done) => Event::Attempted(done),
                Err(e) => {
                    tracing::error!(message = "Delivery task failed.", destination = %self.name, error = %e);
                    Event::Timer
                }
            },
            Some(h) = self.inbox.rx.recv() => Event::Handed(h),
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
            self.queue.next_scan = self.queue.next_scan.min(Instant::now() + r);
        }
        if let Some(p) = pause {
            self.pacing.pause_until(Instant::now() + p);
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
            self.queue.next_scan = Instant::now();
        }
    }

    /// Shutdown (or replacement): declines the shares waiting (their
    /// routings are recorded, the deliveries pending for the successor or
    /// the next start), lets in-flight attempts finish and commit within
    /// the grace period; what does not finish stays pending.
    async fn drain(&mut self) {
        for f in self.queue.take_firsts() {
            self.decline(f);
        }
        while let Ok(h) = self.inbox.rx.try_recv() {
            if let Handed::First(f) = h {
                self.decline(f);
            }
        }
        let grace = tokio::time::sleep(self.shared.shutdown_grace);
        tokio::pin!(grace);
        while !self.inflight.sends.is_empty() || !self.inflight.committing.is_empty() {
            tokio::select! {
                _ = &mut grace => {
                    tracing::warn!(message = "Shutdown grace expired; unfinished deliveries stay queued.", destination = %self.name, in_flight = self.inflight.sends.len());
                    self.inflight.sends.abort_all();
                    return;
                }
                Some(Ok(done)) = self.inflight.sends.join_next(), if !self.inflight.sends.is_empty() => {
                    self.record(done);
                }
                Some(c) = self.inflight.committing.join_next(), if !self.inflight.committing.is_empty() => {
                    if let Ok(Committed::Outcome(id)) = c {
                        self.finish(id);
                    }
                }
            }
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

    /// The pipeline hands a delivery over just after committing it; a
    /// spool scan may have found, sent and finished it first. That late
    /// hand-over must not queue it again (it would be sent twice).
    #[tokio::test]
    async fn a_late_hand_over_of_a_finished_delivery_is_dropped() {
        let (mut w, _dir) = worker();

        // Found by a scan, sent, its outcome committed.
        w.queue.enqueue(delivery(7));
        let Some(Queued::Recorded(d)) = w.queue.take(0) else {
            panic!("queued");
        };
        w.finish(d.id);
        // The pipeline's hand-over arrives afterwards.
        w.queue.submitted(delivery(7));
        assert!(w.queue.is_empty());
        // Other deliveries still go through, and a scan (a replayed dead
        // letter) may queue a finished id again.
        w.queue.submitted(delivery(8));
        w.queue.enqueue(delivery(7));
        let ids: Vec<i64> = (0..w.queue.len())
            .filter_map(|i| match w.queue.get(i) {
                Some(Queued::Recorded(d)) => Some(d.id),
                _ => None,
            })
            .collect();
        assert_eq!(ids, [8, 7]);
    }

    /// A paused worker sends nothing until the pause is over; a sent
    /// delivery's outcome (a closed port: a retry) is committed to the
    /// spool by the worker itself.
    #[tokio::test]
    async fn a_worker_sends_when_unpaused_and_records_the_outcome_itself() {
        let (mut w, _dir) = worker();
        let far = Instant::now() + Duration::from_secs(60);
        w.queue.enqueue(DueDelivery {
            created_at: now_ms(),
            ..delivery(3)
        });
        w.pacing.pause_until(far);
        let mut wake = far;
        w.dispatch(Instant::now(), &mut wake).await;
        assert!(w.inflight.sends.is_empty(), "paused: nothing goes out");
        w.pacing.paused_until = None;
        w.dispatch(Instant::now(), &mut wake).await;
        let done = w.inflight.sends.join_next().await.unwrap().unwrap();
        assert!(matches!(
            done.commit,
            Some((3, crate::store::Completion::Retry { id: 3, .. }))
        ));
        w.record(done);
        let c = w.inflight.committing.join_next().await.unwrap().unwrap();
        assert!(matches!(c, Committed::Outcome(3)));
    }
}
