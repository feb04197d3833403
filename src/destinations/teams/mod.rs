//! Microsoft Teams through a Workflows webhook: an Adaptive Card in a
//! message envelope (or a bare card, `shape = "card"`).

pub mod fit;
pub mod render;

use super::Kind;
use crate::config::{DestinationConfig, TeamsShape};
use crate::render::Facts;
use serde_json::Value;

pub struct Teams;

impl Kind for Teams {
    fn render(&self, facts: &Facts, _doc: &dyn Fn() -> Value) -> Value {
        render::render(facts)
    }

    fn render_string(
        &self,
        dest: &DestinationConfig,
        facts: &Facts,
        doc: &dyn Fn() -> Value,
    ) -> String {
        if dest.shape == Some(TeamsShape::Card) {
            // A bare Adaptive Card, for flows that want one.
            let mut v = self.render(facts, doc);
            v = v["attachments"][0]["content"].take();
            self.fit(&mut v);
            return v.to_string();
        }
        // The hot path: serialized straight to a string, unless it must be cut.
        let text = render::render_string(facts);
        if text.len() <= fit::TEAMS_BYTES {
            return text;
        }
        let mut v = self.render(facts, doc);
        self.fit(&mut v);
        v.to_string()
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
}
