//! `preview` (route and render, send nothing) and `send-test`.

use super::fail;
use crate::config::Config;
use crate::enrich::{Alert, Enricher, Enrichment};
use crate::render::{render, Facts};
use crate::route::route;
use crate::sinks::{self, Outcome};
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
    let event = match crate::event::parse(&body) {
        Ok(e) => e,
        Err(e) => return fail(format!("--event {}: {e}", event_file.display())),
    };
    let hook_name = match hook.or_else(|| config.hooks.keys().next().cloned()) {
        Some(h) if config.hooks.contains_key(&h) => h,
        Some(h) => return fail(format!("--hook: no hook named {h:?}")),
        None => return fail("the configuration defines no hook"),
    };
    let origin_name = config.hooks[&hook_name].origin.clone();
    let enrichment = match alert_file {
        Some(path) => {
            let parsed = std::fs::read(path)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
                .and_then(Alert::from_value);
            match parsed {
                Ok(alert) => Enrichment::Fetched(Arc::new(alert)),
                Err(e) => return fail(format!("--alert {}: {e}", path.display())),
            }
        }
        None => {
            let enricher = Enricher::new(
                &config.origins,
                crate::http::client(),
                Arc::new(Metrics::new()),
            );
            enricher.enrich(&origin_name, &event).await
        }
    };
    if let Enrichment::Unavailable(reason) = &enrichment {
        eprintln!("note: alert details unavailable ({reason}); showing the degraded message");
    }
    let targets = route(&config.routes, &hook_name, &event, enrichment.alert());
    if targets.is_empty() {
        println!("no route matches this event (hook {hook_name}): it would be stored and counted as unrouted");
        return ExitCode::SUCCESS;
    }
    let alert_link = config
        .origins
        .get(&origin_name)
        .and_then(|o| o.alert_link.as_deref());
    let facts = Facts::build(&event, &enrichment, alert_link);
    for t in targets {
        if only.as_ref().is_some_and(|d| d != &t.destination) {
            continue;
        }
        let dest = &config.destinations[&t.destination];
        let payload = render(dest.kind, &facts);
        println!(
            "=== {} ({}) via route {:?}",
            t.destination,
            dest.kind.as_str(),
            t.route
        );
        println!("POST {}", dest.url().redacted());
        println!("content-type: application/json\n");
        println!(
            "{}\n",
            serde_json::to_string_pretty(&payload).unwrap_or_default()
        );
    }
    ExitCode::SUCCESS
}

pub async fn send_test(config: Config, destination: &str) -> ExitCode {
    let Some(dest) = config.destinations.get(destination) else {
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
    let payload = render(dest.kind, &Facts::test_message(destination)).to_string();
    let (outcome, took) = sinks::send(&crate::http::client(), dest, &payload).await;
    let target = dest.url().redacted();
    match outcome {
        Outcome::Delivered { status } => {
            println!(
                "delivered to {destination} ({target}): HTTP {status} in {} ms",
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
