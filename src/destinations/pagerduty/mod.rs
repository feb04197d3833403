//! PagerDuty Events API v2: one incident per alert (`dedup_key` = the
//! alert's uuid), triggered, acknowledged and resolved with it, in order.
//! The routing key is added when the request is made (the spool never
//! holds it).

pub mod render;

use super::common::stored;
use super::{HttpRequest, Kind, Reach};
use crate::config::DestinationConfig;
use crate::render::Facts;
use serde_json::Value;

pub struct Pagerduty;

impl Kind for Pagerduty {
    fn render(&self, facts: &Facts, doc: &dyn Fn() -> Value) -> Value {
        render::pagerduty(facts, &doc())
    }

    fn in_order(&self) -> bool {
        true
    }

    fn request(
        &self,
        dest: &DestinationConfig,
        request: &mut HttpRequest,
        _id: &str,
        payload: &str,
    ) -> Result<(), String> {
        let mut event = stored(payload)?;
        let key = dest.routing_key.as_ref().ok_or("no routing_key")?;
        event["routing_key"] = serde_json::json!(key.expose());
        request.body = event.to_string();
        Ok(())
    }

    fn reach(&self, dest: &DestinationConfig) -> Option<Reach> {
        // Without api_url it goes to PagerDuty's own endpoint.
        dest.api_url.clone().map(|u| Reach::Url("api_url", u))
    }
}
