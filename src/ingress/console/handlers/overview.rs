//! The overview: the last hour in numbers, the chart, every hook and
//! destination, the active silences.

use super::super::session::Session;
use super::super::views::{self, ago, page, time, Nav};
use crate::config::Config;
use crate::store::console::Activity;
use crate::store::now_ms;
use crate::store::{HookClock, QueueDepth};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};

use super::common::*;

pub async fn overview(State(state): St, Extension(session): Extension<Session>) -> Response {
    let config = config(&state);
    let now = now_ms();
    let store = &state.store;
    let (activity, depths, silences, clocks) = match tokio::try_join!(
        store.activity(
            config.hooks.keys().cloned().collect(),
            config.destinations.keys().cloned().collect(),
            now - 3_600_000,
            now - 86_400_000
        ),
        store.queue_depths(),
        store.silences(Some(now)),
        store.clocks(),
    ) {
        Ok(x) => x,
        Err(e) => return store_failed(e),
    };
    let mut paused = Vec::new();
    for name in config.destinations.keys() {
        paused.push(state.coord.paused_until(name).await.ok().flatten());
    }
    let queued: i64 = depths.iter().map(|d| d.pending).sum();
    let dead: i64 = activity.destinations.iter().map(|d| d.dead).sum();
    let hour_events: i64 = activity.hooks.iter().map(|h| h.recent).sum();
    let hour_delivered: i64 = activity.destinations.iter().map(|d| d.delivered).sum();
    let body = html! {
        h1 { "Overview" }
        div.cards {
            div.card { b id="events-hour" { (hour_events) } "events in the last hour" }
            div.card { b { (hour_delivered) } "messages delivered in the last hour" }
            div.card { b id="queued" { (queued) } "deliveries queued" }
            div.card { b id="dead-total" { a href="/console/dead-letters" { (dead) } } "dead letters" }
            div.card { b { (silences.len()) } "active silences" }
        }
        (views::chart(&activity.events_per_minute, &activity.deliveries_per_minute, now))
        (hooks_table(&config, &activity, &clocks, now))
        (destinations_table(&config, &activity, &depths, &paused))
        @if !silences.is_empty() {
            h2 { "Active silences" }
            table id="silences" {
                tr { th { "Id" } th { "Matches" } th { "Until" } th { "By" } th { "Comment" } }
                @for s in &silences {
                    tr { td { (s.id) } td.text { code { (s.matcher) } } td { (time(s.ends_at)) } td { (s.author) } td.text { (s.comment) } }
                }
            }
        }
    };
    page(
        StatusCode::OK,
        "Overview",
        Nav::Overview,
        logout_token(&config, &session),
        body,
    )
}

fn median(sorted: &[i64]) -> Option<i64> {
    (!sorted.is_empty()).then(|| sorted[sorted.len() / 2])
}

fn format_ms(ms: i64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.1} s", ms as f64 / 1000.0)
    }
}

/// Every hook: its last event, its count in the last hour, its silence.
fn hooks_table(config: &Config, activity: &Activity, clocks: &[HookClock], now: i64) -> Markup {
    html! {
    h2 { "Hooks" }
    table id="hooks" {
        tr { th { "Hook" } th { "Last event" } th.num { "Last hour" } th { "Silence detection" } }
        @for name in config.hooks.keys() {
            @let a = activity.hooks.iter().find(|h| &h.hook == name);
            @let clock = clocks.iter().find(|c| &c.hook == name);
            tr {
                td { a href={"/console/events?hook=" (enc(name))} { (name) } }
                td { @match a.and_then(|a| a.last_at) {
                    Some(at) => { (time(at)) " " span.muted { "(" (ago(at, now)) ")" } }
                    None => span.muted { "never" },
                } }
                td.num { (a.map_or(0, |a| a.recent)) }
                td { @match clock {
                    Some(c) if c.silent_since.is_some() => span.bad { "silent since " (time(c.silent_since.unwrap_or_default())) },
                    Some(_) => "heard from",
                    None => span.muted { "-" },
                } }
            }
        }
    }
    }
}

/// Every destination: queued, delivered, failed, retried, latency, pause,
/// dead letters.
fn destinations_table(
    config: &Config,
    activity: &Activity,
    depths: &[QueueDepth],
    paused: &[Option<i64>],
) -> Markup {
    html! {
    h2 { "Destinations" }
    table id="destinations" {
        tr {
            th { "Destination" } th.num { "Queued" } th.num { "Delivered (1 h)" } th.num { "Failed (1 h)" }
            th.num { "Retries (1 h)" } th.num { "p50 latency (1 h)" } th { "Paused until" } th.num { "Dead letters" }
        }
        @for (i, (name, dest)) in config.destinations.iter().enumerate() {
            @let a = activity.destinations.iter().find(|d| &d.destination == name);
            @let q = depths.iter().find(|d| &d.destination == name).map_or(0, |d| d.pending);
            tr data-destination=(name) {
                td { (name) " " span.muted { "(" (dest.kind.as_str()) ")" } }
                td.num { (q) }
                td.num { (a.map_or(0, |a| a.delivered)) }
                td.num { (a.map_or(0, |a| a.failed)) }
                td.num { (a.map_or(0, |a| a.retried)) }
                td.num { @match a.and_then(|a| median(&a.latencies)) {
                    Some(ms) => (format_ms(ms)),
                    None => span.muted { "-" },
                } }
                td { @match paused.get(i).copied().flatten() {
                    Some(until) => span.bad { (time(until)) " (429)" },
                    None => span.muted { "-" },
                } }
                td.num { @match a.map_or(0, |a| a.dead) {
                    0 => "0",
                    n => a href={"/console/dead-letters?destination=" (enc(name))} { (n) },
                } }
            }
        }
    }
    }
}
