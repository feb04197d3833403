//! The PostgreSQL backend: several replicas on one database.
//!
//! - The writes every event makes (insert, routing, outcomes) are
//!   committed in batches, many events' in one transaction, as the SQLite
//!   writer thread does ([`batch`]); the rarer writes are each their own
//!   short transaction.
//! - Work is claimed, not owned: an event or a pending delivery carries
//!   `claimed_by` (a replica id) and `claimed_until` (a lease, unix ms).
//!   The replica that accepted an event claims it at insert and the
//!   deliveries it routes; scans claim rows whose lease ran out with
//!   `FOR UPDATE SKIP LOCKED`, so two replicas never take the same row,
//!   and a replica renews the leases of what it holds in memory. When a
//!   replica dies its leases expire and the others take the work over.
//! - State that must hold cluster-wide is in tables too: a destination's
//!   pause after a 429, its send windows (`rate`, `max_per_minute`), whose
//!   turn it is to send its digest, the silence clocks, route dedup windows
//!   and Standard Webhooks ids already seen.
//! - Replicas wake each other with `NOTIFY hookrelay` (a destination
//!   paused, dead letters replayed); the scans every second cover a missed
//!   notification.
//! - The connection is made in the background: the daemon starts, answers
//!   503 and says not ready until the database answers and is migrated
//!   (under an advisory lock, so replicas starting together do not race).

mod backend;
mod batch;
mod cluster;
mod console;
mod deliveries;
mod events;
mod pool;
mod reads;
mod schema;
mod tenants;
mod write;

pub use pool::Postgres;

// What the operation files (`events`, `deliveries`, `reads`, `console`,
// `tenants`, `cluster`, `backend`) share, taken with `use super::*`. The
// files `open` composes (`pool`, `write`, `batch`, `schema`) import what
// they use themselves: they are below this one.
use super::{
    now_ms, ActionRecord, ClockCheck, Completion, DeadLetter, DeliveryDetail, DueDelivery,
    EventDetail, EventSummary, HookClock, Inserted, NewDigest, NewEvent, QueueDepth, RenderSource,
    Routing, Selector, Silence, StoreError, ThreadRoot,
};
use crate::store::reads::THREAD_IN_ORDER;
use pool::{scrub, scrub_completion, scrub_event, scrub_routing, Inner};

use crate::config::StoreConfig;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use schema::{keeper, listener};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::Row;

/// Connections per replica.
const POOL_SIZE: usize = 16;
/// How long to wait for a connection from the pool before refusing.
const POOL_WAIT: Duration = Duration::from_secs(5);

impl Postgres {
    pub fn open(config: &StoreConfig) -> Result<Postgres, StoreError> {
        let url = config.url.as_ref().ok_or_else(|| {
            StoreError::Open(
                "store.url: required with store.kind = \"postgres\" (or store.url_file)".into(),
            )
        })?;
        let mut pg = tokio_postgres::Config::from_str(url.expose()).map_err(|e| {
            StoreError::Open(format!(
                "store.url: not a valid PostgreSQL URL ({e}); expected postgres://user:password@host:5432/database"
            ))
        })?;
        let target = describe(&pg);
        // A database that stops answering (a partition, not a refusal) must
        // show up as an error, not a hang: bounded connects, and TCP gives
        // up on unacknowledged data after a while.
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(POOL_WAIT);
        }
        pg.tcp_user_timeout(Duration::from_secs(30));
        pg.keepalives_idle(Duration::from_secs(30));
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for der in &config.ca_certs {
            roots
                .add(rustls::pki_types::CertificateDer::from(der.clone()))
                .map_err(|e| {
                    StoreError::Open(format!("store.ca_file: unusable certificate: {e}"))
                })?;
        }
        let tls = tokio_postgres_rustls::MakeRustlsConnect::new(
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Open(format!("store.url: TLS setup failed: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
        );
        let manager = Manager::from_config(
            pg.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(POOL_WAIT))
            .recycle_timeout(Some(POOL_WAIT))
            .build()
            .map_err(|e| StoreError::Open(format!("store.url: {e}")))?;
        let (writes, queue) = tokio::sync::mpsc::channel(batch::QUEUE);
        let inner = Arc::new(Inner {
            pool,
            replica: format!(
                "{}-{}",
                std::process::id(),
                uuid::Uuid::new_v4()
                    .simple()
                    .to_string()
                    .get(..8)
                    .unwrap_or("0")
            ),
            lease: config.lease,
            max_pending: config.max_pending,
            migrated: AtomicBool::new(false),
            healthy: AtomicBool::new(false),
            last_error: Mutex::new("not connected yet".into()),
            counted: AtomicU64::new(0),
            delta: AtomicI64::new(0),
            target,
            wake: tokio::sync::broadcast::channel(256).0,
            writes,
        });
        tokio::spawn(batch::batcher(Arc::downgrade(&inner), queue));
        tokio::spawn(keeper(Arc::downgrade(&inner)));
        tokio::spawn(listener(Arc::downgrade(&inner), pg, tls));
        Ok(Postgres { inner })
    }
}

/// host:port/database, without user or password.
fn describe(pg: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let host = match pg.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".into(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", pg.get_dbname().unwrap_or("(default)"))
}
