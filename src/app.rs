//! Startup, reload and shutdown. [`App::build`] opens the spool and binds
//! both listeners (port 0 allowed, addresses exposed for tests);
//! [`App::run`] serves until the token is cancelled, applying reloads as
//! they come, then drains: stop accepting, let open requests and in-flight
//! deliveries finish within the grace period, leave the rest in the spool.

use crate::config::{Config, ServerConfig};
use crate::coord::Coordinator;
use crate::delivery::{Dispatcher, Shared};
use crate::ingress::{self, auth::ReplayGuard, ConnLimits, Conns, IngressState};
use crate::live::{Generation, Live};
use crate::pipeline::{Intake, Pipeline};
use crate::store::{spool_log, Store};
use crate::telemetry::{labels1, Metrics};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often finished events are pruned.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);
/// How often queue gauges are refreshed.
const GAUGES_EVERY: Duration = Duration::from_secs(5);
/// Connections the admin listener holds at most.
const ADMIN_MAX_CONNECTIONS: usize = 64;

/// How long start-up waits for a database spool before listening anyway.
const STORE_START_WAIT: Duration = Duration::from_secs(5);

pub use crate::live::ReloadRequest;

pub struct App {
    generation: Generation,
    http: reqwest::Client,
    store: Store,
    metrics: Arc<Metrics>,
    public: TcpListener,
    admin: TcpListener,
    public_addr: SocketAddr,
    admin_addr: SocketAddr,
    reload_tx: mpsc::UnboundedSender<ReloadRequest>,
    reload_rx: mpsc::UnboundedReceiver<ReloadRequest>,
    /// The tenants' version read just before the tenants were loaded (None
    /// when it could not be read).
    tenants_seen: Option<i64>,
}

impl App {
    /// Builds what the configuration describes (templates compiled), opens
    /// the spool and binds the listeners. Errors name the key at fault.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let http = crate::http::client();
        let metrics = Arc::new(Metrics::new());
        let store = Store::open(&config.store)?;
        // A database spool usually answers within milliseconds; give it a
        // moment so a healthy start does not begin with 503s. If it does not
        // answer, the daemon starts anyway (503, not ready) and keeps trying
        // (and loads the tenants once it answers, before routing anything).
        store.wait_ready(STORE_START_WAIT).await;
        let (tenants, tenants_seen) = if store.healthy() {
            let seen = tenants_version_before_loading(&store).await;
            let tenants = crate::live::load_tenants(&store, &config)
                .await
                .map_err(|e| anyhow::anyhow!("tenants: {e}"))?;
            (tenants, seen)
        } else {
            (Vec::new(), None)
        };
        let generation = Generation::build(config, tenants, &http, &metrics)?;
        let config = &generation.config;
        let public = ingress::bind(config.server.listen, "server.listen").await?;
        let admin = ingress::bind(config.admin.listen, "admin.listen").await?;
        let (reload_tx, reload_rx) = mpsc::unbounded_channel();
        Ok(App {
            public_addr: public.local_addr()?,
            admin_addr: admin.local_addr()?,
            generation,
            http,
            store,
            metrics,
            public,
            admin,
            reload_tx,
            reload_rx,
            tenants_seen,
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

    /// Runs until `shutdown` is cancelled, then drains and returns: serve
    /// (the listeners first, so probes answer while the spool comes up),
    /// wait for the spool, start the work (workers, pipeline, silence
    /// clocks, housekeeping), apply reloads, drain.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let App {
            generation,
            http,
            store,
            metrics,
            public,
            admin,
            public_addr,
            admin_addr,
            reload_tx,
            mut reload_rx,
            tenants_seen,
        } = self;
        for w in &generation.config.warnings {
            tracing::warn!(message = "Configuration warning.", warning = %w);
        }
        let config = generation.config.clone();
        let live = Arc::new(Live::new(generation));
        let coord = Coordinator::for_store(&store);
        // Starts "behind": events a previous run accepted but did not route
        // are read back from the spool first.
        let (intake, intake_rx) = Intake::new();
        let state = Arc::new(IngressState {
            live: live.clone(),
            store: store.clone(),
            intake: intake.clone(),
            watch: Arc::new(crate::silence::Watch::default()),
            metrics: metrics.clone(),
            replays: ReplayGuard::default(),
            ready: AtomicBool::new(false),
            reject_log: Default::default(),
            action_limiter: Default::default(),
            interactions: Default::default(),
            console_keys: Default::default(),
            coord: coord.clone(),
            reload: reload_tx,
        });
        let listening = Listening::start(&state, public, admin, &config);
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
        let work = Work {
            tracker: TaskTracker::new(),
            // Workers and the pipeline stop only after ingress has
            // stopped, so an event accepted during shutdown is still
            // handed over.
            cancel: CancellationToken::new(),
        };
        work.tracker
            .spawn(crate::telemetry::watchdog(work.cancel.clone()));
        let tenants_seen = if store.healthy() {
            tenants_seen
        } else {
            wait_for_spool(&state, &http, &shutdown).await
        };
        if config.admin.api_token.is_some() {
            work.tracker.spawn(watch_tenants(
                store.clone(),
                coord.clone(),
                state.reload.clone(),
                work.cancel.clone(),
                tenants_seen,
            ));
        }
        let dispatcher = work
            .start(
                &state,
                &http,
                (intake, intake_rx),
                config.server.shutdown_grace,
            )
            .await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(request) = reload_rx.recv() => {
                    let reload = Reload { live: &live, dispatcher: &dispatcher, public_conns: &listening.public_conns, metrics: &metrics, http: &http, store: &store };
                    reload.apply(request).await;
                }
            }
        }
        listening
            .drain(state, work, &coord, config.server.shutdown_grace)
            .await;
        Ok(())
    }
}

/// The two listeners, serving.
struct Listening {
    public_conns: Arc<Conns>,
    public_task: tokio::task::JoinHandle<()>,
    admin_task: tokio::task::JoinHandle<()>,
    ingress_cancel: CancellationToken,
    admin_cancel: CancellationToken,
}

impl Listening {
    /// Serves both listeners and marks the daemon ready; also pays the
    /// console's session key now rather than at the first request.
    fn start(
        state: &Arc<IngressState>,
        public: TcpListener,
        admin: TcpListener,
        config: &Config,
    ) -> Listening {
        let grace = config.server.shutdown_grace;
        let public_conns = Conns::new(
            public_limits(&config.server),
            state.metrics.clone(),
            "public",
        );
        // The admin listener is loopback by default and serves probes and
        // scrapes: a small bound of its own, unaffected by the public one.
        let admin_conns = Conns::new(
            ConnLimits {
                max_connections: ADMIN_MAX_CONNECTIONS,
                max_per_ip: 0,
                ..public_limits(&config.server)
            },
            state.metrics.clone(),
            "admin",
        );
        let ingress_cancel = CancellationToken::new();
        let public_task = tokio::spawn(ingress::serve(
            public,
            ingress::public_router(state.clone()),
            public_conns.clone(),
            grace,
            ingress_cancel.clone(),
        ));
        // The admin listener outlives ingress so /readyz can say 503 while draining.
        let admin_cancel = CancellationToken::new();
        let admin_task = tokio::spawn(ingress::serve(
            admin,
            ingress::admin_router(state.clone()),
            admin_conns,
            grace,
            admin_cancel.clone(),
        ));
        // The console's session key costs an Argon2id run: paid now rather
        // than by the first request (best effort: a spool that does not
        // answer yet is tried again then).
        if let Some(console) = config.console.clone().filter(|c| c.enabled) {
            let state = state.clone();
            tokio::spawn(async move {
                let _ = state.console_keys.sealer(&console, &state.store).await;
            });
        }
        state.ready.store(true, Ordering::Relaxed);
        Listening {
            public_conns,
            public_task,
            admin_task,
            ingress_cancel,
            admin_cancel,
        }
    }

    /// Shutdown: stop accepting, then let the work finish within the
    /// grace, hand this replica's claims back, and close the admin
    /// listener last (`/readyz` says 503 meanwhile).
    async fn drain(
        self,
        state: Arc<IngressState>,
        work: Work,
        coord: &Coordinator,
        grace: Duration,
    ) {
        tracing::info!(
            message = "Shutting down: no new events; finishing in-flight work.",
            grace_ms = grace.as_millis() as u64
        );
        crate::telemetry::notify_systemd(&[
            sd_notify::NotifyState::Stopping,
            sd_notify::NotifyState::Status("draining"),
        ]);
        state.ready.store(false, Ordering::Relaxed);
        self.ingress_cancel.cancel();
        let _ = self.public_task.await;
        work.cancel.cancel();
        work.tracker.close();
        if tokio::time::timeout(grace + Duration::from_secs(1), work.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!(message = "Some tasks did not stop within the grace period; their work stays in the spool.");
        }
        // What this replica still held goes back to the others at once
        // (a shared spool; otherwise the leases would have to run out).
        if let Err(e) = coord.release().await {
            tracing::warn!(message = "Cannot release this replica's claims; other replicas take them over when the leases expire.", error = %e);
        }
        self.admin_cancel.cancel();
        let _ = self.admin_task.await;
        drop(state);
        tracing::info!(message = "Stopped.");
    }
}

/// A database spool that did not answer at start: ingress already says
/// 503 and /readyz not ready; the work starts once it answers, with the
/// tenants read first (before anything is routed). Returns the tenants'
/// version they were read at.
async fn wait_for_spool(
    state: &IngressState,
    http: &reqwest::Client,
    shutdown: &CancellationToken,
) -> Option<i64> {
    let (store, live) = (&state.store, &state.live);
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
    // Tenants exist only with the tenants API.
    live.get().config.admin.api_token.as_ref()?;
    let seen = tenants_version_before_loading(store).await;
    let file = live.get().file.clone();
    match crate::live::load_tenants(store, &file).await {
        Ok(tenants) => {
            match Generation::build(file.as_ref().clone(), tenants, http, &state.metrics) {
                Ok(g) => live.set(g),
                Err(e) => tracing::error!(message = "Cannot apply the tenants.", errors = %e),
            }
        }
        Err(e) => tracing::error!(message = "Cannot read the tenants.", error = %e),
    }
    seen
}

/// The tasks behind ingress (workers, pipeline, silence clocks,
/// housekeeping): they stop after ingress, on their own token.
struct Work {
    tracker: TaskTracker,
    cancel: CancellationToken,
}

impl Work {
    /// Starts a worker per destination (dead-lettering what waits for a
    /// destination no longer configured), the pipeline, the silence clocks
    /// and the periodic housekeeping.
    async fn start(
        &self,
        state: &IngressState,
        http: &reqwest::Client,
        (intake, rx): (Intake, mpsc::Receiver<crate::pipeline::Accepted>),
        grace: Duration,
    ) -> Arc<Dispatcher> {
        let (live, store, metrics, coord) =
            (&state.live, &state.store, &state.metrics, &state.coord);
        let dispatcher = Arc::new(Dispatcher::start(
            Shared {
                store: store.clone(),
                coord: coord.clone(),
                http: http.clone(),
                metrics: metrics.clone(),
                delivery: live.get().config.delivery.clone(),
                shutdown_grace: grace,
                live: Some(live.clone()),
            },
            &live.get().destinations,
            &self.tracker,
            &self.cancel,
        ));
        dispatcher
            .orphan_unconfigured(&live.get().destinations)
            .await;
        let pipeline = Arc::new(Pipeline::new(
            live.clone(),
            store.clone(),
            coord.clone(),
            dispatcher.clone(),
            metrics.clone(),
        ));
        self.tracker.spawn(pipeline.run(
            intake.clone(),
            rx,
            self.tracker.clone(),
            self.cancel.clone(),
        ));
        self.tracker.spawn(crate::silence::run(
            state.watch.clone(),
            live.clone(),
            store.clone(),
            coord.clone(),
            intake,
            self.cancel.clone(),
        ));
        self.tracker.spawn(background(
            store.clone(),
            metrics.clone(),
            live.clone(),
            self.cancel.clone(),
        ));
        dispatcher
    }
}

/// What a reload changes: the live generation, the workers, the public
/// listener's limits.
struct Reload<'a> {
    live: &'a Live,
    dispatcher: &'a Arc<Dispatcher>,
    public_conns: &'a Conns,
    metrics: &'a Arc<Metrics>,
    http: &'a reqwest::Client,
    store: &'a Store,
}

impl Reload<'_> {
    /// Switches to a new configuration, or keeps the old one if it is invalid.
    async fn apply(&self, request: ReloadRequest) {
        // sd_notify(3): RELOADING=1 with the monotonic time, READY=1 when done.
        let mut reloading = vec![sd_notify::NotifyState::Reloading];
        reloading.extend(sd_notify::NotifyState::monotonic_usec_now().ok());
        crate::telemetry::notify_systemd(&reloading);
        let ReloadRequest { config, done } = request;
        let generation = match self.build(config).await {
            Ok(g) => g,
            Err(errors) => return self.refuse(errors, done),
        };
        let old = self.live.get().config.clone();
        let new = generation.config.clone();
        warn_restart_only(&old, &new);
        for w in &new.warnings {
            tracing::warn!(message = "Configuration warning.", warning = %w);
        }
        self.public_conns.update(public_limits(&new.server));
        let removed = self.dispatcher.reconcile(&generation.destinations);
        self.live.set(generation);
        for (name, stopped) in removed {
            self.dispatcher.orphan(&name).await;
            // A routing its worker sent before recording may be recorded
            // while the worker stops: dead-lettered once it has stopped,
            // unless a later reload brought the destination back.
            let dispatcher = self.dispatcher.clone();
            tokio::spawn(async move {
                stopped.wait().await;
                if !dispatcher.runs(&name) {
                    dispatcher.orphan(&name).await;
                }
            });
        }
        self.count("ok");
        if let Some(done) = done {
            let _ = done.send(Ok(()));
        }
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

    /// The new generation: a new file keeps the tenants; a tenant change
    /// (no file) keeps the file and reads the tenants again.
    async fn build(
        &self,
        file: Option<Result<Config, crate::config::ConfigErrors>>,
    ) -> Result<Generation, crate::config::ConfigErrors> {
        let current = self.live.get();
        let parts = match file {
            Some(file) => file.map(|f| (f, current.tenants.as_ref().clone())),
            None => {
                let file = current.file.as_ref().clone();
                crate::live::load_tenants(self.store, &file)
                    .await
                    .map(|t| (file, t))
                    .map_err(|message| {
                        crate::config::ConfigErrors(vec![crate::config::ConfigError {
                            key: "tenants".into(),
                            message,
                        }])
                    })
            }
        };
        drop(current);
        parts.and_then(|(file, tenants)| Generation::build(file, tenants, self.http, self.metrics))
    }

    /// An invalid configuration: said to whoever asked, logged, counted;
    /// the previous one keeps serving.
    fn refuse(
        &self,
        errors: crate::config::ConfigErrors,
        done: Option<tokio::sync::oneshot::Sender<Result<(), crate::config::ConfigErrors>>>,
    ) {
        if let Some(done) = done {
            let _ = done.send(Err(errors.clone()));
        }
        self.count("error");
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
    }

    fn count(&self, result: &str) {
        self.metrics
            .operator
            .config_reloads
            .get_or_create(&labels1("result", result))
            .inc();
    }
}

/// Warns about every setting a reload changed that only a restart applies.
fn warn_restart_only(old: &Config, new: &Config) {
    for (key, changed) in [
        ("server.listen", old.server.listen != new.server.listen),
        ("admin.listen", old.admin.listen != new.admin.listen),
        (
            "server.shutdown_grace",
            old.server.shutdown_grace != new.server.shutdown_grace,
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
}

/// The public listener's connection limits, from `[server]`.
fn public_limits(server: &ServerConfig) -> ConnLimits {
    ConnLimits {
        max_connections: server.max_connections,
        max_per_ip: server.max_connections_per_ip,
        trusted: server.trusted_proxies.clone(),
        header_read_timeout: server.header_read_timeout,
        request_timeout: server.request_timeout,
        idle_timeout: server.idle_timeout,
    }
}

/// How often a replica asks the spool whether the tenants changed (with
/// PostgreSQL, a change's NOTIFY usually wakes it sooner).
const TENANTS_EVERY: Duration = Duration::from_millis(500);

/// The tenants' version, read before the tenants are loaded: a change
/// stored (by another replica, or the CLI) while they are read is then
/// newer than what the watcher starts from, never taken as already applied.
async fn tenants_version_before_loading(store: &Store) -> Option<i64> {
    store.tenants_version().await.ok()
}

/// Applies tenant changes made elsewhere (another replica, the CLI): when
/// the spool's latest change is newer than the one this replica applied,
/// the tenants are read again and merged (no reload of the file). `seen`
/// is the version the running tenants were loaded at (None: unknown, so
/// the first version read is applied).
async fn watch_tenants(
    store: Store,
    coord: Coordinator,
    reload: mpsc::UnboundedSender<ReloadRequest>,
    cancel: CancellationToken,
    seen: Option<i64>,
) {
    let mut seen = seen.unwrap_or(-1);
    let mut wakeups = coord.wakeups();
    let mut tick = tokio::time::interval(TENANTS_EVERY);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tick.tick() => {}
            w = wakeups.recv() => {
                if !matches!(&w, Ok(p) if p == "tenants") && w.is_ok() {
                    continue;
                }
            }
        }
        match store.tenants_version().await {
            Ok(v) if v != seen => {
                seen = v;
                // No real deadline: a busy daemon applies it when it can.
                let wait = Duration::from_secs(365 * 86_400);
                match ReloadRequest::send_and_wait(&reload, None, wait).await {
                    Ok(()) => {}
                    Err(crate::live::ReloadRefused::Invalid(e)) => {
                        tracing::error!(message = "A tenant change could not be applied; the previous tenants keep serving.", errors = %e);
                    }
                    Err(crate::live::ReloadRefused::NoAnswer) => return,
                }
            }
            Ok(_) => {}
            Err(e) => {
                spool_log!(debug, store, message = "Cannot read the tenants' version.", error = %e)
            }
        }
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
                            metrics.delivery.queue_depth.get_or_create(&labels1("destination", name)).set(pending);
                            let age = d.and_then(|d| d.oldest_created_at).map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
                            metrics.delivery.oldest_pending.get_or_create(&labels1("destination", name)).set(age);
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
