//! The route tester: an event (stored, or pasted) against today's
//! routes, every verdict and each destination's exact request.

use super::super::session::Session;
use super::super::views::{self, page, problem, Nav};
use crate::config::Config;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};

use super::common::*;

/// What the tester's form holds.
#[derive(Default)]
struct TesterInput {
    hook: Option<String>,
    event: String,
    alert: String,
}

fn tester_page(
    config: &Config,
    session: &Session,
    input: &TesterInput,
    outcome: Option<Markup>,
    status: StatusCode,
) -> Response {
    let body = html! {
        h1 { "Route tester" }
        p.muted { "Routes an event and renders each destination's request exactly as the daemon would, and sends nothing. Without an alert document, the alert is fetched from the hook's origin." }
        form.filters method="get" action="/console/routes/test" id="load" {
            label { "A stored event (id)" input type="text" name="event" id="event-id" size="10" inputmode="numeric"; }
            button type="submit" id="load-event" { "Load it" }
            span.muted { "or paste an event below." }
        }
        form method="post" action="/console/routes/test" id="tester" {
            input type="hidden" name="csrf" value=(session.csrf);
            p { label { "Hook " select name="hook" id="hook" {
                @for h in config.hooks.keys() { option value=(h) selected[input.hook.as_deref() == Some(h.as_str())] { (h) } }
            } } }
            p { label for="event" { "Event (the webhook's JSON body)" } textarea name="event" id="event" { (input.event) } }
            p { label for="alert" { "Alert (optional: the alert API's JSON)" } textarea name="alert" id="alert" { (input.alert) } }
            p { button.primary type="submit" id="run-test" { "Test the routes" } }
        }
        @if let Some(o) = outcome { (o) }
    };
    page(
        status,
        "Route tester",
        Nav::Tester,
        logout_token(config, session),
        body,
    )
}

pub async fn tester_form(
    State(state): St,
    Extension(session): Extension<Session>,
    RawQuery(q): RawQuery,
) -> Response {
    let config = config(&state);
    let p = Params::query(q);
    let mut input = TesterInput::default();
    match p.id("event") {
        Err(r) => return r,
        Ok(None) => {}
        Ok(Some(id)) => match state.store.event_detail(id).await {
            Ok(Some(d)) => {
                input.hook = Some(d.summary.hook.clone());
                input.event = crate::preview::pretty(&d.body);
                input.alert = d
                    .alert_json
                    .as_deref()
                    .map(crate::preview::pretty)
                    .unwrap_or_default();
            }
            Ok(None) => {
                return problem(
                    StatusCode::NOT_FOUND,
                    "No such event",
                    &format!("The spool holds no event {id}."),
                )
            }
            Err(e) => return store_failed(e),
        },
    }
    tester_page(&config, &session, &input, None, StatusCode::OK)
}

pub async fn tester(
    State(state): St,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> Response {
    let config = config(&state);
    let form = Params::parse(&body);
    if let Err(r) = check_csrf(&session, &form) {
        return r;
    }
    let input = TesterInput {
        hook: form.get("hook").map(str::to_owned),
        event: form.get("event").unwrap_or("").to_owned(),
        alert: form.get("alert").unwrap_or("").to_owned(),
    };
    let refuse = |why: String| {
        let o = html! { p.flash.bad id="tester-error" { (why) } };
        tester_page(
            &config,
            &session,
            &input,
            Some(o),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
    };
    if input.event.is_empty() {
        return refuse(
            "Paste an event (the webhook's JSON body) or open one from the events page.".into(),
        );
    }
    let generation = state.live.get();
    let alert = if input.alert.is_empty() {
        crate::preview::AlertSource::Fetch(&generation.enricher)
    } else {
        match serde_json::from_str(&input.alert)
            .map_err(|e| e.to_string())
            .and_then(crate::enrich::Alert::from_value)
        {
            Ok(a) => crate::preview::AlertSource::Given(Box::new(a)),
            Err(e) => return refuse(format!("alert: not an alert document: {e}")),
        }
    };
    let result = crate::preview::preview(
        &config,
        input.event.as_bytes(),
        alert,
        input.hook.as_deref(),
        None,
        Some(&state.store),
    )
    .await;
    let p = match result {
        Ok(p) => p,
        Err(e) => return refuse(e),
    };
    let outcome = html! {
        h2 { "Routing (hook " (p.hook) ")" }
        @for n in &p.notes { p.flash.bad { (n) } }
        (views::decisions(p.decisions.iter().map(|d| (d.route.as_str(), d.matched, d.reason.as_str()))))
        @if p.outputs.is_empty() { p id="unrouted" { "No route matches: the event would be stored and counted as unrouted." } }
        @for o in &p.outputs {
            h2 { (o.destination) " (" (o.kind) ") via route " (o.route) }
            pre.request data-destination=(o.destination) { (o.text) }
        }
    };
    tester_page(&config, &session, &input, Some(outcome), StatusCode::OK)
}
