//! The console's pages. Every input (query strings, forms) is parsed here
//! by hand so that anything wrong is a 4xx page naming the parameter,
//! never a 500.

// The input checks return the refusal page itself as their error: it is
// built at most once per request, so its size does not matter.
#![allow(clippy::result_large_err)]

mod common;
mod config_view;
mod dead_letters;
mod events;
mod login;
mod overview;
mod tester;

pub use config_view::{config_view, reload};
pub use dead_letters::{dead_letters, replay};
pub use events::{event, events};
pub use login::{login, login_form, logout};
pub use overview::overview;
pub use tester::{tester, tester_form};

use super::views::{self, problem};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

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
