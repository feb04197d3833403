//! Microsoft Teams through an Office 365 connector: a MessageCard.
//! Microsoft has retired these connectors; the answers say so.

pub mod fit;
pub mod render;

use super::common::classify_http;
use super::{Kind, Outcome};
use crate::http::excerpt;
use crate::render::Facts;
use serde_json::Value;
use std::time::Duration;

pub struct TeamsLegacy;

impl Kind for TeamsLegacy {
    fn render(&self, facts: &Facts, _doc: &dyn Fn() -> Value) -> Value {
        render::render(facts)
    }

    fn fit(&self, v: &mut Value) {
        fit::fit(v)
    }

    fn compact_updates(&self) -> bool {
        true
    }

    fn action_buttons(&self) -> bool {
        true
    }

    fn classify(&self, status: u16, body: &[u8], retry_after: Option<Duration>) -> Outcome {
        let text = excerpt(body);
        // Microsoft retired Office 365 connectors: a legacy webhook answers
        // 403 for good. Say what to do instead of only "HTTP 403".
        if status == 403 {
            return Outcome::Permanent {
                status: Some(403),
                error: format!(
                    "HTTP 403: {text} (Microsoft has retired Office 365 connectors; use kind = \"teams\" with a Workflows webhook URL)"
                ),
            };
        }
        // Legacy Teams connectors report throttling inside a 200/4xx body.
        if text.contains("HTTP error 429") {
            return Outcome::Retry {
                status: Some(429),
                error: format!("HTTP {status}: {text}"),
                retry_after,
                throttled: true,
            };
        }
        classify_http(status, body, retry_after)
    }
}
