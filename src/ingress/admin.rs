//! The admin listener: liveness, readiness and metrics. Bound to loopback
//! by default and never on the public port.

use super::IngressState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use std::sync::atomic::Ordering;
use std::sync::Arc;

pub fn admin_router(state: Arc<IngressState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state.clone())
        .merge(super::console::router(state.clone()))
        .merge(super::api::router(state))
}

async fn readyz(State(state): State<Arc<IngressState>>) -> impl IntoResponse {
    if state.ready.load(Ordering::Relaxed) && state.store.healthy() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

async fn metrics(State(state): State<Arc<IngressState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}
