//! The public listener's connections: who holds them, how far each got,
//! and who goes when the door is crowded.
//!
//! A webhook sender opens a connection, sends one small request and gets
//! its 202 within milliseconds. A flood (slow-loris headers, trickled
//! bodies, idle keep-alives) holds connections open doing nothing. So:
//!
//! - **per peer**: at most `server.max_connections_per_ip` open at once
//!   (peers in `server.trusted_proxies` are exempt: a proxy carries many
//!   clients); a peer at its cap has its newest connection closed at once;
//! - **at capacity** (`server.max_connections`) the listener keeps
//!   accepting and closes the connection that has made the least progress:
//!   the oldest incomplete request (headers, then body), else the longest
//!   idle keep-alive. A connection whose request is complete (being stored,
//!   answered) is never shed; if every one is, the newcomer is refused;
//! - **deadlines**: request headers within `server.header_read_timeout`
//!   (from the connection's start, or from the first byte of a later
//!   request), the body within `server.request_timeout`, and a keep-alive
//!   connection idle for `server.idle_timeout` is closed. One reaper task
//!   enforces them for all connections.
//!
//! Every refusal, shed and deadline is counted (`hookrelay_connections_*`),
//! and a rate-limited warning names the peer that caused most of them.

use crate::telemetry::{labels1, Metrics};
use ipnet::IpNet;
use std::collections::HashMap;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_util::sync::CancellationToken;

/// How often the reaper looks for connections past a deadline.
const REAP_EVERY: Duration = Duration::from_millis(200);
/// At most one warning about a flood per this long.
const WARN_EVERY: Duration = Duration::from_secs(10);
/// The body deadline is the handler's (`408`); the reaper closes a
/// connection only this long after it, should the handler not have.
const BODY_GRACE: Duration = Duration::from_secs(1);

/// The connection limits of a listener.
#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub max_connections: usize,
    /// 0: no cap per peer (the admin listener).
    pub max_per_ip: usize,
    /// Exempt from the per-peer cap.
    pub trusted: Vec<IpNet>,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
}

/// How far a connection got with its current request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Phase {
    /// Waiting for the head of a request, some of it (or, on a new
    /// connection, none of it yet) received.
    Head = 0,
    /// The head is in; the body is still arriving.
    Body = 1,
    /// The request is complete: it is being handled and answered. Never shed.
    Handling = 2,
    /// A keep-alive connection between requests.
    Idle = 3,
}

impl Phase {
    fn from_u8(v: u8) -> Phase {
        match v {
            0 => Phase::Head,
            1 => Phase::Body,
            2 => Phase::Handling,
            _ => Phase::Idle,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Phase::Head => "head",
            Phase::Body => "body",
            Phase::Handling => "handling",
            Phase::Idle => "idle",
        }
    }
}

/// One connection's progress, shared by its IO, its requests and the reaper.
#[derive(Debug)]
pub struct ConnState {
    phase: AtomicU8,
    /// When the phase began, in ms since the tracker's epoch.
    since: AtomicU64,
    epoch: Instant,
    /// Cancelled to close the connection.
    close: CancellationToken,
}

impl ConnState {
    fn new(epoch: Instant) -> ConnState {
        let s = ConnState {
            phase: AtomicU8::new(Phase::Head as u8),
            since: AtomicU64::new(0),
            epoch,
            close: CancellationToken::new(),
        };
        s.since.store(s.now(), Ordering::Relaxed);
        s
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    pub fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Relaxed))
    }

    /// Moves to `phase` (from whatever it was), restarting its clock.
    pub fn enter(&self, phase: Phase) {
        self.since.store(self.now(), Ordering::Relaxed);
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    /// A byte arrived: an idle connection has started its next request.
    fn received(&self) {
        if self
            .phase
            .compare_exchange(
                Phase::Idle as u8,
                Phase::Head as u8,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.since.store(self.now(), Ordering::Relaxed);
        }
    }

    fn age(&self, now: u64) -> Duration {
        Duration::from_millis(now.saturating_sub(self.since.load(Ordering::Relaxed)))
    }

    /// Resolves when the connection must close.
    pub async fn closed(&self) {
        self.close.cancelled().await
    }
}

/// Why a connection was closed by the listener rather than its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Closed {
    PerIpCap,
    Shed,
    /// At capacity with every connection handling a complete request.
    Full,
    HeaderTimeout,
    BodyTimeout,
    IdleTimeout,
}

impl Closed {
    fn name(self) -> &'static str {
        match self {
            Closed::PerIpCap => "per_ip_cap",
            Closed::Shed => "shed",
            Closed::Full => "full",
            Closed::HeaderTimeout => "header_timeout",
            Closed::BodyTimeout => "body_timeout",
            Closed::IdleTimeout => "idle_timeout",
        }
    }
}

/// What became of a connection that knocked.
pub enum Admission {
    /// Serve it; drop the guard when it ends.
    Admitted(ConnGuard),
    /// Close it at once.
    Refused,
}

/// The connections of one listener.
pub struct Conns {
    metrics: Arc<Metrics>,
    /// The metrics' `listener` label.
    listener: &'static str,
    epoch: Instant,
    inner: Mutex<Inner>,
}

struct Inner {
    /// Changed in place by a reload.
    limits: ConnLimits,
    next_id: u64,
    open: HashMap<u64, (IpAddr, Arc<ConnState>)>,
    per_ip: HashMap<IpAddr, usize>,
    /// Refusals, sheds and deadlines per peer since the last warning.
    offenders: HashMap<IpAddr, u64>,
    last_warning: Option<Instant>,
}

/// Keeps a connection counted while it is open.
pub struct ConnGuard {
    conns: Arc<Conns>,
    id: u64,
    pub state: Arc<ConnState>,
}

impl ConnGuard {
    /// The connection ended in an error: counted by kind (a malformed
    /// request, such as garbage after a valid one, is answered 400 by the
    /// HTTP layer and closed).
    pub fn failed(&self, e: &hyper::Error) {
        let reason = if e.is_parse() || e.is_parse_too_large() {
            "malformed"
        } else if e.is_incomplete_message() {
            "incomplete"
        } else if e.is_timeout() {
            "timeout"
        } else {
            "io"
        };
        self.conns
            .metrics
            .connections
            .failed
            .get_or_create(&vec![
                ("listener", self.conns.listener.to_owned()),
                ("reason", reason.to_owned()),
            ])
            .inc();
    }
}

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.conns.remove(self.id);
    }
}

impl Conns {
    pub fn new(limits: ConnLimits, metrics: Arc<Metrics>, listener: &'static str) -> Arc<Conns> {
        Arc::new(Conns {
            metrics,
            listener,
            epoch: Instant::now(),
            inner: Mutex::new(Inner {
                limits,
                next_id: 0,
                open: HashMap::new(),
                per_ip: HashMap::new(),
                offenders: HashMap::new(),
                last_warning: None,
            }),
        })
    }

    /// New limits (a reload): they apply to the next admission and the
    /// next deadline check; open connections are not closed for it.
    pub fn update(&self, limits: ConnLimits) {
        self.lock().limits = limits;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Decides about a connection just accepted from `ip`: admitted (maybe
    /// by shedding the one with the least progress) or refused.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Admission {
        let mut inner = self.lock();
        let cap = inner.limits.max_per_ip;
        if cap > 0
            && !inner.limits.trusted.iter().any(|n| n.contains(&ip))
            && inner.per_ip.get(&ip).copied().unwrap_or(0) >= cap
        {
            self.count(&mut inner, ip, Closed::PerIpCap, None);
            return Admission::Refused;
        }
        if inner.open.len() >= inner.limits.max_connections.max(1) {
            let now = self.epoch.elapsed().as_millis() as u64;
            match least_progress(inner.open.values().map(|(ip, s)| (*ip, s)), now) {
                Some((victim_ip, victim)) => {
                    victim.close.cancel();
                    let phase = victim.phase();
                    self.count(&mut inner, victim_ip, Closed::Shed, Some(phase));
                }
                None => {
                    self.count(&mut inner, ip, Closed::Full, None);
                    return Admission::Refused;
                }
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let state = Arc::new(ConnState::new(self.epoch));
        inner.open.insert(id, (ip, state.clone()));
        *inner.per_ip.entry(ip).or_insert(0) += 1;
        self.metrics
            .connections
            .open
            .get_or_create(&labels1("listener", self.listener))
            .set(inner.open.len() as i64);
        Admission::Admitted(ConnGuard {
            conns: self.clone(),
            id,
            state,
        })
    }

    fn remove(&self, id: u64) {
        let mut inner = self.lock();
        if let Some((ip, _)) = inner.open.remove(&id) {
            if let Some(n) = inner.per_ip.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    inner.per_ip.remove(&ip);
                }
            }
        }
        self.metrics
            .connections
            .open
            .get_or_create(&labels1("listener", self.listener))
            .set(inner.open.len() as i64);
    }

    /// Counts a connection the listener closed, and warns (at most once per
    /// [`WARN_EVERY`]) naming the peer that caused most such closes.
    fn count(&self, inner: &mut Inner, ip: IpAddr, why: Closed, phase: Option<Phase>) {
        let m = &self.metrics;
        let (family, key, value) = match why {
            Closed::PerIpCap | Closed::Full => (&m.connections.refused, "reason", why.name()),
            Closed::Shed => (
                &m.connections.shed,
                "phase",
                phase.map_or("head", Phase::name),
            ),
            Closed::HeaderTimeout | Closed::BodyTimeout | Closed::IdleTimeout => {
                (&m.connections.timed_out, "reason", why.name())
            }
        };
        family
            .get_or_create(&vec![
                ("listener", self.listener.to_owned()),
                (key, value.to_owned()),
            ])
            .inc();
        if why == Closed::IdleTimeout {
            // Idle keep-alives closing is housekeeping, not an attack.
            return;
        }
        *inner.offenders.entry(ip).or_insert(0) += 1;
        let due = inner.last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY);
        if due {
            let total: u64 = inner.offenders.values().sum();
            if let Some((top, n)) = inner.offenders.iter().max_by_key(|(_, n)| **n) {
                tracing::warn!(
                    message = "Connections refused, shed or timed out: the listener may be under a connection flood.",
                    listener = self.listener, top_peer = %top, top_peer_count = n,
                    total, peers = inner.offenders.len(), open = inner.open.len(),
                    last = why.name()
                );
            }
            inner.offenders.clear();
            inner.last_warning = Some(Instant::now());
        }
    }

    /// Closes connections past their phase's deadline, until `cancel`.
    pub async fn reap(self: Arc<Self>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(REAP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let now = self.epoch.elapsed().as_millis() as u64;
            let mut inner = self.lock();
            let limits = inner.limits.clone();
            let late: Vec<(IpAddr, Arc<ConnState>, Closed)> = inner
                .open
                .values()
                .filter(|(_, s)| !s.close.is_cancelled())
                .filter_map(|(ip, s)| {
                    let age = s.age(now);
                    let why = match s.phase() {
                        Phase::Head if age >= limits.header_read_timeout => Closed::HeaderTimeout,
                        Phase::Body if age >= limits.request_timeout + BODY_GRACE => {
                            Closed::BodyTimeout
                        }
                        Phase::Idle if age >= limits.idle_timeout => Closed::IdleTimeout,
                        _ => return None,
                    };
                    Some((*ip, s.clone(), why))
                })
                .collect();
            for (ip, state, why) in late {
                state.close.cancel();
                self.count(&mut inner, ip, why, None);
            }
        }
    }
}

/// The connection to shed: the oldest incomplete request (headers or
/// body), else the longest idle keep-alive; never one being handled.
fn least_progress<'a>(
    open: impl Iterator<Item = (IpAddr, &'a Arc<ConnState>)>,
    now: u64,
) -> Option<(IpAddr, &'a Arc<ConnState>)> {
    open.filter(|(_, s)| !s.close.is_cancelled())
        .filter(|(_, s)| s.phase() != Phase::Handling)
        .max_by_key(|(_, s)| {
            // Incomplete requests before idle connections; the oldest first.
            let incomplete = matches!(s.phase(), Phase::Head | Phase::Body);
            (incomplete, s.age(now))
        })
}

/// A connection's stream that tells its state when bytes arrive.
pub struct Tracked<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S> Tracked<S> {
    pub fn new(inner: S, state: Arc<ConnState>) -> Tracked<S> {
        Tracked { inner, state }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.received();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_ip: usize) -> ConnLimits {
        ConnLimits {
            max_connections: max,
            max_per_ip: per_ip,
            trusted: vec!["127.0.0.1/32".parse().unwrap()],
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }

    fn admitted(a: Admission) -> ConnGuard {
        match a {
            Admission::Admitted(g) => g,
            Admission::Refused => panic!("refused"),
        }
    }

    #[test]
    fn a_peer_at_its_cap_is_refused_others_are_not() {
        let conns = Conns::new(limits(100, 2), Arc::new(Metrics::new()), "public");
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let _g1 = admitted(conns.admit(a));
        let _g2 = admitted(conns.admit(a));
        assert!(matches!(conns.admit(a), Admission::Refused));
        let _other = admitted(conns.admit("10.0.0.2".parse().unwrap()));
        // A trusted proxy carries many clients: no cap.
        let proxy: IpAddr = "127.0.0.1".parse().unwrap();
        let _p: Vec<_> = (0..5).map(|_| admitted(conns.admit(proxy))).collect();
        // A closed connection frees its peer's slot.
        drop(_g1);
        let _g3 = admitted(conns.admit(a));
    }

    #[test]
    fn at_capacity_the_least_progress_goes_and_a_complete_request_never() {
        let conns = Conns::new(limits(3, 0), Arc::new(Metrics::new()), "public");
        let ip = |n: u8| IpAddr::from([10, 0, 0, n]);
        let handling = admitted(conns.admit(ip(1)));
        handling.state.enter(Phase::Handling);
        let idle = admitted(conns.admit(ip(2)));
        idle.state.enter(Phase::Idle);
        let slow = admitted(conns.admit(ip(3)));
        // Full: the incomplete head goes before the idle keep-alive.
        let _new = admitted(conns.admit(ip(4)));
        assert!(slow.state.close.is_cancelled());
        assert!(!idle.state.close.is_cancelled());
        drop(slow);
        // Then the idle one (the newcomer's head is younger but... it is
        // incomplete: it goes first).
        _new.state.enter(Phase::Handling);
        let _newer = admitted(conns.admit(ip(5)));
        assert!(idle.state.close.is_cancelled());
        assert!(!handling.state.close.is_cancelled());
        drop(idle);
        _newer.state.enter(Phase::Handling);
        // Every connection is handling a complete request: refuse.
        assert!(matches!(conns.admit(ip(6)), Admission::Refused));
        assert!(!handling.state.close.is_cancelled());
    }

    #[test]
    fn a_byte_after_idle_starts_a_new_head() {
        let s = ConnState::new(Instant::now());
        s.enter(Phase::Idle);
        s.received();
        assert_eq!(s.phase(), Phase::Head);
        s.enter(Phase::Body);
        s.received();
        assert_eq!(s.phase(), Phase::Body);
    }
}
