//! Sending before the routing is recorded: a capability of the workers
//! of plain destinations ([`sends_first`]).
//!
//! The pipeline hands an event's whole routing to the workers of its
//! deliveries ([`FirstSends`], one [`First`] share per delivery) instead
//! of recording it. Each worker sends its share's message when its turn
//! comes (or declines: paused, too many such sends waiting, not a plain
//! destination, waited over [`FIRST_WAIT`]), and the last share to be
//! done records the routing with every first attempt in one write: the
//! delivery row is written once, in its final state, and the message did
//! not wait for a commit. Nothing goes back to the pipeline; the event's
//! claim (it is in progress) travels with the routing and is let go once
//! the routing is recorded.
//!
//! A send still out after [`FIRST_WAIT`] does not hold the routing: it is
//! recorded pending and not due before the send's timeout has passed, so
//! nothing sends it meanwhile, and its outcome is committed under the
//! delivery's id when it comes. A declined delivery is recorded pending
//! and queued by its worker once the routing commits. Until then the event
//! is `received` in the spool, so a crash sends it again (at least once,
//! as for any send whose outcome was not committed).

use super::attempt::{conclude, About, Done};
use super::shared::Shared;
use crate::destinations::{Capabilities, Destination, KindCapabilities, Sink};
use crate::recent::Claim;
use crate::store::{now_ms, Attempted, DueDelivery, Routing, Store};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long a routing waits for the first attempts sent before it: chat
/// services answer well within it; one that does not delays neither the
/// routing nor the other deliveries longer.
pub(super) const FIRST_WAIT: Duration = Duration::from_secs(1);

/// Whether a destination's messages may go out before their routing is
/// recorded: no pause-free guarantee needed (no send limit, no digest),
/// no conversation, nothing whose order matters, and no message that
/// carries the delivery's id (a retry must repeat it).
pub fn sends_first(dest: &Destination) -> bool {
    let c = &dest.config;
    !c.threaded()
        && !c.digest
        && c.max_per_minute.is_none()
        && c.rate.is_none()
        && !c.carries_delivery_id()
        && !c.kind.in_order()
}

/// What became of one share.
enum Share {
    /// Not done yet.
    Open,
    /// Declined: recorded pending, and queued by its worker.
    Declined,
    /// Sent, with its outcome.
    Sent(Attempted),
    /// Still out: recorded pending, not due before this time (unix ms).
    Out(i64),
}

/// One event's routing, handed to the workers of its deliveries to send
/// before it is recorded.
pub struct FirstSends {
    routing: Mutex<Option<Routing>>,
    shares: Mutex<Vec<Share>>,
    /// Shares not done yet, and the hand-over's own (see [`FirstSends::handed`]).
    left: AtomicUsize,
    /// The event's claim, and its place among the events in progress
    /// (the pipeline takes no more while it waits), let go once its
    /// routing is recorded.
    claim: Mutex<Option<(Claim, Option<OwnedSemaphorePermit>)>>,
    /// The deliveries the routing created as pending, once it is recorded
    /// (an empty list if another pass had routed the event).
    recorded: watch::Sender<Option<Arc<Vec<DueDelivery>>>>,
    store: Store,
    /// Shutdown: stops retrying a routing the spool refuses.
    cancel: CancellationToken,
    event_id: i64,
    hook: String,
    short_id: Option<String>,
    /// When the event was received (unix ms): the deliveries' age.
    received_at: i64,
}

/// One delivery's share of a [`FirstSends`], as its worker holds it.
pub struct First {
    sends: Arc<FirstSends>,
    at: usize,
    destination: String,
    /// Its destination may send it before the routing is recorded.
    sendable: bool,
    /// When its worker got it.
    handed: Instant,
}

impl FirstSends {
    /// The routing of an event whose deliveries are all pending, to
    /// distinct destinations, with no route dedup window, with the event's
    /// claim and its place among the events in progress.
    pub fn new(
        routing: Routing,
        claim: (Claim, Option<OwnedSemaphorePermit>),
        (hook, short_id, received_at): (String, Option<String>, i64),
        store: Store,
        cancel: CancellationToken,
    ) -> Arc<FirstSends> {
        let n = routing.deliveries.len();
        let event_id = routing.event_id;
        Arc::new(FirstSends {
            shares: Mutex::new((0..n).map(|_| Share::Open).collect()),
            left: AtomicUsize::new(n + 1),
            routing: Mutex::new(Some(routing)),
            claim: Mutex::new(Some(claim)),
            recorded: watch::channel(None).0,
            event_id,
            store,
            cancel,
            hook,
            short_id,
            received_at,
        })
    }

    /// The shares, one per delivery: (destination, share); `sendable`
    /// says whether a destination [`sends_first`].
    pub fn shares(self: &Arc<Self>, sendable: impl Fn(&str) -> bool) -> Vec<(String, First)> {
        let routing = self.routing.lock().unwrap_or_else(|p| p.into_inner());
        let Some(routing) = routing.as_ref() else {
            return Vec::new();
        };
        routing
            .deliveries
            .iter()
            .enumerate()
            .map(|(at, d)| {
                let share = First {
                    sends: self.clone(),
                    at,
                    destination: d.destination.clone(),
                    sendable: sendable(&d.destination),
                    handed: Instant::now(),
                };
                (d.destination.clone(), share)
            })
            .collect()
    }

    /// The hand-over is done (every share given to its worker, or declined
    /// where it could not be): if every share is done already, records the
    /// routing.
    pub async fn handed(self: Arc<Self>) {
        self.done().await;
    }

    /// One share fewer; the last one records the routing.
    async fn done(&self) {
        if self.left.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.record().await;
        }
    }

    /// Records the routing with every first attempt, retrying while the
    /// spool is briefly unwritable (not cancelled while a write is under
    /// way: a message that went out is recorded if it can be), then lets
    /// the event's claim go and publishes the pending deliveries.
    async fn record(&self) {
        let Some(mut routing) = self
            .routing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        else {
            return;
        };
        {
            let mut shares = self.shares.lock().unwrap_or_else(|p| p.into_inner());
            for (d, share) in routing.deliveries.iter_mut().zip(shares.iter_mut()) {
                match std::mem::replace(share, Share::Declined) {
                    Share::Sent(first) => d.first = Some(first),
                    Share::Out(until) => d.in_flight_until = Some(until),
                    Share::Open | Share::Declined => {}
                }
            }
        }
        let sent = routing.deliveries.iter().any(|d| d.first.is_some());
        let event_id = routing.event_id;
        let mut wait = Duration::from_millis(200);
        let created = loop {
            match self.store.record_routing(routing.clone()).await {
                Ok(created) => break created,
                Err(e) => {
                    tracing::error!(message = "Cannot record routing; retrying.", event_id, error = %e);
                    tokio::select! {
                        // The event stays `received`: routed again at the
                        // next start. Those waiting for it stop waiting.
                        _ = self.cancel.cancelled() => {
                            self.recorded.send_replace(Some(Arc::default()));
                            return;
                        }
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
            }
        };
        if created.is_none() && sent {
            tracing::warn!(message = "An event was routed twice (another pass took it over); its messages sent before the routing was recorded went out twice.", hook = %self.hook, event_id);
        }
        if let Some((claim, _place)) = self.claim.lock().unwrap_or_else(|p| p.into_inner()).take() {
            claim.routed();
        }
        self.recorded
            .send_replace(Some(Arc::new(created.unwrap_or_default())));
    }

    /// The pending delivery to `destination` the routing created, once it
    /// is recorded; none if it never is (shutdown) or another pass had
    /// routed the event.
    async fn recorded(&self, destination: &str) -> Option<DueDelivery> {
        let mut rx = self.recorded.subscribe();
        let created = rx.wait_for(Option::is_some).await.ok()?.clone()?;
        created
            .iter()
            .find(|d| d.destination == destination)
            .cloned()
    }
}

impl First {
    /// Whether its worker may send it now: its destination sends first,
    /// and it has not waited past [`FIRST_WAIT`] for its turn.
    pub(super) fn sendable(&self) -> bool {
        self.sendable && self.handed.elapsed() < FIRST_WAIT
    }

    /// When it is no longer sendable.
    pub(super) fn deadline(&self) -> Instant {
        self.handed + FIRST_WAIT
    }

    fn set(&self, share: Share) {
        if let Some(s) = self
            .sends
            .shares
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(self.at)
        {
            *s = share;
        }
    }

    /// Declines the share without waiting for the routing's record (its
    /// worker could not be handed it: that worker's scan finds the
    /// delivery pending).
    pub(super) async fn give_up(self) {
        self.set(Share::Declined);
        self.sends.done().await;
    }

    /// Declines the share: the delivery is recorded pending with the
    /// routing, and returned once that is committed, to be queued.
    pub(super) async fn decline(self) -> Option<DueDelivery> {
        self.set(Share::Declined);
        self.sends.done().await;
        self.sends.recorded(&self.destination).await
    }

    /// Sends the share's message. Answered within [`FIRST_WAIT`]: its
    /// outcome goes into the routing. Else the routing is recorded without
    /// waiting for it (pending, not due before the send would have timed
    /// out), and the outcome is committed under the delivery's id.
    pub(super) async fn send(self, shared: Arc<Shared>, sink: Arc<Sink>) -> Done {
        // Read before this share is done: the routing is all there.
        let payload = {
            let routing = self.sends.routing.lock().unwrap_or_else(|p| p.into_inner());
            routing
                .as_ref()
                .and_then(|r| r.deliveries.get(self.at))
                .map(|d| d.payload.clone())
                .unwrap_or_default()
        };
        let timeout = sink
            .destination()
            .timeout
            .unwrap_or(crate::destinations::DEFAULT_TIMEOUT);
        // A destination that sends first carries no delivery id
        // (`sends_first`): its messages need no message id.
        let send = sink.send("", &payload);
        tokio::pin!(send);
        let answered = tokio::time::timeout(FIRST_WAIT, &mut send).await;
        let in_time = answered.is_ok();
        let (delivery, (outcome, took)) = match answered {
            Ok(answer) => (None, answer),
            Err(_) => {
                let until = now_ms() + (timeout + FIRST_WAIT).as_millis() as i64;
                self.set(Share::Out(until));
                self.sends.done().await;
                let delivery = self.sends.recorded(&self.destination).await;
                (delivery, send.await)
            }
        };
        let about = About {
            destination: &self.destination,
            hook: &self.sends.hook,
            short_id: self.sends.short_id.as_deref(),
            event_id: self.sends.event_id,
            delivery_id: delivery.as_ref().map(|d| d.id),
            attempts: 0,
            created_at: self.sends.received_at,
        };
        let c = conclude(&shared, &about, outcome, took, None);
        let commit = match delivery {
            Some(d) => Some((d.id, c.attempted.of(d.id))),
            // Answered in time: recorded with the routing.
            None if in_time => {
                self.set(Share::Sent(c.attempted));
                self.sends.done().await;
                None
            }
            // Out when the routing was recorded, and that routing created
            // no delivery for it (another pass had routed the event, or
            // shutdown stopped the recording): nothing to commit.
            None => None,
        };
        Done {
            pause: c.pause,
            retry_in: c.retry_in,
            commit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StoreConfig;
    use crate::recent::Underway;
    use crate::store::{NewDelivery, NewEvent};

    fn delivery(to: &str) -> NewDelivery {
        NewDelivery {
            route: "r".into(),
            destination: to.into(),
            payload: "{}".into(),
            failed: None,
            muted: None,
            dedup: None,
            summary: None,
            thread_key: None,
            first: None,
            in_flight_until: None,
        }
    }

    /// An event's routing handed to two workers: one sends its share in
    /// time, the other declines. The last share done records the routing
    /// once: the sent delivery with its first attempt (not handed to a
    /// worker), the declined one pending and returned to its worker; the
    /// event's claim is let go as routed only then.
    #[tokio::test]
    async fn the_last_share_records_the_routing_with_the_first_attempts() {
        use sha2::Digest as _;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&StoreConfig {
            path: dir.path().join("spool.db"),
            ..StoreConfig::default()
        })
        .unwrap();
        let body = "{\"type\":\"alert\"}";
        let event = store
            .insert_event(NewEvent {
                hook: "soc".into(),
                body: body.as_bytes().to_vec(),
                sha256: sha2::Sha256::digest(body.as_bytes()).into(),
                kind: "alert".into(),
                action: "created".into(),
                short_id: None,
                dedup_window_ms: 0,
                message_id: None,
                alert_uuid: None,
                client: None,
                auth: None,
            })
            .await
            .unwrap();
        let underway = Underway::new(16);
        let claim = underway.claim(event.id).unwrap();
        let routing = Routing {
            event_id: event.id,
            enrichment: "ok".into(),
            alert_json: None,
            routes: vec!["r".into()],
            deliveries: vec![delivery("a"), delivery("b")],
            title: None,
            journey: Default::default(),
        };
        let sends = FirstSends::new(
            routing,
            (claim, None),
            ("soc".into(), None, now_ms()),
            store.clone(),
            CancellationToken::new(),
        );
        let mut shares = sends.shares(|to| to == "a");
        let (_, b) = shares.pop().unwrap();
        let (_, a) = shares.pop().unwrap();
        assert!(a.sendable() && !b.sendable());
        sends.clone().handed().await;
        let declined = tokio::spawn(b.decline());
        // Sent and answered: its outcome goes into the routing.
        a.set(Share::Sent(Attempted::Delivered {
            status: 200,
            duration_ms: 3,
            thread: None,
        }));
        assert!(underway.in_progress_now(event.id), "not recorded yet");
        a.sends.done().await;
        let pending = declined.await.unwrap().expect("the declined delivery");
        assert_eq!(pending.destination, "b");
        assert!(!underway.in_progress_now(event.id));
        assert!(underway.claim(event.id).is_none(), "remembered as routed");
        let detail = store.event_detail(event.id).await.unwrap().unwrap();
        let states: Vec<(&str, &str, usize)> = detail
            .deliveries
            .iter()
            .map(|d| (d.destination.as_str(), d.state.as_str(), d.attempts.len()))
            .collect();
        assert_eq!(states, [("a", "delivered", 1), ("b", "pending", 0)]);
    }
}
