//! Google Chat through a space's webhook: a formatted text message.

pub mod render;

use super::Kind;
use crate::render::Facts;
use serde_json::Value;

pub struct GoogleChat;

impl Kind for GoogleChat {
    fn render(&self, facts: &Facts, _doc: &dyn Fn() -> Value) -> Value {
        render::render(facts)
    }

    fn compact_updates(&self) -> bool {
        true
    }

    fn action_buttons(&self) -> bool {
        true
    }
}
