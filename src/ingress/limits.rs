//! The small bounded counters request handlers share: requests per
//! client address per minute, rejection log lines per second, chat
//! interactions carried out at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Requests per client address in the current minute, for pages a person
/// opens (action pages, console logins). Bounded: the map is cleared of
/// past minutes when it grows past what one minute of a flood leaves.
#[derive(Default)]
pub struct PerMinute {
    seen: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (std::time::Instant, u32)>>,
}

impl PerMinute {
    /// Counts a request from `ip`; whether it is within `limit` this minute.
    pub fn allow(&self, ip: std::net::IpAddr, limit: u32) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if seen.len() > 10_000 {
            seen.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let entry = seen.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= limit
    }
}

/// At most one rejection log line per second (the metrics count them all).
#[derive(Default)]
pub struct LogLimiter {
    last_second: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimiter {
    pub(super) fn log(&self, hook: &str, reason: &str, status: u16, message: &str) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let last = self.last_second.load(Ordering::Relaxed);
        if last != now
            && self
                .last_second
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let suppressed = self.suppressed.swap(0, Ordering::Relaxed);
            tracing::warn!(
                message = "Request rejected.",
                hook,
                reason,
                status,
                error = message,
                suppressed_since_last = suppressed
            );
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Chat interactions carried out at once after their answer; more wait
/// for none: they are answered 503 (Retry-After).
pub(super) const INTERACTIONS_AT_ONCE: usize = 32;
/// The chat interactions being carried out after their answer (Slack and
/// Mattermost buttons): a fixed number of slots, so a flood of clicks
/// cannot start unbounded work.
pub struct Interactions {
    slots: Arc<Semaphore>,
}

impl Default for Interactions {
    fn default() -> Self {
        Interactions {
            slots: Arc::new(Semaphore::new(INTERACTIONS_AT_ONCE)),
        }
    }
}

impl Interactions {
    /// A free slot, held until the work is done; `None` when all are taken.
    pub(super) fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }
}
