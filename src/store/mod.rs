//! The durable spool, behind one interface with two backends:
//!
//! - **SQLite** (the default): one file in WAL mode. One writer thread owns
//!   the only write connection and commits in groups: it takes every queued
//!   operation (up to 512), applies them in one transaction, commits once,
//!   and only then answers each caller. Readers use their own connection
//!   and never block the writer.
//! - **PostgreSQL** (`store.kind = "postgres"`): several replicas share one
//!   database. Work is claimed with `FOR UPDATE SKIP LOCKED` and a lease, and
//!   the state that must hold cluster-wide (pauses, send windows, digest
//!   turns, silence clocks, dedup windows) lives in the database.
//!
//! Either way an event is acknowledged (202) only after its commit.
//!
//! [`Store`] is the handle callers hold; what it does is the same
//! whatever the backend, which it reaches through one trait
//! ([`backend::Backend`]). The vocabulary both backends speak is in
//! `ops` (what callers hand the store), `reads` and `console` (what it
//! answers); each backend's folder is split by the same concerns
//! (events, deliveries, reads, console, tenants, schema).
//!
//! This module must not know about HTTP, rendering or destinations beyond
//! their names: it stores what it is given.

mod backend;
mod cluster;
pub mod console;
mod error;
mod ops;
mod postgres;
pub mod reads;
mod sqlite;
mod state;
mod time;

pub use ops::{
    ActionRecord, Attempted, Completion, EnrichStep, HookClock, Inserted, Journey, NewDelivery,
    NewDigest, NewEvent, RouteDecision, Routing, Selector, Silence, StoredTenant, TenantChange,
    ThreadRoot,
};
pub use reads::{DeadLetter, DueDelivery, EventDetail, EventSummary, QueueDepth};

pub use reads::{DeliveryDetail, RenderSource};

pub use cluster::{Claimed, ClockCheck, Cluster, SendWindow, Unrouted, UnroutedEvent};
pub use error::StoreError;
pub use state::DeliveryState;
pub use time::{format_ms, now_ms};

use crate::config::{StoreConfig, StoreKind};
use backend::Backend;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Logs a spool failure of a background loop at `$level`, or at debug
/// level while the spool is known to be unreachable (a database outage is
/// logged once when it starts and once when it ends, not by every loop
/// every second).
macro_rules! spool_log {
    ($level:ident, $store:expr, $($fields:tt)+) => {
        if $store.healthy() {
            tracing::$level!($($fields)+)
        } else {
            tracing::debug!($($fields)+)
        }
    };
}
pub(crate) use spool_log;

/// A handle on the spool; cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// SQLite or PostgreSQL, chosen once by `store.kind`.
    backend: Arc<dyn Backend>,
}

impl Store {
    /// Opens the configured spool. SQLite is opened and migrated at once;
    /// PostgreSQL connects and migrates in the background, retrying with
    /// back-off (until then every operation fails with
    /// [`StoreError::Unavailable`] and [`Store::healthy`] is false).
    /// Must be called within a tokio runtime.
    pub fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        let backend: Arc<dyn Backend> = match config.kind {
            StoreKind::Sqlite => Arc::new(sqlite::Sqlite::open(config)?),
            StoreKind::Postgres => Arc::new(postgres::Postgres::open(config)?),
        };
        Ok(Store { backend })
    }

    /// Opens the spool for a command-line tool: like [`Store::open`], but a
    /// database that cannot be reached within `wait` is an error.
    pub async fn open_now(config: &StoreConfig, wait: Duration) -> Result<Store, StoreError> {
        let store = Store::open(config)?;
        store.backend.wait_ready(wait).await?;
        Ok(store)
    }

    /// Waits up to `wait` for the spool to be usable; says whether it is.
    pub async fn wait_ready(&self, wait: Duration) -> bool {
        self.backend.wait_ready(wait).await.is_ok()
    }

    /// The SQLite file, when that is the backend.
    pub fn path(&self) -> Option<&Path> {
        self.backend.path()
    }

    /// The database's cluster state, when several replicas may share this
    /// spool (PostgreSQL); see [`crate::coord`].
    pub fn cluster(&self) -> Option<Cluster> {
        self.backend.cluster()
    }

    /// Whether the spool can take writes now (for `/readyz`).
    pub fn healthy(&self) -> bool {
        self.backend.healthy()
    }

    /// Stores an accepted webhook; returns once it is committed. A body
    /// already seen on the hook within the dedup window returns the
    /// original id with `duplicate = true`.
    pub async fn insert_event(&self, event: NewEvent) -> Result<Inserted, StoreError> {
        self.backend.insert_event(event).await
    }

    /// Records the enrichment and routing of an event and creates its
    /// deliveries, in one commit. Returns the created pending deliveries,
    /// or `None` if the event had already been routed (then nothing changes).
    pub async fn record_routing(
        &self,
        routing: Routing,
    ) -> Result<Option<Vec<DueDelivery>>, StoreError> {
        self.backend.record_routing(routing).await
    }

    /// Records the outcome of a delivery attempt.
    pub async fn complete(&self, completion: Completion) -> Result<(), StoreError> {
        self.backend.complete(completion).await
    }

    /// Re-queues dead letters; returns how many.
    pub async fn replay(&self, selector: Selector) -> Result<usize, StoreError> {
        self.backend.replay(selector).await
    }

    /// Dead-letters every pending delivery to a destination that is no
    /// longer configured; returns how many.
    pub async fn orphan_destination(
        &self,
        destination: String,
        reason: String,
    ) -> Result<usize, StoreError> {
        self.backend.orphan_destination(destination, reason).await
    }

    /// Deletes finished events older than `retention` (events with dead
    /// letters are kept) and forgets expired dedup windows; returns the
    /// events removed.
    pub async fn housekeeping(&self, retention: Duration) -> Result<usize, StoreError> {
        let before = now_ms() - retention.as_millis() as i64;
        self.backend.prune(before).await
    }

    /// Sets a delivery aside for the next digest.
    pub async fn hold(&self, ids: Vec<i64>) -> Result<(), StoreError> {
        self.backend.hold(ids).await
    }

    /// Replaces held deliveries by one digest delivery; returns it.
    pub async fn digest(&self, d: NewDigest) -> Result<DueDelivery, StoreError> {
        self.backend.digest(d).await
    }

    /// Records the latest real event seen on `hook` at `seen`. When that
    /// ends a silence, returns when the hook was last heard from before it
    /// (the caller announces the recovery; only one caller gets it).
    pub async fn clock_seen(&self, hook: &str, seen: i64) -> Result<Option<i64>, StoreError> {
        self.backend.clock_seen(hook, seen).await
    }

    /// Starts `hook`'s clock if it has none, and marks it silent when
    /// nothing was heard for `within_ms`.
    pub async fn clock_check(
        &self,
        hook: &str,
        now: i64,
        within_ms: i64,
    ) -> Result<ClockCheck, StoreError> {
        self.backend.clock_check(hook, now, within_ms).await
    }

    /// Pending deliveries to `destination` due at `now`, from `after_id` on.
    /// With a shared spool they are claimed for this replica (a lease).
    pub async fn due(
        &self,
        destination: &str,
        now: i64,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        self.backend.due(destination, now, after_id, limit).await
    }

    /// Events accepted but not yet routed, after `after_id`: (id, hook,
    /// body). With a shared spool they are claimed for this replica, as
    /// `which` says; a SQLite spool's unrouted events are all this
    /// process's backlog.
    pub async fn unrouted_after(
        &self,
        after_id: i64,
        limit: usize,
        which: Unrouted,
    ) -> Result<Vec<UnroutedEvent>, StoreError> {
        self.backend.unrouted_after(after_id, limit, which).await
    }

    /// Pending work per destination.
    pub async fn queue_depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        self.backend.queue_depths().await
    }

    pub async fn dead_letters(
        &self,
        destination: Option<String>,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.backend.dead_letters(destination).await
    }

    pub async fn events_since(
        &self,
        since: i64,
        hook: Option<String>,
        limit: Option<usize>,
    ) -> Result<Vec<EventSummary>, StoreError> {
        self.backend.events_since(since, hook, limit).await
    }

    pub async fn event_detail(&self, id: i64) -> Result<Option<EventDetail>, StoreError> {
        self.backend.event_detail(id).await
    }

    /// Held deliveries to `destination` (id, summary JSON), oldest first.
    pub async fn held(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<(i64, Option<String>)>, StoreError> {
        self.backend.held(destination, limit).await
    }

    /// Whether pending delivery `id` may go out now as far as its alert's
    /// conversation goes: no earlier event about the alert is unrouted or
    /// has a delivery to the same destination still pending.
    pub async fn thread_ready(&self, id: i64) -> Result<bool, StoreError> {
        self.backend.thread_ready(id).await
    }

    /// The root message of `alert`'s conversation on `destination`.
    pub async fn thread_root(
        &self,
        destination: &str,
        alert: &str,
    ) -> Result<Option<ThreadRoot>, StoreError> {
        self.backend.thread_root(destination, alert).await
    }

    /// Records (or moves) the root message of `alert`'s conversation.
    pub async fn set_thread(
        &self,
        destination: &str,
        alert: &str,
        root: ThreadRoot,
    ) -> Result<(), StoreError> {
        self.backend.set_thread(destination, alert, root).await
    }

    /// Records an action as it starts; `nonce` (a form's) can be spent
    /// once: `None` when it already was (a replayed form).
    pub async fn start_action(
        &self,
        record: ActionRecord,
        nonce: Option<String>,
    ) -> Result<Option<i64>, StoreError> {
        self.backend.start_action(record, nonce).await
    }

    /// Records how an action ended.
    pub async fn finish_action(
        &self,
        id: i64,
        result: &str,
        detail: Option<String>,
    ) -> Result<(), StoreError> {
        self.backend.finish_action(id, result, detail).await
    }

    /// Adds a silence; returns its id.
    pub async fn add_silence(&self, s: Silence) -> Result<i64, StoreError> {
        self.backend.add_silence(s).await
    }

    /// Ends silence `id` now; false if there is no such active silence.
    pub async fn expire_silence(&self, id: i64) -> Result<bool, StoreError> {
        self.backend.expire_silence(id, now_ms()).await
    }

    /// Silences, newest first: every one, or only those active at `now`.
    pub async fn silences(&self, active_at: Option<i64>) -> Result<Vec<Silence>, StoreError> {
        self.backend.silences(active_at).await
    }

    /// The actions taken on an alert, oldest first.
    pub async fn actions_for(&self, alert: &str) -> Result<Vec<ActionRecord>, StoreError> {
        self.backend.actions_for(alert).await
    }

    /// A page of the console's events list.
    pub async fn events_page(
        &self,
        filter: console::EventFilter,
    ) -> Result<console::EventPage, StoreError> {
        self.backend.events_page(filter).await
    }

    /// The console overview's numbers: per hook and destination since
    /// `hour`, per minute since `day` (unix ms); `hooks` and `destinations`
    /// are those configured (each gets its last event or latency even when
    /// quiet today).
    pub async fn activity(
        &self,
        hooks: Vec<String>,
        destinations: Vec<String>,
        hour: i64,
        day: i64,
    ) -> Result<console::Activity, StoreError> {
        self.backend.activity(hooks, destinations, hour, day).await
    }

    /// Creates or replaces a tenant and records the change; whether it is new.
    pub async fn put_tenant(
        &self,
        t: StoredTenant,
        change: TenantChange,
    ) -> Result<bool, StoreError> {
        self.backend.put_tenant(t, change).await
    }

    /// Deletes a tenant and records the change; whether it existed.
    pub async fn delete_tenant(&self, change: TenantChange) -> Result<bool, StoreError> {
        self.backend.delete_tenant(change).await
    }

    /// Every tenant, sealed, by name.
    pub async fn tenants(&self) -> Result<Vec<StoredTenant>, StoreError> {
        self.backend.tenants().await
    }

    /// The console's session-key salt: the one stored, else `candidate`
    /// (random), stored now. Every replica of a shared spool gets the same.
    pub async fn console_salt(&self, candidate: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        self.backend.console_salt(candidate).await
    }

    /// Ends every console session issued so far (logout): bumps the
    /// session epoch and answers the new one.
    pub async fn end_console_sessions(&self) -> Result<i64, StoreError> {
        self.backend.end_console_sessions().await
    }

    /// The console's session epoch: cookies issued under another are refused.
    pub async fn console_epoch(&self) -> Result<i64, StoreError> {
        self.backend.console_epoch().await
    }

    /// The latest tenant change (0: none); it grows with every change.
    pub async fn tenants_version(&self) -> Result<i64, StoreError> {
        self.backend.tenants_version().await
    }

    /// Every hook's silence-detection clock.
    pub async fn clocks(&self) -> Result<Vec<HookClock>, StoreError> {
        self.backend.clocks().await
    }

    /// Dead letters matching the console's filter, newest first.
    pub async fn dead_page(
        &self,
        filter: console::DeadFilter,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        self.backend.dead_page(filter).await
    }

    /// What a delivery's message is made from, for rendering it again.
    pub async fn render_source(
        &self,
        delivery_id: i64,
    ) -> Result<Option<RenderSource>, StoreError> {
        self.backend.render_source(delivery_id).await
    }
}
