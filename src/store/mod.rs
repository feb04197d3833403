//! The durable spool, behind one interface with two backends:
//!
//! - **SQLite** (the default): one file in WAL mode. One writer thread owns
//!   the only write connection and commits in groups: it takes every queued
//!   operation (up to [`MAX_BATCH`]), applies them in one transaction,
//!   commits once, and only then answers each caller. Readers use their own
//!   connection and never block the writer.
//! - **PostgreSQL** (`store.kind = "postgres"`): several replicas share one
//!   database. Work is claimed with `FOR UPDATE SKIP LOCKED` and a lease, and
//!   the state that must hold cluster-wide (pauses, send windows, digest
//!   turns, silence clocks, dedup windows) lives in the database.
//!
//! Either way an event is acknowledged (202) only after its commit.
//!
//! This module must not know about HTTP, rendering or destinations beyond
//! their names: it stores what it is given.

pub mod console;
mod ops;
mod postgres;
pub mod reads;
mod retries;
mod schema;
mod sqlite;
mod writer;

pub use ops::{
    ActionRecord, Attempted, Completion, EnrichStep, HookClock, Inserted, Journey, NewDelivery,
    NewDigest, NewEvent, RouteDecision, Routing, Selector, Silence, StoredTenant, TenantChange,
    ThreadRoot,
};
pub use reads::{DeadLetter, DueDelivery, EventDetail, EventSummary, QueueDepth};

pub use reads::{DeliveryDetail, RenderSource};

use crate::config::{StoreConfig, StoreKind};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long a sender's request waits for a database spool to store its
/// event before it is answered 503.
const INSERT_TIMEOUT: Duration = Duration::from_secs(10);
/// Operations per commit at most.
pub(crate) const MAX_BATCH: usize = 512;
/// The writer's own checkpoint, run by SQLite right after a commit once the
/// WAL has this many pages (~16 MB). The checkpoint thread
/// ([`CHECKPOINT_EVERY`]) has copied most of them by then, so this one
/// copies the few frames left and costs a commit little; because it runs
/// between the writer's own transactions, it completes, and the WAL starts
/// over (a passive checkpoint from another thread never catches up with a
/// busy writer, so on its own the WAL would only grow).
pub(crate) const WAL_CHECKPOINT_PAGES: u32 = 4_096;
/// How often the checkpoint thread copies the WAL into the database
/// (a passive checkpoint: it never blocks the writer).
pub(crate) const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// The WAL file is truncated back to this size after a checkpoint.
pub(crate) const WAL_SIZE_LIMIT: u64 = 64 << 20;

/// Milliseconds since the epoch: the spool's clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A stored instant (unix ms) as RFC 3339 to the second, for people.
/// Never fails: an instant no calendar can show (past year 9999, which a
/// silence of `--for 100000y` reaches) is printed as its number.
pub fn format_ms(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms.max(0))
        .ok()
        .and_then(|t| jiff::fmt::strtime::format("%Y-%m-%dT%H:%M:%SZ", t).ok())
        .unwrap_or_else(|| format!("{ms} ms after 1970"))
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// `store.max_pending` reached: back-pressure, try later.
    #[error("the spool holds {0} undelivered items (store.max_pending); try again later")]
    Full(u64),
    /// The spool cannot be used now: disk full, read-only or I/O error
    /// (SQLite), or a database that is unreachable or failing (PostgreSQL).
    /// Reads fail with it too.
    #[error("the spool is unavailable: {0}")]
    Unavailable(String),
    /// The writer has stopped (shutdown).
    #[error("the spool is closed")]
    Closed,
    #[error("{0}")]
    Open(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A Standard Webhooks id already accepted (by any replica).
    #[error("webhook-id already seen (replay)")]
    Replay,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

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
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

/// What a silence check found for one hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockCheck {
    pub clock: HookClock,
    /// This call started the silence: announce it (once, cluster-wide).
    pub went_silent: bool,
}

impl Store {
    /// Opens the configured spool. SQLite is opened and migrated at once;
    /// PostgreSQL connects and migrates in the background, retrying with
    /// back-off (until then every operation fails with
    /// [`StoreError::Unavailable`] and [`Store::healthy`] is false).
    /// Must be called within a tokio runtime.
    pub fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        let backend = match config.kind {
            StoreKind::Sqlite => Backend::Sqlite(sqlite::Sqlite::open(config)?),
            StoreKind::Postgres => Backend::Postgres(postgres::Postgres::open(config)?),
        };
        Ok(Store { backend })
    }

    /// Opens the spool for a command-line tool: like [`Store::open`], but a
    /// database that cannot be reached within `wait` is an error.
    pub async fn open_now(config: &StoreConfig, wait: Duration) -> Result<Store, StoreError> {
        let store = Store::open(config)?;
        if let Backend::Postgres(pg) = &store.backend {
            pg.wait_ready(wait).await?;
        }
        Ok(store)
    }

    /// Waits up to `wait` for the spool to be usable; says whether it is.
    pub async fn wait_ready(&self, wait: Duration) -> bool {
        match &self.backend {
            Backend::Sqlite(_) => true,
            Backend::Postgres(pg) => pg.wait_ready(wait).await.is_ok(),
        }
    }

    /// The SQLite file, when that is the backend.
    pub fn path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Sqlite(s) => Some(s.path()),
            Backend::Postgres(_) => None,
        }
    }

    /// The database's cluster state, when several replicas may share this
    /// spool (PostgreSQL); see [`crate::coord`].
    pub fn cluster(&self) -> Option<Cluster> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Postgres(pg) => Some(Cluster(pg.clone())),
        }
    }

    /// Whether the spool can take writes now (for `/readyz`).
    pub fn healthy(&self) -> bool {
        match &self.backend {
            Backend::Sqlite(_) => true,
            Backend::Postgres(pg) => pg.healthy(),
        }
    }

    /// Stores an accepted webhook; returns once it is committed. A body
    /// already seen on the hook within the dedup window returns the
    /// original id with `duplicate = true`.
    pub async fn insert_event(&self, event: NewEvent) -> Result<Inserted, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.call(|r| writer::Op::Insert(event, r)).await,
            // A sender waits on this one: a database that stops answering
            // (a lock, a stalled disk) is a 503 it can retry, not a hang.
            // Should the insert commit after all, the retry is recognised
            // by the dedup window.
            Backend::Postgres(pg) => tokio::time::timeout(INSERT_TIMEOUT, pg.insert_event(event))
                .await
                .map_err(|_| {
                    StoreError::Unavailable(format!(
                        "the database did not store the event within {} s",
                        INSERT_TIMEOUT.as_secs()
                    ))
                })?,
        }
    }

    /// Records the enrichment and routing of an event and creates its
    /// deliveries, in one commit. Returns the created pending deliveries,
    /// or `None` if the event had already been routed (then nothing changes).
    pub async fn record_routing(
        &self,
        routing: Routing,
    ) -> Result<Option<Vec<DueDelivery>>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.call(|r| writer::Op::Route(routing, r)).await,
            Backend::Postgres(pg) => pg.record_routing(routing).await,
        }
    }

    /// Records the outcome of a delivery attempt.
    pub async fn complete(&self, completion: Completion) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.call(|r| writer::Op::Complete(completion, r)).await,
            Backend::Postgres(pg) => pg.complete(completion).await,
        }
    }

    /// Re-queues dead letters; returns how many.
    pub async fn replay(&self, selector: Selector) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.call(|r| writer::Op::Replay(selector, r)).await,
            Backend::Postgres(pg) => pg.replay(selector).await,
        }
    }

    /// Dead-letters every pending delivery to a destination that is no
    /// longer configured; returns how many.
    pub async fn orphan_destination(
        &self,
        destination: String,
        reason: String,
    ) -> Result<usize, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.call(|r| writer::Op::Orphan(destination, reason, r)).await,
            Backend::Postgres(pg) => pg.orphan(&destination, &reason).await,
        }
    }

    /// Deletes finished events older than `retention` (events with dead
    /// letters are kept) and forgets expired dedup windows; returns the
    /// events removed.
    pub async fn housekeeping(&self, retention: Duration) -> Result<usize, StoreError> {
        let before = now_ms() - retention.as_millis() as i64;
        match &self.backend {
            Backend::Sqlite(s) => s.call(|r| writer::Op::Prune(before, r)).await,
            Backend::Postgres(pg) => pg.prune(before).await,
        }
    }

    /// Sets a delivery aside for the next digest.
    pub async fn hold(&self, ids: Vec<i64>) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.call(|r| writer::Op::Hold(ids, r)).await,
            Backend::Postgres(pg) => pg.hold(&ids).await,
        }
    }

    /// Replaces held deliveries by one digest delivery; returns it.
    pub async fn digest(&self, d: NewDigest) -> Result<DueDelivery, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.call(|r| writer::Op::Digest(d, r)).await,
            Backend::Postgres(pg) => pg.digest(d).await,
        }
    }

    /// Records the latest real event seen on `hook` at `seen`. When that
    /// ends a silence, returns when the hook was last heard from before it
    /// (the caller announces the recovery; only one caller gets it).
    pub async fn clock_seen(&self, hook: &str, seen: i64) -> Result<Option<i64>, StoreError> {
        let hook = hook.to_owned();
        match &self.backend {
            Backend::Sqlite(s) => s.call(|r| writer::Op::ClockSeen(hook, seen, r)).await,
            Backend::Postgres(pg) => pg.clock_seen(&hook, seen).await,
        }
    }

    /// Starts `hook`'s clock if it has none, and marks it silent when
    /// nothing was heard for `within_ms`.
    pub async fn clock_check(
        &self,
        hook: &str,
        now: i64,
        within_ms: i64,
    ) -> Result<ClockCheck, StoreError> {
        let hook = hook.to_owned();
        match &self.backend {
            Backend::Sqlite(s) => {
                s.call(|r| writer::Op::ClockCheck(hook, now, within_ms, r))
                    .await
            }
            Backend::Postgres(pg) => pg.clock_check(&hook, now, within_ms).await,
        }
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
        match &self.backend {
            Backend::Sqlite(s) => {
                let name = destination.to_owned();
                s.read(move |c| reads::due(c, &name, now, after_id, limit))
                    .await
            }
            Backend::Postgres(pg) => pg.claim_due(destination, now, after_id, limit).await,
        }
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
        match &self.backend {
            Backend::Sqlite(s) => {
                s.read(move |c| reads::unrouted_after(c, after_id, limit))
                    .await
            }
            Backend::Postgres(pg) => {
                let own = which == Unrouted::Backlog;
                pg.claim_unrouted(after_id, limit, own).await
            }
        }
    }

    /// Pending work per destination.
    pub async fn queue_depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.read(reads::queue_depths).await,
            Backend::Postgres(pg) => pg.queue_depths().await,
        }
    }

    pub async fn dead_letters(
        &self,
        destination: Option<String>,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.read(move |c| reads::dead_letters(c, destination.as_deref()))
                    .await
            }
            Backend::Postgres(pg) => pg.dead_letters(destination.as_deref()).await,
        }
    }

    pub async fn events_since(
        &self,
        since: i64,
        hook: Option<String>,
        limit: Option<usize>,
    ) -> Result<Vec<EventSummary>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                s.read(move |c| reads::events_since(c, since, hook.as_deref(), limit))
                    .await
            }
            Backend::Postgres(pg) => pg.summaries(since, hook.as_deref(), None, limit).await,
        }
    }

    pub async fn event_detail(&self, id: i64) -> Result<Option<EventDetail>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.read(move |c| reads::event_detail(c, id)).await,
            Backend::Postgres(pg) => pg.event_detail(id).await,
        }
    }

    /// Held deliveries to `destination` (id, summary JSON), oldest first.
    pub async fn held(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<(i64, Option<String>)>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let name = destination.to_owned();
                s.read(move |c| reads::held(c, &name, limit)).await
            }
            Backend::Postgres(pg) => pg.held(destination, limit).await,
        }
    }

    /// Whether pending delivery `id` may go out now as far as its alert's
    /// conversation goes: no earlier event about the alert is unrouted or
    /// has a delivery to the same destination still pending.
    pub async fn thread_ready(&self, id: i64) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.read(move |c| reads::thread_ready(c, id)).await,
            Backend::Postgres(pg) => pg.thread_ready(id).await,
        }
    }

    /// The root message of `alert`'s conversation on `destination`.
    pub async fn thread_root(
        &self,
        destination: &str,
        alert: &str,
    ) -> Result<Option<ThreadRoot>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let (d, a) = (destination.to_owned(), alert.to_owned());
                s.read(move |c| reads::thread_root(c, &d, &a)).await
            }
            Backend::Postgres(pg) => pg.thread_root(destination, alert).await,
        }
    }

    /// Records (or moves) the root message of `alert`'s conversation.
    pub async fn set_thread(
        &self,
        destination: &str,
        alert: &str,
        root: ThreadRoot,
    ) -> Result<(), StoreError> {
        let (d, a) = (destination.to_owned(), alert.to_owned());
        match &self.backend {
            Backend::Sqlite(s) => s.call(|r| writer::Op::SetThread(d, a, root, r)).await,
            Backend::Postgres(pg) => pg.set_thread(&d, &a, root).await,
        }
    }

    /// Records an action as it starts; `nonce` (a form's) can be spent
    /// once: `None` when it already was (a replayed form).
    pub async fn start_action(
        &self,
        record: ActionRecord,
        nonce: Option<String>,
    ) -> Result<Option<i64>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.call(|r| writer::Op::StartAction(record, nonce, r)).await,
            Backend::Postgres(pg) => pg.start_action(record, nonce.as_deref()).await,
        }
    }

    /// Records how an action ended.
    pub async fn finish_action(
        &self,
        id: i64,
        result: &str,
        detail: Option<String>,
    ) -> Result<(), StoreError> {
        let result = result.to_owned();
        match &self.backend {
            Backend::Sqlite(s) => {
                s.call(|r| writer::Op::FinishAction(id, result, detail, r))
                    .await
            }
            Backend::Postgres(pg) => pg.finish_action(id, &result, detail).await,
        }
    }

    /// Adds a silence; returns its id.
    pub async fn add_silence(&self, s: Silence) -> Result<i64, StoreError> {
        match &self.backend {
            Backend::Sqlite(sq) => sq.call(|r| writer::Op::AddSilence(s, r)).await,
            Backend::Postgres(pg) => pg.add_silence(s).await,
        }
    }

    /// Ends silence `id` now; false if there is no such active silence.
    pub async fn expire_silence(&self, id: i64) -> Result<bool, StoreError> {
        let now = now_ms();
        match &self.backend {
            Backend::Sqlite(sq) => sq.call(|r| writer::Op::ExpireSilence(id, now, r)).await,
            Backend::Postgres(pg) => pg.expire_silence(id, now).await,
        }
    }

    /// Silences, newest first: every one, or only those active at `now`.
    pub async fn silences(&self, active_at: Option<i64>) -> Result<Vec<Silence>, StoreError> {
        match &self.backend {
            Backend::Sqlite(sq) => sq.read(move |c| reads::silences(c, active_at)).await,
            Backend::Postgres(pg) => pg.silences(active_at).await,
        }
    }

    /// The actions taken on an alert, oldest first.
    pub async fn actions_for(&self, alert: &str) -> Result<Vec<ActionRecord>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let a = alert.to_owned();
                s.read(move |c| reads::actions_for(c, &a)).await
            }
            Backend::Postgres(pg) => pg.actions_for(alert).await,
        }
    }

    /// A page of the console's events list.
    pub async fn events_page(
        &self,
        filter: console::EventFilter,
    ) -> Result<console::EventPage, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.read(move |c| console::events_page(c, &filter)).await,
            Backend::Postgres(pg) => pg.events_page(&filter).await,
        }
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
        match &self.backend {
            Backend::Sqlite(s) => {
                s.read(move |c| console::activity(c, &hooks, &destinations, hour, day))
                    .await
            }
            Backend::Postgres(pg) => pg.activity(&hooks, &destinations, hour, day).await,
        }
    }

    /// Creates or replaces a tenant and records the change; whether it is new.
    pub async fn put_tenant(
        &self,
        t: StoredTenant,
        change: TenantChange,
    ) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.call(|r| writer::Op::PutTenant(t, change, r)).await,
            Backend::Postgres(pg) => pg.put_tenant(&t, &change).await,
        }
    }

    /// Deletes a tenant and records the change; whether it existed.
    pub async fn delete_tenant(&self, change: TenantChange) -> Result<bool, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.call(|r| writer::Op::DeleteTenant(change, r)).await,
            Backend::Postgres(pg) => pg.delete_tenant(&change).await,
        }
    }

    /// Every tenant, sealed, by name.
    pub async fn tenants(&self) -> Result<Vec<StoredTenant>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.read(reads::tenants).await,
            Backend::Postgres(pg) => pg.tenants().await,
        }
    }

    /// The console's session-key salt: the one stored, else `candidate`
    /// (random), stored now. Every replica of a shared spool gets the same.
    pub async fn console_salt(&self, candidate: Vec<u8>) -> Result<Vec<u8>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.call(|r| writer::Op::ConsoleSalt(candidate, r)).await,
            Backend::Postgres(pg) => pg.console_salt(&candidate).await,
        }
    }

    /// Ends every console session issued so far (logout): bumps the
    /// session epoch and answers the new one.
    pub async fn end_console_sessions(&self) -> Result<i64, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.call(writer::Op::EndConsoleSessions).await,
            Backend::Postgres(pg) => pg.end_console_sessions().await,
        }
    }

    /// The console's session epoch: cookies issued under another are refused.
    pub async fn console_epoch(&self) -> Result<i64, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.read(reads::console_epoch).await,
            Backend::Postgres(pg) => pg.console_epoch().await,
        }
    }

    /// The latest tenant change (0: none); it grows with every change.
    pub async fn tenants_version(&self) -> Result<i64, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.read(reads::tenants_version).await,
            Backend::Postgres(pg) => pg.tenants_version().await,
        }
    }

    /// Every hook's silence-detection clock.
    pub async fn clocks(&self) -> Result<Vec<HookClock>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.read(reads::clocks).await,
            Backend::Postgres(pg) => pg.clocks().await,
        }
    }

    /// Dead letters matching the console's filter, newest first.
    pub async fn dead_page(
        &self,
        filter: console::DeadFilter,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.read(move |c| console::dead_page(c, &filter)).await,
            Backend::Postgres(pg) => pg.dead_page(&filter).await,
        }
    }

    /// What a delivery's message is made from, for rendering it again.
    pub async fn render_source(
        &self,
        delivery_id: i64,
    ) -> Result<Option<RenderSource>, StoreError> {
        match &self.backend {
            Backend::Sqlite(s) => s.read(move |c| reads::render_source(c, delivery_id)).await,
            Backend::Postgres(pg) => pg.render_source(delivery_id).await,
        }
    }
}

/// An event accepted and not routed yet: id, hook, body, when it was
/// received (unix ms).
pub type UnroutedEvent = (i64, String, Vec<u8>, i64);

/// Which unrouted events a sweep takes (with a shared spool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrouted {
    /// Those nobody holds and this replica's own: its backlog (events it
    /// accepted but left to the spool).
    Backlog,
    /// Only those whose claim ran out: a dead replica's.
    Abandoned,
}

/// What a replica claims and renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    Events,
    Deliveries,
}

/// A send window: at most `limit` sends in any `window_ms`, kept under
/// `name` per destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendWindow {
    pub name: &'static str,
    pub limit: u32,
    pub window_ms: i64,
}

/// The cluster-wide state in a shared database: claims, pauses, send
/// windows, digest turns, wake-ups. Used through [`crate::coord`].
#[derive(Clone)]
pub struct Cluster(postgres::Postgres);

impl Cluster {
    /// How long a claim on work lasts without renewal.
    pub fn lease(&self) -> Duration {
        self.0.lease()
    }

    pub async fn renew(&self, what: Claimed, ids: Vec<i64>) -> Result<(), StoreError> {
        let table = match what {
            Claimed::Events => "events",
            Claimed::Deliveries => "deliveries",
        };
        self.0.renew(table, ids).await
    }

    pub async fn release(&self) -> Result<(), StoreError> {
        self.0.release().await
    }

    /// `NOTIFY hookrelay` payloads from every replica.
    pub fn wakeups(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.0.wakeups()
    }

    pub async fn pause(&self, destination: &str, until: i64) -> Result<(), StoreError> {
        self.0.pause(destination, until).await
    }

    pub async fn paused_until(&self, destination: &str) -> Result<Option<i64>, StoreError> {
        self.0.paused_until(destination).await
    }

    /// Takes one send from every window at once, or from none: `None` when
    /// taken, else the first full window's name and the ms until it has room.
    pub async fn take_slots(
        &self,
        destination: &str,
        windows: &[SendWindow],
    ) -> Result<Option<(&'static str, i64)>, StoreError> {
        self.0.take_slots(destination, windows).await
    }

    /// Whether this replica sends `destination`'s digest now (one replica
    /// per interval).
    pub async fn digest_turn(&self, destination: &str, every_ms: i64) -> Result<bool, StoreError> {
        self.0.digest_turn(destination, every_ms).await
    }
}

/// Where a delivery is in its life; stored as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting to be sent (or retried).
    Pending,
    Delivered,
    /// Failed for good (or could not be rendered): a dead letter, replayable.
    Dead,
    /// Over `max_per_minute`, set aside for the next digest.
    Held,
    /// Not sent: the route's dedup window had already sent it.
    Skipped,
    /// Folded into a digest that was sent instead.
    Digested,
    /// Not sent: its route was muted or inactive (a time interval).
    Muted,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
            DeliveryState::Held => "held",
            DeliveryState::Skipped => "skipped",
            DeliveryState::Digested => "digested",
            DeliveryState::Muted => "muted",
        }
    }
}

impl std::fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DeliveryState {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "dead" => DeliveryState::Dead,
            "held" => DeliveryState::Held,
            "skipped" => DeliveryState::Skipped,
            "digested" => DeliveryState::Digested,
            "muted" => DeliveryState::Muted,
            other => {
                return Err(StoreError::Unavailable(format!(
                    "the spool holds a delivery in an unknown state {other:?} (written by a newer version?)"
                )))
            }
        })
    }
}
