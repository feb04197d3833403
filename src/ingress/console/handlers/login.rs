//! The login form, logging in (a wrong password costs the same whatever
//! was wrong) and logging out (the spool's session epoch moves).

use super::super::redirect;
use super::super::session::{Keys, Sealer, Session};
use super::super::views::{page, problem, Nav};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use maud::html;
use std::net::SocketAddr;
use std::time::Duration;

use super::common::*;

/// A wrong password costs this long (whatever was wrong).
const LOGIN_PENALTY: Duration = Duration::from_millis(800);

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
