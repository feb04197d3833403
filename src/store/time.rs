//! The spool's clock: instants are stored as milliseconds since the epoch.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch: the spool's clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A stored instant (unix ms) as RFC 3339 to the second, for people.
/// Never fails: an instant no calendar can show (past year 9999, which a
/// silence of `--for 100000y` reaches) is printed as its number.
pub fn format_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms.max(0))
        .ok()
        .and_then(|t| jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", t).ok())
        .unwrap_or_else(|| format!("{ms} ms after 1970"))
}
