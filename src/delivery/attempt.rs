//! One delivery attempt: send, decide what next ([`classify`], pure), and
//! record the outcome ([`commit`], apart, so a concurrency slot is not held
//! through the spool's fsync).

use super::pacing::backoff;
use super::shared::Shared;
use crate::destinations::{Capabilities, Outcome, Sink};
use crate::render::thread::Threaded;
use crate::render::Facts;
use crate::store::{now_ms, Attempted, Completion, DueDelivery, RenderSource};
use crate::telemetry::labels1;
use std::sync::Arc;
use std::time::Duration;

/// What to do after an attempt, decided by [`classify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Next {
    /// The destination took it.
    Delivered,
    /// It will never take it: a dead letter.
    DeadLetter,
    /// Try again in `wait`; with `pause`, every send to the destination
    /// waits that long (it asked to slow down).
    Retry {
        wait: Duration,
        pause: Option<Duration>,
    },
    /// A retry would come after `delivery.max_age`: a dead letter.
    Expired,
}

/// Decides what an outcome means. `backoff` is this attempt's back-off
/// (jittered by the caller), `left` the time until `delivery.max_age`.
pub(super) fn classify(outcome: &Outcome, backoff: Duration, left: Duration) -> Next {
    match outcome {
        Outcome::Delivered { .. } => Next::Delivered,
        Outcome::Permanent { .. } => Next::DeadLetter,
        Outcome::Retry {
            retry_after,
            throttled,
            ..
        } => {
            let wait = backoff.max(retry_after.unwrap_or(Duration::ZERO));
            if wait > left {
                return Next::Expired;
            }
            Next::Retry {
                wait,
                pause: throttled.then(|| retry_after.unwrap_or(wait)),
            }
        }
    }
}

/// What a finished attempt tells the worker.
pub(super) struct Done {
    /// Pause the whole destination this long (throttled).
    pub pause: Option<Duration>,
    /// The delivery comes due again after this long (a retry).
    pub retry_in: Option<Duration>,
    /// What to commit to the spool: none for a first attempt recorded
    /// with its routing.
    pub commit: Option<(i64, Completion)>,
}

/// What an attempt was about, for its logs, metrics and back-off.
pub(super) struct About<'a> {
    pub destination: &'a str,
    pub hook: &'a str,
    pub short_id: Option<&'a str>,
    pub event_id: i64,
    /// None for a first attempt made before its delivery was recorded.
    pub delivery_id: Option<i64>,
    /// Attempts made before this one.
    pub attempts: i64,
    /// Where its age (and `delivery.max_age`) counts from.
    pub created_at: i64,
}

impl<'a> About<'a> {
    pub fn of(d: &'a DueDelivery) -> About<'a> {
        About {
            destination: &d.destination,
            hook: &d.hook,
            short_id: d.short_id.as_deref(),
            event_id: d.event_id,
            delivery_id: Some(d.id),
            attempts: d.attempts,
            created_at: d.created_at,
        }
    }
}

/// What an attempt's outcome means.
pub(super) struct Concluded {
    pub pause: Option<Duration>,
    pub retry_in: Option<Duration>,
    pub attempted: Attempted,
}

/// A delivery's message id, the same on every attempt, across restarts
/// and across replays of its dead letter (Standard Webhooks `webhook-id`,
/// e-mail Message-ID, Matrix transaction id): receivers use it to drop a
/// duplicate, and a replay of a send whose answer was lost must be one.
/// Its event's acceptance time keeps it unique should the spool be
/// recreated and row ids start over; unlike `created_at`, a replay does
/// not move it.
pub fn message_id(d: &DueDelivery) -> String {
    format!("msg_{}_{}", d.id, d.accepted_at)
}

/// One attempt: send, then decide what next.
pub(super) async fn attempt(shared: Arc<Shared>, sink: Arc<Sink>, d: DueDelivery) -> Done {
    let (outcome, took, thread) = send(&shared, &sink, &d).await;
    let c = conclude(&shared, &About::of(&d), outcome, took, thread);
    Done {
        pause: c.pause,
        retry_in: c.retry_in,
        commit: Some((d.id, c.attempted.of(d.id))),
    }
}

/// Sends the delivery's message (rendered again first if it could not be
/// rendered when it was routed): what the destination answered, how long
/// it took, and where it went in the alert's conversation.
async fn send(
    shared: &Shared,
    sink: &Sink,
    d: &DueDelivery,
) -> (Outcome, Duration, Option<String>) {
    // A message that could not be rendered when it was routed (a template
    // error) and has since been replayed: render it now, with the current
    // configuration (the fixed template).
    let rendered = if d.payload.is_empty() && !d.digest {
        Some(rerender(shared, d).await)
    } else {
        None
    };
    let payload = match &rendered {
        Some(Ok(payload)) => payload.as_str(),
        _ => d.payload.as_str(),
    };
    // One conversation per alert: a root, or an edit and a reply.
    let threaded = match (&d.thread_key, &rendered) {
        (Some(_), None | Some(Ok(_))) if sink.destination().threaded() => Threaded::unwrap(payload),
        _ => None,
    };
    match (&rendered, threaded) {
        (Some(Err(reason)), _) => (
            Outcome::Permanent {
                status: None,
                error: format!("cannot render: {reason}"),
            },
            Duration::ZERO,
            None,
        ),
        (_, Some(t)) => {
            let started = std::time::Instant::now();
            let sent = super::thread::send(shared, sink, d, t).await;
            (sent.outcome, started.elapsed(), sent.thread)
        }
        _ => {
            let (outcome, took) = sink.send(&message_id(d), payload).await;
            (outcome, took, None)
        }
    }
}

/// What an attempt's outcome means for the delivery ([`classify`]),
/// counted, logged, and ready to be committed.
pub(super) fn conclude(
    shared: &Shared,
    d: &About<'_>,
    outcome: Outcome,
    took: Duration,
    thread: Option<String>,
) -> Concluded {
    let name = d.destination;
    let attempt_no = d.attempts + 1;
    let duration_ms = took.as_millis() as i64;
    let cfg = &shared.delivery;
    let backoff = backoff(attempt_no as u32, cfg.initial_backoff, cfg.max_backoff);
    let expires = d.created_at + cfg.max_age.as_millis() as i64;
    let left = Duration::from_millis((expires - now_ms()).max(0) as u64);
    let next = classify(&outcome, backoff, left);
    let m = &shared.metrics;
    let (status, error) = match outcome {
        Outcome::Delivered { status } => (Some(status), String::new()),
        Outcome::Permanent { status, error } | Outcome::Retry { status, error, .. } => {
            (status, error)
        }
    };
    let mut done = Concluded {
        pause: None,
        retry_in: None,
        attempted: Attempted::Delivered {
            status: status.unwrap_or_default(),
            duration_ms,
            thread,
        },
    };
    match next {
        Next::Delivered => {
            let latency = (now_ms() - d.created_at).max(0) as f64 / 1000.0;
            m.delivery
                .latency
                .get_or_create(&labels1("destination", name))
                .observe(latency);
            m.delivery(name, "delivered");
            tracing::info!(
                message = "Delivered.", destination = %name, hook = %d.hook, alert_short_id = d.short_id, event_id = d.event_id,
                delivery_id = d.delivery_id, attempt = attempt_no, status, latency_ms = (latency * 1000.0) as u64
            );
        }
        Next::DeadLetter | Next::Expired => {
            m.delivery(name, "dead");
            let error = if next == Next::Expired {
                format!("gave up after {attempt_no} attempts (delivery.max_age reached); last error: {error}")
            } else {
                error
            };
            tracing::error!(
                message = if next == Next::Expired { "Delivery expired; kept as a dead letter." } else { "Delivery failed permanently; kept as a dead letter." },
                destination = %name, hook = %d.hook, alert_short_id = d.short_id, event_id = d.event_id,
                delivery_id = d.delivery_id, attempt = attempt_no, status, %error
            );
            done.attempted = Attempted::Dead {
                status,
                error,
                duration_ms,
            };
        }
        Next::Retry { wait, pause } => {
            m.delivery(name, "retry");
            tracing::warn!(
                message = "Delivery failed; will retry.", destination = %name, hook = %d.hook, alert_short_id = d.short_id, event_id = d.event_id,
                delivery_id = d.delivery_id, attempt = attempt_no, status, %error,
                retry_in_ms = wait.as_millis() as u64
            );
            done.pause = pause;
            done.retry_in = Some(wait);
            done.attempted = Attempted::Retry {
                status,
                error,
                next_attempt_at: now_ms() + wait.as_millis() as i64,
                duration_ms,
            };
        }
    }
    done
}

/// Renders a delivery's message again from its event and alert in the
/// spool, with the destination as the live configuration has it now.
async fn rerender(shared: &Shared, d: &DueDelivery) -> Result<String, String> {
    use crate::destinations::event_payload;
    use crate::enrich::Enrichment;
    use crate::render::context::Target;
    let live = shared
        .live
        .as_ref()
        .ok_or("no configuration to render with")?;
    let RenderSource {
        hook,
        body,
        alert_json,
        enrichment: enrichment_note,
        route,
    } = shared
        .store
        .render_source(d.id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or("its event is no longer in the spool")?;
    let event = crate::event::parse(&body).map_err(|e| e.0)?;
    let enrichment = Enrichment::from_stored(enrichment_note.as_deref(), alert_json.as_deref());
    let generation = live.get();
    let dest = generation
        .destinations
        .get(&d.destination)
        .ok_or("its destination is no longer configured")?;
    let facts = Facts::build_linked(&event, &enrichment, generation.config.links(&hook));
    let mut facts = generation.with_actions(&facts, &d.destination, &hook, &event, &enrichment);
    // The route's `mention = true`, as configured now.
    let mention = generation
        .config
        .routes
        .iter()
        .any(|r| r.name == route && r.mention);
    if mention && !dest.config.mentions.is_empty() {
        facts.to_mut().mentions = dest.config.mentions.clone();
    }
    let target = Target {
        hook: Some(&hook),
        route: Some(&route),
        destination: &d.destination,
    };
    event_payload(dest, &event, &enrichment, &facts, target).map_err(|e| e.to_string())
}

/// Records an attempt's outcome; returns the delivery id once committed.
pub(super) async fn commit(
    shared: Arc<Shared>,
    name: Arc<str>,
    id: i64,
    completion: Completion,
) -> i64 {
    if let Err(e) = shared.store.complete(completion).await {
        // The row stays pending and is attempted again (at least once).
        tracing::error!(message = "Cannot record a delivery outcome; it will be attempted again.", destination = %name, delivery_id = id, error = %e);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 503, with its Retry-After in seconds if any.
    fn unavailable(retry_after: Option<u64>) -> Outcome {
        Outcome::Retry {
            status: Some(503),
            error: "x".into(),
            retry_after: retry_after.map(Duration::from_secs),
            throttled: false,
        }
    }

    /// A 429, with its Retry-After in seconds if any.
    fn throttled(retry_after: Option<u64>) -> Outcome {
        Outcome::Retry {
            status: Some(429),
            error: "x".into(),
            retry_after: retry_after.map(Duration::from_secs),
            throttled: true,
        }
    }

    #[test]
    fn classify_decides_retry_dead_letter_and_pause() {
        let s = Duration::from_secs;
        let dead = Outcome::Permanent {
            status: Some(400),
            error: "bad".into(),
        };
        // (outcome, back-off, time left before max_age, expected)
        let table = [
            (
                Outcome::Delivered { status: 200 },
                s(1),
                s(60),
                Next::Delivered,
            ),
            (dead, s(1), s(60), Next::DeadLetter),
            (
                unavailable(None),
                s(2),
                s(60),
                Next::Retry {
                    wait: s(2),
                    pause: None,
                },
            ),
            // Retry-After longer than the back-off wins; a 429 pauses the
            // destination for exactly the time it asked.
            (
                throttled(Some(5)),
                s(2),
                s(60),
                Next::Retry {
                    wait: s(5),
                    pause: Some(s(5)),
                },
            ),
            // The back-off longer than Retry-After: wait it, pause as asked.
            (
                throttled(Some(1)),
                s(3),
                s(60),
                Next::Retry {
                    wait: s(3),
                    pause: Some(s(1)),
                },
            ),
            // A 429 without Retry-After pauses for the back-off.
            (
                throttled(None),
                s(2),
                s(60),
                Next::Retry {
                    wait: s(2),
                    pause: Some(s(2)),
                },
            ),
            // A 503 with Retry-After does not pause the destination.
            (
                unavailable(Some(4)),
                s(1),
                s(60),
                Next::Retry {
                    wait: s(4),
                    pause: None,
                },
            ),
            // A retry after max_age: expired.
            (unavailable(None), s(61), s(60), Next::Expired),
            (throttled(Some(120)), s(1), s(60), Next::Expired),
            (unavailable(None), s(1), s(0), Next::Expired),
        ];
        for (i, (outcome, backoff, left, want)) in table.into_iter().enumerate() {
            assert_eq!(
                classify(&outcome, backoff, left),
                want,
                "case {i}: {outcome:?}"
            );
        }
    }
}
