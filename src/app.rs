//! Startup, reload and shutdown. [`App::build`] opens the spool and binds
//! both listeners (port 0 allowed, addresses exposed for tests);
//! [`App::run`] serves until the token is cancelled, applying reloads as
//! they come, then drains: stop accepting, let open requests and in-flight
//! deliveries finish within the grace period, leave the rest in the spool.

use crate::config::{Config, ConfigErrors};
use crate::delivery::{Dispatcher, Shared};
use crate::enrich::Enricher;
use crate::ingress::{self, auth::ReplayGuard, IngressState, Limits};
use crate::pipeline::{Intake, Pipeline};
use crate::store::{spool_log, Store};
use crate::telemetry::{labels1, Metrics};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often finished events are pruned.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);
/// How often queue gauges are refreshed.
const GAUGES_EVERY: Duration = Duration::from_secs(5);

/// One configuration and what is built from it; replaced as a whole.
pub struct Generation {
    pub config: Arc<Config>,
    pub enricher: Arc<Enricher>,
}

/// The current [`Generation`], swapped atomically by a reload. Readers take
/// an `Arc` and keep a consistent view for as long as they hold it.
pub struct Live {
    current: RwLock<Arc<Generation>>,
}

impl Live {
    pub fn new(generation: Generation) -> Live {
        Live {
            current: RwLock::new(Arc::new(generation)),
        }
    }

    pub fn get(&self) -> Arc<Generation> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, generation: Generation) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(generation);
    }
}

/// A configuration to switch to, or the errors of a file that failed to load.
/// How long start-up waits for a database spool before listening anyway.
const STORE_START_WAIT: Duration = Duration::from_secs(5);

pub type ReloadRequest = Result<Config, ConfigErrors>;

pub struct App {
    config: Config,
    store: Store,
    metrics: Arc<Metrics>,
    public: TcpListener,
    admin: TcpListener,
    public_addr: SocketAddr,
    admin_addr: SocketAddr,
    reload_tx: mpsc::UnboundedSender<ReloadRequest>,
    reload_rx: mpsc::UnboundedReceiver<ReloadRequest>,
}

impl App {
    /// Opens the spool and binds the listeners. Errors name the key at fault.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let store = Store::open(&config.store)?;
        // A database spool usually answers within milliseconds; give it a
        // moment so a healthy start does not begin with 503s. If it does not
        // answer, the daemon starts anyway (503, not ready) and keeps trying.
        store.wait_ready(STORE_START_WAIT).await;
        let public = ingress::bind(config.server.listen, "server.listen").await?;
        let admin = ingress::bind(config.admin.listen, "admin.listen").await?;
        let (reload_tx, reload_rx) = mpsc::unbounded_channel();
        Ok(App {
            public_addr: public.local_addr()?,
            admin_addr: admin.local_addr()?,
            config,
            store,
            metrics: Arc::new(Metrics::new()),
            public,
            admin,
            reload_tx,
            reload_rx,
        })
    }

    pub fn public_addr(&self) -> SocketAddr {
        self.public_addr
    }

    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Where to send new configurations (SIGHUP, tests).
    pub fn reloader(&self) -> mpsc::UnboundedSender<ReloadRequest> {
        self.reload_tx.clone()
    }

    /// Runs until `shutdown` is cancelled, then drains and returns.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let App {
            config,
            store,
            metrics,
            public,
            admin,
            public_addr,
            admin_addr,
            reload_tx,
            mut reload_rx,
        } = self;
        drop(reload_tx);
        for w in &config.warnings {
            tracing::warn!(message = "Configuration warning.", warning = %w);
        }
        let http = crate::http::client();
        let config = Arc::new(config);
        let live = Arc::new(Live::new(Generation {
            enricher: Arc::new(Enricher::new(
                &config.origins,
                http.clone(),
                metrics.clone(),
            )),
            config: config.clone(),
        }));
        let tracker = TaskTracker::new();
        // Workers and the pipeline stop only after ingress has stopped, so
        // an event accepted during shutdown is still handed over.
        let work_cancel = CancellationToken::new();
        let grace = config.server.shutdown_grace;

        // Starts "behind": events a previous run accepted but did not route
        // are read back from the spool first.
        let (intake, rx) = Intake::new();
        let watch = Arc::new(crate::silence::Watch::default());
        let state = Arc::new(IngressState {
            live: live.clone(),
            store: store.clone(),
            intake: intake.clone(),
            watch: watch.clone(),
            metrics: metrics.clone(),
            replays: ReplayGuard::default(),
            ready: AtomicBool::new(false),
            reject_log: Default::default(),
        });
        let limits = Limits {
            max_connections: config.server.max_connections,
            header_read_timeout: config.server.header_read_timeout,
            shutdown_grace: grace,
        };
        let admin_limits = Limits {
            max_connections: 64,
            ..limits
        };
        let ingress_cancel = CancellationToken::new();
        let public_task = tokio::spawn(ingress::serve(
            public,
            ingress::public_router(state.clone()),
            limits,
            ingress_cancel.clone(),
        ));
        // The admin listener outlives ingress so /readyz can say 503 while draining.
        let admin_cancel = CancellationToken::new();
        let admin_task = tokio::spawn(ingress::serve(
            admin,
            ingress::admin_router(state.clone()),
            admin_limits,
            admin_cancel.clone(),
        ));
        state.ready.store(true, Ordering::Relaxed);
        tracing::info!(
            message = "hookrelay is listening.", listen = %public_addr, admin = %admin_addr,
            hooks = config.hooks.len(), destinations = config.destinations.len(), routes = config.routes.len()
        );
        crate::telemetry::notify_systemd(&[
            sd_notify::NotifyState::Ready,
            sd_notify::NotifyState::Status(&format!(
                "listening on {public_addr}; admin on {admin_addr}"
            )),
        ]);

        tracker.spawn(crate::telemetry::watchdog(work_cancel.clone()));
        // A database spool may not answer yet: ingress already says 503
        // and /readyz not ready; the work starts once it does.
        if !store.healthy() {
            tracing::warn!(message = "Waiting for the spool; hooks answer 503 until it is ready.");
            let ready = async {
                while !store.healthy() {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = ready => tracing::info!(message = "The spool is ready; starting delivery."),
            }
        }
        orphan_unconfigured(&store, &config).await;
        let dispatcher = Arc::new(Dispatcher::start(
            Shared {
                store: store.clone(),
                http: http.clone(),
                metrics: metrics.clone(),
                delivery: config.delivery.clone(),
                shutdown_grace: grace,
                live: Some(live.clone()),
            },
            &config.destinations,
            &tracker,
            &work_cancel,
        ));
        let pipeline = Arc::new(Pipeline::new(
            live.clone(),
            store.clone(),
            dispatcher.clone(),
            metrics.clone(),
        ));
        tracker.spawn(pipeline.run(intake.clone(), rx, tracker.clone(), work_cancel.clone()));
        tracker.spawn(crate::silence::run(
            watch.clone(),
            live.clone(),
            store.clone(),
            intake.clone(),
            work_cancel.clone(),
        ));
        tracker.spawn(background(
            store.clone(),
            metrics.clone(),
            live.clone(),
            work_cancel.clone(),
        ));

        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(request) = reload_rx.recv() => {
                    apply_reload(request, &live, &dispatcher, &store, &metrics, &http).await;
                }
            }
        }

        tracing::info!(
            message = "Shutting down: no new events; finishing in-flight work.",
            grace_ms = grace.as_millis() as u64
        );
        crate::telemetry::notify_systemd(&[
            sd_notify::NotifyState::Stopping,
            sd_notify::NotifyState::Status("draining"),
        ]);
        state.ready.store(false, Ordering::Relaxed);
        ingress_cancel.cancel();
        let _ = public_task.await;
        work_cancel.cancel();
        tracker.close();
        if tokio::time::timeout(grace + Duration::from_secs(1), tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(message = "Some tasks did not stop within the grace period; their work stays in the spool.");
        }
        // What this replica still held goes back to the others at once
        // (a shared spool; otherwise the leases would have to run out).
        if let Err(e) = store.release().await {
            tracing::warn!(message = "Cannot release this replica's claims; other replicas take them over when the leases expire.", error = %e);
        }
        admin_cancel.cancel();
        let _ = admin_task.await;
        drop(state);
        tracing::info!(message = "Stopped.");
        Ok(())
    }
}

/// Switches to a new configuration, or keeps the old one if it is invalid.
async fn apply_reload(
    request: ReloadRequest,
    live: &Live,
    dispatcher: &Dispatcher,
    store: &Store,
    metrics: &Arc<Metrics>,
    http: &reqwest::Client,
) {
    crate::telemetry::notify_systemd(&[sd_notify::NotifyState::Reloading]);
    let new = match request {
        Ok(c) => c,
        Err(errors) => {
            metrics
                .config_reloads
                .get_or_create(&labels1("result", "error"))
                .inc();
            let text = errors
                .0
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ");
            tracing::error!(message = "Configuration reload rejected; the previous configuration keeps serving.", errors = %text);
            crate::telemetry::notify_systemd(&[
                sd_notify::NotifyState::Ready,
                sd_notify::NotifyState::Status("reload rejected; previous configuration serving"),
            ]);
            return;
        }
    };
    let old = live.get().config.clone();
    for (key, changed) in [
        ("server.listen", old.server.listen != new.server.listen),
        ("admin.listen", old.admin.listen != new.admin.listen),
        (
            "server.max_connections",
            old.server.max_connections != new.server.max_connections,
        ),
        (
            "server.header_read_timeout",
            old.server.header_read_timeout != new.server.header_read_timeout,
        ),
        (
            "store",
            old.store.kind != new.store.kind
                || old.store.path != new.store.path
                || old.store.sync != new.store.sync
                || old.store.max_pending != new.store.max_pending
                || old.store.lease != new.store.lease
                || old.store.ca_file != new.store.ca_file
                || old.store.url.as_ref().map(|u| u.expose())
                    != new.store.url.as_ref().map(|u| u.expose()),
        ),
        (
            "delivery",
            old.delivery.max_age != new.delivery.max_age
                || old.delivery.initial_backoff != new.delivery.initial_backoff
                || old.delivery.max_backoff != new.delivery.max_backoff
                || old.delivery.concurrency != new.delivery.concurrency,
        ),
    ] {
        if changed {
            tracing::warn!(
                message = "This setting changes only at restart; the running value is kept.",
                key
            );
        }
    }
    for w in &new.warnings {
        tracing::warn!(message = "Configuration warning.", warning = %w);
    }
    let new = Arc::new(new);
    live.set(Generation {
        enricher: Arc::new(Enricher::new(&new.origins, http.clone(), metrics.clone())),
        config: new.clone(),
    });
    for name in dispatcher.reconcile(&new.destinations) {
        orphan(store, &name).await;
    }
    metrics
        .config_reloads
        .get_or_create(&labels1("result", "ok"))
        .inc();
    tracing::info!(
        message = "Configuration reloaded.",
        hooks = new.hooks.len(),
        destinations = new.destinations.len(),
        routes = new.routes.len()
    );
    crate::telemetry::notify_systemd(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status("configuration reloaded"),
    ]);
}

/// Dead-letters the pending deliveries of a destination that is no longer
/// configured, so they are visible and replayable instead of stuck.
pub async fn orphan(store: &Store, destination: &str) {
    let reason = format!("destination {destination:?} is no longer in the configuration");
    match store
        .orphan_destination(destination.to_owned(), reason)
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::warn!(
            message = "Pending deliveries to a removed destination became dead letters.",
            destination,
            count = n
        ),
        Err(e) => {
            tracing::error!(message = "Cannot dead-letter deliveries to a removed destination.", destination, error = %e)
        }
    }
}

/// At start: pending work for destinations the config no longer has.
async fn orphan_unconfigured(store: &Store, config: &Config) {
    match store.queue_depths().await {
        Ok(depths) => {
            for d in depths
                .iter()
                .filter(|d| !config.destinations.contains_key(&d.destination))
            {
                orphan(store, &d.destination).await;
            }
        }
        Err(e) => spool_log!(warn, store, message = "Cannot read queue depths.", error = %e),
    }
}

/// Periodic work: queue gauges and housekeeping.
async fn background(
    store: Store,
    metrics: Arc<Metrics>,
    live: Arc<Live>,
    cancel: CancellationToken,
) {
    let mut gauges = tokio::time::interval(GAUGES_EVERY);
    let mut prune = tokio::time::interval(HOUSEKEEPING_EVERY);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = gauges.tick() => {
                match store.queue_depths().await {
                    Ok(depths) => {
                        let now = crate::store::now_ms();
                        let config = live.get().config.clone();
                        let mut total = 0;
                        for name in config.destinations.keys() {
                            let d = depths.iter().find(|d| &d.destination == name);
                            let pending = d.map_or(0, |d| d.pending);
                            total += pending;
                            metrics.queue_depth.get_or_create(&labels1("destination", name)).set(pending);
                            let age = d.and_then(|d| d.oldest_created_at).map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
                            metrics.oldest_pending.get_or_create(&labels1("destination", name)).set(age);
                        }
                        crate::telemetry::notify_systemd(&[sd_notify::NotifyState::Status(&format!("{total} deliveries pending"))]);
                    }
                    Err(e) => spool_log!(warn, store, message = "Cannot read queue depths.", error = %e),
                }
            }
            _ = prune.tick() => {
                match store.housekeeping(live.get().config.store.retention).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(message = "Pruned finished events past retention.", count = n),
                    Err(e) => spool_log!(warn, store, message = "Housekeeping failed.", error = %e),
                }
            }
        }
    }
}
