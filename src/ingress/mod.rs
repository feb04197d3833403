//! Ingress: the public listener (hooks, `/healthz`) and the admin listener
//! (`/healthz`, `/readyz`, `/metrics`, the web console under `/console/`).
//!
//! The public server is hyper's HTTP/1 connection loop with the limits a
//! daemon on the open internet needs: connections admitted, shed and timed
//! out by [`conns`] (per-peer cap, shedding the least progress at
//! capacity, header/body/idle deadlines), a body cap checked before
//! reading, and graceful shutdown. No request ever waits on the alert API or a chat
//! service: a hook answers as soon as the event is committed to the spool.

mod acting;
mod actions;
mod admin;
mod api;
pub mod auth;
pub mod conns;
mod console;
mod hooks;
mod limits;
mod pages;
mod state;

pub use admin::admin_router;
pub use limits::PerMinute;
pub use state::IngressState;

pub use conns::{ConnLimits, Conns};

use axum::extract::ConnectInfo;
use axum::http::StatusCode;
use axum::routing::{any, get};
use axum::Router;
use conns::{Admission, Phase, Tracked};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// The public listener's routes: hooks, the action pages and chat
/// interactions, `/healthz`; the same 404 for everything else.
pub fn public_router(state: Arc<IngressState>) -> Router {
    Router::new()
        .route("/hooks/{id}", any(hooks::hook))
        .route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
        .merge(actions::routes())
        .fallback(hooks::not_found)
        .with_state(state)
}

/// Serves `router` on `listener` until `cancel` fires, then lets open
/// requests finish within `grace`. Every connection is admitted (or
/// refused, or makes room) by `conns`, which also enforces the deadlines.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    conns: Arc<Conns>,
    grace: Duration,
    cancel: CancellationToken,
) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let reaper = tokio::spawn(conns.clone().reap(cancel.clone()));
    loop {
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
        let guard = match conns.admit(peer.ip()) {
            Admission::Admitted(guard) => guard,
            // Closed at once: it costs the others nothing.
            Admission::Refused => continue,
        };
        let _ = stream.set_nodelay(true);
        let state = guard.state.clone();
        let svc = router
            .clone()
            .map_request(move |mut req: axum::http::Request<Incoming>| {
                // The head is in: the body follows, if there is one.
                state.enter(if hyper::body::Body::is_end_stream(req.body()) {
                    Phase::Handling
                } else {
                    Phase::Body
                });
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(state.clone());
                req
            })
            .map_response({
                let state = guard.state.clone();
                move |resp| {
                    state.enter(Phase::Idle);
                    resp
                }
            });
        let mut builder = hyper::server::conn::http1::Builder::new();
        // The deadlines are the tracker's (headers, body, idle), not
        // hyper's, whose header timer also runs while a keep-alive idles.
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .keep_alive(true);
        let io = TokioIo::new(Tracked::new(stream, guard.state.clone()));
        let conn = builder.serve_connection(io, TowerToHyperService::new(svc));
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let state = guard.state.clone();
            tokio::select! {
                result = conn => {
                    if let Err(e) = result {
                        guard.failed(&e);
                    }
                }
                _ = state.closed() => {}
            }
            drop(guard);
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(grace) => {
            tracing::warn!(message = "Shutdown grace expired with requests still open.");
        }
    }
    reaper.abort();
}

/// Binds a listener, naming the key on failure.
pub async fn bind(addr: SocketAddr, key: &str) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).await.map_err(|e| {
        let hint = if e.kind() == std::io::ErrorKind::PermissionDenied {
            let port = addr.port();
            if port < 1024 {
                format!(" (ports below 1024 need CAP_NET_BIND_SERVICE; under systemd, the service's SocketBindAllow may not include port {port} either)")
            } else {
                format!(" (under systemd: the service's SocketBindAllow may not include port {port}; add SocketBindAllow=tcp:{port} with `systemctl edit hookrelay`)")
            }
        } else {
            String::new()
        };
        anyhow::anyhow!("{key}: cannot listen on {addr}: {e}{hint}")
    })
}
