//! What every page shares: the parsing of queries and forms (anything
//! wrong is a 4xx page naming the parameter, never a 500), the session's
//! tokens, and the answers for a failed spool.

// The input checks return the refusal page itself as their error: it is
// built at most once per request, so its size does not matter.
#![allow(clippy::result_large_err)]

use super::super::session::Session;
use super::super::views::problem;
use crate::config::Config;
use crate::ingress::IngressState;
use crate::store::StoreError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use std::sync::Arc;

pub(super) type St = State<Arc<IngressState>>;

/// Rows per page.
pub(super) const PAGE: usize = 50;
/// Query or form pairs.
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn parse(raw: &[u8]) -> Params {
        Params(url::form_urlencoded::parse(raw).into_owned().collect())
    }

    pub(super) fn query(raw: Option<String>) -> Params {
        Params::parse(raw.unwrap_or_default().as_bytes())
    }

    /// A parameter's value, trimmed; empty counts as absent.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    pub(super) fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.trim())
    }

    /// A text parameter of at most `max` characters.
    pub(super) fn text(&self, key: &str, max: usize) -> Result<Option<String>, Response> {
        match self.get(key) {
            Some(v) if v.chars().count() > max => {
                Err(bad(key, &format!("at most {max} characters")))
            }
            v => Ok(v.map(str::to_owned)),
        }
    }

    /// A positive id.
    pub(super) fn id(&self, key: &str) -> Result<Option<i64>, Response> {
        self.get(key)
            .map(|v| match v.parse::<i64>() {
                Ok(n) if n > 0 => Ok(n),
                _ => Err(bad(key, "expected a positive whole number")),
            })
            .transpose()
    }

    /// `YYYY-MM-DDTHH:MM` (a `datetime-local` field), taken as UTC.
    pub(super) fn time(&self, key: &str) -> Result<Option<i64>, Response> {
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

pub(super) fn bad(key: &str, why: &str) -> Response {
    problem(
        StatusCode::BAD_REQUEST,
        "Bad request",
        &format!("The parameter {key:?} is not valid: {why}."),
    )
}

pub(super) fn store_failed(e: StoreError) -> Response {
    tracing::warn!(message = "Console: the spool cannot be read.", error = %e);
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "The spool cannot be read",
        &format!("{e}. Try again in a moment."),
    )
}

pub(super) fn config(state: &IngressState) -> Arc<Config> {
    state.live.get().config.clone()
}

/// The logout button's token when there is a login to end.
pub(super) fn logout_token<'a>(config: &Config, session: &'a Session) -> Option<&'a str> {
    config
        .console
        .as_ref()
        .and_then(|c| c.password.as_ref())
        .map(|_| session.csrf.as_str())
}

/// A form's CSRF token checked against the session, or the 403 page.
pub(super) fn check_csrf(session: &Session, form: &Params) -> Result<(), Response> {
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

pub(super) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The query string of the current filters with `cursor` replaced.
pub(super) fn with_cursor(p: &Params, cursor: (&str, i64)) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in &p.0 {
        if k != "before" && k != "after" && !v.trim().is_empty() {
            out.append_pair(k, v.trim());
        }
    }
    out.append_pair(cursor.0, &cursor.1.to_string());
    out.finish()
}
