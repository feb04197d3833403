//! Startup and shutdown. [`App::build`] opens the spool and binds both
//! listeners (port 0 allowed, addresses exposed for tests); [`App::run`]
//! serves until the token is cancelled, then drains: stop accepting, let
//! open requests and in-flight deliveries finish within the grace period,
//! leave the rest in the spool.

use crate::config::Config;
use crate::delivery::{Dispatcher, Shared};
use crate::enrich::Enricher;
use crate::ingress::{self, auth::ReplayGuard, IngressState, Limits};
use crate::pipeline::Pipeline;
use crate::store::{reads, Store};
use crate::telemetry::{labels1, Metrics};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often finished events are pruned.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(600);
/// How often queue gauges are refreshed.
const GAUGES_EVERY: Duration = Duration::from_secs(5);

pub struct App {
    config: Arc<Config>,
    store: Store,
    metrics: Arc<Metrics>,
    public: TcpListener,
    admin: TcpListener,
    public_addr: SocketAddr,
    admin_addr: SocketAddr,
}

impl App {
    /// Opens the spool and binds the listeners. Errors name the key at fault.
    pub async fn build(config: Config) -> anyhow::Result<App> {
        let store = Store::open(&config.store)?;
        let public = ingress::bind(config.server.listen, "server.listen").await?;
        let admin = ingress::bind(config.admin.listen, "admin.listen").await?;
        Ok(App {
            public_addr: public.local_addr()?,
            admin_addr: admin.local_addr()?,
            config: Arc::new(config),
            store,
            metrics: Arc::new(Metrics::new()),
            public,
            admin,
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
        } = self;
        for w in &config.warnings {
            tracing::warn!(message = "Configuration warning.", warning = %w);
        }
        let http = crate::http::client();
        let tracker = TaskTracker::new();
        // Workers and the pipeline stop only after ingress has stopped, so
        // an event accepted during shutdown is still handed over.
        let work_cancel = CancellationToken::new();
        let grace = config.server.shutdown_grace;

        let dispatcher = Dispatcher::start(
            Shared {
                store: store.clone(),
                http: http.clone(),
                metrics: metrics.clone(),
                delivery: config.delivery.clone(),
                shutdown_grace: grace,
            },
            &config.destinations,
            &tracker,
            &work_cancel,
        );
        let pipeline = Arc::new(Pipeline {
            config: config.clone(),
            store: store.clone(),
            enricher: Arc::new(Enricher::new(
                &config.origins,
                http.clone(),
                metrics.clone(),
            )),
            dispatcher,
            metrics: metrics.clone(),
        });
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tracker.spawn(pipeline.run(rx, tracker.clone(), work_cancel.clone()));
        tracker.spawn(background(
            store.clone(),
            metrics.clone(),
            config.clone(),
            work_cancel.clone(),
        ));

        let state = Arc::new(IngressState {
            config: config.clone(),
            store: store.clone(),
            pipeline: tx,
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

        shutdown.cancelled().await;
        tracing::info!(
            message = "Shutting down: no new events; finishing in-flight work.",
            grace_ms = grace.as_millis() as u64
        );
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
        admin_cancel.cancel();
        let _ = admin_task.await;
        drop(state);
        tracing::info!(message = "Stopped.");
        Ok(())
    }
}

/// Periodic work: queue gauges and housekeeping.
async fn background(
    store: Store,
    metrics: Arc<Metrics>,
    config: Arc<Config>,
    cancel: CancellationToken,
) {
    let mut gauges = tokio::time::interval(GAUGES_EVERY);
    let mut prune = tokio::time::interval(HOUSEKEEPING_EVERY);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = gauges.tick() => {
                match store.read(reads::queue_depths).await {
                    Ok(depths) => {
                        let now = crate::store::now_ms();
                        for name in config.destinations.keys() {
                            let d = depths.iter().find(|d| &d.destination == name);
                            metrics.queue_depth.get_or_create(&labels1("destination", name)).set(d.map_or(0, |d| d.pending));
                            let age = d.and_then(|d| d.oldest_created_at).map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0);
                            metrics.oldest_pending.get_or_create(&labels1("destination", name)).set(age);
                        }
                    }
                    Err(e) => tracing::warn!(message = "Cannot read queue depths.", error = %e),
                }
            }
            _ = prune.tick() => {
                match store.housekeeping(config.store.retention).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(message = "Pruned finished events past retention.", count = n),
                    Err(e) => tracing::warn!(message = "Housekeeping failed.", error = %e),
                }
            }
        }
    }
}
