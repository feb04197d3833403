//! E-mail over SMTP: a multipart text + HTML message (`render.rs`), sent
//! through a pooled SMTP connection (`smtp.rs`, lettre). Its Message-ID
//! is the delivery's id, so a retry is recognisably the same message.

pub mod render;
pub mod smtp;

use super::{Kind, Reach};
use crate::config::DestinationConfig;
use crate::render::{Escape, Facts, RenderError, Templates};
use serde_json::Value;

pub struct Email;

impl Kind for Email {
    fn render(&self, facts: &Facts, _doc: &dyn Fn() -> Value) -> Value {
        render::render(facts)
    }

    fn render_string(
        &self,
        dest: &DestinationConfig,
        facts: &Facts,
        doc: &dyn Fn() -> Value,
    ) -> String {
        let mut v = self.render(facts, doc);
        // A tenant's subject: plain text with placeholders, never
        // compiled (see `destination::compile`).
        if let (Some(pattern), Some(_)) = (&dest.subject, &dest.tenant) {
            v["subject"] = Value::String(render::plain_subject(pattern, facts));
        }
        v.to_string()
    }

    fn templated(
        &self,
        templates: &Templates,
        facts: &Facts,
        ctx: &Value,
    ) -> Option<Result<String, RenderError>> {
        let message = || -> Result<String, RenderError> {
            let subject = templates
                .subject(ctx)
                .transpose()
                .map_err(RenderError::Template)?
                .unwrap_or_else(|| render::subject(facts));
            let html = templates
                .body(ctx)
                .transpose()
                .map_err(RenderError::Template)?
                .unwrap_or_else(|| render::html(facts));
            Ok(
                serde_json::json!({"subject": subject, "text": render::text(facts), "html": html})
                    .to_string(),
            )
        };
        Some(message())
    }

    fn template_escape(&self) -> Escape {
        Escape::Html
    }

    fn takes_subject(&self) -> bool {
        true
    }

    fn action_buttons(&self) -> bool {
        true
    }

    fn carries_delivery_id(&self, _dest: &DestinationConfig) -> bool {
        true
    }

    fn smtp(&self) -> bool {
        true
    }

    fn reach(&self, dest: &DestinationConfig) -> Option<Reach> {
        let tls = dest.tls.unwrap_or_default();
        dest.host.as_ref().map(|h| {
            Reach::Host(
                "host",
                h.trim().to_owned(),
                dest.port.unwrap_or(tls.default_port()),
            )
        })
    }
}
