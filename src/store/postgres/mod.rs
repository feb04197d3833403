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

use super::{
    now_ms, ActionRecord, Attempted, ClockCheck, Completion, DeadLetter, DeliveryDetail,
    DueDelivery, EventDetail, EventSummary, HookClock, Inserted, NewDigest, NewEvent, QueueDepth,
    RenderSource, Routing, Selector, Silence, StoreError, ThreadRoot,
};
use crate::store::reads::THREAD_IN_ORDER;
mod batch;
mod cluster;
mod console;
mod deliveries;
mod events;
mod reads;
mod schema;
mod tenants;

use crate::config::StoreConfig;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use schema::{keeper, listener};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row, Statement};

/// Connections per replica.
const POOL_SIZE: usize = 16;
/// How long to wait for a connection from the pool before refusing.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// A handle on the shared database; cheap to clone.
#[derive(Clone)]
pub struct Postgres {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// This replica's name in `claimed_by`.
    replica: String,
    lease: Duration,
    max_pending: u64,
    /// Connected and migrated: operations may run.
    migrated: AtomicBool,
    /// The last operation or probe reached the database.
    healthy: AtomicBool,
    /// Why the database is not usable, for errors and logs.
    last_error: Mutex<String>,
    /// Undelivered events + deliveries, cluster-wide, as last counted, and
    /// what this replica added (or finished) since that count began: the
    /// sum is what `max_pending` is checked against. (Changes between the
    /// reset and the count's snapshot are counted twice: an over-estimate,
    /// never an under-estimate.)
    counted: AtomicU64,
    delta: AtomicI64,
    /// Where the database is (no credentials), for messages.
    target: String,
    /// `NOTIFY hookrelay` payloads from any replica (a destination name, or
    /// empty for every destination), relayed by the listener task.
    wake: tokio::sync::broadcast::Sender<String>,
    /// The hot path's writes, committed in batches ([`batch`]).
    writes: tokio::sync::mpsc::Sender<batch::Queued>,
}

/// The channel replicas wake each other on.
const CHANNEL: &str = "hookrelay";

fn pg_error(e: tokio_postgres::Error) -> StoreError {
    // A server error carries its own message; the rest (I/O, closed) is
    // the connection. Neither includes the URL or its password.
    match e.as_db_error() {
        Some(db) => StoreError::Unavailable(format!("PostgreSQL: {}", db.message())),
        None => StoreError::Unavailable(format!("PostgreSQL connection: {}", explain(&e))),
    }
}

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

    pub fn healthy(&self) -> bool {
        self.inner.migrated.load(Ordering::Relaxed) && self.inner.healthy.load(Ordering::Relaxed)
    }

    pub fn lease(&self) -> Duration {
        self.inner.lease
    }

    /// Wake-ups sent by any replica (see [`Inner::wake`]).
    pub fn wakeups(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.inner.wake.subscribe()
    }

    /// Waits until the database is connected and migrated, or fails with
    /// the reason it is not.
    pub async fn wait_ready(&self, wait: Duration) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        while !self.inner.migrated.load(Ordering::Relaxed) {
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Open(format!(
                    "store.url: cannot use PostgreSQL at {}: {}",
                    self.inner.target,
                    self.inner.last_error()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    fn lease_until(&self, now: i64) -> i64 {
        now + self.inner.lease.as_millis() as i64
    }

    /// A connection, once the database is ready. While it is known to be
    /// unreachable this fails at once (senders get their 503 without
    /// waiting); the keeper's probe notices its return within a second.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        if !self.inner.migrated.load(Ordering::Relaxed)
            || !self.inner.healthy.load(Ordering::Relaxed)
        {
            return Err(StoreError::Unavailable(format!(
                "the database is not reachable: {}",
                self.inner.last_error()
            )));
        }
        match self.inner.pool.get().await {
            Ok(c) => Ok(c),
            Err(e) => {
                let text = explain(&e);
                self.inner.failed(&text);
                Err(StoreError::Unavailable(format!(
                    "cannot reach PostgreSQL: {text}"
                )))
            }
        }
    }

    /// Notes the outcome of an operation for readiness.
    fn seen<T>(&self, r: Result<T, tokio_postgres::Error>) -> Result<T, StoreError> {
        match r {
            Ok(v) => {
                self.inner.healthy.store(true, Ordering::Relaxed);
                Ok(v)
            }
            Err(e) => {
                if e.as_db_error().is_none() {
                    self.inner.failed(&explain(&e));
                }
                Err(pg_error(e))
            }
        }
    }

    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let r = async {
            let stmt = client.prepare_cached(sql).await?;
            client.query(&stmt, params).await
        }
        .await;
        self.seen(r)
    }

    async fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let r = async {
            let stmt = client.prepare_cached(sql).await?;
            client.execute(&stmt, params).await
        }
        .await;
        self.seen(r)
    }
}

impl Inner {
    fn pending(&self) -> u64 {
        let n = self.counted.load(Ordering::Relaxed) as i64 + self.delta.load(Ordering::Relaxed);
        n.max(0) as u64
    }

    fn last_error(&self) -> String {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn failed(&self, text: &str) {
        self.healthy.store(false, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = text.to_owned();
    }
}

/// PostgreSQL's text cannot hold a NUL character (SQLite's can): one in an
/// alert's title or status, a webhook's short id, a chat service's error or
/// an action's detail would make every attempt to store it fail. Text bound
/// for PostgreSQL carries U+FFFD in its place, as undecodable bytes are
/// shown elsewhere. Each write that stores text from outside scrubs it.
fn scrub<'a>(
    texts: impl IntoIterator<Item = &'a mut String>,
    options: impl IntoIterator<Item = &'a mut Option<String>>,
) {
    for s in texts.into_iter().chain(options.into_iter().flatten()) {
        if s.contains('\0') {
            *s = s.replace('\0', "\u{FFFD}");
        }
    }
}

fn scrub_event(e: &mut NewEvent) {
    let id = e.message_id.as_mut().map(|(id, _)| id);
    scrub(
        [&mut e.hook, &mut e.kind, &mut e.action]
            .into_iter()
            .chain(id),
        [
            &mut e.short_id,
            &mut e.alert_uuid,
            &mut e.client,
            &mut e.auth,
        ],
    );
}

fn scrub_routing(r: &mut Routing) {
    scrub([&mut r.enrichment], [&mut r.alert_json, &mut r.title]);
    for d in &mut r.deliveries {
        let key = d.dedup.as_mut().map(|(key, _)| key);
        scrub(
            [&mut d.route, &mut d.destination, &mut d.payload]
                .into_iter()
                .chain(key),
            [
                &mut d.failed,
                &mut d.muted,
                &mut d.summary,
                &mut d.thread_key,
            ],
        );
        // A first attempt made before the routing: a chat service's error.
        if let Some(error) = d.first.as_mut().and_then(Attempted::error_mut) {
            scrub([error], []);
        }
    }
}

fn scrub_completion(c: &mut Completion) {
    match c {
        Completion::Delivered { thread, .. } => scrub([], [thread]),
        Completion::Retry { error, .. } | Completion::Dead { error, .. } => scrub([error], []),
    }
}

/// An error with its causes ("error performing TLS handshake: invalid peer
/// certificate: UnknownIssuer"), and what to do about a certificate the
/// roots do not trust. No part of it carries the URL or its password.
fn explain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    if text.contains("UnknownIssuer") || text.contains("certificate") {
        text.push_str(
            " (is the server's certificate from a private CA? set store.ca_file to its PEM file)",
        );
    }
    text
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
