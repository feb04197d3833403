//! Cluster coordination: the state every sender to a destination must
//! agree on, behind one seam with two implementations.
//!
//! - a destination's **pause** after a 429 (`Retry-After`),
//! - its **send windows**: `rate` and `max_per_minute`,
//! - **whose turn** it is to send its digest,
//! - the **silence clocks** of the hooks,
//! - **claims** on work (leases, renewal, release) and **wake-ups**.
//!
//! [`Coordinator::Local`] keeps this in the process (one process holds all
//! the work: a SQLite spool); [`Coordinator::Database`] keeps it in the
//! shared database (several replicas on PostgreSQL), changed by single
//! statements or short locked transactions. Callers never ask which one
//! they have: they ask a question and get the answer for the whole
//! deployment.
//!
//! Both mean the same by a limit: **at most N sends in any window of its
//! period** (a sliding window). A send is counted against every window at
//! once or against none, so a refusal never uses up a slot.

use crate::config::Rate;
use crate::store::{now_ms, Claimed, ClockCheck, Cluster, SendWindow, Store, StoreError};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

/// `max_per_minute`'s window.
const MINUTE: Duration = Duration::from_secs(60);

/// A destination's limits, as configured now (a reload may change them;
/// what was sent before still counts).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Limits {
    pub max_per_minute: Option<u32>,
    pub rate: Option<Rate>,
}

/// What is being sent: digests do not count against `max_per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sending {
    Message,
    Digest,
}

/// Whether a message may go out now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Sent: the slot is taken in every window.
    Go,
    /// `max_per_minute` reached: hold it for the digest, or wait this long.
    OverLimit(Duration),
    /// `rate` reached: wait this long.
    Wait(Duration),
}

/// The seam: one per process, shared by every worker and loop.
#[derive(Clone)]
pub enum Coordinator {
    Local(Arc<Local>),
    Database(Cluster, Store),
}

impl Coordinator {
    /// The coordination that fits the spool: in the process for SQLite, in
    /// the database for PostgreSQL.
    pub fn for_store(store: &Store) -> Coordinator {
        match store.cluster() {
            Some(cluster) => Coordinator::Database(cluster, store.clone()),
            None => Coordinator::Local(Arc::new(Local::new(store.clone()))),
        }
    }

    fn store(&self) -> &Store {
        match self {
            Coordinator::Local(l) => &l.store,
            Coordinator::Database(_, s) => s,
        }
    }

    /// How often to renew the claims on work held in memory; `None` when
    /// nothing is claimed (one process holds all the work).
    pub fn renew_every(&self) -> Option<Duration> {
        match self {
            Coordinator::Local(_) => None,
            Coordinator::Database(c, _) => Some(c.lease() / 3),
        }
    }

    /// Extends this replica's claims on `ids`.
    pub async fn renew(&self, what: Claimed, ids: Vec<i64>) -> Result<(), StoreError> {
        match self {
            Coordinator::Local(_) => Ok(()),
            Coordinator::Database(c, _) => c.renew(what, ids).await,
        }
    }

    /// Gives every claim back (at shutdown), so others take the work at once.
    pub async fn release(&self) -> Result<(), StoreError> {
        match self {
            Coordinator::Local(_) => Ok(()),
            Coordinator::Database(c, _) => c.release().await,
        }
    }

    /// News for the workers: a destination's name when it was paused, empty
    /// when every worker should look at the spool now (replayed dead
    /// letters, a reconnect).
    pub fn wakeups(&self) -> broadcast::Receiver<String> {
        match self {
            Coordinator::Local(l) => l.wake.subscribe(),
            Coordinator::Database(c, _) => c.wakeups(),
        }
    }

    /// Tells every worker to look at the spool now (dead letters were
    /// replayed). With PostgreSQL the replay's own NOTIFY does it.
    pub fn wake_all(&self) {
        if let Coordinator::Local(l) = self {
            let _ = l.wake.send(String::new());
        }
    }

    /// `destination` asked to slow down until `until` (unix ms): every
    /// sender to it waits (a later pause wins).
    pub async fn pause(&self, destination: &str, until: i64) -> Result<(), StoreError> {
        match self {
            Coordinator::Local(l) => {
                l.with(destination, |d| d.paused_until = d.paused_until.max(until));
                // Nobody listening is fine.
                let _ = l.wake.send(destination.to_owned());
                Ok(())
            }
            Coordinator::Database(c, _) => c.pause(destination, until).await,
        }
    }

    /// Until when `destination` is paused, if that is later than now.
    pub async fn paused_until(&self, destination: &str) -> Result<Option<i64>, StoreError> {
        match self {
            Coordinator::Local(l) => {
                let until = l.with(destination, |d| d.paused_until);
                Ok((until > now_ms()).then_some(until))
            }
            Coordinator::Database(c, _) => c.paused_until(destination).await,
        }
    }

    /// Takes one send to `destination` from every window that applies, or
    /// says which limit refuses and for how long. A refusal takes nothing.
    pub async fn pace(
        &self,
        destination: &str,
        limits: Limits,
        sending: Sending,
    ) -> Result<Pace, StoreError> {
        let windows = windows(limits, sending);
        if windows.is_empty() {
            return Ok(Pace::Go);
        }
        let refused = match self {
            Coordinator::Local(l) => {
                let now = Instant::now();
                l.with(destination, |d| d.take(&windows, now))
            }
            Coordinator::Database(c, _) => c.take_slots(destination, &windows).await?,
        };
        Ok(match refused {
            None => Pace::Go,
            Some((name, wait_ms)) => {
                let wait = Duration::from_millis(wait_ms.max(1) as u64);
                if name == MAX_PER_MINUTE {
                    Pace::OverLimit(wait)
                } else {
                    Pace::Wait(wait)
                }
            }
        })
    }

    /// Whether this process sends `destination`'s digest now: true at most
    /// once per `every`, whichever replica asks first.
    pub async fn digest_turn(
        &self,
        destination: &str,
        every: Duration,
    ) -> Result<bool, StoreError> {
        let every_ms = every.as_millis() as i64;
        match self {
            Coordinator::Local(l) => {
                let now = now_ms();
                Ok(l.with(destination, |d| {
                    // A tenth of the interval early still counts, as in
                    // the database, so timer jitter does not skip a turn.
                    if d.next_digest_at <= now + every_ms / 10 {
                        d.next_digest_at = now + every_ms;
                        true
                    } else {
                        false
                    }
                }))
            }
            Coordinator::Database(c, _) => c.digest_turn(destination, every_ms).await,
        }
    }

    /// Records the latest real event seen on `hook` at `seen`; when that
    /// ends a silence, when the hook was last heard from before it (one
    /// caller gets it). Clocks are kept in the spool by both backends, so
    /// a silence survives a restart.
    pub async fn clock_seen(&self, hook: &str, seen: i64) -> Result<Option<i64>, StoreError> {
        self.store().clock_seen(hook, seen).await
    }

    /// Starts `hook`'s clock if it has none, and marks it silent (once)
    /// when nothing was heard for `within_ms`.
    pub async fn clock_check(
        &self,
        hook: &str,
        now: i64,
        within_ms: i64,
    ) -> Result<ClockCheck, StoreError> {
        self.store().clock_check(hook, now, within_ms).await
    }
}

/// The name `max_per_minute`'s window is kept under (also in the database).
const MAX_PER_MINUTE: &str = "max_per_minute";

/// The windows a send counts against, in the order they are checked.
fn windows(limits: Limits, sending: Sending) -> Vec<SendWindow> {
    let minute = limits
        .max_per_minute
        .filter(|_| sending == Sending::Message)
        .map(|n| SendWindow {
            name: MAX_PER_MINUTE,
            limit: n,
            window_ms: MINUTE.as_millis() as i64,
        });
    let rate = limits.rate.map(|r| SendWindow {
        name: "rate",
        limit: r.count,
        window_ms: r.per.as_millis() as i64,
    });
    minute.into_iter().chain(rate).collect()
}

/// The in-process coordination (one process holds all the work).
pub struct Local {
    /// Silence clocks live in the spool.
    store: Store,
    destinations: Mutex<HashMap<String, DestinationState>>,
    /// Pauses, for the workers (a worker that replaces another on reload
    /// hears of it too).
    wake: broadcast::Sender<String>,
}

impl Local {
    fn new(store: Store) -> Local {
        Local {
            store,
            destinations: Mutex::new(HashMap::new()),
            wake: broadcast::channel(64).0,
        }
    }

    fn with<T>(&self, destination: &str, f: impl FnOnce(&mut DestinationState) -> T) -> T {
        let mut map = self.destinations.lock().unwrap_or_else(|p| p.into_inner());
        if !map.contains_key(destination) {
            map.insert(destination.to_owned(), DestinationState::default());
        }
        // Inserted just above when missing.
        f(map.get_mut(destination).expect("present"))
    }
}

/// One destination's state, kept across worker restarts (reloads).
#[derive(Default)]
struct DestinationState {
    paused_until: i64,
    next_digest_at: i64,
    /// Send times per window name.
    sent: HashMap<&'static str, VecDeque<Instant>>,
}

impl DestinationState {
    /// Takes a slot in every window, or none: `Some((name, wait_ms))` for
    /// the first window that is full.
    fn take(&mut self, windows: &[SendWindow], now: Instant) -> Option<(&'static str, i64)> {
        for w in windows {
            let sent = self.sent.entry(w.name).or_default();
            let per = Duration::from_millis(w.window_ms as u64);
            while sent
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= per)
            {
                sent.pop_front();
            }
            let limit = w.limit.max(1) as usize;
            if sent.len() >= limit {
                // The send that leaves the window first makes room.
                let oldest = sent[sent.len() - limit];
                let wait = per.saturating_sub(now.saturating_duration_since(oldest));
                return Some((w.name, wait.as_millis() as i64));
            }
        }
        for w in windows {
            self.sent.entry(w.name).or_default().push_back(now);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(windows: &[(&'static str, u32, i64)], sends: &[(u64, Option<&str>)]) {
        let windows: Vec<SendWindow> = windows
            .iter()
            .map(|&(name, limit, window_ms)| SendWindow {
                name,
                limit,
                window_ms,
            })
            .collect();
        let t0 = Instant::now();
        let mut d = DestinationState::default();
        for (i, (at_ms, want)) in sends.iter().enumerate() {
            let got = d.take(&windows, t0 + Duration::from_millis(*at_ms));
            assert_eq!(got.map(|(n, _)| n), *want, "send {i} at {at_ms} ms");
        }
    }

    #[test]
    fn a_sliding_window_holds_at_most_n_in_any_period() {
        check(
            &[("rate", 2, 1000)],
            &[
                (0, None),
                (100, None),
                (200, Some("rate")),
                (999, Some("rate")),
                (1000, None),
                (1050, Some("rate")),
                (1100, None),
            ],
        );
    }

    #[test]
    fn a_refusal_takes_no_slot_in_any_window() {
        // Two per second, four per minute: the refused sends at 10–30 ms
        // must not use minute slots, so two more go out after a second.
        check(
            &[(MAX_PER_MINUTE, 4, 60_000), ("rate", 2, 1000)],
            &[
                (0, None),
                (0, None),
                (10, Some("rate")),
                (20, Some("rate")),
                (30, Some("rate")),
                (1000, None),
                (1000, None),
                (2000, Some(MAX_PER_MINUTE)),
            ],
        );
    }

    #[test]
    fn the_wait_is_until_the_oldest_counted_send_leaves() {
        let t0 = Instant::now();
        let mut d = DestinationState::default();
        let w = [SendWindow {
            name: "rate",
            limit: 2,
            window_ms: 1000,
        }];
        d.take(&w, t0);
        d.take(&w, t0 + Duration::from_millis(300));
        assert_eq!(
            d.take(&w, t0 + Duration::from_millis(400)),
            Some(("rate", 600))
        );
        // A lower limit after a reload counts what was sent before.
        let w1 = [SendWindow {
            name: "rate",
            limit: 1,
            window_ms: 1000,
        }];
        assert_eq!(
            d.take(&w1, t0 + Duration::from_millis(400)),
            Some(("rate", 900))
        );
    }

    #[test]
    fn digests_skip_max_per_minute_but_not_rate() {
        let limits = Limits {
            max_per_minute: Some(5),
            rate: Some(Rate {
                count: 1,
                per: Duration::from_secs(1),
            }),
        };
        let names = |s| -> Vec<&str> { windows(limits, s).iter().map(|w| w.name).collect() };
        assert_eq!(names(Sending::Message), [MAX_PER_MINUTE, "rate"]);
        assert_eq!(names(Sending::Digest), ["rate"]);
    }
}
