//! Retry back-off, and what a worker keeps of its destination's pacing.
//! (The send windows — `rate`, `max_per_minute` — and pauses shared by
//! every replica are the deployment's, in [`crate::coord`].)

use crate::coord::Limits;
use rand::Rng;
use std::time::Duration;
use tokio::time::Instant;

/// A worker's pacing: its send windows, and the pause the destination
/// asked for.
pub(super) struct Pacing {
    pub limits: Limits,
    /// The target asked us to slow down (429 / Retry-After) until then.
    pub paused_until: Option<Instant>,
}

impl Pacing {
    pub fn new(limits: Limits) -> Pacing {
        Pacing {
            limits,
            paused_until: None,
        }
    }

    pub fn paused(&self) -> bool {
        self.paused_until.is_some()
    }

    /// Pauses until `until`, or later if already paused longer.
    pub fn pause_until(&mut self, until: Instant) {
        self.paused_until = Some(self.paused_until.map_or(until, |u| u.max(until)));
    }

    /// Ends a pause that is over; else makes sure the loop wakes at its end.
    pub fn lift(&mut self, now: Instant, wake_at: &mut Instant) {
        if let Some(p) = self.paused_until {
            if p <= now {
                self.paused_until = None;
            } else {
                *wake_at = (*wake_at).min(p);
            }
        }
    }
}

/// Exponential back-off with full jitter: uniform in `[0, min(max, initial ·
/// 2^(attempt-1))]`, never less than a tenth of the initial back-off.
pub fn backoff(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let ceiling = initial.saturating_mul(1u32 << exp).min(max);
    let floor = (initial / 10).min(ceiling);
    rand::thread_rng().gen_range(floor..=ceiling)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let i = Duration::from_secs(1);
        let m = Duration::from_secs(10);
        for _ in 0..100 {
            assert!(backoff(1, i, m) <= i);
            assert!(backoff(3, i, m) <= Duration::from_secs(4));
            assert!(backoff(30, i, m) <= m);
            assert!(backoff(30, i, m) >= Duration::from_millis(100));
        }
    }
}
