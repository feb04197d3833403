//! The durable spool: an SQLite database in WAL mode.
//!
//! One writer thread owns the only write connection and commits in groups:
//! it takes every queued operation (up to [`MAX_BATCH`]), applies them in
//! one transaction, commits once, and only then answers each caller. An
//! event is acknowledged (202) only after that commit. Readers use their
//! own connection and never block the writer.
//!
//! This module must not know about HTTP, rendering or destinations beyond
//! their names: it stores what it is given.

pub mod reads;
mod schema;
mod writer;

pub use reads::{DeadLetter, DueDelivery, EventDetail, EventSummary, QueueDepth};
pub use writer::{
    Completion, HookClock, Inserted, NewDelivery, NewDigest, NewEvent, Routing, Selector,
};

use crate::config::{StoreConfig, SyncMode};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::oneshot;

/// Operations per commit at most.
const MAX_BATCH: usize = 512;
/// The writer's own checkpoint, run by SQLite right after a commit once the
/// WAL has this many pages (~16 MB). The checkpoint thread
/// ([`CHECKPOINT_EVERY`]) has copied most of them by then, so this one
/// copies the few frames left and costs a commit little; because it runs
/// between the writer's own transactions, it completes, and the WAL starts
/// over (a passive checkpoint from another thread never catches up with a
/// busy writer, so on its own the WAL would only grow).
const WAL_CHECKPOINT_PAGES: u32 = 4_096;
/// How often the checkpoint thread copies the WAL into the database
/// (a passive checkpoint: it never blocks the writer).
const CHECKPOINT_EVERY: Duration = Duration::from_millis(50);
/// The WAL file is truncated back to this size after a checkpoint.
const WAL_SIZE_LIMIT: u64 = 64 << 20;

/// Milliseconds since the epoch: the spool's clock.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// `store.max_pending` reached: back-pressure, try later.
    #[error("the spool holds {0} undelivered items (store.max_pending); try again later")]
    Full(u64),
    /// The database cannot be written (disk full, read-only, I/O error).
    #[error("the spool cannot be written: {0}")]
    Unavailable(String),
    /// The writer has stopped (shutdown).
    #[error("the spool is closed")]
    Closed,
    #[error("{0}")]
    Open(String),
    #[error("not found: {0}")]
    NotFound(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

/// A handle on the spool; cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// Operations for the writer thread; dropping every sender stops it.
    tx: std::sync::mpsc::Sender<writer::Op>,
    /// The read connection (queries are short; one is enough).
    reader: Arc<Mutex<Connection>>,
    path: PathBuf,
}

fn open_connection(path: &Path, sync: SyncMode) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| open_error(path, &e))?;
    conn.busy_timeout(Duration::from_secs(10))
        .map_err(|e| open_error(path, &e))?;
    let sync = match sync {
        SyncMode::Full => "FULL",
        SyncMode::Normal => "NORMAL",
    };
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}; PRAGMA journal_size_limit = {WAL_SIZE_LIMIT};"
    ))
    .map_err(|e| open_error(path, &e))?;
    Ok(conn)
}

/// Copies the WAL into the database file in the background, so the
/// writer's commits (and the senders waiting on them) never stall behind a
/// checkpoint. Stops once the writer has stopped.
fn spawn_checkpointer(
    conn: Connection,
    stopped: Arc<std::sync::atomic::AtomicBool>,
) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("hookrelay-ckpt".into())
        .spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(CHECKPOINT_EVERY);
                if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE);") {
                    tracing::debug!(message = "Background checkpoint failed; will retry.", error = %e);
                }
            }
        })
        .map_err(|e| StoreError::Open(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(())
}

/// An open error in words an operator can act on.
fn open_error(path: &Path, e: &rusqlite::Error) -> StoreError {
    open_error_text(path, &e.to_string())
}

fn open_error_text(path: &Path, text: &str) -> StoreError {
    let p = path.display();
    let hint = if text.contains("not a database") || text.contains("malformed") {
        "the file is not a hookrelay database or is corrupted; move it aside to start with an empty spool (its events would be lost), or restore a backup"
    } else if text.contains("readonly") || text.contains("read-only") || text.contains("permission")
    {
        "the file or its directory is not writable by this user; fix the ownership (under systemd, use StateDirectory=hookrelay)"
    } else if text.contains("unable to open") {
        "check that the directory exists and is writable (under systemd, use StateDirectory=hookrelay)"
    } else {
        "check the path, permissions and free disk space"
    };
    StoreError::Open(format!("store.path: cannot open {p}: {text}; {hint}"))
}

impl Store {
    /// Opens (creating if needed) and migrates the spool, and starts the
    /// writer thread.
    pub fn open(config: &StoreConfig) -> Result<Store, StoreError> {
        let path = config.path.clone();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if !dir.is_dir() {
                return Err(StoreError::Open(format!(
                    "store.path: directory {} does not exist; create it (under systemd, StateDirectory=hookrelay does)",
                    dir.display()
                )));
            }
        }
        let mut conn = open_connection(&path, config.sync)?;
        migrate(&mut conn).map_err(|e| match e {
            StoreError::Unavailable(text) => open_error_text(&path, &text),
            other => other,
        })?;
        let reader = open_connection(&path, config.sync)?;
        reader
            .execute_batch("PRAGMA query_only = ON;")
            .map_err(|e| open_error(&path, &e))?;
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        spawn_checkpointer(open_connection(&path, config.sync)?, stopped.clone())?;
        let tx = writer::spawn(conn, config.max_pending, stopped)?;
        Ok(Store {
            tx,
            reader: Arc::new(Mutex::new(reader)),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    async fn call<T: Send + 'static>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> writer::Op,
    ) -> Result<T, StoreError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).map_err(|_| StoreError::Closed)?;
        rx.await.map_err(|_| StoreError::Closed)?
    }

    /// Stores an accepted webhook; returns once it is committed. A body
    /// already seen on the hook within the dedup window returns the
    /// original id with `duplicate = true`.
    pub async fn insert_event(&self, event: NewEvent) -> Result<Inserted, StoreError> {
        self.call(|r| writer::Op::Insert(event, r)).await
    }

    /// Records the enrichment and routing of an event and creates its
    /// deliveries, in one commit. Returns the created pending deliveries,
    /// or `None` if the event had already been routed (then nothing changes).
    pub async fn record_routing(
        &self,
        routing: Routing,
    ) -> Result<Option<Vec<DueDelivery>>, StoreError> {
        self.call(|r| writer::Op::Route(routing, r)).await
    }

    /// Records the outcome of a delivery attempt.
    pub async fn complete(&self, completion: Completion) -> Result<(), StoreError> {
        self.call(|r| writer::Op::Complete(completion, r)).await
    }

    /// Re-queues dead letters; returns how many.
    pub async fn replay(&self, selector: Selector) -> Result<usize, StoreError> {
        self.call(|r| writer::Op::Replay(selector, r)).await
    }

    /// Dead-letters every pending delivery to a destination that is no
    /// longer configured; returns how many.
    pub async fn orphan_destination(
        &self,
        destination: String,
        reason: String,
    ) -> Result<usize, StoreError> {
        self.call(|r| writer::Op::Orphan(destination, reason, r))
            .await
    }

    /// Deletes finished events older than `retention` (events with dead
    /// letters are kept) and forgets expired dedup windows; returns the
    /// events removed. SQLite's auto-checkpoint keeps the WAL bounded.
    pub async fn housekeeping(&self, retention: Duration) -> Result<usize, StoreError> {
        let before = now_ms() - retention.as_millis() as i64;
        self.call(|r| writer::Op::Prune(before, r)).await
    }

    /// Sets a delivery aside for the next digest.
    pub async fn hold(&self, id: i64) -> Result<(), StoreError> {
        self.call(|r| writer::Op::Hold(id, r)).await
    }

    /// Replaces held deliveries by one digest delivery; returns it.
    pub async fn digest(&self, d: NewDigest) -> Result<DueDelivery, StoreError> {
        self.call(|r| writer::Op::Digest(d, r)).await
    }

    /// Saves a hook's silence-detection clock.
    pub async fn set_clock(&self, clock: HookClock) -> Result<(), StoreError> {
        self.call(|r| writer::Op::Clock(clock, r)).await
    }

    /// Runs a read query on the reader connection off the async threads.
    pub async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.reader.clone();
        tokio::task::spawn_blocking(move || {
            let conn = reader.lock().unwrap_or_else(|p| p.into_inner());
            f(&conn)
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("reader task failed: {e}")))?
    }

    /// The same read, from synchronous code (the CLI).
    pub fn read_blocking<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        f(&conn)
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = schema::MIGRATIONS.len() as i64;
    if version > latest {
        return Err(StoreError::Open(format!(
            "store.path: the database has schema version {version}, newer than this hookrelay understands ({latest}); run the newer binary"
        )));
    }
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.execute_batch(&format!("PRAGMA user_version = {}", i + 1))?;
        tx.commit()?;
        tracing::info!(message = "Applied store migration.", version = i + 1);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
