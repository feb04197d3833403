//! Retry back-off. (Proactive pacing — `rate`, `max_per_minute`, pauses —
//! is the deployment's, in [`crate::coord`].)

use rand::Rng;
use std::time::Duration;

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
