//! The console's HTML: the page frame, small pieces every page uses, and
//! the activity chart (inline SVG drawn here, from the spool's counts).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

/// No script from anywhere, styles only from the console's stylesheet,
/// forms only to the console itself, never framed.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

pub const STYLESHEET: &str = include_str!("console.css");

/// Which menu entry a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Overview,
    Events,
    Dead,
    Tester,
    Config,
    None,
}

/// A whole page: the menu (with the logout button when logged in with a
/// password) and `body`.
pub fn page(
    status: StatusCode,
    title: &str,
    nav: Nav,
    csrf: Option<&str>,
    body: Markup,
) -> Response {
    let item = |href: &str, label: &str, this: Nav| {
        html! { a href=(href) class=[(nav == this).then_some("here")] { (label) } }
    };
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " · hookrelay console" }
                link rel="stylesheet" href="/console/static/console.css";
            }
            body {
                header {
                    a.brand href="/console/" { "hookrelay" }
                    (item("/console/", "Overview", Nav::Overview))
                    (item("/console/events", "Events", Nav::Events))
                    (item("/console/dead-letters", "Dead letters", Nav::Dead))
                    (item("/console/routes/test", "Route tester", Nav::Tester))
                    (item("/console/config", "Config", Nav::Config))
                    @if let Some(token) = csrf {
                        form method="post" action="/console/logout" {
                            input type="hidden" name="csrf" value=(token);
                            button type="submit" id="logout" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    };
    let mut resp = (status, doc.into_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

/// A refusal or an error, as a page of its own with its status.
pub fn problem(status: StatusCode, heading: &str, detail: &str) -> Response {
    page(
        status,
        heading,
        Nav::None,
        None,
        html! {
            h1.bad { (heading) }
            p id="problem" { (detail) }
            p { a href="/console/" { "Back to the overview" } }
        },
    )
}

/// `2026-12-02 08:09:38` (UTC) from unix ms.
pub fn time(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// `12 s ago`, `3 min ago`, …
pub fn ago(ms: i64, now: i64) -> String {
    let s = (now - ms).max(0) / 1000;
    match s {
        0..=59 => format!("{s} s ago"),
        60..=3599 => format!("{} min ago", s / 60),
        3600..=172_799 => format!("{} h ago", s / 3600),
        _ => format!("{} days ago", s / 86_400),
    }
}

pub fn badge(s: &str) -> Markup {
    html! { span class={"state " (s)} { (s) } }
}

/// Every route's verdict in order: (route, matched, the condition that
/// decided).
pub fn decisions<'a>(rows: impl Iterator<Item = (&'a str, bool, &'a str)>) -> Markup {
    html! {
        table id="decisions" {
            tr { th { "Route" } th { "Verdict" } th { "Why" } }
            @for (route, matched, reason) in rows {
                tr data-route=(route) {
                    td { (route) }
                    td { @if matched { span.matched { "matched" } } @else { span.muted { "no" } } }
                    td.text { (reason) }
                }
            }
        }
    }
}

/// Events and deliveries per minute over the last 24 h ending at `now`
/// (unix ms): two polylines, hour marks, the peak on the axis.
pub fn chart(events: &[(i64, i64)], deliveries: &[(i64, i64)], now: i64) -> Markup {
    const W: i64 = 1440; // one x unit per minute
    const H: i64 = 160;
    const TOP: i64 = 14;
    let end = now / 60_000;
    let start = end - W + 1;
    let peak = events
        .iter()
        .chain(deliveries)
        .map(|x| x.1)
        .max()
        .unwrap_or(0)
        .max(1);
    let line = |series: &[(i64, i64)]| -> String {
        let mut counts = vec![0i64; W as usize];
        for (minute, n) in series {
            if (start..=end).contains(minute) {
                counts[(minute - start) as usize] += n;
            }
        }
        counts
            .iter()
            .enumerate()
            .map(|(x, n)| format!("{x},{}", TOP + (H - TOP) - (n * (H - TOP)) / peak))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let hours: Vec<(i64, String)> = (0..24)
        .map(|h| {
            let minute = end - (end % 60) - 60 * h;
            let label = jiff::Timestamp::from_second(minute * 60)
                .map(|t| t.strftime("%H:00").to_string())
                .unwrap_or_default();
            (minute - start, label)
        })
        .filter(|(x, _)| *x >= 0)
        .collect();
    html! {
        p.legend {
            span.e { "— events received" }
            span.d { "— messages delivered" }
            span.muted { "per minute, last 24 h (UTC); peak " (peak) "/min" }
        }
        svg.chart id="chart" viewBox={"0 0 " (W) " " (H + 16)} role="img"
            aria-label="Events and deliveries per minute over the last 24 hours" {
            @for (i, (x, label)) in hours.iter().enumerate() {
                line.grid x1=(x) x2=(x) y1=(TOP) y2=(H) {}
                @if i % 3 == 0 {
                    text x=(x + 2) y=(H + 12) { (label) }
                }
            }
            text x="2" y="10" { (peak) "/min" }
            polyline.events points=(line(events)) {}
            polyline.deliveries points=(line(deliveries)) {}
        }
    }
}

/// 303 See Other to `to` (a path on this listener).
pub(super) fn redirect(to: &str) -> Response {
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}
