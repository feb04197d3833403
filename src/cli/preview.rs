//! `preview` (route and render, send nothing) and `send-test`.

use super::fail;
use crate::config::{Config, DestinationConfig, DestinationKind};
use crate::enrich::{Alert, Enricher, Enrichment};
use crate::render::context::Target;
use crate::render::{event_payload, own_message, Facts};
use crate::route::route;
use crate::sinks::{Outcome, Sink};
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
    println!("routing (hook {hook_name}):");
    let clock = crate::route::Clock {
        now: jiff::Timestamp::now(),
        intervals: &config.time_intervals,
    };
    for d in crate::route::decisions(
        &config.routes,
        &hook_name,
        &event,
        enrichment.alert(),
        &clock,
    ) {
        let mark = if d.matched { "matched" } else { "no" };
        println!("  {mark:<7} {}: {}", d.route, d.reason);
    }
    println!();
    let targets: Vec<_> = route(
        &config.routes,
        &hook_name,
        &event,
        enrichment.alert(),
        &clock,
    )
    .into_iter()
    .filter(|t| t.muted.is_none())
    .collect();
    if targets.is_empty() {
        println!("no route matches this event (hook {hook_name}): it would be stored and counted as unrouted");
        return ExitCode::SUCCESS;
    }
    let facts = Facts::build(&event, &enrichment, config.alert_link(&hook_name));
    let destinations = match crate::render::destinations(&config) {
        Ok((d, _)) => d,
        Err(errors) => return fail(errors.to_string()),
    };
    let mut failed = false;
    for t in targets {
        if only.as_ref().is_some_and(|d| d != &t.destination) {
            continue;
        }
        let dest = &destinations[&t.destination];
        println!(
            "=== {} ({}) via route {:?}",
            t.destination,
            dest.config.kind.as_str(),
            t.route
        );
        let target = Target {
            hook: Some(&hook_name),
            route: Some(&t.route),
            destination: &t.destination,
        };
        match event_payload(dest, &event, &enrichment, &facts, target) {
            Ok(body) if dest.config.api_mode() => {
                print_api(&config, &t.destination, &dest.config, &body).await
            }
            Ok(body) => print_request(&Arc::new(dest.config.clone()), "msg_preview", &body),
            Err(reason) => {
                failed = true;
                println!(
                    "cannot render: {reason}\n(the delivery would be kept as a dead letter)\n"
                );
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Prints the exact request a destination would get: the HTTP request
/// (JSON pretty-printed; the operator's header values hidden, they are
/// often credentials), or the e-mail as MIME.
fn print_request(dest: &Arc<DestinationConfig>, id: &str, body: &str) {
    let sink = Sink::new(dest.clone(), crate::http::client(), 1);
    if dest.kind == DestinationKind::Email {
        println!("SMTP {}", sink.target());
        match sink.email(id, body) {
            Ok(mime) => println!("{}\n", mime.replace("\r\n", "\n")),
            Err(e) => println!("cannot build the e-mail: {e}\n"),
        }
        return;
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let request = match sink.http_request(id, body, now) {
        Ok(r) => r,
        Err(e) => {
            println!("cannot build the request: {e}\n");
            return;
        }
    };
    print_http(request, &sink.target(), dest);
}

/// Slack or Mattermost in API mode: the calls the delivery would make. A
/// threaded message is a new root when the spool has no conversation for
/// its alert on that destination yet, else an edit of the root and a reply.
async fn print_api(config: &Config, name: &str, dest: &DestinationConfig, body: &str) {
    use crate::render::thread::{describe, Threaded};
    use crate::sinks::Call;
    let sink = Sink::new(Arc::new(dest.clone()), crate::http::client(), 1);
    let show = |call: Call| match sink.api_request(&call) {
        Ok(r) => {
            let url = r.url.to_string();
            print_http(r, &url, dest)
        }
        Err(e) => println!("cannot build the request: {e}\n"),
    };
    let Some(t) = Threaded::unwrap(body) else {
        println!("-> a channel message (not threaded)");
        let message: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
        show(Call::Post {
            message: &message,
            thread: None,
            broadcast: false,
        });
        return;
    };
    let root = match crate::store::Store::open_now(&config.store, std::time::Duration::from_secs(2))
        .await
    {
        Ok(store) => store.thread_root(name, &t.alert).await.ok().flatten(),
        Err(_) => {
            println!("(the spool cannot be read: shown as the alert's first message)");
            None
        }
    };
    let seen = root
        .as_ref()
        .map(|r| (r.ts.as_str(), r.status.as_deref(), r.urgency));
    println!("-> {}", describe(seen, &t));
    match &root {
        None => show(Call::Post {
            message: &t.message,
            thread: None,
            broadcast: false,
        }),
        Some(r) => {
            show(Call::Update {
                channel: &r.channel,
                ts: &r.ts,
                message: &t.message,
            });
            let change = t.change(r.status.as_deref(), r.urgency);
            let reply = serde_json::json!({ "text": change.text(dest.kind) });
            show(Call::Post {
                message: &reply,
                thread: Some(&r.ts),
                broadcast: change.broadcast,
            });
        }
    }
}

/// Prints one HTTP request: the operator's header values and any
/// credential hidden, the JSON body pretty-printed.
fn print_http(request: crate::sinks::HttpRequest, target: &str, dest: &DestinationConfig) {
    println!("{} {target}", request.method);
    // A paging destination's key is in its body: never printed.
    let body = &crate::secret::scrub(&request.body, &dest.secrets());
    for (name, value, private) in request.headers {
        let value = if private {
            "<redacted>".to_owned()
        } else {
            value
        };
        println!("{name}: {value}");
    }
    let pretty = serde_json::from_str::<serde_json::Value>(body)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| body.to_owned());
    println!("\n{pretty}\n");
}

pub async fn send_test(config: Config, destination: &str) -> ExitCode {
    let destinations = match crate::render::destinations(&config) {
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
            let what = if dest.kind == DestinationKind::Email {
                "SMTP"
            } else {
                "HTTP"
            };
            println!(
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
