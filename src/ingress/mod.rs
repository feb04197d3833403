//! Ingress: the public listener (hooks, `/healthz`) and the admin listener
//! (`/healthz`, `/readyz`, `/metrics`).
//!
//! The public server is hyper's HTTP/1 connection loop with the limits a
//! daemon on the open internet needs: a cap on concurrent connections, a
//! header-read timeout (slow-loris), a body cap checked before reading, and
//! graceful shutdown. No request ever waits on the alert API or a chat
//! service: a hook answers as soon as the event is committed to the spool.

mod admin;
pub mod auth;
mod hooks;

pub use admin::admin_router;
pub use hooks::public_router;

use crate::live::Live;
use crate::pipeline::Intake;
use crate::store::Store;
use crate::telemetry::Metrics;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// What request handlers share.
pub struct IngressState {
    /// The current configuration (swapped on reload).
    pub live: Arc<Live>,
    pub store: Store,
    /// Accepted events go to the pipeline through this.
    pub intake: Intake,
    /// Last event per hook, for silence detection.
    pub watch: Arc<crate::silence::Watch>,
    pub metrics: Arc<Metrics>,
    /// Standard Webhooks message ids seen recently (replay protection).
    pub replays: auth::ReplayGuard,
    /// `/readyz`: the spool is open, the config loaded, not shutting down.
    pub ready: AtomicBool,
    /// Rate limit for logging rejected requests (an attacker must not be
    /// able to flood the journal).
    pub reject_log: hooks::LogLimiter,
}

/// Connection-level limits of a listener.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub shutdown_grace: Duration,
}

/// Serves `router` on `listener` until `cancel` fires, then lets open
/// requests finish within the grace period.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    cancel: CancellationToken,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        let permit = tokio::select! {
            _ = cancel.cancelled() => break,
            p = connections.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(message = "Accept failed.", error = %e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let svc = router
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req
            });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
            drop(permit);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(limits.shutdown_grace) => {
            tracing::warn!(message = "Shutdown grace expired with requests still open.");
        }
    }
}

/// Binds a listener, naming the key on failure.
pub async fn bind(addr: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("{key}: cannot listen on {addr}: {e}"))
}
