//! `preview` (route and render, send nothing) and `send-test`.

use super::fail;
use crate::config::Config;
use crate::destinations::own_message;
use crate::destinations::{Outcome, Sink};
use crate::enrich::{Alert, Enricher};
use crate::preview::AlertSource;
use crate::render::Facts;
use crate::telemetry::Metrics;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

pub async fn preview(
    config: Config,
    event_file: &Path,
    alert_file: Option<&Path>,
    hook: Option<String>,
    only: Option<String>,
) -> ExitCode {
    let body = match std::fs::read(event_file) {
        Ok(b) => b,
        Err(e) => return fail(format!("--event {}: {e}", event_file.display())),
    };
    let enricher;
    let alert = match alert_file {
        Some(path) => {
            let parsed = std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
                .and_then(Alert::from_value);
            match parsed {
                Ok(alert) => AlertSource::Given(Box::new(alert)),
                Err(e) => return fail(format!("--alert {}: {e}", path.display())),
            }
        }
        None => {
            enricher = Enricher::new(
                &config.origins,
                crate::http::client(),
                Arc::new(Metrics::new()),
            );
            AlertSource::Fetch(&enricher)
        }
    };
    let p = match crate::preview::preview(
        &config,
        &body,
        alert,
        hook.as_deref(),
        only.as_deref(),
        None,
    )
    .await
    {
        Ok(p) => p,
        Err(e) if e.starts_with("event: ") => {
            let e = e.strip_prefix("event: ").unwrap_or(&e);
            return fail(format!("--event {}: {e}", event_file.display()));
        }
        Err(e) if e.starts_with("hook: ") => return fail(format!("--{e}")),
        Err(e) => return fail(e),
    };
    for note in &p.notes {
        eprintln!("note: {note}");
    }
    say!("routing (hook {}):", p.hook);
    for d in &p.decisions {
        let mark = if d.matched { "matched" } else { "no" };
        say!("  {mark:<7} {}: {}", d.route, d.reason);
    }
    say!();
    if p.outputs.is_empty() && only.is_none() {
        say!(
            "no route matches this event (hook {}): it would be stored and counted as unrouted",
            p.hook
        );
        return ExitCode::SUCCESS;
    }
    for o in &p.outputs {
        // The text ends its own last line.
        say!(
            "=== {} ({}) via route {:?}\n{}",
            o.destination,
            o.kind,
            o.route,
            o.text.strip_suffix('\n').unwrap_or(&o.text)
        );
    }
    if p.outputs.iter().any(|o| o.failed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

pub async fn send_test(config: Config, destination: &str) -> ExitCode {
    let destinations = match crate::destinations::destinations(&config) {
        Ok((d, _)) => d,
        Err(errors) => return fail(errors.to_string()),
    };
    let Some(built) = destinations.get(destination) else {
        return fail(format!(
            "--destination: no destination named {destination:?} (have: {})",
            config
                .destinations
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let payload = own_message(
        built,
        destination,
        "test",
        &Facts::test_message(destination),
    );
    let dest = &built.config;
    let sink = Sink::new(Arc::new(dest.clone()), crate::http::client(), 1);
    let id = format!("msg_test_{}", uuid::Uuid::new_v4().simple());
    let (outcome, took) = sink.send(&id, &payload).await;
    let target = sink.target();
    match outcome {
        Outcome::Delivered { status } => {
            let what = if sink.kind().smtp() { "SMTP" } else { "HTTP" };
            say!(
                "delivered to {destination} ({target}): {what} {status} in {} ms",
                took.as_millis()
            );
            ExitCode::SUCCESS
        }
        Outcome::Retry { error, .. } => fail(format!(
            "{destination} ({target}): temporary failure, the daemon would retry: {error}"
        )),
        Outcome::Permanent { error, .. } => fail(format!(
            "{destination} ({target}): rejected, the daemon would dead-letter it: {error}"
        )),
    }
}
