//! The pipeline between the spool and the delivery workers: for each
//! accepted event, enrich → route → render, then commit the deliveries and
//! hand them to their workers (plain chat messages that can go out at once
//! are sent first, and committed with their first attempt: see
//! `Pipeline::send_first`).
//!
//! Nothing here answers a sender: an event reaches the pipeline only after
//! its 202. Memory stays bounded whatever the backlog: ingress hands events
//! over through a bounded queue, and when that is full (or at start, for
//! events a previous run accepted but did not route) the pipeline reads
//! them back from the spool, which is the real buffer. Processing an event
//! twice is harmless: `record_routing` changes nothing the second time.

use crate::coord::Coordinator;
use crate::delivery::Dispatcher;
use crate::destinations::{event_payload, Capabilities, KindCapabilities};
use crate::enrich::Enrichment;
use crate::event::{self, Event};
use crate::live::Live;
use crate::recent::RecentIds;
use crate::render::context::Target;
use crate::render::Facts;
use crate::store::{
    spool_log, Claimed, EnrichStep, Journey, NewDelivery, RouteDecision, Routing, Store, Unrouted,
};
use crate::telemetry::Metrics;
use futures_util::FutureExt;
use std::collections::HashSet;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Events enriched at the same time at most (each may wait on the API).
const MAX_IN_PROGRESS: usize = 512;
/// Accepted events waiting in memory at most; beyond, the spool holds them.
/// Kept small: a long in-memory queue only makes every alert later.
pub const INTAKE_CAPACITY: usize = 64;
/// How long ingress may hold a sender's 202 while the intake is full
/// (backpressure: under overload senders slow down a little instead of a
/// backlog building up behind them). After that the event is left to the
/// spool and the 202 goes out anyway.
pub const ADMISSION_WAIT: Duration = Duration::from_millis(100);
/// How often, with a shared spool, to look for events other replicas
/// accepted and did not route (they died).
const OTHERS_SWEEP: Duration = Duration::from_secs(1);
/// Routed event ids remembered (see `Pipeline::finished`).
/// 7/8 of 16,384: its set settles at 32,768 buckets, where 16,384 ids
/// took 65,536 (see `RecentIds`).
const FINISHED_MEMORY: usize = 14_336;
/// Unrouted events read from the spool at a time.
const SCAN_BATCH: usize = 256;
/// How long the active silences read from the spool are trusted: a
/// silence added (or expired) from the command line, on any replica,
/// takes effect within this.
const SILENCES_FRESH: Duration = Duration::from_secs(1);

/// The active silences (id, matcher, what the history says), as last read.
type Silences = Arc<Vec<(i64, crate::config::When, String)>>;

/// An accepted event on its way to routing.
pub struct Accepted {
    pub id: i64,
    pub hook: String,
    pub event: Event,
    /// When it was received (unix ms): where a delivery sent before its
    /// routing is recorded counts its age from (see `Pipeline::send_first`).
    pub received_at: i64,
}

/// Ingress's side of the pipeline.
#[derive(Clone)]
pub struct Intake {
    tx: mpsc::Sender<Accepted>,
    /// Set when an event was left in the spool (queue full, or at start):
    /// the pipeline reads unrouted events back from the spool until it has
    /// caught up.
    behind: Arc<AtomicBool>,
}

impl Intake {
    pub fn new() -> (Intake, mpsc::Receiver<Accepted>) {
        let (tx, rx) = mpsc::channel(INTAKE_CAPACITY);
        let intake = Intake {
            tx,
            behind: Arc::new(AtomicBool::new(true)),
        };
        (intake, rx)
    }

    /// Hands over a committed event, or leaves it to be read from the spool.
    pub fn submit(&self, a: Accepted) {
        if self.behind.load(Ordering::SeqCst) {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(a) {
            self.behind.store(true, Ordering::SeqCst);
        }
    }

    /// Like [`Intake::submit`], but waits up to [`ADMISSION_WAIT`] for room
    /// (ingress calls this before answering, so overload pushes back on
    /// senders).
    pub async fn admit(&self, a: Accepted) {
        if self.behind.load(Ordering::SeqCst) {
            return;
        }
        let a = match self.tx.try_send(a) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(a)) => a,
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        };
        match tokio::time::timeout(ADMISSION_WAIT, self.tx.send(a)).await {
            Ok(_) => {}
            Err(_) => self.behind.store(true, Ordering::SeqCst),
        }
    }
}

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
    /// Ids being processed, so a spool scan does not start them again.
    in_progress: Mutex<HashSet<i64>>,
    /// Ids recently routed: a sweep that read an event just before its
    /// routing committed must not start it again (it would only ask the
    /// alert API twice; the routing itself happens once either way).
    finished: Mutex<RecentIds>,
    /// Claims on events in progress, when the spool is shared.
    coord: Coordinator,
    /// Active silences and when they were read.
    silences: Mutex<(Option<std::time::Instant>, Silences)>,
    /// Held while the silences are read: when the list goes stale, one
    /// event reads it again and the others wait for that read, instead of
    /// every event in progress reading it at once.
    silences_read: tokio::sync::Mutex<()>,
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
            in_progress: Mutex::new(HashSet::new()),
            finished: Mutex::new(RecentIds::new(FINISHED_MEMORY)),
            silences: Mutex::new((None, Arc::new(Vec::new()))),
            silences_read: tokio::sync::Mutex::new(()),
            deferred: AtomicBool::new(false),
        }
    }

    /// The silences active now, read from the spool at most once a second.
    /// A spool that cannot be read keeps the last known list.
    async fn active_silences(&self) -> Silences {
        let fresh = || {
            let cached = self.silences.lock().unwrap_or_else(|p| p.into_inner());
            cached
                .0
                .is_some_and(|at| at.elapsed() < SILENCES_FRESH)
                .then(|| cached.1.clone())
        };
        if let Some(list) = fresh() {
            return list;
        }
        let _reading = self.silences_read.lock().await;
        if let Some(list) = fresh() {
            return list;
        }
        let now = crate::store::now_ms();
        let fresh = match self.store.silences(Some(now)).await {
            Ok(list) => Arc::new(
                list.into_iter()
                    .filter_map(|s| {
                        let when = crate::config::When::from_inline(&s.matcher).ok()?;
                        let ends = crate::store::format_ms(s.ends_at);
                        let note = format!(
                            "silenced by silence {} ({}; by {}; until {ends})",
                            s.id, s.comment, s.author
                        );
                        Some((s.id, when, note))
                    })
                    .collect(),
            ),
            Err(e) => {
                spool_log!(warn, self.store, message = "Cannot read the silences; using the last known.", error = %e);
                self.silences
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .1
                    .clone()
            }
        };
        *self.silences.lock().unwrap_or_else(|p| p.into_inner()) =
            (Some(std::time::Instant::now()), fresh.clone());
        fresh
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
                let ids: Vec<i64> = self
                    .in_progress
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .copied()
                    .collect();
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
            if intake.behind.load(Ordering::SeqCst) && rx.is_empty() {
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
                        intake.behind.store(false, Ordering::SeqCst);
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
                    intake.behind.store(true, Ordering::SeqCst);
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
                if self
                    .in_progress
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .contains(&id)
                {
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
        if !self
            .in_progress
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(a.id)
        {
            return Start::Started;
        }
        // Checked after claiming `in_progress`: a pass that finished has
        // already recorded the id here before it let go of `in_progress`.
        let routed = self
            .finished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(a.id);
        if routed {
            self.in_progress
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&a.id);
            return Start::Started;
        }
        let Some(admission) = self.live.get().admit(&a.hook) else {
            self.in_progress
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&a.id);
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
            let processed = AssertUnwindSafe(me.process(a, cancel.clone(), permit.ok()))
                .catch_unwind()
                .await;
            let routed = match processed {
                Ok(routed) => routed,
                Err(panic) => {
                    let reason = format!("internal error: {}", panic_text(panic.as_ref()));
                    me.fail(id, &hook, "event", reason, &cancel).await
                }
            };
            drop(admission);
            if routed {
                // Remembered before it leaves `in_progress`: never in neither.
                me.finished
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id);
            }
            me.in_progress
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
        });
        Start::Started
    }

    /// Enrich, route and render one event, then commit its deliveries.
    /// Returns whether the event is now routed (by this pass or an
    /// earlier one); false when shutdown cut it short.
    async fn process(
        &self,
        a: Accepted,
        cancel: CancellationToken,
        permit: Option<tokio::sync::OwnedSemaphorePermit>,
    ) -> bool {
        let generation = self.live.get();
        let config = &generation.config;
        let hook = config.hooks.get(&a.hook);
        let origin_name = hook.map(|h| h.origin.as_str());
        let started = std::time::Instant::now();
        // The enricher keeps to the origin's deadline between attempts; this
        // bounds the whole of it (an attempt's own timeout, waiting for the
        // origin's concurrency, the assets), so no origin, however slow,
        // keeps an event from being routed for longer.
        let bound = origin_name
            .and_then(|o| config.origins.get(o))
            .map_or(ENRICH_BOUND_MIN, |o| {
                o.enrich_deadline + o.timeout + ENRICH_BOUND_MIN
            });
        let enrich = async {
            let (enrichment, cached) = match origin_name {
                Some(o) => generation.enricher.enrich_traced(o, &a.event).await,
                None if a.event.alert_uuid.is_some() => (
                    Enrichment::Unavailable(format!("hook {:?} is no longer configured", a.hook)),
                    false,
                ),
                None => (Enrichment::NotApplicable, false),
            };
            // Asset criticality: looked up only when a route asks for it.
            let enrichment = match (&enrichment, origin_name) {
                (Enrichment::Fetched(alert), Some(origin))
                    if config.routes.iter().any(|r| r.when.needs_assets()) =>
                {
                    Enrichment::Fetched(generation.enricher.with_assets(origin, alert).await)
                }
                _ => enrichment,
            };
            (enrichment, cached)
        };
        let (enrichment, cached) = tokio::select! {
            _ = cancel.cancelled() => return false,
            e = tokio::time::timeout(bound, enrich) => e.unwrap_or_else(|_| {
                tracing::warn!(message = "Enrichment passed its deadline; forwarding without details.", hook = %a.hook, event_id = a.id);
                (Enrichment::Unavailable("the origin's deadline passed".into()), false)
            }),
        };
        let alert = enrichment.alert();
        if alert.is_none()
            && a.event.alert_uuid.is_some()
            && config.routes.iter().any(|r| r.when.needs_alert())
        {
            tracing::info!(
                message = "Alert details unavailable: routes with alert-field conditions do not match this event.",
                hook = %a.hook, event_id = a.id
            );
        }
        #[cfg(debug_assertions)]
        failpoint("event", &a.event);
        let clock = crate::route::Clock {
            now: jiff::Timestamp::now(),
            intervals: &config.time_intervals,
        };
        let enrich_ms = started.elapsed().as_millis() as u64;
        let (targets, decisions) = crate::route::route_explained_with(
            &config.routes,
            &a.hook,
            &a.event,
            alert,
            enrichment.case(),
            &clock,
        );
        // A silence holds every delivery of a matching event: recorded, not sent.
        let silences = self.active_silences().await;
        let silenced: Option<&String> = silences
            .iter()
            .find(|(_, when, _)| {
                crate::route::matches_with(when, &a.event, alert, enrichment.case())
            })
            .map(|(_, _, note)| note);
        let journey = journey(decisions, enrich_ms, cached, silenced);
        let short_id = a
            .event
            .short_id
            .clone()
            .or_else(|| alert.and_then(|x| x.short_id.clone()));
        let facts = Facts::build_linked(&a.event, &enrichment, config.links(&a.hook));
        let unrouted = targets.is_empty();
        let mut deliveries = Vec::with_capacity(targets.len());
        let mut route_names: Vec<String> = Vec::new();
        for t in targets {
            let Some(dest) = generation.destinations.get(&t.destination) else {
                continue;
            };
            if !route_names.contains(&t.route) {
                route_names.push(t.route.clone());
            }
            // Recorded (the history shows it muted and why), never sent:
            // a time interval's mute first, else a silence's.
            let held = match (t.muted, silenced) {
                (Some(why), _) => Some((why, "muted")),
                (None, Some(note)) => Some((note.clone(), "silenced")),
                (None, None) => None,
            };
            if let Some((why, outcome)) = held {
                tracing::info!(message = "Delivery held back: recorded, not sent.", outcome, destination = %t.destination, hook = %a.hook, event_id = a.id, reason = %why);
                self.metrics.delivery(&t.destination, outcome);
                deliveries.push(NewDelivery {
                    payload: String::new(),
                    failed: None,
                    muted: Some(why),
                    summary: None,
                    dedup: None,
                    thread_key: None,
                    first: None,
                    in_flight_until: None,
                    route: t.route,
                    destination: t.destination,
                });
                continue;
            }
            let target = Target {
                hook: Some(&a.hook),
                route: Some(&t.route),
                destination: &t.destination,
            };
            let mut facts =
                generation.with_actions(&facts, &t.destination, &a.hook, &a.event, &enrichment);
            if t.mention && !dest.config.mentions.is_empty() {
                facts.to_mut().mentions = dest.config.mentions.clone();
            }
            // A panic in one destination's rendering is that delivery's:
            // a dead letter with the reason (rendered again when replayed,
            // say after an upgrade), the other destinations unaffected.
            let rendered = std::panic::catch_unwind(AssertUnwindSafe(|| {
                #[cfg(debug_assertions)]
                failpoint("render", &a.event);
                event_payload(dest, &a.event, &enrichment, &facts, target)
            }))
            .unwrap_or_else(|panic| {
                self.metrics.processing_failed("render");
                Err(crate::render::RenderError::Internal(panic_text(
                    panic.as_ref(),
                )))
            });
            let (payload, failed) = match rendered {
                Ok(p) => (p, None),
                Err(reason) => {
                    tracing::error!(message = "Cannot render the message; the delivery is kept as a dead letter.", destination = %t.destination, hook = %a.hook, event_id = a.id, error = %reason);
                    (String::new(), Some(format!("cannot render: {reason}")))
                }
            };
            deliveries.push(NewDelivery {
                payload,
                failed,
                muted: None,
                summary: dest
                    .config
                    .digest
                    .then(|| serde_json::to_string(&facts.summary()).unwrap_or_default()),
                dedup: t.dedup.map(|w| {
                    (
                        crate::route::dedup_key(&t.dedup_key, &a.event, alert),
                        w.as_millis() as i64,
                    )
                }),
                thread_key: dest
                    .config
                    .threaded()
                    .then(|| a.event.thread_key().map(|u| u.to_string()))
                    .flatten(),
                first: None,
                in_flight_until: None,
                route: t.route.clone(),
                destination: t.destination.clone(),
            });
            // A case took alerts (or let them go): each alert's own thread
            // says so, in order with the alert's other events.
            if dest.config.threaded() {
                for (alert, payload) in
                    crate::render::case_alert_notes(&a.event, &enrichment, &facts)
                {
                    deliveries.push(NewDelivery {
                        payload,
                        failed: None,
                        muted: None,
                        summary: None,
                        dedup: None,
                        thread_key: Some(alert),
                        first: None,
                        in_flight_until: None,
                        // (route, destination) names one delivery of an
                        // event in the spool: these are told apart.
                        route: format!("{} (alert thread)", t.route),
                        destination: t.destination.clone(),
                    });
                }
            }
        }
        let mut in_flight = self
            .send_first(&a, &short_id, &generation, &mut deliveries)
            .await;
        let (enrichment_text, alert_json) = enrichment.stored();
        // Counted once the routing is committed (a second pass over the same
        // event changes nothing and counts nothing).
        let render_failures: Vec<String> = deliveries
            .iter()
            .filter(|d| d.failed.is_some())
            .map(|d| d.destination.clone())
            .collect();
        let sent_first = deliveries.iter().any(|d| d.first.is_some());
        // Sent first and waiting for a retry (or an answer): found by their
        // worker's scan, if their destination still has one once this is
        // recorded.
        let retrying: Vec<String> = deliveries
            .iter()
            .filter(|d| {
                d.in_flight_until.is_some()
                    || matches!(d.first, Some(crate::store::Completion::Retry { .. }))
            })
            .map(|d| d.destination.clone())
            .collect();
        let routing = Routing {
            event_id: a.id,
            enrichment: enrichment_text,
            alert_json,
            routes: route_names,
            deliveries,
            title: alert.and_then(|x| x.title.clone()),
            journey,
        };
        let Some(created) = self.record(routing, &cancel).await else {
            return false;
        };
        // None: another pass already routed this event.
        let Some(created) = created else {
            if sent_first {
                tracing::warn!(message = "An event was routed twice (another pass took it over); its messages sent before the routing was recorded went out twice.", hook = %a.hook, event_id = a.id);
            }
            return true;
        };
        for destination in &render_failures {
            self.metrics.delivery(destination, "dead");
        }
        if unrouted {
            self.metrics.events_unrouted.inc();
            tracing::info!(message = "Event matched no route.", hook = %a.hook, event_id = a.id, alert_short_id = short_id.as_deref(), kind = %a.event.kind, action = %a.event.action);
        }
        let mut orphaned = Vec::new();
        let mut answers = Vec::with_capacity(in_flight.len());
        for d in created {
            let destination = d.destination.clone();
            // Sent already and not answered yet: its outcome is recorded below.
            if let Some(at) = in_flight.iter().position(|(to, _)| *to == destination) {
                answers.push((d.id, in_flight.swap_remove(at).1));
                continue;
            }
            if !self.dispatcher.submit(d) && !orphaned.contains(&destination) {
                orphaned.push(destination);
            }
        }
        for destination in retrying {
            if !self.dispatcher.runs(&destination) && !orphaned.contains(&destination) {
                orphaned.push(destination);
            }
        }
        // Routed with a configuration that a reload has since replaced:
        // the destination is gone.
        for name in orphaned {
            self.dispatcher.orphan(&name).await;
        }
        // What is left waits on slow chat services only (a send under way
        // times out): it holds no place among the events in progress.
        drop(permit);
        for (id, answer) in answers {
            // No answer (the worker stopped mid-send): the row comes due
            // when its send would have timed out, and is sent again.
            let Ok(Some(first)) = answer.await else {
                continue;
            };
            if let Err(e) = self.store.complete(first.with_id(id)).await {
                tracing::error!(message = "Cannot record a delivery outcome; it will be attempted again.", delivery_id = id, error = %e);
            }
        }
        true
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

/// Debug builds only: with `TEST_HOOKRELAY_PANIC=<stage>` (`event` or
/// `render`), processing an event whose short id is `PANICTEST` panics at
/// that stage. The tests use it to show that a failure inside the relay
/// stays one event's; a release build has no such switch.
#[cfg(debug_assertions)]
fn failpoint(stage: &str, event: &Event) {
    if event.short_id.as_deref() == Some("PANICTEST")
        && std::env::var("TEST_HOOKRELAY_PANIC").is_ok_and(|v| v == stage)
    {
        panic!("test failpoint: {stage}");
    }
}

/// What a panic said (its message when it has one).
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    crate::render::clean(text, 300)
}

/// Provisional ids of deliveries sent before they are recorded: below
/// zero, never those of a row.
static PROVISIONAL: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

impl Pipeline {
    /// Sends the deliveries that can go out at once before their routing
    /// is recorded, and notes each one's first attempt on it: the routing
    /// then stores them with their outcome in one write, instead of a
    /// write to create them and one per outcome, and the message does
    /// not wait for the routing's commit.
    ///
    /// Only plain messages: no route dedup window in the routing (settled
    /// in the routing's own transaction), nothing held, muted or failed, no
    /// conversation, digest or send limit, no message that carries the
    /// delivery's id, which a retry must repeat
    /// (`DestinationConfig::carries_delivery_id`), and no destination whose
    /// messages go out in order (`DestinationKind::in_order`). The worker
    /// queues it apart from recorded deliveries (unless the destination is
    /// paused or a round of such sends already waits).
    ///
    /// Crash safety is unchanged: until the routing commits, the event is
    /// unrouted in the spool, and a restart routes and sends it again (at
    /// least once, as for a send whose outcome was not committed).
    ///
    /// The routing waits [`FIRST_WAIT`] at most for the answers. A send
    /// not started by then is withdrawn, and recorded pending as any other.
    /// One under way is recorded pending but not due before its timeout
    /// has passed (so nothing sends it meanwhile), and returned with its
    /// destination: its outcome is recorded once it comes.
    async fn send_first(
        &self,
        a: &Accepted,
        short_id: &Option<String>,
        generation: &crate::live::Generation,
        deliveries: &mut [NewDelivery],
    ) -> Vec<(String, Answer)> {
        let mut to: Vec<&str> = deliveries.iter().map(|d| d.destination.as_str()).collect();
        to.sort_unstable();
        to.dedup();
        // Two deliveries to one destination (two routes) could not be
        // told apart by destination when recorded.
        if deliveries.iter().any(|d| d.dedup.is_some()) || to.len() < deliveries.len() {
            return Vec::new();
        }
        let mut sent = Vec::new();
        for (i, d) in deliveries.iter().enumerate() {
            let Some(dest) = generation.destinations.get(&d.destination) else {
                continue;
            };
            let c = &dest.config;
            let plain = d.failed.is_none()
                && d.muted.is_none()
                && d.summary.is_none()
                && d.thread_key.is_none()
                && !c.threaded()
                && !c.digest
                && c.max_per_minute.is_none()
                && c.rate.is_none()
                && !c.carries_delivery_id()
                && !c.kind.in_order();
            if !plain {
                continue;
            }
            let due = crate::store::DueDelivery {
                id: PROVISIONAL.fetch_sub(1, Ordering::Relaxed) - 1,
                event_id: a.id,
                destination: d.destination.clone(),
                payload: d.payload.clone(),
                attempts: 0,
                created_at: a.received_at,
                accepted_at: a.received_at,
                hook: a.hook.clone(),
                short_id: short_id.clone(),
                digest: false,
                thread_key: None,
            };
            if let Some(answer) = self.dispatcher.send_now(due) {
                sent.push((i, answer));
            }
        }
        // Not cancelled by shutdown: a message that went out is recorded
        // (the worker finishes its sends within the shutdown grace). A
        // dropped answer (the worker stopped first) leaves the delivery to
        // be recorded as pending and sent.
        let deadline = tokio::time::Instant::now() + FIRST_WAIT;
        let mut waiting = Vec::new();
        for (i, mut ticket) in sent {
            match tokio::time::timeout_at(deadline, &mut ticket.answer).await {
                Ok(Ok(Some(first))) => deliveries[i].first = Some(first),
                // Not queued: recorded as pending and handed over.
                Ok(Ok(None)) => {}
                // No answer in time (or the worker stopped): withdrawn if
                // not sent yet, else recorded as in flight.
                Ok(Err(_)) | Err(_) if ticket.withdraw() => {}
                Ok(Err(_)) | Err(_) => {
                    let d = &mut deliveries[i];
                    let timeout = generation
                        .destinations
                        .get(&d.destination)
                        .and_then(|dest| dest.config.timeout)
                        .unwrap_or(crate::destinations::DEFAULT_TIMEOUT);
                    let until = crate::store::now_ms() + (timeout + FIRST_WAIT).as_millis() as i64;
                    d.in_flight_until = Some(until);
                    waiting.push((d.destination.clone(), ticket.answer));
                }
            }
        }
        waiting
    }
}

/// A first attempt's outcome, as the worker answers it.
type Answer = tokio::sync::oneshot::Receiver<Option<crate::store::Completion>>;

/// Added to an origin's `enrich_deadline` and `timeout` to bound an
/// event's whole enrichment (see `Pipeline::process`).
const ENRICH_BOUND_MIN: Duration = Duration::from_secs(5);

/// How long a routing waits for the first attempts sent before it (see
/// `Pipeline::send_first`): chat services answer well within it; one that
/// does not delays neither the routing nor the other deliveries longer.
const FIRST_WAIT: Duration = Duration::from_secs(1);

/// What the console shows of an event's routing: how long enrichment took
/// and whether the alert came from the cache, every route's verdict in
/// order with the condition that decided it, and the silence that held it.
fn journey(
    decisions: Vec<crate::route::Decision>,
    enrich_ms: u64,
    cached: bool,
    silenced: Option<&String>,
) -> Journey {
    Journey {
        enrich: Some(EnrichStep {
            ms: enrich_ms,
            cached,
        }),
        decisions: decisions
            .into_iter()
            .map(|d| RouteDecision {
                route: d.route,
                matched: d.matched,
                reason: d.reason,
            })
            .collect(),
        silenced: silenced.cloned(),
        failed: None,
    }
}
