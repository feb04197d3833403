//! Opsgenie Alert API: one alert per alert (`alias` = its uuid), created,
//! acknowledged, closed, with notes for other updates, in order. The
//! endpoint follows the stored `op`; the API key is added when the request
//! is made.

pub mod render;

use super::common::{parse_url, stored};
use super::{HttpRequest, Kind, Reach};
use crate::config::DestinationConfig;
use crate::render::Facts;
use serde_json::Value;

pub struct Opsgenie;

impl Kind for Opsgenie {
    fn render(&self, facts: &Facts, doc: &dyn Fn() -> Value) -> Value {
        render::opsgenie(facts, &doc())
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
        let message = stored(payload)?;
        let alias = message["alias"].as_str();
        let path = match (message["op"].as_str(), alias) {
            (Some("create"), _) => "/v2/alerts".to_owned(),
            (Some(op @ ("acknowledge" | "close")), Some(alias)) => {
                format!("/v2/alerts/{alias}/{op}?identifierType=alias")
            }
            (Some("note"), Some(alias)) => {
                format!("/v2/alerts/{alias}/notes?identifierType=alias")
            }
            _ => return Err("the stored Opsgenie message has no known op".into()),
        };
        request.url = parse_url(&format!(
            "{}{path}",
            request.url.as_str().trim_end_matches('/')
        ))?;
        request.body = message["body"].to_string();
        let key = dest.api_key.as_ref().ok_or("no api_key")?;
        request.authorize(format!("GenieKey {}", key.expose()));
        Ok(())
    }

    fn reach(&self, dest: &DestinationConfig) -> Option<Reach> {
        // Without api_url it goes to Opsgenie's own endpoint.
        dest.api_url.clone().map(|u| Reach::Url("api_url", u))
    }
}
