//! The effective configuration (secrets redacted) and its reload.

use super::super::session::Session;
use super::super::views::{page, time, Nav};
use crate::config::Config;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};
use std::time::Duration;

use super::common::*;

fn config_page(
    config: &Config,
    session: &Session,
    flash: Option<Markup>,
    status: StatusCode,
) -> Response {
    let effective = sorted(&config.effective);
    let text = toml::to_string_pretty(&effective)
        .unwrap_or_else(|_| serde_json::to_string_pretty(&effective).unwrap_or_default());
    let body = html! {
        h1 { "Configuration" }
        @if let Some(f) = flash { (f) }
        dl.facts {
            dt { "File" } dd id="config-path" { @match &config.source { Some(p) => (p.display()), None => span.muted { "(not read from a file)" } } }
            dt { "Loaded (UTC)" } dd id="loaded-at" { (time(config.loaded_at)) }
            dt { "Contents" } dd { (config.origins.len()) " origins, " (config.hooks.len()) " hooks, " (config.destinations.len()) " destinations, " (config.routes.len()) " routes" }
        }
        @if config.source.is_some() {
            form method="post" action="/console/config/reload" {
                input type="hidden" name="csrf" value=(session.csrf);
                button.primary type="submit" id="reload" { "Reload from the file" }
                span.muted { " The same as SIGHUP: an invalid file is refused and the running configuration keeps serving." }
            }
        }
        @if !config.tenants.is_empty() {
            h2 { "Tenants" }
            p.muted { "Managed over the tenants API (not in the file); their names run as tenant/name." }
            table id="tenants" {
                tr { th { "Tenant" } th.num { "Hooks" } th.num { "Destinations" } th.num { "Routes" } }
                @for t in &config.tenants {
                    @let prefix = format!("{t}/");
                    tr {
                        td { (t) }
                        td.num { (config.hooks.keys().filter(|k| k.starts_with(&prefix)).count()) }
                        td.num { (config.destinations.keys().filter(|k| k.starts_with(&prefix)).count()) }
                        td.num { (config.routes.iter().filter(|r| r.name.starts_with(&prefix)).count()) }
                    }
                }
            }
        }
        @if !config.warnings.is_empty() {
            h2 { "Warnings" }
            ul { @for w in &config.warnings { li { (w) } } }
        }
        h2 { "Effective configuration" }
        p.muted { "As read, with environment overrides and secret files applied; every secret shows as <redacted>. Keys not set take their defaults." }
        pre id="effective" { (text) }
    };
    page(
        status,
        "Configuration",
        Nav::Config,
        logout_token(config, session),
        body,
    )
}

/// `value` with every table's keys in order, so the page reads the same
/// from one load to the next.
fn sorted(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&map[k])))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

pub async fn config_view(State(state): St, Extension(session): Extension<Session>) -> Response {
    config_page(&config(&state), &session, None, StatusCode::OK)
}

pub async fn reload(
    State(state): St,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> Response {
    let current = config(&state);
    if let Err(r) = check_csrf(&session, &Params::parse(&body)) {
        return r;
    }
    let Some(path) = current.source.clone() else {
        let f = html! { p.flash.bad id="reload-result" { "This daemon was not started from a file: there is nothing to reload." } };
        return config_page(&current, &session, Some(f), StatusCode::CONFLICT);
    };
    let loaded = tokio::task::spawn_blocking(move || crate::config::load_file(&path))
        .await
        .unwrap_or_else(|e| {
            Err(crate::config::ConfigErrors(vec![
                crate::config::ConfigError {
                    key: String::new(),
                    message: format!("the reload task failed: {e}"),
                },
            ]))
        });
    let outcome = crate::live::ReloadRequest::send_and_wait(
        &state.reload,
        Some(loaded),
        Duration::from_secs(30),
    )
    .await;
    tracing::info!(
        message = "Configuration reload requested from the console.",
        ok = outcome.is_ok()
    );
    let (flash, status) = match outcome {
        Ok(()) => (
            html! { p.flash.ok id="reload-result" { "Reloaded: the new configuration is serving." } },
            StatusCode::OK,
        ),
        Err(crate::live::ReloadRefused::Invalid(errors)) => (
            html! {
                div.flash.bad id="reload-result" {
                    p { "Refused: the previous configuration keeps serving. Errors by key:" }
                    ul id="reload-errors" { @for e in &errors.0 { li { code { (if e.key.is_empty() { "(file)" } else { &e.key }) } ": " (e.message) } } }
                }
            },
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(crate::live::ReloadRefused::NoAnswer) => (
            html! { p.flash.bad id="reload-result" { "The daemon did not answer the reload (shutting down?)." } },
            StatusCode::SERVICE_UNAVAILABLE,
        ),
    };
    // After a reload, show what now serves.
    config_page(&config(&state), &session, Some(flash), status)
}
