//! The pipeline between the spool and the delivery workers: for each
//! accepted event, enrich → decide (routes, silences) → render
//! (`pipeline/stages.rs`), then record the routing with its deliveries and
//! hand the pending ones to their workers, which send and record each
//! outcome; or, when its destinations may send before the routing is
//! recorded, hand the routing itself to their workers, which send and
//! record it (`delivery::FirstSends`). Nothing goes back from a worker to
//! the pipeline.
//!
//! Nothing here answers a sender: an event reaches the pipeline only after
//! its 202. Memory stays bounded whatever the backlog: ingress hands events
//! over through a bounded queue (`pipeline/intake.rs`), and when that is
//! full (or at start, for events a previous run accepted but did not
//! route) the pipeline reads them back from the spool, which is the real
//! buffer. Processing an event twice is harmless: `record_routing` changes
//! nothing the second time.

mod intake;
mod silences;
mod stages;

pub use intake::{Accepted, Intake, ADMISSION_WAIT, INTAKE_CAPACITY};

use crate::coord::Coordinator;
use crate::delivery::{sends_first, Dispatcher, FirstSends, NoWorker};
use crate::event;
use crate::live::Generation;
use crate::live::Live;
use crate::recent::{Claim, Underway};
use crate::store::{
    spool_log, Claimed, DueDelivery, Journey, NewDelivery, Routing, Store, Unrouted,
};
use crate::telemetry::Metrics;
use futures_util::FutureExt;
use silences::Silences;
use stages::panic_text;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Events enriched at the same time at most (each may wait on the API).
const MAX_IN_PROGRESS: usize = 512;
/// How often, with a shared spool, to look for events other replicas
/// accepted and did not route (they died).
const OTHERS_SWEEP: Duration = Duration::from_secs(1);
/// Routed event ids remembered (see `Pipeline::underway`).
/// 7/8 of 16,384: its set settles at 32,768 buckets, where 16,384 ids
/// took 65,536 (see `RecentIds`).
const FINISHED_MEMORY: usize = 14_336;
/// Unrouted events read from the spool at a time.
const SCAN_BATCH: usize = 256;

/// What became of an event handed to `Pipeline::start`.
enum Start {
    /// Processing (or already processed, or in progress elsewhere).
    Started,
    /// Left in the spool: its origin has its share in progress.
    Deferred,
    /// Shutting down.
    Stopped,
}

/// How long events left for their origin's share wait before the spool is
/// looked through for them again.
const DEFERRED_RETRY: Duration = Duration::from_millis(500);

/// The outcome of one pass over the spool.
enum Sweep {
    Started(usize),
    Failed,
    Cancelled,
}

pub struct Pipeline {
    /// Config and enricher, swapped as a whole on reload; an event is
    /// processed entirely with the generation it started with.
    pub live: Arc<Live>,
    pub store: Store,
    pub dispatcher: Arc<Dispatcher>,
    pub metrics: Arc<Metrics>,
    /// Events being processed (here, or by the workers sending them before
    /// their routing is recorded), and recently routed: a spool scan does
    /// not start them again.
    underway: Arc<Underway>,
    /// Claims on events in progress, when the spool is shared.
    coord: Coordinator,
    /// The active silences, as last read from the spool.
    silences: Silences,
    /// Set when an event was left in the spool for its origin's share
    /// (`Start::Deferred`): the spool is looked through again soon.
    deferred: AtomicBool,
}

impl Pipeline {
    pub fn new(
        live: Arc<Live>,
        store: Store,
        coord: Coordinator,
        dispatcher: Arc<Dispatcher>,
        metrics: Arc<Metrics>,
    ) -> Pipeline {
        Pipeline {
            coord,
            live,
            store,
            dispatcher,
            metrics,
            underway: Underway::new(FINISHED_MEMORY),
            silences: Silences::default(),
            deferred: AtomicBool::new(false),
        }
    }

    /// Processes events from the intake and, while it is behind, from the
    /// spool, until `cancel` fires.
    pub async fn run(
        self: Arc<Self>,
        intake: Intake,
        mut rx: mpsc::Receiver<Accepted>,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) {
        let permits = Arc::new(Semaphore::new(MAX_IN_PROGRESS));
        // With claims (a shared spool): renew the leases of the events in
        // progress, and take over events that a dead replica accepted but
        // never routed.
        let tick = self
            .coord
            .renew_every()
            .map(|every| every.min(OTHERS_SWEEP));
        let mut next_tick = tick.map(|t| tokio::time::Instant::now() + t);
        loop {
            let now = tokio::time::Instant::now();
            if let (Some(tick), Some(true)) = (tick, next_tick.map(|t| now >= t)) {
                next_tick = Some(now + tick);
                let ids = self.underway.ids();
                if let Err(e) = self.coord.renew(Claimed::Events, ids).await {
                    spool_log!(warn, self.store, message = "Cannot renew event leases; another replica may take them over.", error = %e);
                }
                if let Sweep::Cancelled = self
                    .sweep(Unrouted::Abandoned, &permits, &tracker, &cancel)
                    .await
                {
                    return;
                }
            }
            if intake.behind() && rx.is_empty() {
                match self
                    .sweep(Unrouted::Backlog, &permits, &tracker, &cancel)
                    .await
                {
                    Sweep::Cancelled => return,
                    Sweep::Failed => {
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        }
                    }
                    Sweep::Started(0) => {
                        // Caught up: back to the in-memory hand-over. An
                        // event committed while ingress still saw `behind`
                        // is in neither place: one more sweep finds it.
                        intake.set_behind(false);
                        if let Sweep::Cancelled = self
                            .sweep(Unrouted::Backlog, &permits, &tracker, &cancel)
                            .await
                        {
                            return;
                        }
                    }
                    Sweep::Started(_) => {}
                }
                continue;
            }
            let deferred = self.deferred.load(Ordering::SeqCst);
            let accepted = tokio::select! {
                _ = cancel.cancelled() => return,
                a = rx.recv() => match a { Some(a) => a, None => return },
                // Never polled without claims (the branch is disabled).
                _ = tokio::time::sleep_until(next_tick.unwrap_or(now)), if next_tick.is_some() => continue,
                // Events left for their origin's share: looked for again.
                _ = tokio::time::sleep(DEFERRED_RETRY), if deferred => {
                    self.deferred.store(false, Ordering::SeqCst);
                    intake.set_behind(true);
                    continue;
                }
            };
            if let Start::Stopped = self.start(accepted, &permits, &tracker, &cancel).await {
                return;
            }
        }
    }

    /// One pass over the unrouted events in the spool, starting those not
    /// already in progress (waiting for permits as it goes): this process's
    /// backlog, or (with a shared spool) what dead replicas abandoned.
    async fn sweep(
        self: &Arc<Self>,
        which: Unrouted,
        permits: &Arc<Semaphore>,
        tracker: &TaskTracker,
        cancel: &CancellationToken,
    ) -> Sweep {
        let mut cursor = 0i64;
        let mut started = 0;
        loop {
            let rows = self.store.unrouted_after(cursor, SCAN_BATCH, which).await;
            let rows = match rows {
                Ok(r) => r,
                Err(e) => {
                    spool_log!(error, self.store, message = "Cannot read unrouted events from the spool.", error = %e);
                    return Sweep::Failed;
                }
            };
            let n = rows.len();
            for (id, hook, body, received_at) in rows {
                cursor = id;
                if self.underway.in_progress_now(id) {
                    continue;
                }
                let parsed = std::panic::catch_unwind(|| event::parse(&body));
                let event = match parsed {
                    Ok(Ok(event)) => event,
                    // It parsed when it was accepted; only a format change
                    // between versions could do this. Kept with the
                    // reason rather than left `received` for ever.
                    Ok(Err(e)) => {
                        let reason = format!("the stored event no longer parses: {e}");
                        if !self.fail(id, &hook, "stored", reason, cancel).await {
                            return Sweep::Cancelled;
                        }
                        continue;
                    }
                    Err(panic) => {
                        let reason = format!("internal error: {}", panic_text(panic.as_ref()));
                        if !self.fail(id, &hook, "stored", reason, cancel).await {
                            return Sweep::Cancelled;
                        }
                        continue;
                    }
                };
                let a = Accepted {
                    id,
                    hook,
                    event,
                    received_at,
                };
                match self.start(a, permits, tracker, cancel).await {
                    Start::Stopped => return Sweep::Cancelled,
                    Start::Started => started += 1,
                    Start::Deferred => {}
                }
            }
            if n < SCAN_BATCH {
                return Sweep::Started(started);
            }
        }
    }

    /// Spawns the processing of one event unless it is already in
    /// progress, or its origin already has its share of the events in
    /// progress (see `Enricher::admit`: one slow origin, a tenant's say,
    /// cannot hold every permit); such an event stays in the spool and is
    /// looked for again after [`DEFERRED_RETRY`].
    async fn start(
        self: &Arc<Self>,
        a: Accepted,
        permits: &Arc<Semaphore>,
        tracker: &TaskTracker,
        cancel: &CancellationToken,
    ) -> Start {
        // None: in progress, or routed already.
        let Some(claim) = self.underway.claim(a.id) else {
            return Start::Started;
        };
        let Some(admission) = self.live.get().admit(&a.hook) else {
            drop(claim);
            self.deferred.store(true, Ordering::SeqCst);
            return Start::Deferred;
        };
        let permit = tokio::select! {
            _ = cancel.cancelled() => return Start::Stopped,
            p = permits.clone().acquire_owned() => p,
        };
        let me = self.clone();
        let cancel = cancel.clone();
        tracker.spawn(async move {
            let (id, hook) = (a.id, a.hook.clone());
            // One event's failure is that event's: a panic while enriching,
            // routing or rendering it ends this event (kept, with the
            // reason, and no delivery), never the pipeline, and the event
            // does not stay `received` to fail again at every start.
            let processed = AssertUnwindSafe(me.process(a, claim, permit.ok(), cancel.clone()))
                .catch_unwind()
                .await;
            if let Err(panic) = processed {
                let reason = format!("internal error: {}", panic_text(panic.as_ref()));
                if me.fail(id, &hook, "event", reason, &cancel).await {
                    me.underway.remember_routed(id);
                }
            }
            drop(admission);
        });
        Start::Started
    }

    /// One event: enrich, decide, render, then record the routing and hand
    /// its pending deliveries to their workers (or hand the routing itself
    /// to them: [`Pipeline::first_sends`]). The claim is let go once the
    /// routing is recorded, by this pass or an earlier one; dropped when
    /// shutdown cuts the processing short.
    async fn process(
        &self,
        a: Accepted,
        claim: Claim,
        permit: Option<OwnedSemaphorePermit>,
        cancel: CancellationToken,
    ) {
        let generation = self.live.get();
        let Some(enriched) = stages::enrich(&generation, &a, &cancel).await else {
            return;
        };
        #[cfg(debug_assertions)]
        stages::failpoint("event", &a.event);
        let silences = self.silences.active(&self.store).await;
        let decided = stages::decide(&generation, &a, &enriched, &silences);
        let journey = decided.journey.clone();
        let unrouted = decided.targets.is_empty();
        let (routes, deliveries) =
            stages::render(&generation, &a, &enriched, decided, &self.metrics);
        let (enrichment, alert_json) = enriched.enrichment.stored();
        let alert = enriched.enrichment.alert();
        let short_id = a
            .event
            .short_id
            .clone()
            .or_else(|| alert.and_then(|x| x.short_id.clone()));
        let routing = Routing {
            event_id: a.id,
            enrichment,
            alert_json,
            routes,
            deliveries,
            title: alert.and_then(|x| x.title.clone()),
            journey,
        };
        if self.first_sends(&generation, &routing.deliveries) {
            // The event keeps its place among those in progress until its
            // routing is recorded: the pipeline takes in no more events
            // than the workers answer.
            let sends = FirstSends::new(
                routing,
                (claim, permit),
                (a.hook, short_id, a.received_at),
                self.store.clone(),
                cancel,
            );
            self.dispatcher.send_first(sends).await;
            return;
        }
        // Counted once the routing is committed (a second pass over the same
        // event changes nothing and counts nothing).
        let render_failures: Vec<String> = routing
            .deliveries
            .iter()
            .filter(|d| d.failed.is_some())
            .map(|d| d.destination.clone())
            .collect();
        let Some(created) = self.record(routing, &cancel).await else {
            return;
        };
        claim.routed();
        drop(permit);
        // None: another pass already routed this event.
        let Some(created) = created else {
            return;
        };
        for destination in &render_failures {
            self.metrics.delivery(destination, "dead");
        }
        if unrouted {
            self.metrics.events.unrouted.inc();
            tracing::info!(message = "Event matched no route.", hook = %a.hook, event_id = a.id, alert_short_id = short_id.as_deref(), kind = %a.event.kind, action = %a.event.action);
        }
        self.hand_over(created).await;
    }

    /// Whether an event's routing goes to its workers before it is
    /// recorded, for the messages to go out at once and be stored with
    /// their first attempt (one write instead of three): every delivery
    /// pending (nothing muted, silenced or failed), no route dedup window
    /// (settled in the routing's own transaction), one delivery per
    /// destination (a delivery is told apart by its destination when its
    /// share comes back), every destination with a worker, and at least
    /// one of them a destination that sends first.
    fn first_sends(&self, generation: &Generation, deliveries: &[NewDelivery]) -> bool {
        let mut to: Vec<&str> = deliveries.iter().map(|d| d.destination.as_str()).collect();
        to.sort_unstable();
        to.dedup();
        !deliveries.is_empty()
            && to.len() == deliveries.len()
            && deliveries
                .iter()
                .all(|d| d.failed.is_none() && d.muted.is_none() && d.dedup.is_none())
            && to.iter().all(|name| self.dispatcher.runs(name))
            && to.iter().any(|name| {
                generation
                    .destinations
                    .get(*name)
                    .is_some_and(|dest| sends_first(dest))
            })
    }

    /// Hands just-recorded pending deliveries to their workers. One whose
    /// destination has no worker any more was routed with a configuration
    /// that a reload has since replaced: its destination's pending
    /// deliveries become dead letters.
    async fn hand_over(&self, created: Vec<DueDelivery>) {
        let mut orphaned: Vec<String> = Vec::new();
        for d in created {
            if let Err(NoWorker(destination)) = self.dispatcher.submit(d) {
                if !orphaned.contains(&destination) {
                    orphaned.push(destination);
                }
            }
        }
        for name in orphaned {
            self.dispatcher.orphan(&name).await;
        }
    }
}

impl Pipeline {
    /// Records a routing, retrying while the spool is briefly unwritable
    /// (disk full) rather than dropping an accepted event. `None` when
    /// shutdown cut it short; else what `record_routing` answered (`None`
    /// inside: another pass had routed the event already).
    async fn record(
        &self,
        routing: Routing,
        cancel: &CancellationToken,
    ) -> Option<Option<Vec<crate::store::DueDelivery>>> {
        let mut wait = Duration::from_millis(200);
        loop {
            match self.store.record_routing(routing.clone()).await {
                Ok(created) => return Some(created),
                Err(e) => {
                    tracing::error!(message = "Cannot record routing; retrying.", event_id = routing.event_id, error = %e);
                    tokio::select! {
                        _ = cancel.cancelled() => return None,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Ends an event whose processing failed inside the relay: recorded
    /// routed to nothing, its journey naming the reason (the console and
    /// `events show` say it), logged once and counted. Returns false only
    /// when shutdown cut the recording short (the event is then processed
    /// again at the next start, and ends here again).
    async fn fail(
        &self,
        id: i64,
        hook: &str,
        stage: &'static str,
        reason: String,
        cancel: &CancellationToken,
    ) -> bool {
        tracing::error!(message = "Processing an event failed inside the relay; it is kept with no delivery.", hook, event_id = id, stage, error = %reason);
        self.metrics.processing_failed(stage);
        let routing = Routing {
            event_id: id,
            enrichment: "n/a".into(),
            alert_json: None,
            routes: Vec::new(),
            deliveries: Vec::new(),
            title: None,
            journey: Journey {
                failed: Some(reason),
                ..Journey::default()
            },
        };
        self.record(routing, cancel).await.is_some()
    }
}
