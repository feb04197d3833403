//! Logging setup and the metrics registry.
//!
//! Metric labels are bounded by configuration (hook, origin, destination
//! names) or by a fixed vocabulary (result, outcome): never an alert id, a
//! URL or anything a sender controls.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::io::IsTerminal;
use std::sync::atomic::AtomicU64;

type Labels = Vec<(&'static str, String)>;

fn histogram() -> Histogram {
    // 1 ms … ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// Every metric the daemon exports, grouped by the part of the daemon
/// that counts it (the names and labels are the exported series').
pub struct Metrics {
    registry: Registry,
    /// What hooks receive and what becomes of the events.
    pub events: EventMetrics,
    /// The origin API: alert, asset and case look-ups.
    pub enrich: EnrichMetrics,
    /// Sends to destinations and what waits for them.
    pub delivery: DeliveryMetrics,
    /// What operators and chat users do: actions, tenants, console, reloads.
    pub operator: OperatorMetrics,
    /// The listeners' connections.
    pub connections: ConnectionMetrics,
}

/// What hooks receive and what becomes of the events.
#[derive(Default)]
pub struct EventMetrics {
    /// Requests to hooks by hook name and result (accepted, duplicate, or
    /// the rejection reason).
    pub received: Family<Labels, Counter>,
    /// Events whose payload deviated from the documented format but was
    /// still accepted (`metadata` missing, `metadata.version` not 2).
    pub nonstandard: Family<Labels, Counter>,
    /// Events that matched no route.
    pub unrouted: Counter,
    /// Failures inside the relay while processing one event, by stage
    /// (`event`: enrich or route, the event kept with no delivery;
    /// `render`: one destination's message, kept as a dead letter;
    /// `stored`: a stored body that no longer parses).
    pub processing_failures: Family<Labels, Counter>,
    /// Accepted events of a type the relay does not know, by type
    /// ([`Metrics::unknown_type`] bounds the names).
    pub unknown_type: Family<Labels, Counter>,
    /// The unknown type names counted so far.
    unknown_seen: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// The origin API: alert, asset and case look-ups.
pub struct EnrichMetrics {
    /// Requests by origin and outcome.
    pub requests: Family<Labels, Counter>,
    pub duration: Family<Labels, Histogram, fn() -> Histogram>,
    pub cache_hits: Family<Labels, Counter>,
    /// Events forwarded without details because the alert API failed.
    pub degraded: Family<Labels, Counter>,
}

/// Sends to destinations and what waits for them.
pub struct DeliveryMetrics {
    /// Attempts by destination and outcome (delivered, retry, dead).
    pub attempts: Family<Labels, Counter>,
    /// Accept → delivered, per destination.
    pub latency: Family<Labels, Histogram, fn() -> Histogram>,
    /// Pending deliveries per destination.
    pub queue_depth: Family<Labels, Gauge>,
    /// Age of the oldest pending delivery per destination, in seconds.
    pub oldest_pending: Family<Labels, Gauge<f64, AtomicU64>>,
}

/// What operators and chat users do.
#[derive(Default)]
pub struct OperatorMetrics {
    /// Actions taken from the chat, by action and result.
    pub actions: Family<Labels, Counter>,
    /// Tenant changes by action (created, replaced, deleted).
    pub tenant_changes: Family<Labels, Counter>,
    /// Console logins by result (ok, refused).
    pub console_logins: Family<Labels, Counter>,
    /// Configuration reloads by result.
    pub config_reloads: Family<Labels, Counter>,
}

/// The listeners' connections.
#[derive(Default)]
pub struct ConnectionMetrics {
    /// Open connections per listener.
    pub open: Family<Labels, Gauge>,
    /// Connections closed at once on arrival: their peer was at
    /// `max_connections_per_ip`, or every slot was handling a request.
    pub refused: Family<Labels, Counter>,
    /// Connections closed to make room at `max_connections`, by the phase
    /// they were in (head, body, idle).
    pub shed: Family<Labels, Counter>,
    /// Connections closed by a deadline (header, body, idle).
    pub timed_out: Family<Labels, Counter>,
    /// Connections that ended in an error (malformed request, incomplete
    /// message, I/O).
    pub failed: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Default for EnrichMetrics {
    fn default() -> Self {
        EnrichMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(histogram),
            cache_hits: Family::default(),
            degraded: Family::default(),
        }
    }
}

impl Default for DeliveryMetrics {
    fn default() -> Self {
        DeliveryMetrics {
            attempts: Family::default(),
            latency: Family::new_with_constructor(histogram),
            queue_depth: Family::default(),
            oldest_pending: Family::default(),
        }
    }
}

/// Distinct unknown type names counted at most; later ones are `other`.
const UNKNOWN_TYPES_MAX: usize = 50;

impl EventMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "events_received",
            "Webhook requests to hooks by result",
            self.received.clone(),
        );
        r.register(
            "events_nonstandard",
            "Accepted events that deviate from the documented format",
            self.nonstandard.clone(),
        );
        r.register(
            "events_unknown_type",
            "Accepted events of a type hookrelay does not know yet, by type",
            self.unknown_type.clone(),
        );
        r.register(
            "events_unrouted",
            "Events that matched no route",
            self.unrouted.clone(),
        );
        r.register(
            "processing_failures",
            "Failures inside the relay while processing one event (a panic, a stored body that no longer parses), by stage",
            self.processing_failures.clone(),
        );
    }
}

impl OperatorMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "actions",
            "Actions taken on alerts from the chat (buttons), by action and result",
            self.actions.clone(),
        );
        r.register(
            "tenant_changes",
            "Tenant changes through the tenants API, by action",
            self.tenant_changes.clone(),
        );
        r.register(
            "console_logins",
            "Web console login attempts by result",
            self.console_logins.clone(),
        );
        r.register(
            "config_reloads",
            "Configuration reloads by result",
            self.config_reloads.clone(),
        );
    }
}

impl EnrichMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "enrich_requests",
            "Origin API requests (alerts, assets) by outcome",
            self.requests.clone(),
        );
        r.register(
            "enrich_duration_seconds",
            "Origin API request latency (alerts, assets)",
            self.duration.clone(),
        );
        r.register(
            "enrich_cache_hits",
            "Alert look-ups answered from the cache",
            self.cache_hits.clone(),
        );
        r.register(
            "enrich_degraded",
            "Events forwarded without alert details",
            self.degraded.clone(),
        );
    }
}

impl DeliveryMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "deliveries",
            "Delivery attempts by destination and outcome",
            self.attempts.clone(),
        );
        r.register(
            "delivery_latency_seconds",
            "Time from accept to delivered",
            self.latency.clone(),
        );
        r.register(
            "queue_depth",
            "Pending deliveries per destination",
            self.queue_depth.clone(),
        );
        r.register(
            "oldest_pending_seconds",
            "Age of the oldest pending delivery",
            self.oldest_pending.clone(),
        );
    }
}

impl ConnectionMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "connections_open",
            "Open connections per listener",
            self.open.clone(),
        );
        r.register(
            "connections_refused",
            "Connections closed on arrival (per-peer cap, or every slot handling a request)",
            self.refused.clone(),
        );
        r.register(
            "connections_shed",
            "Connections closed at capacity to make room, by the phase they were in",
            self.shed.clone(),
        );
        r.register(
            "connections_timed_out",
            "Connections closed by a header, body or idle deadline",
            self.timed_out.clone(),
        );
        r.register(
            "connections_failed",
            "Connections that ended in an error (malformed request, incomplete message, I/O)",
            self.failed.clone(),
        );
    }
}

impl Metrics {
    /// Counts a failure inside the relay at `stage` (see
    /// [`EventMetrics::processing_failures`]).
    pub fn processing_failed(&self, stage: &'static str) {
        self.events
            .processing_failures
            .get_or_create(&vec![("stage", stage.to_owned())])
            .inc();
    }

    /// Counts an accepted event of a type the relay does not know. The
    /// name is outside text: kept only when it is a short plain token,
    /// and only the first [`UNKNOWN_TYPES_MAX`] names get their own series.
    pub fn unknown_type(&self, kind: &str) {
        let plain = !kind.is_empty()
            && kind.len() <= 64
            && kind
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        let mut name = if plain {
            kind.to_ascii_lowercase()
        } else {
            "invalid".to_owned()
        };
        {
            let mut seen = self
                .events
                .unknown_seen
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if !seen.contains(&name) {
                if seen.len() >= UNKNOWN_TYPES_MAX {
                    name = "other".into();
                } else {
                    seen.insert(name.clone());
                }
            }
        }
        self.events
            .unknown_type
            .get_or_create(&vec![("type", name)])
            .inc();
    }

    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hookrelay");
        let m = Metrics {
            registry: Registry::default(),
            events: EventMetrics::default(),
            enrich: EnrichMetrics::default(),
            delivery: DeliveryMetrics::default(),
            operator: OperatorMetrics::default(),
            connections: ConnectionMetrics::default(),
        };
        m.events.register(&mut registry);
        m.operator.register(&mut registry);
        m.enrich.register(&mut registry);
        m.delivery.register(&mut registry);
        m.connections.register(&mut registry);
        let build: Family<Labels, Gauge> = Family::default();
        build
            .get_or_create(&vec![
                ("version", env!("CARGO_PKG_VERSION").to_owned()),
                ("revision", env!("BUILD_GIT_REV").to_owned()),
            ])
            .set(1);
        registry.register("build_info", "Build information", build);
        Metrics { registry, ..m }
    }

    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        encode(&mut out, &self.registry).expect("encoding metrics into a String");
        out
    }

    pub fn received(&self, hook: &str, result: &str) {
        self.events
            .received
            .get_or_create(&vec![
                ("hook", hook.to_owned()),
                ("result", result.to_owned()),
            ])
            .inc();
    }

    pub fn delivery(&self, destination: &str, outcome: &str) {
        self.delivery
            .attempts
            .get_or_create(&vec![
                ("destination", destination.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }
}

pub fn labels1(k: &'static str, v: &str) -> Labels {
    vec![(k, v.to_owned())]
}

pub fn labels2(k1: &'static str, v1: &str, k2: &'static str, v2: &str) -> Labels {
    vec![(k1, v1.to_owned()), (k2, v2.to_owned())]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable when stderr is a terminal, JSON otherwise.
    Auto,
    Text,
    Json,
}

/// Installs the global subscriber. The filter comes from `RUST_LOG`
/// (default `info`). Safe to call more than once (later calls are no-ops).
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    // PostgreSQL's notices ("relation already exists, skipping") are not news.
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tokio_postgres=warn"));
    let json = match format {
        LogFormat::Json => true,
        LogFormat::Text => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// Tells systemd (Type=notify) about our state; a no-op without
/// `$NOTIFY_SOCKET`.
pub fn notify_systemd(states: &[sd_notify::NotifyState]) {
    if std::env::var_os("NOTIFY_SOCKET").is_some() {
        if let Err(e) = sd_notify::notify(states) {
            tracing::warn!(message = "Cannot notify systemd.", error = %e);
        }
    }
}

/// Pings systemd's watchdog at half its interval while the runtime is
/// healthy enough to run this task; returns at once when `WatchdogSec` is
/// not set.
pub async fn watchdog(cancel: tokio_util::sync::CancellationToken) {
    let Some(interval) = sd_notify::watchdog_enabled().filter(|d| !d.is_zero()) else {
        return;
    };
    let mut tick = tokio::time::interval(interval / 2);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => notify_systemd(&[sd_notify::NotifyState::Watchdog]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(m: &Metrics, name: &str) -> u64 {
        m.events
            .unknown_type
            .get_or_create(&vec![("type", name.to_owned())])
            .get()
    }

    /// Type names are outside text: only plain tokens get their own
    /// series, and only so many of them.
    #[test]
    fn unknown_types_are_counted_by_a_bounded_set_of_names() {
        let m = Metrics::new();
        m.unknown_type("countermeasure");
        m.unknown_type("Countermeasure");
        assert_eq!(count(&m, "countermeasure"), 2);
        m.unknown_type("a\"b{c}\n");
        m.unknown_type(&"x".repeat(65));
        assert_eq!(count(&m, "invalid"), 2);
        for i in 0..UNKNOWN_TYPES_MAX + 5 {
            m.unknown_type(&format!("type-{i}"));
        }
        assert_eq!(count(&m, "other"), 7, "beyond the first 50 names");
        assert_eq!(count(&m, "type-0"), 1);
        // A name seen before keeps its series.
        m.unknown_type("countermeasure");
        assert_eq!(count(&m, "countermeasure"), 3);
    }
}
