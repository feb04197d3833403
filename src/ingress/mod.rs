//! Ingress: the public listener (hooks, `/healthz`) and the admin listener
//! (`/healthz`, `/readyz`, `/metrics`, the web console under `/console/`).
//!
//! The public server is hyper's HTTP/1 connection loop with the limits a
//! daemon on the open internet needs: connections admitted, shed and timed
//! out by [`conns`] (per-peer cap, shedding the least progress at
//! capacity, header/body/idle deadlines), a body cap checked before
//! reading, and graceful shutdown. No request ever waits on the alert API or a chat
//! service: a hook answers as soon as the event is committed to the spool.

mod actions;
mod admin;
mod api;
pub mod auth;
pub mod conns;
mod console;
mod hooks;
mod pages;

pub use admin::admin_router;
pub use hooks::public_router;

pub use conns::{ConnLimits, Conns};

use crate::live::Live;
use crate::pipeline::Intake;
use crate::store::Store;
use crate::telemetry::Metrics;
use axum::extract::ConnectInfo;
use axum::Router;
use conns::{Admission, Phase, Tracked};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
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
    /// Action pages per client address.
    pub action_limiter: PerMinute,
    /// Slots for the chat interactions carried out after their answer.
    pub interactions: actions::Interactions,
    /// The console's session key and login rate limit.
    pub console_keys: console::Keys,
    /// Pauses (for the console) and wake-ups after a replay.
    pub coord: crate::coord::Coordinator,
    /// Where the console's reload button sends the configuration.
    pub reload: tokio::sync::mpsc::UnboundedSender<crate::live::ReloadRequest>,
}

/// Requests per client address in the current minute, for pages a person
/// opens (action pages, console logins). Bounded: the map is cleared of
/// past minutes when it grows past what one minute of a flood leaves.
#[derive(Default)]
pub struct PerMinute {
    seen: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, (std::time::Instant, u32)>>,
}

impl PerMinute {
    /// Counts a request from `ip`; whether it is within `limit` this minute.
    pub fn allow(&self, ip: std::net::IpAddr, limit: u32) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        if seen.len() > 10_000 {
            seen.retain(|_, (start, _)| now.duration_since(*start) < Duration::from_secs(60));
        }
        let entry = seen.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 += 1;
        entry.1 <= limit
    }
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
