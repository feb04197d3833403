//! Messages that always fit: the helpers each kind's `fit.rs` uses
//! (`destinations/<kind>/fit.rs` holds its service's limits), applied to
//! a built-in message after rendering, so a huge alert (a 100 KB title,
//! hundreds of assets, a digest of thousands) never bounces off a channel
//! (Slack `invalid_blocks` / `msg_too_long`, Teams' 28 KB Workflows limit,
//! Discord's 6,000 characters per embed, Mattermost's 16,383 per post).
//!
//! Text is cut first (with "…"); if that is not enough, the least
//! important parts go (extra sections, then facts other than urgency,
//! status and the alert), always keeping the title, urgency, status and
//! the link. Pure.

use super::escape::truncate;
use serde_json::Value;

pub fn chars(v: &Value) -> usize {
    v.as_str().map_or(0, |s| s.chars().count())
}

/// Cuts the string at JSON pointer `at` under `v` to `max` characters;
/// nothing happens when there is none (indexing would insert a null).
pub fn cut(v: &mut Value, at: &str, max: usize) {
    if let Some(slot) = v.pointer_mut(at) {
        if let Some(s) = slot.as_str() {
            if s.chars().count() > max {
                *slot = Value::String(truncate(s, max));
            }
        }
    }
}
