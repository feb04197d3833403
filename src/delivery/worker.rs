//! One destination's worker: queue, pacing, concurrency, outcomes.

use super::pacing::{backoff, SlidingWindow, TokenBucket};
use super::Shared;
use crate::config::DestinationConfig;
use crate::render::{own_message, Facts, Summary};
use crate::sinks::{Outcome, Sink};
use crate::store::{now_ms, spool_log, Completion, DueDelivery, NewDigest, RenderSource};
use crate::telemetry::labels1;
use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
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
const FINISHED_MEMORY: usize = 16_384;
/// Outcomes waiting for their commit at most before the worker stops
/// sending more (at least the destination's concurrency).
const COMMIT_BACKLOG: usize = 256;
/// How often an idle worker looks at the spool (retries that came due,
/// replays from the CLI).
const IDLE_POLL: Duration = Duration::from_secs(1);

pub(super) struct Worker {
    /// Shared with the commit tasks, for their logs.
    name: Arc<str>,
    dest: Arc<DestinationConfig>,
    sink: Arc<Sink>,
    /// Shared by reference with every attempt and commit task (a clone of
    /// `Shared` copies the spool's path).
    shared: Arc<Shared>,
    rx: mpsc::UnboundedReceiver<DueDelivery>,
    cancel: CancellationToken,
    queue: VecDeque<DueDelivery>,
    /// Ids queued, in flight or committing: never fetched twice.
    known: HashSet<i64>,
    /// Ids recently finished (the last [`FINISHED_MEMORY`]), in order.
    finished: HashSet<i64>,
    finished_order: VecDeque<i64>,
    /// Deliveries were left in the spool because the queue was full.
    overflow: bool,
    /// Scan position (ids are monotonic); 0 restarts from the oldest.
    cursor: i64,
    next_scan: Instant,
    /// When to renew the leases on what this worker holds (shared spool).
    next_renew: Instant,
    /// The target asked us to slow down (429 / Retry-After) until then.
    paused_until: Option<Instant>,
    bucket: Option<TokenBucket>,
    /// `max_per_minute`.
    window: Option<SlidingWindow>,
    /// With `digest = true`: how often held deliveries go out as a digest.
    digest_every: Option<Duration>,
    next_digest: Instant,
    concurrency: usize,
}

/// Whether a message may go out now.
enum Pace {
    Go,
    /// `max_per_minute` reached: hold it for the digest, or wait this long.
    OverLimit(Duration),
    /// `rate`: wait this long.
    Wait(Duration),
}

/// What a finished attempt tells the worker.
struct Done {
    id: i64,
    /// Pause the whole destination this long (throttled).
    pause: Option<Duration>,
    /// The delivery comes due again after this long (a retry).
    retry_in: Option<Duration>,
    /// What to record in the spool.
    completion: Completion,
}

impl Worker {
    pub(super) fn new(
        name: String,
        dest: DestinationConfig,
        shared: Shared,
        rx: mpsc::UnboundedReceiver<DueDelivery>,
        cancel: CancellationToken,
    ) -> Worker {
        let now = Instant::now();
        let concurrency = dest
            .concurrency
            .unwrap_or(shared.delivery.concurrency)
            .max(1);
        let dest = Arc::new(dest);
        Worker {
            sink: Arc::new(Sink::new(dest.clone(), shared.http.clone(), concurrency)),
            bucket: dest.rate.map(|r| TokenBucket::new(r, now.into_std())),
            window: dest
                .max_per_minute
                .map(|n| SlidingWindow::new(n, Duration::from_secs(60))),
            digest_every: dest.digest.then_some(dest.digest_interval),
            next_digest: now + dest.digest_interval,
            concurrency,
            name: Arc::from(name),
            dest,
            shared: Arc::new(shared),
            rx,
            cancel,
            queue: VecDeque::new(),
            known: HashSet::new(),
            finished: HashSet::new(),
            finished_order: VecDeque::new(),
            overflow: true,
            cursor: 0,
            next_scan: now,
            next_renew: now,
            paused_until: None,
        }
    }

    /// Takes a delivery handed over by the pipeline just after its commit.
    /// A scan may already have found, sent and finished it while this
    /// hand-over waited in the channel: then it is not sent again.
    fn submitted(&mut self, d: DueDelivery) {
        if self.finished.contains(&d.id) {
            return;
        }
        self.enqueue(d);
    }

    /// Remembers a delivery whose outcome is committed.
    fn finish(&mut self, id: i64) {
        self.known.remove(&id);
        if self.finished.insert(id) {
            self.finished_order.push_back(id);
            if self.finished_order.len() > FINISHED_MEMORY {
                if let Some(old) = self.finished_order.pop_front() {
                    self.finished.remove(&old);
                }
            }
        }
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

    /// Whether one more message may go out now: `max_per_minute` (which
    /// digests do not count against) and `rate`. With a shared spool the
    /// windows are the cluster's, kept in the database.
    async fn pace(&mut self, now: Instant, is_digest: bool) -> Pace {
        if !self.shared.store.shared() {
            if let (Some(window), false) = (&mut self.window, is_digest) {
                if let Err(wait) = window.check(now.into_std()) {
                    return Pace::OverLimit(wait);
                }
            }
            if let Some(bucket) = &mut self.bucket {
                if let Err(wait) = bucket.try_take(now.into_std()) {
                    return Pace::Wait(wait);
                }
            }
            if let (Some(window), false) = (&mut self.window, is_digest) {
                window.record(now.into_std());
            }
            return Pace::Go;
        }
        let limits = [
            self.dest
                .max_per_minute
                .filter(|_| !is_digest)
                .map(|n| ("max_per_minute", n, Duration::from_secs(60))),
            self.dest.rate.map(|r| ("rate", r.count, r.per)),
        ];
        for (kind, limit, window) in limits.into_iter().flatten() {
            let taken = self
                .shared
                .store
                .take_slot(&self.name, kind, limit, window.as_millis() as i64)
                .await;
            match taken {
                Ok(Ok(())) => {}
                Ok(Err(wait_ms)) => {
                    let wait = Duration::from_millis(wait_ms.max(1) as u64);
                    return if kind == "rate" {
                        Pace::Wait(wait)
                    } else {
                        Pace::OverLimit(wait)
                    };
                }
                Err(e) => {
                    tracing::error!(message = "Cannot read the destination's send window; waiting.", destination = %self.name, error = %e);
                    return Pace::Wait(IDLE_POLL);
                }
            }
        }
        Pace::Go
    }

    /// Extends this replica's leases on the deliveries it holds.
    async fn renew(&mut self) {
        let lease = self.shared.store.lease();
        self.next_renew = Instant::now() + lease / 3;
        let ids: Vec<i64> = self.known.iter().copied().collect();
        if let Err(e) = self.shared.store.renew_deliveries(ids).await {
            spool_log!(warn, self.shared.store, message = "Cannot renew delivery leases; another replica may take them over.", destination = %self.name, error = %e);
        }
    }

    /// Takes on a pause another replica was told to make (a shared spool).
    async fn shared_pause(&mut self) {
        let now = now_ms();
        match self.shared.store.paused_until(&self.name).await {
            Ok(Some(until)) => {
                let p = Instant::now() + Duration::from_millis((until - now).max(0) as u64);
                self.paused_until = Some(self.paused_until.map_or(p, |u| u.max(p)));
            }
            Ok(None) => {}
            Err(e) => {
                spool_log!(warn, self.shared.store, message = "Cannot read the destination's shared pause.", destination = %self.name, error = %e)
            }
        }
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
                if full {
                    self.overflow = true;
                    self.next_scan = Instant::now();
                } else {
                    self.overflow = false;
                    self.next_scan = Instant::now() + IDLE_POLL;
                }
            }
            Err(e) => {
                spool_log!(error, self.shared.store, message = "Cannot read pending deliveries from the spool.", destination = %self.name, error = %e);
                self.next_scan = Instant::now() + IDLE_POLL;
            }
        }
    }

    /// Replaces the held deliveries by one digest message, queued first.
    async fn send_digest(&mut self, every: Duration) {
        let held = match self.shared.store.held(&self.name, 10_000).await {
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
        let payload = own_message(
            &self.dest,
            &self.name,
            "digest",
            &Facts::digest(&summaries, every),
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

    pub(super) async fn run(mut self) {
        let mut inflight: JoinSet<Done> = JoinSet::new();
        // Outcomes being committed; their ids stay `known` until then, so
        // a scan cannot pick up a delivery that is already done.
        let mut committing: JoinSet<i64> = JoinSet::new();
        // Other replicas' news (a shared spool): a pause, replayed work.
        let mut wakeups = self.shared.store.wakeups();
        let mut wake_at: Instant;
        loop {
            let now = Instant::now();
            wake_at = now + IDLE_POLL;
            if let Some(p) = self.paused_until {
                if p <= now {
                    self.paused_until = None;
                } else {
                    wake_at = wake_at.min(p);
                }
            }
            if self.shared.store.shared() && now >= self.next_renew {
                self.renew().await;
            }
            // Dispatch what pacing and concurrency allow.
            while self.paused_until.is_none()
                && inflight.len() < self.concurrency
                && committing.len() < COMMIT_BACKLOG.max(self.concurrency)
                && !self.queue.is_empty()
            {
                // Digests do not count against max_per_minute.
                let is_digest = self.queue.front().is_some_and(|d| d.digest);
                match self.pace(now, is_digest).await {
                    Pace::Go => {}
                    Pace::OverLimit(wait) => {
                        if self.digest_every.is_some() {
                            // Over the limit: set it aside for the next digest.
                            let Some(d) = self.queue.pop_front() else {
                                break;
                            };
                            match self.shared.store.hold(d.id).await {
                                Ok(()) => {
                                    self.finish(d.id);
                                    continue;
                                }
                                Err(e) => {
                                    tracing::error!(message = "Cannot hold a delivery for the digest.", destination = %self.name, delivery_id = d.id, error = %e);
                                    self.queue.push_front(d);
                                }
                            }
                        }
                        wake_at = wake_at.min(now + wait);
                        break;
                    }
                    Pace::Wait(wait) => {
                        wake_at = wake_at.min(now + wait);
                        break;
                    }
                }
                let Some(d) = self.queue.pop_front() else {
                    break;
                };
                inflight.spawn(attempt(self.shared.clone(), self.sink.clone(), d));
            }
            if let Some(every) = self.digest_every {
                if now >= self.next_digest {
                    self.next_digest = Instant::now() + every;
                    // With several replicas, one of them sends each digest.
                    match self
                        .shared
                        .store
                        .digest_turn(&self.name, every.as_millis() as i64)
                        .await
                    {
                        Ok(true) => self.send_digest(every).await,
                        Ok(false) => {}
                        Err(e) => {
                            tracing::error!(message = "Cannot tell whose turn the digest is; trying again.", destination = %self.name, error = %e);
                            self.next_digest = Instant::now() + IDLE_POLL;
                        }
                    }
                    continue;
                }
                wake_at = wake_at.min(self.next_digest);
            }
            // Refill from the spool when the queue runs low.
            if self.queue.len() < SCAN_BATCH {
                if self.overflow || now >= self.next_scan {
                    self.scan().await;
                    if !self.queue.is_empty()
                        && inflight.len() < self.concurrency
                        && self.paused_until.is_none()
                    {
                        continue;
                    }
                }
                wake_at = wake_at.min(self.next_scan);
            }
            tokio::select! {
                biased;
                _ = self.cancel.cancelled() => break,
                Some(id) = committing.join_next(), if !committing.is_empty() => {
                    if let Ok(id) = id {
                        self.finish(id);
                    }
                }
                Some(done) = inflight.join_next(), if !inflight.is_empty() => {
                    match done {
                        Ok(done) => {
                            committing.spawn(commit(self.shared.clone(), self.name.clone(), done.id, done.completion));
                            if let Some(r) = done.retry_in {
                                // Scan when the retry comes due, not at the next idle poll.
                                self.next_scan = self.next_scan.min(Instant::now() + r);
                            }
                            if let Some(p) = done.pause {
                                let until = Instant::now() + p;
                                self.paused_until = Some(self.paused_until.map_or(until, |u| u.max(until)));
                                // Every replica sending here slows down too.
                                if let Err(e) = self.shared.store.pause(&self.name, now_ms() + p.as_millis() as i64).await {
                                    tracing::warn!(message = "Cannot share the destination's pause with other replicas.", destination = %self.name, error = %e);
                                }
                            }
                        }
                        Err(e) => tracing::error!(message = "Delivery task failed.", destination = %self.name, error = %e),
                    }
                }
                Some(d) = self.rx.recv() => self.submitted(d),
                news = next_wakeup(&mut wakeups) => {
                    tracing::debug!(message = "Woken by another replica.", news = %news, destination = %self.name);
                    if news.is_empty() || news == *self.name {
                        // Before anything else is sent: a pause applies now.
                        self.shared_pause().await;
                        self.next_scan = Instant::now();
                    }
                }
                _ = tokio::time::sleep_until(wake_at) => {}
            }
        }
        // Shutdown: let in-flight attempts finish and commit within the
        // grace period; what does not finish stays pending in the spool.
        let grace = tokio::time::sleep(self.shared.shutdown_grace);
        tokio::pin!(grace);
        while !inflight.is_empty() || !committing.is_empty() {
            tokio::select! {
                _ = &mut grace => {
                    tracing::warn!(message = "Shutdown grace expired; unfinished deliveries stay queued for the next start.", destination = %self.name, in_flight = inflight.len());
                    inflight.abort_all();
                    break;
                }
                Some(Ok(done)) = inflight.join_next(), if !inflight.is_empty() => {
                    committing.spawn(commit(self.shared.clone(), self.name.clone(), done.id, done.completion));
                }
                _ = committing.join_next(), if !committing.is_empty() => {}
            }
        }
    }
}

/// The next wake-up from other replicas; never, without a shared spool. A
/// receiver that fell behind reads as "look at everything".
async fn next_wakeup(wakeups: &mut Option<tokio::sync::broadcast::Receiver<String>>) -> String {
    use tokio::sync::broadcast::error::RecvError;
    let Some(rx) = wakeups else {
        return std::future::pending().await;
    };
    match rx.recv().await {
        Ok(news) => news,
        Err(RecvError::Lagged(_)) => String::new(),
        Err(RecvError::Closed) => {
            *wakeups = None;
            std::future::pending().await
        }
    }
}

/// A delivery's message id, the same on every attempt (Standard Webhooks
/// `webhook-id`, e-mail Message-ID): receivers may use it to drop a
/// duplicate. The creation time keeps it unique should the spool be
/// recreated and row ids start over.
pub fn message_id(d: &DueDelivery) -> String {
    format!("msg_{}_{}", d.id, d.created_at)
}

/// One attempt: send and classify. The outcome is committed separately
/// ([`commit`]), so a concurrency slot is not held through the spool's fsync.
async fn attempt(shared: Arc<Shared>, sink: Arc<Sink>, d: DueDelivery) -> Done {
    let name = &d.destination;
    let attempt_no = d.attempts + 1;
    // A message that could not be rendered when it was routed (a template
    // error) and has since been replayed: render it now, with the current
    // configuration (the fixed template).
    let rendered = if d.payload.is_empty() && !d.digest {
        Some(rerender(&shared, sink.destination(), &d).await)
    } else {
        None
    };
    let (outcome, took) = match &rendered {
        Some(Err(reason)) => (
            Outcome::Permanent {
                status: None,
                error: format!("cannot render: {reason}"),
            },
            Duration::ZERO,
        ),
        Some(Ok(payload)) => sink.send(&message_id(&d), payload).await,
        None => sink.send(&message_id(&d), &d.payload).await,
    };
    let duration_ms = took.as_millis() as i64;
    let m = &shared.metrics;
    let mut pause = None;
    let mut retry_in = None;
    let completion = match outcome {
        Outcome::Delivered { status } => {
            let latency = (now_ms() - d.created_at).max(0) as f64 / 1000.0;
            m.delivery_latency
                .get_or_create(&labels1("destination", name))
                .observe(latency);
            m.delivery(name, "delivered");
            tracing::info!(
                message = "Delivered.", destination = %name, hook = %d.hook, alert_short_id = d.short_id.as_deref(), event_id = d.event_id,
                delivery_id = d.id, attempt = attempt_no, status, latency_ms = (latency * 1000.0) as u64
            );
            Completion::Delivered {
                id: d.id,
                status,
                duration_ms,
            }
        }
        Outcome::Permanent { status, error } => {
            m.delivery(name, "dead");
            tracing::error!(
                message = "Delivery failed permanently; kept as a dead letter.", destination = %name,
                hook = %d.hook, alert_short_id = d.short_id.as_deref(), event_id = d.event_id, delivery_id = d.id, attempt = attempt_no, status, %error
            );
            Completion::Dead {
                id: d.id,
                status,
                error,
                duration_ms,
            }
        }
        Outcome::Retry {
            status,
            error,
            retry_after,
            throttled,
        } => {
            let cfg = &shared.delivery;
            let wait = backoff(attempt_no as u32, cfg.initial_backoff, cfg.max_backoff)
                .max(retry_after.unwrap_or(Duration::ZERO));
            if throttled {
                pause = Some(retry_after.unwrap_or(wait));
            }
            let next = now_ms() + wait.as_millis() as i64;
            let expires = d.created_at + cfg.max_age.as_millis() as i64;
            if next > expires {
                m.delivery(name, "dead");
                let error = format!("gave up after {attempt_no} attempts (delivery.max_age reached); last error: {error}");
                tracing::error!(
                    message = "Delivery expired; kept as a dead letter.", destination = %name,
                    hook = %d.hook, alert_short_id = d.short_id.as_deref(), event_id = d.event_id, delivery_id = d.id, attempt = attempt_no, status, %error
                );
                Completion::Dead {
                    id: d.id,
                    status,
                    error,
                    duration_ms,
                }
            } else {
                m.delivery(name, "retry");
                retry_in = Some(wait);
                tracing::warn!(
                    message = "Delivery failed; will retry.", destination = %name, hook = %d.hook, alert_short_id = d.short_id.as_deref(), event_id = d.event_id,
                    delivery_id = d.id, attempt = attempt_no, status, %error,
                    retry_in_ms = wait.as_millis() as u64
                );
                Completion::Retry {
                    id: d.id,
                    status,
                    error,
                    next_attempt_at: next,
                    duration_ms,
                }
            }
        }
    };
    Done {
        id: d.id,
        pause,
        retry_in,
        completion,
    }
}

/// Renders a delivery's message again from its event and alert in the spool.
async fn rerender(
    shared: &Shared,
    dest: &DestinationConfig,
    d: &DueDelivery,
) -> Result<String, String> {
    use crate::enrich::Enrichment;
    use crate::render::{context::Target, event_payload};
    let live = shared
        .live
        .as_ref()
        .ok_or("no configuration to render with")?;
    let id = d.id;
    let RenderSource {
        hook,
        body,
        alert_json,
        enrichment: enrichment_note,
        route,
    } = shared
        .store
        .render_source(id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("its event is no longer in the spool")?;
    let event = crate::event::parse(&body).map_err(|e| e.0)?;
    let enrichment = Enrichment::from_stored(enrichment_note.as_deref(), alert_json.as_deref());
    let config = live.get().config.clone();
    let facts = Facts::build(&event, &enrichment, config.alert_link(&hook));
    let target = Target {
        hook: Some(&hook),
        route: Some(&route),
        destination: &d.destination,
    };
    event_payload(dest, &event, &enrichment, &facts, target)
}

/// Records an attempt's outcome; returns the delivery id once committed.
async fn commit(shared: Arc<Shared>, name: Arc<str>, id: i64, completion: Completion) -> i64 {
    if let Err(e) = shared.store.complete(completion).await {
        // The row stays pending and is attempted again (at least once).
        tracing::error!(message = "Cannot record a delivery outcome; it will be attempted again.", destination = %name, delivery_id = id, error = %e);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DeliveryConfig, StoreConfig};
    use crate::store::Store;

    fn delivery(id: i64) -> DueDelivery {
        DueDelivery {
            id,
            event_id: id,
            destination: "chat".into(),
            payload: "{}".into(),
            attempts: 0,
            created_at: 0,
            hook: "soc".into(),
            short_id: None,
            digest: false,
        }
    }

    /// The pipeline hands a delivery over just after committing it; a
    /// spool scan may have found, sent and finished it first. That late
    /// hand-over must not queue it again (it would be sent twice).
    #[tokio::test]
    async fn a_late_hand_over_of_a_finished_delivery_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig {
            path: dir.path().join("spool.db"),
            ..StoreConfig::default()
        })
        .unwrap();
        let shared = Shared {
            store,
            http: reqwest::Client::new(),
            metrics: Arc::new(crate::telemetry::Metrics::new()),
            delivery: DeliveryConfig::default(),
            shutdown_grace: Duration::from_secs(1),
            live: None,
        };
        let dest: DestinationConfig = serde_json::from_value(serde_json::json!({
            "kind": "slack", "url": "http://127.0.0.1:9/x"
        }))
        .unwrap();
        let (_tx, rx) = mpsc::unbounded_channel();
        let mut w = Worker::new("chat".into(), dest, shared, rx, CancellationToken::new());

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
