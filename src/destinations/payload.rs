//! A destination's payload: what the spool keeps for one delivery, the
//! built-in message of its kind or its templates' output, and the messages
//! hookrelay makes itself. Pure: no IO, no clock.

use super::{of, Destination};
use crate::config::DestinationKind;
use crate::enrich::Enrichment;
use crate::event::Event;
use crate::render::{context, thread, truncate, Facts, RenderError};
use serde_json::Value;

/// The built-in message for a destination kind. `doc` is the hookrelay
/// message document ([`context`]), built only when a kind needs it.
pub fn render(kind: DestinationKind, facts: &Facts, doc: &dyn Fn() -> Value) -> Value {
    of(kind).render(facts, doc)
}

/// What the spool keeps for one delivery: the built-in message, or the
/// destination's template rendered with the message document. `Err` is
/// why it cannot be rendered: the delivery is dead-lettered with that
/// reason.
pub fn payload(
    dest: &Destination,
    facts: &Facts,
    doc: &dyn Fn() -> Value,
) -> Result<String, RenderError> {
    let kind = dest.kind();
    let Some(templates) = &dest.templates else {
        return Ok(kind.render_string(&dest.config, facts, doc));
    };
    let ctx = doc();
    if let Some(message) = kind.templated(templates, facts, &ctx) {
        return message;
    }
    match templates.body(&ctx) {
        None => Ok(kind.render(facts, &|| ctx.clone()).to_string()),
        Some(out) => {
            let out = out.map_err(RenderError::Template)?;
            let value: Value =
                serde_json::from_str(&out).map_err(|e| RenderError::InvalidJson {
                    template: dest
                        .config
                        .template
                        .as_deref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default(),
                    error: e.to_string(),
                    start: truncate(&out, 120),
                })?;
            Ok(value.to_string())
        }
    }
}

/// The payload of one routed event's delivery: [`payload`] with the
/// message document of that event, built only if the destination needs it.
pub fn event_payload(
    dest: &Destination,
    event: &Event,
    enrichment: &Enrichment,
    facts: &Facts,
    target: context::Target,
) -> Result<String, RenderError> {
    let config = &dest.config;
    let kind = dest.kind();
    if kind.threaded(config) && event.thread_key().is_some() {
        let root = facts.as_root_of(match event.subject() {
            crate::event::Subject::Case => "case",
            _ => "alert",
        });
        let message = payload(dest, &root, &|| {
            context::for_event(event, enrichment, &root, target)
        })?;
        return Ok(
            match thread::Threaded::build(event, enrichment, facts, &message) {
                Some(t) => t.wrap(),
                None => message,
            },
        );
    }
    let compact;
    let facts = if is_update(event) && !kind.api_mode(config) && kind.compact_updates() {
        compact = facts.compact();
        &compact
    } else {
        facts
    };
    payload(dest, facts, &|| {
        context::for_event(event, enrichment, facts, target)
    })
}

/// A later event in an alert's life (a change, a comment), as opposed to
/// its creation.
fn is_update(event: &Event) -> bool {
    (event.alert_uuid.is_some()
        && !(event.is_alert() && event.action == "created")
        && (event.is_alert() || event.kind == "alert-comment"))
        || (event.is_case() && event.action != "created")
}

/// A message hookrelay makes itself (`"digest"`, `"test"`) for
/// destination `name`. A template that fails on it is logged and the
/// built-in message is sent instead: held alerts must still reach people.
pub fn own_message(dest: &Destination, name: &str, kind: &str, facts: &Facts) -> String {
    let doc = || {
        context::for_message(
            kind,
            facts,
            context::Target {
                hook: None,
                route: None,
                destination: name,
            },
        )
    };
    payload(dest, facts, &doc).unwrap_or_else(|reason| {
        tracing::error!(message = "The destination's template cannot render this message; sending the built-in one.", destination = %name, kind, error = %reason);
        dest.kind().render(facts, &doc).to_string()
    })
}

/// Renders a destination's templates with sample messages (the fixture
/// alert, the same event with its alert unavailable, a digest) and returns
/// what went wrong, for `check` to warn about before a real alert is
/// dead-lettered by it.
pub(crate) fn trial(dest: &Destination, name: &str) -> Vec<String> {
    use crate::enrich::{Alert, Enrichment};
    const EVENT: &str = include_str!("../../tests/fixtures/event-alert-created.json");
    const ALERT: &str = include_str!("../../tests/fixtures/alert-full.json");
    const LINK: &str = "https://app.sekoia.io/operations/alerts/{short_id}";
    let Ok(event) = crate::event::parse(EVENT.as_bytes()) else {
        return Vec::new();
    };
    let fetched = match Alert::from_slice(ALERT.as_bytes()) {
        Ok(a) => Enrichment::Fetched(std::sync::Arc::new(a)),
        Err(_) => return Vec::new(),
    };
    let unavailable =
        Enrichment::Unavailable("timeout (sample: the alert API did not answer)".into());
    let target = context::Target {
        hook: Some("sample"),
        route: Some("sample"),
        destination: name,
    };
    let mut problems = Vec::new();
    for (what, enrichment) in [
        ("a sample alert", &fetched),
        ("a sample event whose alert is unavailable", &unavailable),
    ] {
        let facts = Facts::build(&event, enrichment, Some(LINK));
        if let Err(e) = event_payload(dest, &event, enrichment, &facts, target) {
            problems.push(format!("fails on {what}: {e}"));
        }
    }
    let digest = Facts::digest(&[], std::time::Duration::from_secs(60), None);
    if let Err(e) = payload(dest, &digest, &|| {
        context::for_message("digest", &digest, target)
    }) {
        problems.push(format!(
            "fails on a digest (the built-in message is sent instead): {e}"
        ));
    }
    problems
}
