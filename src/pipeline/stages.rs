//! The stages one event goes through before its routing is recorded:
//! enrich (the only one that waits on anything), decide (routes at the
//! current time, then silences), render (one message per destination).
//! Each takes what the one before gave; none records or sends.

use super::intake::Accepted;
use super::silences::Silence;
use crate::destinations::{event_payload, Capabilities};
use crate::enrich::Enrichment;
use crate::live::Generation;
use crate::render::context::Target;
use crate::render::Facts;
use crate::route::Decision;
use crate::store::{EnrichStep, Journey, NewDelivery, RouteDecision};
use crate::telemetry::Metrics;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Added to an origin's `enrich_deadline` and `timeout` to bound an
/// event's whole enrichment.
const ENRICH_BOUND_MIN: Duration = Duration::from_secs(5);

/// What enrichment found, and how.
pub(super) struct Enriched {
    pub enrichment: Enrichment,
    /// The alert came from the cache.
    pub cached: bool,
    /// How long it took.
    pub ms: u64,
}

/// Fetches what the event is about (its alert, with the alert's assets
/// when a route asks for their criticality; its case), within a bound:
/// the enricher keeps to the origin's deadline between attempts, and this
/// bounds the whole of it (an attempt's own timeout, waiting for the
/// origin's concurrency, the assets), so no origin, however slow, keeps an
/// event from being routed for longer. `None` when shutdown cut it short.
pub(super) async fn enrich(
    generation: &Generation,
    a: &Accepted,
    cancel: &CancellationToken,
) -> Option<Enriched> {
    let config = &generation.config;
    let origin = config.hooks.get(&a.hook).map(|h| h.origin.as_str());
    let started = Instant::now();
    let bound = origin
        .and_then(|o| config.origins.get(o))
        .map_or(ENRICH_BOUND_MIN, |o| {
            o.enrich_deadline + o.timeout + ENRICH_BOUND_MIN
        });
    let enrich = async {
        let (enrichment, cached) = match origin {
            Some(o) => generation.enricher.enrich_traced(o, &a.event).await,
            None if a.event.alert_uuid.is_some() => (
                Enrichment::Unavailable(format!("hook {:?} is no longer configured", a.hook)),
                false,
            ),
            None => (Enrichment::NotApplicable, false),
        };
        // Asset criticality: looked up only when a route asks for it.
        let enrichment = match (&enrichment, origin) {
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
        _ = cancel.cancelled() => return None,
        e = tokio::time::timeout(bound, enrich) => e.unwrap_or_else(|_| {
            tracing::warn!(message = "Enrichment passed its deadline; forwarding without details.", hook = %a.hook, event_id = a.id);
            (Enrichment::Unavailable("the origin's deadline passed".into()), false)
        }),
    };
    if enrichment.alert().is_none()
        && a.event.alert_uuid.is_some()
        && config.routes.iter().any(|r| r.when.needs_alert())
    {
        tracing::info!(
            message = "Alert details unavailable: routes with alert-field conditions do not match this event.",
            hook = %a.hook, event_id = a.id
        );
    }
    Some(Enriched {
        enrichment,
        cached,
        ms: started.elapsed().as_millis() as u64,
    })
}

/// Where an event goes, and what its history says of why.
pub(super) struct Decided<'s> {
    pub targets: Vec<crate::route::Target>,
    /// The silence holding every delivery of the event, if one matches.
    pub silenced: Option<&'s str>,
    pub journey: Journey,
}

/// Routes the event at the current time (`[time_intervals]`), then looks
/// for a silence that holds it.
pub(super) fn decide<'s>(
    generation: &Generation,
    a: &Accepted,
    enriched: &Enriched,
    silences: &'s [Silence],
) -> Decided<'s> {
    let config = &generation.config;
    let (alert, case) = (enriched.enrichment.alert(), enriched.enrichment.case());
    let clock = crate::route::Clock {
        now: jiff::Timestamp::now(),
        intervals: &config.time_intervals,
    };
    let (targets, decisions) =
        crate::route::route_explained_with(&config.routes, &a.hook, &a.event, alert, case, &clock);
    let silenced = silences
        .iter()
        .find(|s| crate::route::matches_with(&s.when, &a.event, alert, case))
        .map(|s| s.note.as_str());
    Decided {
        journey: journey(decisions, enriched, silenced),
        targets,
        silenced,
    }
}

/// What the console shows of an event's routing: how long enrichment took
/// and whether the alert came from the cache, every route's verdict in
/// order with the condition that decided it, and the silence that held it.
fn journey(decisions: Vec<Decision>, enriched: &Enriched, silenced: Option<&str>) -> Journey {
    Journey {
        enrich: Some(EnrichStep {
            ms: enriched.ms,
            cached: enriched.cached,
        }),
        decisions: decisions
            .into_iter()
            .map(|d| RouteDecision {
                route: d.route,
                matched: d.matched,
                reason: d.reason,
            })
            .collect(),
        silenced: silenced.map(str::to_owned),
        failed: None,
    }
}

/// The routes that matched (each named once, in order) and one delivery
/// per target: held back (muted by a time interval, or silenced), or
/// rendered for its destination; on a threaded destination, a case's note
/// in each of its alerts' threads too.
pub(super) fn render(
    generation: &Generation,
    a: &Accepted,
    enriched: &Enriched,
    decided: Decided<'_>,
    metrics: &Metrics,
) -> (Vec<String>, Vec<NewDelivery>) {
    let config = &generation.config;
    let enrichment = &enriched.enrichment;
    let facts = Facts::build_linked(&a.event, enrichment, config.links(&a.hook));
    let mut deliveries = Vec::with_capacity(decided.targets.len());
    let mut routes: Vec<String> = Vec::new();
    for t in decided.targets {
        let Some(dest) = generation.destinations.get(&t.destination) else {
            continue;
        };
        if !routes.contains(&t.route) {
            routes.push(t.route.clone());
        }
        // Recorded (the history shows it muted and why), never sent:
        // a time interval's mute first, else a silence's.
        let held = match (t.muted, decided.silenced) {
            (Some(why), _) => Some((why, "muted")),
            (None, Some(note)) => Some((note.to_owned(), "silenced")),
            (None, None) => None,
        };
        if let Some((why, outcome)) = held {
            tracing::info!(message = "Delivery held back: recorded, not sent.", outcome, destination = %t.destination, hook = %a.hook, event_id = a.id, reason = %why);
            metrics.delivery(&t.destination, outcome);
            deliveries.push(NewDelivery {
                muted: Some(why),
                ..blank(t.route, t.destination)
            });
            continue;
        }
        let mut facts =
            generation.with_actions(&facts, &t.destination, &a.hook, &a.event, enrichment);
        if t.mention && !dest.config.mentions.is_empty() {
            facts.to_mut().mentions = dest.config.mentions.clone();
        }
        let target = Target {
            hook: Some(&a.hook),
            route: Some(&t.route),
            destination: &t.destination,
        };
        let (payload, failed) = match render_one(dest, a, enrichment, &facts, target, metrics) {
            Ok(p) => (p, None),
            Err(reason) => {
                tracing::error!(message = "Cannot render the message; the delivery is kept as a dead letter.", destination = %t.destination, hook = %a.hook, event_id = a.id, error = %reason);
                (String::new(), Some(format!("cannot render: {reason}")))
            }
        };
        let alert = enrichment.alert();
        deliveries.push(NewDelivery {
            payload,
            failed,
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
            ..blank(t.route.clone(), t.destination.clone())
        });
        // A case took alerts (or let them go): each alert's own thread
        // says so, in order with the alert's other events.
        if dest.config.threaded() {
            for (alert, payload) in crate::render::case_alert_notes(&a.event, enrichment, &facts) {
                deliveries.push(NewDelivery {
                    payload,
                    thread_key: Some(alert),
                    // (route, destination) names one delivery of an
                    // event in the spool: these are told apart.
                    ..blank(format!("{} (alert thread)", t.route), t.destination.clone())
                });
            }
        }
    }
    (routes, deliveries)
}

/// A delivery with nothing but its route and destination.
fn blank(route: String, destination: String) -> NewDelivery {
    NewDelivery {
        route,
        destination,
        payload: String::new(),
        failed: None,
        muted: None,
        summary: None,
        dedup: None,
        thread_key: None,
        first: None,
        in_flight_until: None,
    }
}

/// Renders one destination's message. A panic in it is that delivery's:
/// a dead letter with the reason (rendered again when replayed, say after
/// an upgrade), the other destinations unaffected.
fn render_one(
    dest: &crate::destinations::Destination,
    a: &Accepted,
    enrichment: &Enrichment,
    facts: &Facts,
    target: Target<'_>,
    metrics: &Metrics,
) -> Result<String, crate::render::RenderError> {
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        #[cfg(debug_assertions)]
        failpoint("render", &a.event);
        event_payload(dest, &a.event, enrichment, facts, target)
    }))
    .unwrap_or_else(|panic| {
        metrics.processing_failed("render");
        Err(crate::render::RenderError::Internal(panic_text(
            panic.as_ref(),
        )))
    })
}

/// Debug builds only: with `TEST_HOOKRELAY_PANIC=<stage>` (`event` or
/// `render`), processing an event whose short id is `PANICTEST` panics at
/// that stage. The tests use it to show that a failure inside the relay
/// stays one event's; a release build has no such switch.
#[cfg(debug_assertions)]
pub(super) fn failpoint(stage: &str, event: &crate::event::Event) {
    if event.short_id.as_deref() == Some("PANICTEST")
        && std::env::var("TEST_HOOKRELAY_PANIC").is_ok_and(|v| v == stage)
    {
        panic!("test failpoint: {stage}");
    }
}

/// What a panic said (its message when it has one).
pub(super) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message");
    crate::render::clean(text, 300)
}
