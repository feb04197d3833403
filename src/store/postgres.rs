//! The PostgreSQL backend: several replicas on one database.
//!
//! - Every write is its own short transaction; PostgreSQL's group commit
//!   does what the SQLite writer thread does by hand.
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
    now_ms, ClockCheck, Completion, DeadLetter, DeliveryDetail, DueDelivery, EventDetail,
    EventSummary, HookClock, Inserted, NewDelivery, NewDigest, NewEvent, QueueDepth, RenderSource,
    Routing, Selector, StoreError,
};
use crate::config::StoreConfig;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row, Statement};

/// Connections per replica.
const POOL_SIZE: usize = 16;
/// The advisory lock key that serializes migrations ("hookrelay").
const MIGRATION_LOCK: i64 = 0x686f_6f6b_7265_6c61;
/// How long to wait for a connection from the pool before refusing.
const POOL_WAIT: Duration = Duration::from_secs(5);

/// Versioned schema, applied in order; the version lives in
/// `hookrelay_schema`. Mirrors the SQLite schema plus the claim columns
/// and the cluster-wide state.
const MIGRATIONS: &[&str] = &[r#"
    CREATE TABLE events (
        id            BIGSERIAL PRIMARY KEY,
        hook          TEXT    NOT NULL,
        received_at   BIGINT  NOT NULL,
        body_sha256   BYTEA   NOT NULL,
        body          BYTEA   NOT NULL,
        kind          TEXT    NOT NULL,
        action        TEXT    NOT NULL,
        short_id      TEXT,
        state         TEXT    NOT NULL,
        enrichment    TEXT,
        alert_json    TEXT,
        routes        TEXT,
        routed_at     BIGINT,
        claimed_by    TEXT,
        claimed_until BIGINT
    );
    CREATE INDEX events_received ON events (received_at);
    CREATE INDEX events_unrouted ON events (id) WHERE state = 'received';

    CREATE TABLE deliveries (
        id              BIGSERIAL PRIMARY KEY,
        event_id        BIGINT  NOT NULL,
        route           TEXT    NOT NULL,
        destination     TEXT    NOT NULL,
        payload         TEXT    NOT NULL,
        state           TEXT    NOT NULL,
        attempts        BIGINT  NOT NULL DEFAULT 0,
        created_at      BIGINT  NOT NULL,
        next_attempt_at BIGINT  NOT NULL,
        updated_at      BIGINT  NOT NULL,
        last_status     BIGINT,
        last_error      TEXT,
        summary         TEXT,
        digest          BOOLEAN NOT NULL DEFAULT FALSE,
        claimed_by      TEXT,
        claimed_until   BIGINT
    );
    CREATE INDEX deliveries_event ON deliveries (event_id);
    CREATE INDEX deliveries_due ON deliveries (destination, id) WHERE state = 'pending';
    CREATE INDEX deliveries_dead ON deliveries (id) WHERE state = 'dead';
    CREATE INDEX deliveries_held ON deliveries (destination, id) WHERE state = 'held';

    -- Bodies, alerts and payloads are short-lived JSON: stored out of line
    -- without compression (compressing each costs more CPU than the disk
    -- it saves while they wait to be delivered).
    ALTER TABLE events ALTER COLUMN body SET STORAGE EXTERNAL;
    ALTER TABLE events ALTER COLUMN alert_json SET STORAGE EXTERNAL;
    ALTER TABLE deliveries ALTER COLUMN payload SET STORAGE EXTERNAL;

    CREATE TABLE attempts (
        id          BIGSERIAL PRIMARY KEY,
        delivery_id BIGINT NOT NULL,
        at          BIGINT NOT NULL,
        status      BIGINT,
        error       TEXT,
        duration_ms BIGINT NOT NULL
    );
    CREATE INDEX attempts_delivery ON attempts (delivery_id);

    CREATE TABLE route_dedup (
        route       TEXT   NOT NULL,
        destination TEXT   NOT NULL,
        key         TEXT   NOT NULL,
        until       BIGINT NOT NULL,
        PRIMARY KEY (route, destination, key)
    );

    CREATE TABLE hook_clocks (
        hook          TEXT PRIMARY KEY,
        last_event_at BIGINT NOT NULL,
        silent_since  BIGINT
    );

    CREATE TABLE destination_state (
        destination    TEXT PRIMARY KEY,
        paused_until   BIGINT,
        next_digest_at BIGINT
    );

    CREATE TABLE send_slots (
        destination TEXT   NOT NULL,
        kind        TEXT   NOT NULL,
        at          BIGINT NOT NULL
    );
    CREATE INDEX send_slots_window ON send_slots (destination, kind, at);

    -- Sender-retry windows: one row per (hook, body) while its window is open.
    CREATE TABLE event_dedup (
        hook        TEXT   NOT NULL,
        body_sha256 BYTEA  NOT NULL,
        event_id    BIGINT NOT NULL,
        until       BIGINT NOT NULL,
        PRIMARY KEY (hook, body_sha256)
    );

    CREATE TABLE webhook_ids (
        hook  TEXT   NOT NULL,
        id    TEXT   NOT NULL,
        until BIGINT NOT NULL,
        PRIMARY KEY (hook, id)
    );
    "#];

/// Stores an event unless its body was seen on its hook within the dedup
/// window: the window's row (whose primary key makes a sender retry that
/// reaches two replicas at once wait for the first) and the event, in one
/// statement.
const INSERT_EVENT: &str = "WITH d AS (
        INSERT INTO event_dedup (hook, body_sha256, event_id, until)
        VALUES ($1, $2, nextval('events_id_seq'), $3)
        ON CONFLICT (hook, body_sha256) DO UPDATE
        SET event_id = excluded.event_id, until = excluded.until
        WHERE event_dedup.until <= $4
        RETURNING event_id)
     INSERT INTO events (id, hook, received_at, body_sha256, body, kind, action, short_id, state, claimed_by, claimed_until)
     SELECT event_id, $1, $4, $2, $5, $6, $7, $8, 'received', $9, $10 FROM d
     RETURNING id";

/// The event a body within its dedup window was stored as.
const EXISTING_EVENT: &str =
    "SELECT event_id FROM event_dedup WHERE hook = $1 AND body_sha256 = $2 AND until > $3";

/// Routes an event that needs no route dedup: marks it routed (unless it
/// already was: then no row comes back) and inserts its deliveries from
/// arrays, pending ones claimed by this replica. One row per delivery
/// (or one with NULL delivery columns when there are none).
const ROUTE_EVENT: &str = "WITH e AS (
        UPDATE events SET state = 'routed', enrichment = $2, alert_json = $3, routes = $4, routed_at = $5,
        claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND state = 'received'
        RETURNING received_at, hook, short_id),
     ins AS (
        INSERT INTO deliveries (event_id, route, destination, payload, state, created_at, next_attempt_at, updated_at,
                                last_error, summary, claimed_by, claimed_until)
        SELECT $1, u.route, u.destination, u.payload, u.state, e.received_at, $5, $5, u.note, u.summary,
               CASE WHEN u.state = 'pending' THEN $6 END, CASE WHEN u.state = 'pending' THEN $7::BIGINT END
        FROM e, UNNEST($8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::TEXT[], $13::TEXT[])
             AS u(route, destination, payload, state, note, summary)
        RETURNING id, route, destination, state)
     SELECT e.received_at, e.hook, e.short_id, ins.id, ins.route, ins.destination, ins.state
     FROM e LEFT JOIN ins ON TRUE";

/// The pending deliveries among rows (id, route, destination, state) just
/// inserted for `r`, in id order. (route, destination) is unique within an
/// event.
fn due_from<'a>(
    r: &Routing,
    rows: impl Iterator<Item = (i64, &'a str, &'a str, &'a str)>,
    received_at: i64,
    hook: &str,
    short_id: &Option<String>,
) -> Vec<DueDelivery> {
    let mut created: Vec<DueDelivery> = rows
        .filter(|(_, _, _, state)| *state == "pending")
        .filter_map(|(id, route, destination, _)| {
            let d = r
                .deliveries
                .iter()
                .find(|d| d.route == route && d.destination == destination)?;
            Some(DueDelivery {
                id,
                event_id: r.event_id,
                destination: d.destination.clone(),
                payload: d.payload.clone(),
                attempts: 0,
                created_at: received_at,
                hook: hook.to_owned(),
                short_id: short_id.clone(),
                digest: false,
            })
        })
        .collect();
    created.sort_by_key(|d| d.id);
    created
}

/// One event's values for [`INSERT_EVENT`] and [`EXISTING_EVENT`].
struct EventParams<'a> {
    e: &'a NewEvent,
    now: i64,
    until: i64,
    replica: &'a str,
}

impl EventParams<'_> {
    /// Stores the event, or finds the one a sender retry repeats. `None`:
    /// the retry's window closed between the two statements.
    async fn store(
        &self,
        c: &impl GenericClient,
        insert: &Statement,
        existing: &Statement,
    ) -> Result<Option<Inserted>, tokio_postgres::Error> {
        let e = self.e;
        let row = c
            .query_opt(
                insert,
                &[
                    &e.hook,
                    &&e.sha256[..],
                    &(self.now + e.dedup_window_ms),
                    &self.now,
                    &e.body,
                    &e.kind,
                    &e.action,
                    &e.short_id,
                    &self.replica,
                    &self.until,
                ],
            )
            .await?;
        match row {
            Some(row) => Ok(Some(Inserted {
                id: row.get(0),
                duplicate: false,
            })),
            None => self.find(c, existing).await,
        }
    }

    /// The stored event this body repeats within its window, if any.
    async fn find(
        &self,
        c: &impl GenericClient,
        existing: &Statement,
    ) -> Result<Option<Inserted>, tokio_postgres::Error> {
        let row = c
            .query_opt(existing, &[&self.e.hook, &&self.e.sha256[..], &self.now])
            .await?;
        Ok(row.map(|row| Inserted {
            id: row.get(0),
            duplicate: true,
        }))
    }
}

fn window_closed() -> StoreError {
    StoreError::Unavailable(
        "a sender retry's dedup window closed while it was checked; try again".into(),
    )
}

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
        let inner = Arc::new(Inner {
            pool,
            replica: format!(
                "{}-{}",
                std::process::id(),
                &uuid::Uuid::new_v4().simple().to_string()[..8]
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
        });
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

    pub async fn insert_event(&self, e: NewEvent) -> Result<Inserted, StoreError> {
        let mut client = self.client().await?;
        let now = now_ms();
        let full = self.inner.pending() >= self.inner.max_pending;
        let r: Result<Result<Inserted, StoreError>, tokio_postgres::Error> = async {
            let insert = client.prepare_cached(INSERT_EVENT).await?;
            let existing = client.prepare_cached(EXISTING_EVENT).await?;
            let params = EventParams {
                e: &e,
                now,
                until: self.lease_until(now),
                replica: &self.inner.replica,
            };
            if full {
                // No room: only a sender retry of a stored event gets its 202.
                let found = params.find(&**client, &existing).await?;
                return Ok(found.ok_or(StoreError::Full(self.inner.pending())));
            }
            let Some((id, window)) = &e.message_id else {
                // The common case in one round trip, without a transaction block.
                let stored = params.store(&**client, &insert, &existing).await?;
                return Ok(stored.ok_or_else(window_closed));
            };
            // A webhook id to record too: both or neither.
            let tx = client.transaction().await?;
            let Some(stored) = params.store(&*tx, &insert, &existing).await? else {
                return Ok(Err(window_closed()));
            };
            if !stored.duplicate {
                let seen = tx
                    .prepare_cached(
                        "INSERT INTO webhook_ids (hook, id, until) VALUES ($1, $2, $3)
                         ON CONFLICT (hook, id) DO UPDATE SET until = excluded.until
                         WHERE webhook_ids.until < $4 RETURNING 1",
                    )
                    .await?;
                let until = now + window;
                let fresh = tx.query_opt(&seen, &[&e.hook, id, &until, &now]).await?;
                if fresh.is_none() {
                    tx.rollback().await?;
                    return Ok(Err(StoreError::Replay));
                }
            }
            tx.commit().await?;
            Ok(Ok(stored))
        }
        .await;
        let inserted = self.seen(r)??;
        if !inserted.duplicate {
            self.inner.delta.fetch_add(1, Ordering::Relaxed);
        }
        Ok(inserted)
    }

    pub async fn record_routing(&self, r: Routing) -> Result<Option<Vec<DueDelivery>>, StoreError> {
        let mut client = self.client().await?;
        let now = now_ms();
        let until = self.lease_until(now);
        let replica = &self.inner.replica;
        if r.deliveries.iter().all(|d| d.dedup.is_none()) {
            // No route dedup to settle first: one statement, no transaction block.
            let routes = serde_json::to_string(&r.routes).unwrap_or_else(|_| "[]".into());
            let col = |f: fn(&NewDelivery) -> Option<&str>| -> Vec<Option<&str>> {
                r.deliveries.iter().map(f).collect()
            };
            let states: Vec<&str> = r
                .deliveries
                .iter()
                .map(|d| {
                    if d.failed.is_some() {
                        "dead"
                    } else {
                        "pending"
                    }
                })
                .collect();
            let (routes_col, dests, payloads, notes, summaries) = (
                col(|d| Some(d.route.as_str())),
                col(|d| Some(d.destination.as_str())),
                col(|d| Some(d.payload.as_str())),
                col(|d| d.failed.as_deref()),
                col(|d| d.summary.as_deref()),
            );
            let result: Result<Vec<Row>, tokio_postgres::Error> = async {
                let stmt = client.prepare_cached(ROUTE_EVENT).await?;
                client
                    .query(
                        &stmt,
                        &[
                            &r.event_id,
                            &r.enrichment,
                            &r.alert_json,
                            &routes,
                            &now,
                            replica,
                            &until,
                            &routes_col,
                            &dests,
                            &payloads,
                            &states,
                            &notes,
                            &summaries,
                        ],
                    )
                    .await
            }
            .await;
            let rows = self.seen(result)?;
            let Some(first) = rows.first() else {
                let exists = self
                    .query("SELECT 1 FROM events WHERE id = $1", &[&r.event_id])
                    .await?;
                return if exists.is_empty() {
                    Err(StoreError::NotFound(format!("event {}", r.event_id)))
                } else {
                    Ok(None)
                };
            };
            let (received_at, hook, short_id): (i64, String, Option<String>) =
                (first.get(0), first.get(1), first.get(2));
            let inserted = rows.iter().filter_map(|row| {
                let id: Option<i64> = row.get(3);
                Some((id?, row.get(4), row.get(5), row.get(6)))
            });
            let created = due_from(&r, inserted, received_at, &hook, &short_id);
            self.adjust_pending(created.len());
            return Ok(Some(created));
        }
        let result: Result<Result<Option<Vec<DueDelivery>>, StoreError>, tokio_postgres::Error> =
            async {
                let tx = client.transaction().await?;
                // Routed once: the row lock makes a second routing of the
                // same event (another replica after a lease ran out) wait,
                // then find it no longer `received`.
                let routes = serde_json::to_string(&r.routes).unwrap_or_else(|_| "[]".into());
                let mark = tx
                    .prepare_cached(
                        "UPDATE events SET state = 'routed', enrichment = $2, alert_json = $3, routes = $4, routed_at = $5,
                         claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND state = 'received'
                         RETURNING received_at, hook, short_id",
                    )
                    .await?;
                let Some(row) = tx
                    .query_opt(&mark, &[&r.event_id, &r.enrichment, &r.alert_json, &routes, &now])
                    .await?
                else {
                    let exists = tx
                        .query_opt("SELECT 1 FROM events WHERE id = $1", &[&r.event_id])
                        .await?
                        .is_some();
                    tx.rollback().await?;
                    return Ok(if exists {
                        Ok(None)
                    } else {
                        Err(StoreError::NotFound(format!("event {}", r.event_id)))
                    });
                };
                let received_at: i64 = row.get(0);
                let hook: String = row.get(1);
                let short_id: Option<String> = row.get(2);
                let n = r.deliveries.len();
                let (mut routes_col, mut dests, mut payloads, mut states, mut notes, mut summaries) = (
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                    Vec::with_capacity(n),
                );
                for d in &r.deliveries {
                    let mut state = "pending";
                    let mut note: Option<String> = d.failed.clone();
                    if note.is_some() {
                        state = "dead";
                    } else if let Some((key, window)) = &d.dedup {
                        // Inserted, or replaced an expired window: send.
                        let dedup = tx
                            .prepare_cached(
                                "INSERT INTO route_dedup (route, destination, key, until) VALUES ($1, $2, $3, $4)
                                 ON CONFLICT (route, destination, key) DO UPDATE SET until = excluded.until
                                 WHERE route_dedup.until <= $5 RETURNING 1",
                            )
                            .await?;
                        let fresh = tx
                            .query_opt(&dedup, &[&d.route, &d.destination, key, &(now + window), &now])
                            .await?;
                        if fresh.is_none() {
                            state = "skipped";
                            note = Some(format!(
                                "already sent within the route's dedup window ({key})"
                            ));
                        }
                    }
                    routes_col.push(d.route.as_str());
                    dests.push(d.destination.as_str());
                    payloads.push(d.payload.as_str());
                    states.push(state);
                    notes.push(note);
                    summaries.push(d.summary.clone());
                }
                let mut created = Vec::new();
                if n > 0 {
                    // Every delivery in one statement; pending ones are
                    // claimed by this replica, which delivers them.
                    let insert = tx
                        .prepare_cached(
                            "INSERT INTO deliveries (event_id, route, destination, payload, state, created_at, next_attempt_at, updated_at,
                                                     last_error, summary, claimed_by, claimed_until)
                             SELECT $1, u.route, u.destination, u.payload, u.state, $2, $3, $3, u.note, u.summary,
                                    CASE WHEN u.state = 'pending' THEN $4 END, CASE WHEN u.state = 'pending' THEN $5::BIGINT END
                             FROM UNNEST($6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[])
                                  AS u(route, destination, payload, state, note, summary)
                             RETURNING id, route, destination, state",
                        )
                        .await?;
                    let rows = tx
                        .query(
                            &insert,
                            &[&r.event_id, &received_at, &now, replica, &until, &routes_col, &dests, &payloads, &states, &notes, &summaries],
                        )
                        .await?;
                    let rows = rows
                        .iter()
                        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)));
                    created = due_from(&r, rows, received_at, &hook, &short_id);
                }
                tx.commit().await?;
                Ok(Ok(Some(created)))
            }
            .await;
        let created = self.seen(result)??;
        if let Some(c) = &created {
            self.adjust_pending(c.len());
        }
        Ok(created)
    }

    /// An event routed into `created` pending deliveries.
    fn adjust_pending(&self, created: usize) {
        self.inner
            .delta
            .fetch_add(created as i64 - 1, Ordering::Relaxed);
    }

    pub async fn complete(&self, c: Completion) -> Result<(), StoreError> {
        let now = now_ms();
        // One statement: the attempt and the new state commit together.
        let (id, status, error, duration) = c.parts();
        let (state_sql, next) = match &c {
            Completion::Delivered { .. } => ("state = 'delivered', last_error = NULL", 0),
            Completion::Retry {
                next_attempt_at, ..
            } => ("next_attempt_at = $6, last_error = $4", *next_attempt_at),
            Completion::Dead { .. } => ("state = 'dead', last_error = $4", 0),
        };
        let status = status.map(i64::from);
        // Every variant binds the same six parameters (so each of the three
        // statements is prepared once); `$6` is only used by a retry, and
        // the no-op test on it gives it a type in the others.
        let sql = format!(
            "WITH a AS (INSERT INTO attempts (delivery_id, at, status, error, duration_ms) VALUES ($1, $2, $3, $4, $5))
             UPDATE deliveries SET {state_sql}, attempts = attempts + 1, updated_at = $2, last_status = $3,
             claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND state = 'pending' AND $6::BIGINT IS NOT NULL"
        );
        let changed = self
            .execute(&sql, &[&id, &now, &status, &error, &duration, &next])
            .await?;
        if changed > 0 && !matches!(c, Completion::Retry { .. }) {
            self.inner.delta.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    pub async fn replay(&self, s: Selector) -> Result<usize, StoreError> {
        let now = now_ms();
        let base = "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = $1, created_at = $1, updated_at = $1,
                    claimed_by = NULL, claimed_until = NULL WHERE state = 'dead'";
        let n = match s {
            Selector::Ids(ids) => {
                self.execute(&format!("{base} AND id = ANY($2)"), &[&now, &ids])
                    .await?
            }
            Selector::All { destination: None } => self.execute(base, &[&now]).await?,
            Selector::All {
                destination: Some(d),
            } => {
                self.execute(&format!("{base} AND destination = $2"), &[&now, &d])
                    .await?
            }
        };
        if n > 0 {
            // Replayed work is due now: wake every replica's workers.
            self.query("SELECT pg_notify('hookrelay', '')", &[]).await?;
        }
        Ok(n as usize)
    }

    pub async fn orphan(&self, destination: &str, reason: &str) -> Result<usize, StoreError> {
        let n = self
            .execute(
                "UPDATE deliveries SET state = 'dead', updated_at = $2, last_error = $3, claimed_by = NULL, claimed_until = NULL
                 WHERE state = 'pending' AND destination = $1",
                &[&destination, &now_ms(), &reason],
            )
            .await?;
        Ok(n as usize)
    }

    pub async fn prune(&self, before: i64) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let now = now_ms();
        let r: Result<u64, tokio_postgres::Error> = async {
            let tx = client.transaction().await?;
            tx.execute(
                "CREATE TEMP TABLE doomed ON COMMIT DROP AS
                 SELECT id FROM events e WHERE received_at < $1 AND state = 'routed'
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state IN ('pending', 'dead', 'held'))",
                &[&before],
            )
            .await?;
            tx.execute(
                "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id IN (SELECT id FROM doomed))",
                &[],
            )
            .await?;
            tx.execute("DELETE FROM deliveries WHERE event_id IN (SELECT id FROM doomed)", &[])
                .await?;
            let n = tx
                .execute("DELETE FROM events WHERE id IN (SELECT id FROM doomed)", &[])
                .await?;
            tx.execute("DELETE FROM route_dedup WHERE until < $1", &[&now]).await?;
            tx.execute("DELETE FROM webhook_ids WHERE until < $1", &[&now]).await?;
            tx.execute("DELETE FROM event_dedup WHERE until < $1", &[&now]).await?;
            // Send windows are at most an hour or so; keep a day.
            tx.execute("DELETE FROM send_slots WHERE at < $1", &[&(now - 86_400_000)])
                .await?;
            tx.commit().await?;
            Ok(n)
        }
        .await;
        Ok(self.seen(r)? as usize)
    }

    pub async fn hold(&self, id: i64) -> Result<(), StoreError> {
        self.execute(
            "UPDATE deliveries SET state = 'held', updated_at = $2, claimed_by = NULL, claimed_until = NULL
             WHERE id = $1 AND state = 'pending'",
            &[&id, &now_ms()],
        )
        .await?;
        Ok(())
    }

    pub async fn digest(&self, d: NewDigest) -> Result<DueDelivery, StoreError> {
        let mut client = self.client().await?;
        let now = now_ms();
        let until = self.lease_until(now);
        let (body, sha) = d.event(now);
        let r: Result<(i64, i64), tokio_postgres::Error> = async {
            let tx = client.transaction().await?;
            let event_id: i64 = tx
                .query_one(
                    "INSERT INTO events (hook, received_at, body_sha256, body, kind, action, state, enrichment, routes, routed_at)
                     VALUES ('-', $1, $2, $3, 'hookrelay.digest', 'created', 'routed', 'n/a', '[]', $1) RETURNING id",
                    &[&now, &&sha[..], &body.as_bytes()],
                )
                .await?
                .get(0);
            let id: i64 = tx
                .query_one(
                    "INSERT INTO deliveries (event_id, route, destination, payload, state, created_at, next_attempt_at, updated_at, digest, claimed_by, claimed_until)
                     VALUES ($1, 'digest', $2, $3, 'pending', $4, $4, $4, TRUE, $5, $6) RETURNING id",
                    &[&event_id, &d.destination, &d.payload, &now, &self.inner.replica, &until],
                )
                .await?
                .get(0);
            let note = format!("sent in digest delivery {id}");
            tx.execute(
                "UPDATE deliveries SET state = 'digested', updated_at = $2, last_error = $3 WHERE id = ANY($1) AND state = 'held'",
                &[&d.held, &now, &note],
            )
            .await?;
            tx.commit().await?;
            Ok((id, event_id))
        }
        .await;
        let (id, event_id) = self.seen(r)?;
        Ok(d.due(id, event_id, now))
    }

    pub async fn clock_seen(&self, hook: &str, seen: i64) -> Result<Option<i64>, StoreError> {
        // The row lock orders replicas; only the one that clears
        // `silent_since` gets the previous time back.
        let rows = self
            .query(
                "WITH old AS (SELECT last_event_at, silent_since FROM hook_clocks WHERE hook = $1 FOR UPDATE),
                 up AS (
                    INSERT INTO hook_clocks (hook, last_event_at, silent_since) VALUES ($1, $2, NULL)
                    ON CONFLICT (hook) DO UPDATE SET last_event_at = excluded.last_event_at, silent_since = NULL
                    WHERE hook_clocks.last_event_at < excluded.last_event_at
                    RETURNING 1
                 )
                 SELECT old.last_event_at, old.silent_since FROM old, up",
                &[&hook, &seen],
            )
            .await?;
        Ok(rows.into_iter().next().and_then(|r| {
            let last: i64 = r.get(0);
            let silent: Option<i64> = r.get(1);
            silent.map(|_| last)
        }))
    }

    pub async fn clock_check(
        &self,
        hook: &str,
        now: i64,
        within_ms: i64,
    ) -> Result<ClockCheck, StoreError> {
        self.execute(
            "INSERT INTO hook_clocks (hook, last_event_at, silent_since) VALUES ($1, $2, NULL) ON CONFLICT (hook) DO NOTHING",
            &[&hook, &now],
        )
        .await?;
        let went = self
            .query(
                "UPDATE hook_clocks SET silent_since = $2 WHERE hook = $1 AND silent_since IS NULL AND last_event_at <= $2::BIGINT - $3::BIGINT
                 RETURNING last_event_at, silent_since",
                &[&hook, &now, &within_ms],
            )
            .await?;
        let (row, went_silent) = match went.into_iter().next() {
            Some(r) => (r, true),
            None => (
                self.query(
                    "SELECT last_event_at, silent_since FROM hook_clocks WHERE hook = $1",
                    &[&hook],
                )
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::NotFound(format!("clock of hook {hook}")))?,
                false,
            ),
        };
        Ok(ClockCheck {
            clock: HookClock {
                hook: hook.to_owned(),
                last_event_at: row.get(0),
                silent_since: row.get(1),
            },
            went_silent,
        })
    }

    pub async fn claim_due(
        &self,
        destination: &str,
        now: i64,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let limit = limit as i64;
        let rows = self
            .query(
                "UPDATE deliveries d SET claimed_by = $5, claimed_until = $6
                 FROM (SELECT id FROM deliveries
                       WHERE state = 'pending' AND destination = $1 AND id > $2 AND next_attempt_at <= $3
                         AND (claimed_until IS NULL OR claimed_until < $3 OR claimed_by = $5)
                       ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) c,
                      events e
                 WHERE d.id = c.id AND e.id = d.event_id
                 RETURNING d.id, d.event_id, d.payload, d.attempts, d.created_at, e.hook, e.short_id, d.digest",
                &[&destination, &after_id, &now, &limit, &self.inner.replica, &self.lease_until(now)],
            )
            .await?;
        let mut due: Vec<DueDelivery> = rows
            .into_iter()
            .map(|r| DueDelivery {
                id: r.get(0),
                event_id: r.get(1),
                destination: destination.to_owned(),
                payload: r.get(2),
                attempts: r.get(3),
                created_at: r.get(4),
                hook: r.get(5),
                short_id: r.get(6),
                digest: r.get(7),
            })
            .collect();
        due.sort_by_key(|d| d.id);
        Ok(due)
    }

    pub async fn claim_unrouted(
        &self,
        after_id: i64,
        limit: usize,
        own: bool,
    ) -> Result<Vec<(i64, String, Vec<u8>)>, StoreError> {
        let now = now_ms();
        let limit = limit as i64;
        let rows = self
            .query(
                "UPDATE events e SET claimed_by = $4, claimed_until = $5
                 FROM (SELECT id FROM events
                       WHERE state = 'received' AND id > $1
                         AND (claimed_until IS NULL OR claimed_until < $2 OR ($6 AND claimed_by = $4))
                       ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) c
                 WHERE e.id = c.id
                 RETURNING e.id, e.hook, e.body",
                &[&after_id, &now, &limit, &self.inner.replica, &self.lease_until(now), &own],
            )
            .await?;
        let mut out: Vec<(i64, String, Vec<u8>)> = rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        out.sort_by_key(|r| r.0);
        Ok(out)
    }

    /// `table` is `events` or `deliveries` (never user input).
    pub async fn renew(&self, table: &'static str, ids: Vec<i64>) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let until = self.lease_until(now_ms());
        let live_state = if table == "events" {
            "received"
        } else {
            "pending"
        };
        self.execute(
            &format!(
                "UPDATE {table} SET claimed_until = $1 WHERE id = ANY($2) AND claimed_by = $3 AND state = '{live_state}'"
            ),
            &[&until, &ids, &self.inner.replica],
        )
        .await?;
        Ok(())
    }

    pub async fn release(&self) -> Result<(), StoreError> {
        for table in ["events", "deliveries"] {
            self.execute(
                &format!("UPDATE {table} SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1"),
                &[&self.inner.replica],
            )
            .await?;
        }
        Ok(())
    }

    pub async fn pause(&self, destination: &str, until: i64) -> Result<(), StoreError> {
        // The other replicas hear of it at once (NOTIFY is sent at commit).
        self.query(
            "WITH p AS (
                INSERT INTO destination_state (destination, paused_until) VALUES ($1, $2)
                ON CONFLICT (destination) DO UPDATE
                SET paused_until = GREATEST(COALESCE(destination_state.paused_until, 0), excluded.paused_until))
             SELECT pg_notify('hookrelay', $1)",
            &[&destination, &until],
        )
        .await?;
        Ok(())
    }

    pub async fn paused_until(&self, destination: &str) -> Result<Option<i64>, StoreError> {
        let rows = self
            .query(
                "SELECT paused_until FROM destination_state WHERE destination = $1 AND paused_until > $2",
                &[&destination, &now_ms()],
            )
            .await?;
        Ok(rows.into_iter().next().and_then(|r| r.get(0)))
    }

    pub async fn take_slot(
        &self,
        destination: &str,
        kind: &str,
        limit: u32,
        window_ms: i64,
    ) -> Result<Result<(), i64>, StoreError> {
        let mut client = self.client().await?;
        let now = now_ms();
        let r: Result<Result<(), i64>, tokio_postgres::Error> = async {
            let tx = client.transaction().await?;
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
                &[&format!("{kind}/{destination}")],
            )
            .await?;
            let row = tx
                .query_one(
                    "SELECT COUNT(*), MIN(at) FROM send_slots WHERE destination = $1 AND kind = $2 AND at > $3",
                    &[&destination, &kind, &(now - window_ms)],
                )
                .await?;
            let count: i64 = row.get(0);
            let oldest: Option<i64> = row.get(1);
            if count >= i64::from(limit) {
                tx.commit().await?;
                let wait = oldest.map_or(window_ms, |o| o + window_ms - now).max(1);
                return Ok(Err(wait));
            }
            tx.execute(
                "INSERT INTO send_slots (destination, kind, at) VALUES ($1, $2, $3)",
                &[&destination, &kind, &now],
            )
            .await?;
            tx.commit().await?;
            Ok(Ok(()))
        }
        .await;
        self.seen(r)
    }

    pub async fn digest_turn(&self, destination: &str, every_ms: i64) -> Result<bool, StoreError> {
        let now = now_ms();
        let rows = self
            .query(
                "INSERT INTO destination_state (destination, next_digest_at) VALUES ($1, $2)
                 ON CONFLICT (destination) DO UPDATE SET next_digest_at = excluded.next_digest_at
                 WHERE destination_state.next_digest_at IS NULL OR destination_state.next_digest_at <= $3
                 RETURNING 1",
                &[&destination, &(now + every_ms), &(now + every_ms / 10)],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    pub async fn queue_depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        let rows = self
            .query(
                "SELECT destination, COUNT(*), MIN(created_at) FROM deliveries WHERE state = 'pending' GROUP BY destination",
                &[],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| QueueDepth {
                destination: r.get(0),
                pending: r.get(1),
                oldest_created_at: r.get(2),
            })
            .collect())
    }

    pub async fn dead_letters(
        &self,
        destination: Option<&str>,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = self
            .query(
                "SELECT d.id, d.event_id, d.destination, e.kind, e.action, e.short_id, d.attempts, d.last_status, d.last_error, d.updated_at
                 FROM deliveries d JOIN events e ON e.id = d.event_id
                 WHERE d.state = 'dead' AND ($1::TEXT IS NULL OR d.destination = $1) ORDER BY d.id",
                &[&destination],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| DeadLetter {
                id: r.get(0),
                event_id: r.get(1),
                destination: r.get(2),
                kind: r.get(3),
                action: r.get(4),
                short_id: r.get(5),
                attempts: r.get(6),
                last_status: r.get(7),
                last_error: r.get(8),
                updated_at: r.get(9),
            })
            .collect())
    }

    pub async fn summaries(
        &self,
        since: i64,
        hook: Option<&str>,
        id: Option<i64>,
        limit: Option<usize>,
    ) -> Result<Vec<EventSummary>, StoreError> {
        let limit = limit.map(|l| l as i64);
        let rows = self
            .query(
                "SELECT e.id, e.received_at, e.hook, e.kind, e.action, e.short_id, e.state,
                        COUNT(*) FILTER (WHERE d.state = 'pending'), COUNT(*) FILTER (WHERE d.state = 'dead'),
                        COUNT(*) FILTER (WHERE d.state = 'delivered'), COUNT(d.id)
                 FROM events e LEFT JOIN deliveries d ON d.event_id = e.id
                 WHERE e.received_at >= $1 AND ($2::TEXT IS NULL OR e.hook = $2) AND ($4::BIGINT IS NULL OR e.id = $4)
                 GROUP BY e.id ORDER BY e.id DESC LIMIT $3",
                &[&since, &hook, &limit, &id],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let raw: String = r.get(6);
                let counts: [i64; 4] = [r.get(7), r.get(8), r.get(9), r.get(10)];
                EventSummary {
                    id: r.get(0),
                    received_at: r.get(1),
                    hook: r.get(2),
                    kind: r.get(3),
                    action: r.get(4),
                    short_id: r.get(5),
                    state: super::reads::summary_state(&raw, counts).to_owned(),
                }
            })
            .collect())
    }

    pub async fn event_detail(&self, id: i64) -> Result<Option<EventDetail>, StoreError> {
        let Some(summary) = self
            .summaries(0, None, Some(id), None)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let row = self
            .query(
                "SELECT body, enrichment, alert_json, routes FROM events WHERE id = $1",
                &[&id],
            )
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::NotFound(format!("event {id}")))?;
        let body: Vec<u8> = row.get(0);
        let mut deliveries: Vec<DeliveryDetail> = self
            .query(
                "SELECT id, route, destination, state, last_error FROM deliveries WHERE event_id = $1 ORDER BY id",
                &[&id],
            )
            .await?
            .into_iter()
            .map(|r| DeliveryDetail {
                id: r.get(0),
                route: r.get(1),
                destination: r.get(2),
                state: r.get(3),
                last_error: r.get(4),
                attempts: Vec::new(),
            })
            .collect();
        for d in &mut deliveries {
            d.attempts = self
                .query(
                    "SELECT at, status, error, duration_ms FROM attempts WHERE delivery_id = $1 ORDER BY id",
                    &[&d.id],
                )
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect();
        }
        Ok(Some(EventDetail {
            summary,
            body: String::from_utf8_lossy(&body).into_owned(),
            enrichment: row.get(1),
            alert_json: row.get(2),
            routes: row.get(3),
            deliveries,
        }))
    }

    pub async fn held(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<(i64, Option<String>)>, StoreError> {
        let rows = self
            .query(
                "SELECT id, summary FROM deliveries WHERE state = 'held' AND destination = $1 ORDER BY id LIMIT $2",
                &[&destination, &(limit as i64)],
            )
            .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub async fn render_source(
        &self,
        delivery_id: i64,
    ) -> Result<Option<RenderSource>, StoreError> {
        let rows = self
            .query(
                "SELECT e.hook, e.body, e.alert_json, e.enrichment, d.route
                 FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = $1",
                &[&delivery_id],
            )
            .await?;
        Ok(rows.into_iter().next().map(|r| RenderSource {
            hook: r.get(0),
            body: r.get(1),
            alert_json: r.get(2),
            enrichment: r.get(3),
            route: r.get(4),
        }))
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

/// Connects and migrates (retrying with back-off), then watches the
/// connection and recounts pending work. Stops when the store is dropped.
async fn keeper(inner: Weak<Inner>) {
    let mut wait = Duration::from_millis(250);
    loop {
        let Some(me) = inner.upgrade() else { return };
        if !me.migrated.load(Ordering::Relaxed) {
            match migrate(&me).await {
                Ok(version) => {
                    me.migrated.store(true, Ordering::Relaxed);
                    me.healthy.store(true, Ordering::Relaxed);
                    tracing::info!(message = "Connected to PostgreSQL.", database = %me.target, schema_version = version, replica = %me.replica);
                    wait = Duration::from_millis(250);
                }
                Err(e) => {
                    me.failed(&e);
                    tracing::error!(
                        message = "Cannot use the PostgreSQL spool; hooks answer 503 until it answers. Retrying.",
                        database = %me.target, error = %e, retry_in_ms = wait.as_millis() as u64
                    );
                    drop(me);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                    continue;
                }
            }
        }
        // Probe (which also restores readiness after an outage) and recount.
        let was_healthy = me.healthy.load(Ordering::Relaxed);
        let delta_before = me.delta.swap(0, Ordering::Relaxed);
        match count_pending(&me).await {
            Ok(n) => {
                me.counted.store(n, Ordering::Relaxed);
                me.healthy.store(true, Ordering::Relaxed);
                if !was_healthy {
                    tracing::info!(message = "PostgreSQL answers again.", database = %me.target);
                }
            }
            Err(e) => {
                // No new count: keep what this replica knew.
                me.delta.fetch_add(delta_before, Ordering::Relaxed);
                if was_healthy {
                    tracing::error!(message = "Lost the PostgreSQL spool; hooks answer 503 until it is back.", database = %me.target, error = %e);
                }
                me.failed(&e);
            }
        }
        drop(me);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn count_pending(me: &Inner) -> Result<u64, String> {
    let client = me.pool.get().await.map_err(|e| explain(&e))?;
    let row = client
        .query_one(
            "SELECT (SELECT COUNT(*) FROM events WHERE state = 'received') + (SELECT COUNT(*) FROM deliveries WHERE state = 'pending')",
            &[],
        )
        .await
        .map_err(|e| explain(&e))?;
    let n: i64 = row.get(0);
    Ok(n.max(0) as u64)
}

/// Applies the missing migrations under a session advisory lock; returns
/// the schema version.
async fn migrate(me: &Inner) -> Result<usize, String> {
    let mut client = me.pool.get().await.map_err(|e| explain(&e))?;
    let text = |e: tokio_postgres::Error| match e.as_db_error() {
        Some(db) => db.message().to_owned(),
        None => explain(&e),
    };
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(text)?;
    let result = async {
        client
            .batch_execute("CREATE TABLE IF NOT EXISTS hookrelay_schema (version INTEGER NOT NULL)")
            .await
            .map_err(text)?;
        let version: i32 = client
            .query_one("SELECT COALESCE(MAX(version), 0) FROM hookrelay_schema", &[])
            .await
            .map_err(text)?
            .get(0);
        let latest = MIGRATIONS.len();
        if version as usize > latest {
            return Err(format!(
                "the database has schema version {version}, newer than this hookrelay understands ({latest}); run the newer binary"
            ));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = client.transaction().await.map_err(text)?;
            tx.batch_execute(sql).await.map_err(text)?;
            tx.execute(
                "INSERT INTO hookrelay_schema (version) VALUES ($1)",
                &[&((i + 1) as i32)],
            )
            .await
            .map_err(text)?;
            tx.commit().await.map_err(text)?;
            tracing::info!(message = "Applied store migration.", version = i + 1);
        }
        Ok(latest)
    }
    .await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    result
}

/// Listens for `NOTIFY hookrelay` on a connection of its own and relays
/// the payloads to this replica's workers; reconnects after a failure.
/// Stops when the store is dropped.
async fn listener(
    inner: Weak<Inner>,
    config: tokio_postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
) {
    use tokio_postgres::AsyncMessage;
    loop {
        let Some(me) = inner.upgrade() else { return };
        let ready = me.migrated.load(Ordering::Relaxed) && me.healthy.load(Ordering::Relaxed);
        drop(me);
        if !ready {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let Ok((client, mut conn)) = config.connect(tls.clone()).await else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        };
        // The connection must be polled for the LISTEN to complete and for
        // notifications to arrive; both run together.
        let messages = async {
            while let Some(message) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(n)) => {
                        let Some(me) = inner.upgrade() else { return };
                        let _ = me.wake.send(n.payload().to_owned());
                    }
                    Ok(_) => {}
                    Err(_) => return,
                }
            }
        };
        tokio::pin!(messages);
        let sql = format!("LISTEN {CHANNEL}");
        let listen = client.batch_execute(&sql);
        tokio::select! {
            r = listen => {
                if r.is_ok() {
                    // Wake everyone: anything sent while not listening.
                    if let Some(me) = inner.upgrade() {
                        let _ = me.wake.send(String::new());
                    }
                    (&mut messages).await;
                }
            }
            _ = &mut messages => {}
        }
        drop(client);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
