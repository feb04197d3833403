//! Dead letters: the list (filters, cursor pages) and their replay.

#![allow(clippy::result_large_err)]

use super::super::session::Session;
use super::super::views::{page, problem, time, Nav};
use crate::store::console::DeadFilter;
use crate::store::Selector;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::html;

use super::common::*;

/// Dead letters one replay takes at most.
const REPLAY_MAX: usize = 10_000;
fn dead_filter(p: &Params) -> Result<DeadFilter, Response> {
    Ok(DeadFilter {
        destination: p.text("destination", 200)?,
        hook: p.text("hook", 200)?,
        short_id: p.text("q", 100)?,
        before: p.id("before")?,
        limit: PAGE,
    })
}

pub async fn dead_letters(
    State(state): St,
    Extension(session): Extension<Session>,
    RawQuery(q): RawQuery,
) -> Response {
    let config = config(&state);
    let p = Params::query(q);
    let filter = match dead_filter(&p) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let rows = match state
        .store
        .dead_page(DeadFilter {
            limit: PAGE + 1,
            ..filter.clone()
        })
        .await
    {
        Ok(r) => r,
        Err(e) => return store_failed(e),
    };
    let more = rows.len() > PAGE;
    let rows = &rows[..rows.len().min(PAGE)];
    let selected = |k: &str, v: &str| p.get(k) == Some(v);
    let body = html! {
        h1 { "Dead letters" }
        form.filters method="get" action="/console/dead-letters" {
            label { "Destination" select name="destination" {
                option value="" { "any" }
                @for d in config.destinations.keys() { option value=(d) selected[selected("destination", d)] { (d) } }
            } }
            label { "Hook" select name="hook" {
                option value="" { "any" }
                @for h in config.hooks.keys() { option value=(h) selected[selected("hook", h)] { (h) } }
            } }
            label { "Alert short id" input type="text" name="q" value=(p.get("q").unwrap_or("")) size="16"; }
            button.primary type="submit" { "Filter" }
        }
        @if rows.is_empty() {
            p.muted id="no-dead" { "No dead letter matches." }
        } @else {
            form method="post" action="/console/dead-letters/replay" id="replay-form" {
                input type="hidden" name="csrf" value=(session.csrf);
                @for (k, v) in [("destination", &filter.destination), ("hook", &filter.hook), ("q", &filter.short_id)] {
                    @if let Some(v) = v { input type="hidden" name=(k) value=(v); }
                }
                table id="dead" {
                    tr { th { "Replay" } th { "Delivery" } th { "Event" } th { "Destination" } th { "Hook" } th { "Alert" } th.num { "Attempts" } th { "Last error" } th { "Failed at (UTC)" } }
                    @for d in rows {
                        tr data-id=(d.id) {
                            td { input type="checkbox" name="id" value=(d.id) id={"pick-" (d.id)}; }
                            td { (d.id) }
                            td { a href={"/console/events/" (d.event_id)} { (d.event_id) } }
                            td { (d.destination) }
                            td { (d.hook) }
                            td { (d.short_id.as_deref().unwrap_or("-")) }
                            td.num { (d.attempts) }
                            td.text { (d.last_error.as_deref().unwrap_or("")) }
                            td { (time(d.updated_at)) }
                        }
                    }
                }
                p {
                    button.primary type="submit" name="scope" value="selected" id="replay-selected" { "Replay selected…" }
                    " "
                    button type="submit" name="scope" value="all" id="replay-all" { "Replay all matching…" }
                    span.muted { " You confirm on the next page." }
                }
            }
            @if more {
                p.pager { a id="older" href={"/console/dead-letters?" (with_cursor(&p, ("before", rows[rows.len() - 1].id)))} { "Older →" } }
            }
        }
    };
    page(
        StatusCode::OK,
        "Dead letters",
        Nav::Dead,
        logout_token(&config, &session),
        body,
    )
}

pub async fn replay(
    State(state): St,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> Response {
    let config = config(&state);
    let form = Params::parse(&body);
    if let Err(r) = check_csrf(&session, &form) {
        return r;
    }
    let filter = match dead_filter(&form) {
        Ok(f) => DeadFilter {
            before: None,
            limit: REPLAY_MAX,
            ..f
        },
        Err(r) => return r,
    };
    let all = form.get("scope") == Some("all");
    let mut picked = Vec::new();
    for v in form.all("id") {
        match v.parse::<i64>() {
            Ok(id) if id > 0 => picked.push(id),
            _ => return bad("id", "expected delivery ids"),
        }
    }
    // What is dead now among what was asked for: a letter replayed in the
    // meantime (by another operator, the CLI) is not replayed twice.
    let matching = match state.store.dead_page(filter).await {
        Ok(r) => r,
        Err(e) => return store_failed(e),
    };
    let chosen: Vec<_> = matching
        .into_iter()
        .filter(|d| all || picked.contains(&d.id))
        .collect();
    if chosen.is_empty() {
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Nothing to replay",
            "No dead letter was selected, or those selected were replayed already.",
        );
    }
    if form.get("confirm") != Some("yes") {
        let body = html! {
            h1 { "Replay " (chosen.len()) " dead letters?" }
            p { "Each goes back to its destination's queue and is sent again (with a fresh max_age)." }
            form method="post" action="/console/dead-letters/replay" {
                input type="hidden" name="csrf" value=(session.csrf);
                input type="hidden" name="confirm" value="yes";
                @for d in &chosen { input type="hidden" name="id" value=(d.id); }
                table id="to-replay" {
                    tr { th { "Delivery" } th { "Destination" } th { "Alert" } th { "Last error" } }
                    @for d in chosen.iter().take(200) {
                        tr { td { (d.id) } td { (d.destination) } td { (d.short_id.as_deref().unwrap_or("-")) } td.text { (d.last_error.as_deref().unwrap_or("")) } }
                    }
                }
                @if chosen.len() > 200 { p.muted { "… and " (chosen.len() - 200) " more." } }
                p {
                    button.primary type="submit" id="confirm-replay" { "Replay " (chosen.len()) }
                    " " a href="/console/dead-letters" { "Cancel" }
                }
            }
        };
        return page(
            StatusCode::OK,
            "Confirm replay",
            Nav::Dead,
            logout_token(&config, &session),
            body,
        );
    }
    let ids: Vec<i64> = chosen.iter().map(|d| d.id).collect();
    let n = match state.store.replay(Selector::Ids(ids.clone())).await {
        Ok(n) => n,
        Err(e) => return store_failed(e),
    };
    state.coord.wake_all();
    tracing::info!(message = "Dead letters replayed from the console.", count = n, ids = ?ids);
    let body = html! {
        h1 { "Replayed" }
        p.flash.ok id="replayed" { (n) " dead letters are queued again." }
        p { a href="/console/dead-letters" { "Back to the dead letters" } " · " a href="/console/events?state=pending" { "Pending events" } }
    };
    page(
        StatusCode::OK,
        "Replayed",
        Nav::Dead,
        logout_token(&config, &session),
        body,
    )
}
