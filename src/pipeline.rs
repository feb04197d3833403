//! The pipeline between the spool and the delivery workers: for each
//! accepted event, enrich → route → render, then commit the deliveries and
//! hand them to their workers.
//!
//! Nothing here answers a sender: an event reaches the pipeline only after
//! its 202. An event that is interrupted (shutdown, crash) stays `received`
//! in the spool and is processed again at the next start.

use crate::app::Live;
use crate::delivery::Dispatcher;
use crate::enrich::Enrichment;
use crate::event::{self, Event};
use crate::render::{render, Facts};
use crate::route::route;
use crate::store::{reads, NewDelivery, Routing, Store};
use crate::telemetry::Metrics;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Events enriched at the same time at most (each may wait on the API).
const MAX_IN_PROGRESS: usize = 4096;

/// An accepted event on its way to routing.
pub struct Accepted {
    pub id: i64,
    pub hook: String,
    pub event: Event,
}

pub struct Pipeline {
    /// Config and enricher, swapped as a whole on reload; an event is
    /// processed entirely with the generation it started with.
    pub live: Arc<Live>,
    pub store: Store,
    pub dispatcher: Arc<Dispatcher>,
    pub metrics: Arc<Metrics>,
}

impl Pipeline {
    /// Processes `resume` (events a previous run accepted but did not
    /// route; read before ingress opens, so none is processed twice) and
    /// then events from `rx`, until `cancel` fires.
    pub async fn run(
        self: Arc<Self>,
        resume: Vec<i64>,
        mut rx: mpsc::UnboundedReceiver<Accepted>,
        tracker: TaskTracker,
        cancel: CancellationToken,
    ) {
        let permits = Arc::new(Semaphore::new(MAX_IN_PROGRESS));
        if !resume.is_empty() {
            tracing::info!(
                message = "Resuming events accepted before the last stop.",
                count = resume.len()
            );
        }
        for id in resume {
            if cancel.is_cancelled() {
                return;
            }
            if let Some(accepted) = self.load(id).await {
                let permit = permits.clone().acquire_owned().await;
                let me = self.clone();
                let cancel = cancel.clone();
                tracker.spawn(async move {
                    let _permit = permit;
                    me.process(accepted, cancel).await;
                });
            }
        }
        loop {
            let accepted = tokio::select! {
                _ = cancel.cancelled() => break,
                a = rx.recv() => match a { Some(a) => a, None => break },
            };
            let permit = tokio::select! {
                _ = cancel.cancelled() => break,
                p = permits.clone().acquire_owned() => p,
            };
            let me = self.clone();
            let cancel = cancel.clone();
            tracker.spawn(async move {
                let _permit = permit;
                me.process(accepted, cancel).await;
            });
        }
    }

    async fn load(&self, id: i64) -> Option<Accepted> {
        let row = self.store.read(move |c| reads::event_body(c, id)).await;
        let (hook, body, _state) = match row {
            Ok(Some(r)) => r,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!(message = "Cannot read an event from the spool.", event_id = id, error = %e);
                return None;
            }
        };
        match event::parse(&body) {
            Ok(event) => Some(Accepted { id, hook, event }),
            Err(e) => {
                // It parsed when it was accepted; only a schema change could
                // do this. Keep it (history) but say so.
                tracing::error!(message = "A stored event no longer parses; skipping it.", event_id = id, error = %e);
                None
            }
        }
    }

    /// Enrich, route and render one event, then commit its deliveries.
    async fn process(&self, a: Accepted, cancel: CancellationToken) {
        let generation = self.live.get();
        let config = &generation.config;
        let hook = config.hooks.get(&a.hook);
        let origin_name = hook.map(|h| h.origin.as_str());
        let origin = origin_name.and_then(|o| config.origins.get(o));
        let enrichment = tokio::select! {
            _ = cancel.cancelled() => return,
            e = async {
                match origin_name {
                    Some(o) => generation.enricher.enrich(o, &a.event).await,
                    None if a.event.alert_uuid.is_some() => Enrichment::Unavailable(format!("hook {:?} is no longer configured", a.hook)),
                    None => Enrichment::NotApplicable,
                }
            } => e,
        };
        let alert = enrichment.alert();
        let targets = route(&config.routes, &a.hook, &a.event, alert);
        let short_id = a
            .event
            .short_id
            .clone()
            .or_else(|| alert.and_then(|x| x.short_id.clone()));
        if targets.is_empty() {
            self.metrics.events_unrouted.inc();
            tracing::info!(message = "Event matched no route.", hook = %a.hook, event_id = a.id, alert_short_id = short_id.as_deref(), kind = %a.event.kind, action = %a.event.action);
        }
        let facts = Facts::build(
            &a.event,
            &enrichment,
            origin.and_then(|o| o.alert_link.as_deref()),
        );
        let dedup_subject = a
            .event
            .alert_uuid
            .or(a.event.uuid)
            .map(|u| u.to_string())
            .or_else(|| short_id.clone())
            .unwrap_or_else(|| format!("event-{}", a.id));
        let mut deliveries = Vec::with_capacity(targets.len());
        let mut route_names: Vec<String> = Vec::new();
        for t in targets {
            let Some(dest) = config.destinations.get(&t.destination) else {
                continue;
            };
            if !route_names.contains(&t.route) {
                route_names.push(t.route.clone());
            }
            deliveries.push(NewDelivery {
                payload: render(dest.kind, &facts).to_string(),
                dedup: t.dedup.map(|w| {
                    (
                        format!("{dedup_subject}:{}", a.event.action),
                        w.as_millis() as i64,
                    )
                }),
                route: t.route,
                destination: t.destination,
            });
        }
        let (enrichment_text, alert_json) = match &enrichment {
            Enrichment::Fetched(alert) => ("ok".to_owned(), Some(alert.raw.to_string())),
            Enrichment::NotApplicable => ("n/a".to_owned(), None),
            Enrichment::Unavailable(reason) => (format!("unavailable: {reason}"), None),
        };
        let routing = Routing {
            event_id: a.id,
            enrichment: enrichment_text,
            alert_json,
            routes: route_names,
            deliveries,
        };
        // The spool may be briefly unwritable (disk full): keep trying
        // rather than dropping an accepted event.
        let mut wait = Duration::from_millis(200);
        loop {
            match self.store.record_routing(routing.clone()).await {
                Ok(created) => {
                    let mut orphaned = Vec::new();
                    for d in created {
                        let destination = d.destination.clone();
                        if !self.dispatcher.submit(d) && !orphaned.contains(&destination) {
                            orphaned.push(destination);
                        }
                    }
                    // Routed with a configuration that a reload has since
                    // replaced: the destination is gone.
                    for name in orphaned {
                        crate::app::orphan(&self.store, &name).await;
                    }
                    return;
                }
                Err(e) => {
                    tracing::error!(message = "Cannot record routing; retrying.", event_id = a.id, error = %e);
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        }
    }
}
