//! Matrix: an `m.room.message` through the client-server API, sent with
//! `PUT …/send/m.room.message/{txn}` where the transaction id is the
//! delivery's id, so a retry never posts twice.

pub mod render;

use super::common::{classify_http, parse_url, retry_after_in_body, stored};
use super::{HttpRequest, Kind, Outcome, Reach};
use crate::config::DestinationConfig;
use crate::render::Facts;
use serde_json::Value;
use std::time::Duration;

pub struct Matrix;

impl Kind for Matrix {
    fn render(&self, facts: &Facts, _doc: &dyn Fn() -> Value) -> Value {
        render::matrix(facts)
    }

    fn compact_updates(&self) -> bool {
        true
    }

    fn carries_delivery_id(&self, _dest: &DestinationConfig) -> bool {
        true
    }

    fn request(
        &self,
        dest: &DestinationConfig,
        request: &mut HttpRequest,
        id: &str,
        payload: &str,
    ) -> Result<(), String> {
        // Every message carries `m.mentions`, which exempts it from the
        // push rules that notify whoever the body names: the built-in
        // message sets it, an operator's template or a message stored by an
        // older version may not.
        if let Ok(Value::Object(mut m)) = stored(payload) {
            if !m.contains_key("m.mentions") {
                m.insert("m.mentions".into(), serde_json::json!({}));
                request.body = Value::Object(m).to_string();
            }
        }
        request.method = reqwest::Method::PUT;
        let txn: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
        request.url = parse_url(&format!("{}{txn}", request.url))?;
        let token = dest.access_token.as_ref().ok_or("no access_token")?;
        request.authorize(format!("Bearer {}", token.expose()));
        Ok(())
    }

    fn classify(&self, status: u16, body: &[u8], retry_after: Option<Duration>) -> Outcome {
        // Matrix says how long to wait in its JSON body too (ms).
        let retry_after = match (status, retry_after) {
            (429, None) => retry_after_in_body(body, "retry_after_ms", 1000.0),
            _ => retry_after,
        };
        classify_http(status, body, retry_after)
    }

    fn reach(&self, dest: &DestinationConfig) -> Option<Reach> {
        dest.homeserver.clone().map(|u| Reach::Url("homeserver", u))
    }
}
