//! Retry back-off and proactive pacing. Pure apart from reading the clock
//! passed in.

use crate::config::Rate;
use rand::Rng;
use std::time::{Duration, Instant};

/// Exponential back-off with full jitter: uniform in `[0, min(max, initial ·
/// 2^(attempt-1))]`, never less than a tenth of the initial back-off.
pub fn backoff(attempt: u32, initial: Duration, max: Duration) -> Duration {
    let exp = attempt.saturating_sub(1).min(30);
    let ceiling = initial.saturating_mul(1u32 << exp).min(max);
    let floor = (initial / 10).min(ceiling);
    rand::thread_rng().gen_range(floor..=ceiling)
}

/// A token bucket whose burst is the rate's count.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    tokens: f64,
    per_token: Duration,
    last: Instant,
}

impl TokenBucket {
    pub fn new(rate: Rate, now: Instant) -> Self {
        let capacity = f64::from(rate.count);
        TokenBucket {
            capacity,
            tokens: capacity,
            per_token: rate.per / rate.count,
            last: now,
        }
    }

    /// Takes a token, or says how long until one is available.
    pub fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens =
            (self.tokens + elapsed.as_secs_f64() / self.per_token.as_secs_f64()).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(self.per_token.mul_f64(1.0 - self.tokens))
        }
    }
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

    #[test]
    fn bucket_bursts_then_paces() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(
            Rate {
                count: 2,
                per: Duration::from_secs(1),
            },
            t0,
        );
        assert!(b.try_take(t0).is_ok());
        assert!(b.try_take(t0).is_ok());
        let wait = b.try_take(t0).unwrap_err();
        assert!(wait <= Duration::from_millis(500) && wait > Duration::from_millis(400));
        assert!(b.try_take(t0 + Duration::from_millis(500)).is_ok());
    }
}
