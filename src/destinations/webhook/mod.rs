//! Any URL: the hookrelay message document (or a template), optionally
//! signed the Standard Webhooks way (the signature is added by the
//! shared request, `common::sink`, for any kind with a `secret`).

use super::Kind;
use crate::render::Facts;
use serde_json::Value;

pub struct Webhook;

impl Kind for Webhook {
    fn render(&self, _facts: &Facts, doc: &dyn Fn() -> Value) -> Value {
        doc()
    }

    fn action_buttons(&self) -> bool {
        true
    }
}
