//! ntfy: a phone push through JSON publishing. `url` is the server and
//! the topic; the request goes to the server's root with the topic in the
//! body, with an access token or a user name and password.

pub mod render;

use super::common::stored;
use super::{HttpRequest, Kind};
use crate::config::DestinationConfig;
use crate::render::Facts;
use serde_json::Value;

pub struct Ntfy;

impl Kind for Ntfy {
    fn render(&self, facts: &Facts, _doc: &dyn Fn() -> Value) -> Value {
        render::ntfy(facts)
    }

    fn request(
        &self,
        dest: &DestinationConfig,
        request: &mut HttpRequest,
        _id: &str,
        payload: &str,
    ) -> Result<(), String> {
        let mut url = request.url.clone();
        let topic = url
            .path_segments()
            .and_then(|mut s| s.next_back().map(str::to_owned))
            .filter(|t| !t.is_empty())
            .ok_or("the ntfy url has no topic (https://ntfy.example.org/<topic>)")?;
        url.path_segments_mut()
            .map_err(|_| "not a server URL".to_owned())?
            .pop();
        let mut message = stored(payload)?;
        message["topic"] = serde_json::json!(topic);
        request.url = url;
        request.body = message.to_string();
        if let Some(token) = &dest.token {
            request.authorize(format!("Bearer {}", token.expose()));
        } else if let (Some(user), Some(password)) = (&dest.username, &dest.password) {
            use base64::Engine;
            let basic = base64::engine::general_purpose::STANDARD
                .encode(format!("{user}:{}", password.expose()));
            request.authorize(format!("Basic {basic}"));
        }
        Ok(())
    }
}
