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

/// At most `limit` sends in any `window` (a sliding window).
#[derive(Debug)]
pub struct SlidingWindow {
    limit: usize,
    window: Duration,
    sent: std::collections::VecDeque<Instant>,
}

impl SlidingWindow {
    pub fn new(limit: u32, window: Duration) -> Self {
        SlidingWindow {
            limit: limit.max(1) as usize,
            window,
            sent: std::collections::VecDeque::new(),
        }
    }

    /// Whether one more send fits now, or how long until it does.
    pub fn check(&mut self, now: Instant) -> Result<(), Duration> {
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= self.window)
        {
            self.sent.pop_front();
        }
        match self.sent.front() {
            Some(oldest) if self.sent.len() >= self.limit => {
                Err(self.window - now.saturating_duration_since(*oldest))
            }
            _ => Ok(()),
        }
    }

    pub fn record(&mut self, now: Instant) {
        self.sent.push_back(now);
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
    fn sliding_window_holds_the_excess() {
        let t0 = Instant::now();
        let mut w = SlidingWindow::new(2, Duration::from_secs(60));
        for _ in 0..2 {
            w.check(t0).unwrap();
            w.record(t0);
        }
        assert_eq!(
            w.check(t0 + Duration::from_secs(10)),
            Err(Duration::from_secs(50))
        );
        assert!(w.check(t0 + Duration::from_secs(60)).is_ok());
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
