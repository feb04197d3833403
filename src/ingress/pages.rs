//! The action pages: small, server-rendered HTML (maud escapes every
//! value it interpolates), one inline stylesheet allowed by its hash and
//! nothing else (no script, no frame, no third party), working without
//! JavaScript.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};
use std::sync::LazyLock;

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f}\
h1{font-size:1.3rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem}dt{font-weight:600}\
dd{margin:0;overflow-wrap:anywhere}textarea{width:100%;min-height:4rem;box-sizing:border-box}\
button{font-size:1rem;padding:.5rem 1.2rem;margin-top:.8rem}.note{color:#555}.ok{color:#1b7f3a}.bad{color:#b3261e}";

/// `Content-Security-Policy`: only the stylesheet above.
static CSP: LazyLock<String> = LazyLock::new(|| {
    use base64::Engine;
    use sha2::Digest;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(STYLE));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
});

/// What the confirmation page shows of the alert.
pub struct AlertView {
    pub title: String,
    pub short_id: String,
    pub urgency: String,
    pub status: String,
}

fn page(status: StatusCode, title: &str, body: Markup) -> Response {
    let doc = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " · hookrelay" }
                style { (maud::PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    };
    let mut resp = (status, doc.into_string()).into_response();
    let h = resp.headers_mut();
    let set = |v: &str| HeaderValue::from_str(v).expect("static header value");
    h.insert(header::CONTENT_TYPE, set("text/html; charset=utf-8"));
    h.insert(header::CONTENT_SECURITY_POLICY, set(&CSP));
    h.insert(header::X_FRAME_OPTIONS, set("DENY"));
    h.insert(header::REFERRER_POLICY, set("no-referrer"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, set("nosniff"));
    h.insert(header::CACHE_CONTROL, set("no-store"));
    resp
}

fn facts(a: &AlertView) -> Markup {
    html! {
        dl {
            dt { "Alert" } dd { (a.short_id) }
            dt { "Title" } dd { (a.title) }
            dt { "Urgency" } dd { (a.urgency) }
            dt { "Status now" } dd id="status" { (a.status) }
        }
    }
}

/// The confirmation: the alert as it is now and a form that performs the
/// action (a GET changes nothing).
pub fn confirm(a: &AlertView, action_label: &str, target_status: &str, csrf: &str) -> Response {
    let title = format!("{action_label} alert {}?", a.short_id);
    page(
        StatusCode::OK,
        &title,
        html! {
            h1 { (title) }
            (facts(a))
            form method="post" {
                input type="hidden" name="csrf" value=(csrf);
                label for="comment" { "Comment (optional)" }
                textarea id="comment" name="comment" maxlength="1000" {}
                button type="submit" id="confirm" { "Set the status to " (target_status) }
            }
            p.note { "The alert's status changes in Sekoia.io when you confirm." }
        },
    )
}

/// Nothing to do: the alert already is where the action would take it.
pub fn already(a: &AlertView, target_status: &str) -> Response {
    page(
        StatusCode::OK,
        "Nothing to do",
        html! {
            h1 { "Already " (target_status) }
            (facts(a))
            p.note id="result" { "The alert is already " (target_status) "; nothing was sent." }
        },
    )
}

/// The action was performed.
pub fn done(a: &AlertView, target_status: &str) -> Response {
    page(
        StatusCode::OK,
        "Done",
        html! {
            h1.ok { "Alert " (a.short_id) " is now " (target_status) }
            (facts(a))
            p id="result" { "Sekoia.io accepted the change." }
        },
    )
}

/// A refusal or a failure, said plainly; `retry` links back to the
/// confirmation page.
pub fn problem(status: StatusCode, heading: &str, detail: &str, retry: bool) -> Response {
    page(
        status,
        heading,
        html! {
            h1.bad { (heading) }
            p id="result" { (detail) }
            @if retry {
                p { a href="" { "Try again" } }
            }
        },
    )
}
