//! The web console, on the admin listener under `/console/`: what the relay
//! did with each event and why, dead-letter replay, a route tester and the
//! effective configuration with a reload button.
//!
//! Server-rendered HTML (maud escapes every value it interpolates), one
//! stylesheet embedded in the binary, no script at all: every page works
//! without JavaScript and the Content-Security-Policy forbids scripts.
//! Read-mostly: the only changes are replay and reload, each a POST with a
//! CSRF token. A password (required off loopback) guards it with a signed,
//! expiring session cookie that every replica with the same password
//! accepts, until a logout. Only the `Host` names it is served under get an
//! answer (see [`host`]).

mod handlers;
mod host;
mod session;
mod views;

use super::IngressState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

pub use session::Keys;
use views::redirect;

/// The console's routes (all under `/console`).
pub fn router(state: Arc<IngressState>) -> Router {
    Router::new()
        .route("/console", get(|| async { redirect("/console/") }))
        .route("/console/", get(handlers::overview))
        .route(
            "/console/login",
            get(handlers::login_form).post(handlers::login),
        )
        .route("/console/logout", post(handlers::logout))
        .route("/console/events", get(handlers::events))
        .route("/console/events/{id}", get(handlers::event))
        .route("/console/dead-letters", get(handlers::dead_letters))
        .route("/console/dead-letters/replay", post(handlers::replay))
        .route(
            "/console/routes/test",
            get(handlers::tester_form).post(handlers::tester),
        )
        .route("/console/config", get(handlers::config_view))
        .route("/console/config/reload", post(handlers::reload))
        .route("/console/static/console.css", get(handlers::stylesheet))
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Every console request: 404 while the console is off; 421 for a `Host`
/// it is not served under, before anything else; the security headers on
/// every answer; a session (when a password is set) before any page but
/// the login form and the stylesheet; a CSRF token on every POST.
async fn guard(State(state): State<Arc<IngressState>>, req: Request, next: Next) -> Response {
    let config = state.live.get().config.clone();
    let Some(console) = config.console.as_ref().filter(|c| c.enabled) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    if !host::allowed(console, config.admin.listen, host) {
        return (
            StatusCode::MISDIRECTED_REQUEST,
            "misdirected request: this console does not answer to that Host name (see console.allowed_hosts)\n",
        )
            .into_response();
    }
    let path = req.uri().path().to_owned();
    let open = path == "/console/login" || path == "/console/static/console.css";
    let keys = &state.console_keys;
    let sealer = match keys.sealer(console, &state.store).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(message = "Console sessions cannot be checked.", error = %e);
            return views::problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The spool is unavailable",
                "Sessions are checked against the spool, which does not answer; try again in a moment.",
            );
        }
    };
    let session = session::current(keys, sealer.as_ref(), req.headers());
    let mut resp = if !open && session.is_none() {
        if req.method() == Method::GET {
            let next = req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            redirect(&format!(
                "/console/login?next={}",
                url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>()
            ))
        } else {
            views::problem(
                StatusCode::FORBIDDEN,
                "Not logged in",
                "Log in first; nothing was changed.",
            )
        }
    } else {
        let mut req = req;
        if let Some(s) = session {
            req.extensions_mut().insert(s);
        }
        if let Some(s) = sealer {
            req.extensions_mut().insert(s);
        }
        next.run(req).await
    };
    let h = resp.headers_mut();
    let set = |v: &'static str| HeaderValue::from_static(v);
    h.insert(header::CONTENT_SECURITY_POLICY, set(views::CSP));
    h.insert(header::X_FRAME_OPTIONS, set("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, set("nosniff"));
    h.insert(header::REFERRER_POLICY, set("no-referrer"));
    if !path.ends_with(".css") {
        h.insert(header::CACHE_CONTROL, set("no-store"));
    }
    resp
}
