//! The events list (filters, cursor pages) and one event's journey as it
//! was recorded: received, enriched, routed, each delivery, the actions.

#![allow(clippy::result_large_err)]

use super::super::session::Session;
use super::super::views::{self, ago, badge, page, problem, time, Nav};
use crate::event::Subject;
use crate::store::console::Journey;
use crate::store::console::{Cursor, DigestRange, EventFilter, ListState, MAX_PAGE};
use crate::store::now_ms;
use crate::store::{ActionRecord, DeliveryDetail, EventDetail};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use maud::{html, Markup};

use super::common::*;

/// The events page's filters, from its query.
fn event_filter(p: &Params) -> Result<EventFilter, Response> {
    let state = match p.get("state") {
        None => None,
        Some(s) => Some(ListState::parse(s).ok_or_else(|| {
            bad(
                "state",
                "expected delivered, pending, dead, unrouted or muted",
            )
        })?),
    };
    let page = match (p.id("before")?, p.id("after")?) {
        (Some(_), Some(_)) => return Err(bad("after", "use either before or after")),
        (Some(b), None) => Cursor::Before(b),
        (None, Some(a)) => Cursor::After(a),
        (None, None) => Cursor::Newest,
    };
    let digest = match p.get("digest") {
        None => None,
        Some(d) => {
            Some(parse_digest(d).ok_or_else(|| bad("digest", "expected destination:first-last"))?)
        }
    };
    let limit = match p.get("limit") {
        None => PAGE,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_PAGE).contains(&n) => n,
            _ => return Err(bad("limit", &format!("expected 1 to {MAX_PAGE}"))),
        },
    };
    // `since=1h` (as `events list --since`), or an explicit `from`.
    let since = match p.get("since") {
        None => None,
        Some(d) => match humantime::parse_duration(d) {
            Ok(d) if d.as_millis() < i64::MAX as u128 / 2 => Some(now_ms() - d.as_millis() as i64),
            _ => return Err(bad("since", "expected a duration like 30m, 1h or 7d")),
        },
    };
    Ok(EventFilter {
        hook: p.text("hook", 200)?,
        text: p.text("q", 200)?,
        kind: p.text("type", 100)?,
        action: p.text("action", 100)?,
        state,
        from: p.time("from")?.max(since),
        to: p.time("to")?,
        digest,
        page,
        limit,
    })
}

/// `teams:120-180`: the held deliveries a digest covered.
fn parse_digest(s: &str) -> Option<DigestRange> {
    let (destination, range) = s.rsplit_once(':')?;
    let (first, last) = range.split_once('-')?;
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (first > 0 && last >= first && !destination.is_empty()).then(|| DigestRange {
        destination: destination.to_owned(),
        first,
        last,
    })
}

pub async fn events(
    State(state): St,
    Extension(session): Extension<Session>,
    RawQuery(q): RawQuery,
) -> Response {
    let config = config(&state);
    let p = Params::query(q);
    let filter = match event_filter(&p) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let started = std::time::Instant::now();
    let result = match state.store.events_page(filter.clone()).await {
        Ok(r) => r,
        Err(e) => return store_failed(e),
    };
    let took = started.elapsed();
    let now = now_ms();
    let selected = |k: &str, v: &str| p.get(k) == Some(v);
    let body = html! {
        h1 { "Events" }
        @if let Some(d) = &filter.digest {
            p.flash id="digest-filter" { "The alerts folded into the digest to " b { (d.destination) } " (held deliveries " (d.first) "–" (d.last) "). " a href="/console/events" { "All events" } }
        }
        form.filters method="get" action="/console/events" id="filters" {
            label { "Hook" select name="hook" {
                option value="" { "any" }
                @for h in config.hooks.keys() { option value=(h) selected[selected("hook", h)] { (h) } }
            } }
            label { "Alert short id or title" input type="text" name="q" id="q" value=(p.get("q").unwrap_or("")) size="22"; }
            label { "Type" input type="text" name="type" value=(p.get("type").unwrap_or("")) size="10" placeholder="alert"; }
            label { "Action" input type="text" name="action" value=(p.get("action").unwrap_or("")) size="10" placeholder="created"; }
            label { "State" select name="state" id="state" {
                option value="" { "any" }
                @for s in ListState::ALL { option value=(s.as_str()) selected[selected("state", s.as_str())] { (s.as_str()) } }
            } }
            label { "Received" select name="since" {
                option value="" { "any time" }
                @for (v, label) in [("1h", "last hour"), ("24h", "last 24 h"), ("7d", "last 7 days")] {
                    option value=(v) selected[selected("since", v)] { (label) }
                }
            } }
            label { "From (UTC)" input type="datetime-local" name="from" value=(p.get("from").unwrap_or("")); }
            label { "To (UTC)" input type="datetime-local" name="to" value=(p.get("to").unwrap_or("")); }
            @if let Some(d) = p.get("digest") { input type="hidden" name="digest" value=(d); }
            button.primary type="submit" id="apply" { "Filter" }
            a href="/console/events" { "Clear" }
        }
        @if result.rows.is_empty() {
            p.muted id="no-events" { "No event matches." }
        } @else {
            table id="events" {
                tr { th { "Id" } th { "Received (UTC)" } th { "Hook" } th { "Type / action" } th { "Alert" } th { "Title" } th { "State" } th { "Deliveries" } }
                @for r in &result.rows {
                    tr data-id=(r.id) {
                        td { a href={"/console/events/" (r.id)} { (r.id) } }
                        td { (time(r.received_at)) br; span.muted { (ago(r.received_at, now)) } }
                        td { (r.hook) }
                        td { (r.kind) " / " (r.action) }
                        td { (r.short_id.as_deref().unwrap_or("-")) }
                        td.text { (r.title.as_deref().unwrap_or("")) }
                        td { (badge(r.state)) }
                        td { @for (s, n) in &r.deliveries { (n) " " (s) " " } }
                    }
                }
            }
        }
        div.pager {
            @if let Some(n) = result.newer { a id="newer" href={"/console/events?" (with_cursor(&p, ("after", n)))} { "← Newer" } }
            @if let Some(o) = result.older { a id="older" href={"/console/events?" (with_cursor(&p, ("before", o)))} { "Older →" } }
        }
        p.muted { "Read in " (took.as_millis()) " ms." }
    };
    page(
        StatusCode::OK,
        "Events",
        Nav::Events,
        logout_token(&config, &session),
        body,
    )
}

pub async fn event(
    State(state): St,
    Extension(session): Extension<Session>,
    Path(raw): Path<String>,
) -> Response {
    let config = config(&state);
    let Ok(id) = raw.parse::<i64>() else {
        return bad("id", "an event id is a whole number");
    };
    let detail = match state.store.event_detail(id).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return problem(
                StatusCode::NOT_FOUND,
                "No such event",
                &format!(
                "The spool holds no event {id} (it may have been removed after store.retention)."
            ),
            )
        }
        Err(e) => return store_failed(e),
    };
    let actions = match &detail.alert_uuid {
        Some(a) => state.store.actions_for(a).await.unwrap_or_default(),
        None => Vec::new(),
    };
    let secrets = config.secrets();
    let scrub = |text: &str| crate::secret::scrub(text, &secrets);
    let scrub: &dyn Fn(&str) -> String = &scrub;
    let journey = detail
        .routes
        .as_deref()
        .map(crate::store::console::Journey::parse);
    let s = &detail.summary;
    let title = detail
        .alert_json
        .as_deref()
        .and_then(|a| serde_json::from_str::<serde_json::Value>(a).ok())
        .and_then(|a| {
            // A case is stored as {"case": …, "names": …}.
            a.get("title")
                .or_else(|| a.pointer("/case/title"))?
                .as_str()
                .map(str::to_owned)
        });
    let about = crate::event::Subject::of(&s.kind, &s.action);
    let body = html! {
        h1 { "Event " (s.id) ": " (s.kind) " / " (s.action) " " (badge(&s.state)) }
        ol.timeline id="journey" {
            (received(&detail, about, title.as_deref()))
            (enrichment(&detail, journey.as_ref()))
            (routing(journey.as_ref()))
            @for d in &detail.deliveries { (delivery(d, scrub)) }
            @if !actions.is_empty() { (actions_taken(&actions)) }
        }
        p { a href={"/console/routes/test?event=" (s.id)} id="test-routes" { "Try this event in the route tester" } }
    };
    page(
        StatusCode::OK,
        &format!("Event {id}"),
        Nav::Events,
        logout_token(&config, &session),
        body,
    )
}

/// The journey's first step: what came in, from whom, about what.
fn received(detail: &EventDetail, about: Subject, title: Option<&str>) -> Markup {
    let s = &detail.summary;
    html! {
        li id="received" {
            h3 { "Received" }
            dl.facts {
                dt { "At (UTC)" } dd { (time(s.received_at)) }
                dt { "Hook" } dd { (s.hook) }
                dt { "From" } dd { (detail.client.as_deref().unwrap_or("-")) }
                dt { "Signature" } dd { (detail.auth.as_deref().unwrap_or("-")) }
                dt { "Sender retries" } dd { @if detail.retries == 0 { "none" } @else { (detail.retries) " (the same body again within the dedup window: answered with this event's id, stored once)" } }
                dt { "About" } dd id="about" { (about.as_str()) " " (s.short_id.as_deref().unwrap_or("-")) @if let Some(u) = &detail.alert_uuid { " " span.muted { (u) } } }
                @if let Some(t) = &title { dt { "Title" } dd id="title" { (t) } }
            }
            details { summary { "Webhook body" } pre id="body" { (crate::preview::pretty(&detail.body)) } }
        }
    }
}

/// The enrichment step: its result, latency and source, the alert.
fn enrichment(detail: &EventDetail, journey: Option<&Journey>) -> Markup {
    let enrichment = detail.enrichment.as_deref();
    html! {
        li id="enrichment" {
            h3 { "Enrichment" }
            dl.facts {
                dt { "Result" } dd { @match enrichment {
                    Some("ok") => span.ok { "alert fetched" },
                    Some("n/a") => "not about an alert",
                    Some(other) => span.bad { (other) },
                    None => span.muted { "not yet" },
                } }
                @if let Some(j) = &journey {
                    @if let Some(ms) = j.enrich_ms { dt { "Latency" } dd { (ms) " ms" } }
                    @if let Some(c) = j.cached { dt { "Source" } dd { @if c { "the relay's cache" } @else { "the alert API" } } }
                }
            }
            @if let Some(alert) = &detail.alert_json {
                details { summary { "Alert as fetched" } pre id="alert" { (crate::preview::pretty(alert)) } }
            }
        }
    }
}

/// The routing step: every route's verdict as recorded.
fn routing(journey: Option<&Journey>) -> Markup {
    html! {
        li id="routing" {
            h3 { "Routing" }
            @match &journey {
                None => p.muted { "Not routed yet." },
                Some(crate::store::console::Journey { failed: Some(why), decisions, .. }) if decisions.is_empty() => p.bad id="failed" { "Processing failed inside the relay: " (why) " The event is kept, with no delivery." },
                Some(j) if j.decisions.is_empty() => p { "Matched: " (j.matched.join(", ")) span.muted { " (recorded before route decisions were kept)" } },
                Some(j) => {
                    (views::decisions(j.decisions.iter().map(|(r, m, why)| (r.as_str(), *m, why.as_str()))))
                    @if let Some(why) = &j.silenced { p.bad id="silenced" { (why) } }
                    @if let Some(why) = &j.failed { p.bad id="failed" { "Processing failed inside the relay: " (why) } }
                    @if j.matched.is_empty() { p.muted { "No route matched: the event is kept and counted as unrouted." } }
                }
            }
        }
    }
}

/// One delivery: its state, attempts and payload (secrets scrubbed).
fn delivery(d: &DeliveryDetail, scrub: &dyn Fn(&str) -> String) -> Markup {
    html! {
        li.delivery id={"delivery-" (d.id)} {
            h3 { "Delivery " (d.id) " → " (d.destination) " " (badge(d.state.as_str())) }
            dl.facts {
                dt { "Route" } dd { (d.route) }
                @if let Some(note) = &d.last_error { dt { "Note" } dd { (scrub(note)) } }
                @if let Some(t) = &d.thread { dt { "Conversation" } dd { (t) } }
                dt { "Last change (UTC)" } dd { (time(d.updated_at)) }
            }
            @if !d.attempts.is_empty() {
                table.attempts {
                    tr { th { "Attempt at (UTC)" } th { "Answer" } th.num { "Took" } th { "Error" } }
                    @for (at, status, error, ms) in &d.attempts {
                        tr {
                            td { (time(*at)) }
                            td { @match status { Some(s) => { "HTTP " (s) }, None => span.muted { "no answer" } } }
                            td.num { (ms) " ms" }
                            td.text { (error.as_deref().map(&scrub).unwrap_or_default()) }
                        }
                    }
                }
            }
            @if !d.payload.is_empty() {
                details { summary { "Payload sent" } pre.payload { (crate::preview::pretty(&scrub(&d.payload))) } }
            }
        }
    }
}

/// The actions people took on the event's alert.
fn actions_taken(actions: &[ActionRecord]) -> Markup {
    html! {
        li id="actions" {
            h3 { "Actions on the alert" }
            table {
                tr { th { "At (UTC)" } th { "Action" } th { "By" } th { "Via" } th { "Result" } }
                @for a in actions {
                    tr { td { (time(a.at)) } td { (a.action) } td { (a.client) } td { (a.destination) } td { (a.result) @if let Some(d) = &a.detail { " " span.muted { (d) } } } }
                }
            }
        }
    }
}
