//! Discord through a webhook: an embed with the urgency colour; mentions
//! are role ids.

pub mod fit;
pub mod render;

use super::common::{classify_http, retry_after_in_body};
use super::{Kind, Outcome};
use crate::render::Facts;
use serde_json::Value;
use std::time::Duration;

pub struct Discord;

impl Kind for Discord {
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
        // Discord says how long to wait in its JSON body too (seconds).
        let retry_after = match (status, retry_after) {
            (429, None) => retry_after_in_body(body, "retry_after", 1.0),
            _ => retry_after,
        };
        classify_http(status, body, retry_after)
    }
}
