//! The console's pages. Every input (query strings, forms) is parsed here
//! by hand so that anything wrong is a 4xx page naming the parameter,
//! never a 500.

// The input checks return the refusal page itself as their error: it is
// built at most once per request, so its size does not matter.
#![allow(clippy::result_large_err)]

use super::session::{Keys, Sealer, Session};
use super::views::{self, ago, badge, page, problem, time, Nav};
use super::{redirect, IngressState};
use crate::config::Config;
use crate::store::console::{Cursor, DeadFilter, DigestRange, EventFilter, ListState, MAX_PAGE};
use crate::store::{now_ms, Selector, StoreError};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use maud::{html, Markup};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

type St = State<Arc<IngressState>>;

/// Rows per page.
const PAGE: usize = 50;
/// Dead letters one replay takes at most.
const REPLAY_MAX: usize = 10_000;
/// A wrong password costs this long (whatever was wrong).
const LOGIN_PENALTY: Duration = Duration::from_millis(800);

/// Query or form pairs.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(raw: &[u8]) -> Params {
        Params(url::form_urlencoded::parse(raw).into_owned().collect())
    }

    fn query(raw: Option<String>) -> Params {
        Params::parse(raw.unwrap_or_default().as_bytes())
    }

    /// A parameter's value, trimmed; empty counts as absent.
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.trim())
    }

    /// A text parameter of at most `max` characters.
    fn text(&self, key: &str, max: usize) -> Result<Option<String>, Response> {
        match self.get(key) {
            Some(v) if v.chars().count() > max => {
                Err(bad(key, &format!("at most {max} characters")))
            }
            v => Ok(v.map(str::to_owned)),
        }
    }

    /// A positive id.
    fn id(&self, key: &str) -> Result<Option<i64>, Response> {
        self.get(key)
            .map(|v| match v.parse::<i64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(bad(key, "expected a positive whole number")),
            })
            .transpose()
    }

    /// `YYYY-MM-DDTHH:MM` (a `datetime-local` field), taken as UTC.
    fn time(&self, key: &str) -> Result<Option<i64>, Response> {
        self.get(key)
            .map(|v| {
                v.parse::<jiff::civil::DateTime>()
                    .ok()
                    .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
                    .map(|z| z.timestamp().as_millisecond())
                    .ok_or_else(|| bad(key, "expected a date and time like 2026-12-02T14:00 (UTC)"))
            })
            .transpose()
    }
}

fn bad(key: &str, why: &str) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "Bad request",
        &format!("The parameter {key:?} is not valid: {why}."),
    )
}

fn store_failed(e: StoreError) -> Response {
    tracing::warn!(message = "Console: the spool cannot be read.", error = %e);
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "The spool cannot be read",
        &format!("{e}. Try again in a moment."),
    )
}

fn config(state: &IngressState) -> Arc<Config> {
    state.live.get().config.clone()
}

/// The logout button's token when there is a login to end.
fn logout_token<'a>(config: &Config, session: &'a Session) -> Option<&'a str> {
    config
        .console
        .as_ref()
        .and_then(|c| c.password.as_ref())
        .map(|_| session.csrf.as_str())
}

/// A form's CSRF token checked against the session, or the 403 page.
fn check_csrf(session: &Session, form: &Params) -> Result<(), Response> {
    if form.get("csrf").is_some_and(|t| session.csrf_ok(t)) {
        Ok(())
    } else {
        Err(problem(
            StatusCode::FORBIDDEN,
            "Form expired or forged",
            "The form's CSRF token is missing or wrong; nothing was changed. Reload the page and try again.",
        ))
    }
}

pub async fn stylesheet() -> Response {
    let mut resp = views::STYLESHEET.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=3600"),
    );
    resp
}

pub async fn not_found() -> Response {
    problem(
        StatusCode::NOT_FOUND,
        "Not found",
        "There is no such console page.",
    )
}

// ---- login ----

/// Where to go after logging in: a console page, never elsewhere.
fn next_page(p: &Params) -> String {
    p.get("next")
        .filter(|n| n.starts_with("/console/") && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or("/console/")
        .to_owned()
}

fn login_page(status: StatusCode, next: &str, error: Option<&str>) -> Response {
    page(
        status,
        "Log in",
        Nav::None,
        None,
        html! {
            form.login method="post" action="/console/login" {
                h1 { "hookrelay console" }
                @if let Some(e) = error { p.bad id="login-error" { (e) } }
                input type="hidden" name="next" value=(next);
                label for="username" { "User name" }
                input type="text" id="username" name="username" autocomplete="username" required;
                label for="password" { "Password" }
                input type="password" id="password" name="password" autocomplete="current-password" required;
                p { button.primary type="submit" id="login" { "Log in" } }
            }
        },
    )
}

pub async fn login_form(State(state): St, RawQuery(q): RawQuery) -> Response {
    let config = config(&state);
    if config
        .console
        .as_ref()
        .is_some_and(|c| c.password.is_none())
    {
        return redirect("/console/");
    }
    login_page(StatusCode::OK, &next_page(&Params::query(q)), None)
}

pub async fn login(
    State(state): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    sealer: Option<Extension<Sealer>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let config = config(&state);
    let (Some(console), Some(Extension(sealer))) = (config.console.as_ref(), sealer) else {
        // No password: there is no login.
        return redirect("/console/");
    };
    let form = Params::parse(&body);
    let next = next_page(&form);
    let keys: &Keys = &state.console_keys;
    // The person's address through the trusted proxies: behind a proxy the
    // peer is the proxy, and one bucket for everyone is a lockout for all.
    let Some(client) =
        crate::ingress::auth::client_ip(peer.ip(), &headers, &config.server.trusted_proxies)
    else {
        return problem(
            StatusCode::BAD_REQUEST,
            "Unreadable X-Forwarded-For",
            "A trusted proxy sent an X-Forwarded-For header that cannot be read; nothing was tried.",
        );
    };
    if !keys.login_allowed(client) {
        return login_page(
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            Some("Too many attempts from your address; wait a minute."),
        );
    }
    let ok = keys.credentials_match(
        console,
        form.get("username").unwrap_or(""),
        form.get("password").unwrap_or(""),
    );
    if !ok {
        tracing::warn!(message = "Console login refused.", %client);
        state
            .metrics
            .operator
            .console_logins
            .get_or_create(&vec![("result", "refused".to_owned())])
            .inc();
        tokio::time::sleep(LOGIN_PENALTY).await;
        return login_page(
            StatusCode::UNAUTHORIZED,
            &next,
            Some("Wrong user name or password."),
        );
    }
    state
        .metrics
        .operator
        .console_logins
        .get_or_create(&vec![("result", "ok".to_owned())])
        .inc();
    tracing::info!(message = "Console login.", %client);
    let mut resp = redirect(&next);
    if let Ok(v) = HeaderValue::from_str(&Keys::issue(console, &sealer)) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    resp
}

pub async fn logout(
    State(state): St,
    Extension(session): Extension<Session>,
    body: Bytes,
) -> Response {
    if let Err(r) = check_csrf(&session, &Params::parse(&body)) {
        return r;
    }
    let config = config(&state);
    // Every session issued so far ends, on every replica (a copied cookie
    // must not outlive the logout); without a password there are none.
    if config
        .console
        .as_ref()
        .is_some_and(|c| c.password.is_some())
    {
        if let Err(e) = state.store.end_console_sessions().await {
            tracing::warn!(message = "Console logout not recorded.", error = %e);
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The spool is unavailable",
                "The logout could not be recorded, so the session still holds; try again in a moment.",
            );
        }
        tracing::info!(message = "Console logout: every session ended.");
    }
    let mut resp = redirect("/console/login");
    if let Some(c) = &config.console {
        if let Ok(v) = HeaderValue::from_str(&Keys::clear(c)) {
            resp.headers_mut().insert(header::SET_COOKIE, v);
        }
    }
    resp
}

// ---- overview ----

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

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

// ---- events ----

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

/// The query string of the current filters with `cursor` replaced.
fn with_cursor(p: &Params, cursor: (&str, i64)) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &p.0 {
        if k != "before" && k != "after" && !v.trim().is_empty() {
            out.append_pair(k, v.trim());
        }
    }
    out.append_pair(cursor.0, &cursor.1.to_string());
    out.finish()
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
    let journey = detail
        .routes
        .as_deref()
        .map(crate::store::console::Journey::parse);
    let s = &detail.summary;
    let enrichment = detail.enrichment.as_deref();
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
            @for d in &detail.deliveries {
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
            @if !actions.is_empty() {
                li id="actions" {
                    h3 { "Actions on the alert" }
                    table {
                        tr { th { "At (UTC)" } th { "Action" } th { "By" } th { "Via" } th { "Result" } }
                        @for a in &actions {
                            tr { td { (time(a.at)) } td { (a.action) } td { (a.client) } td { (a.destination) } td { (a.result) @if let Some(d) = &a.detail { " " span.muted { (d) } } } }
                        }
                    }
                }
            }
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

// ---- dead letters ----

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

// ---- route tester ----

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

// ---- config ----

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
