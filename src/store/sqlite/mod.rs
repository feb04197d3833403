//! The SQLite backend: one file in WAL mode, one writer thread with group
//! commit (see [`writer`]), and reader threads with a connection each.
//!
//! Split by concern, as `postgres` is: `writer` (the thread, the batch,
//! the commit) applies the writes of `events`, `deliveries`, `clocks`,
//! `tenants` and `console`; `reads` and `console` are the reads;
//! `retries` the writer's record of recent bodies; `schema` the
//! migrations; `backend` the store's operations mapped onto these.

mod backend;
mod clocks;
pub(super) mod console;
mod deliveries;
mod events;
mod reads;
mod retries;
mod schema;
mod tenants;
mod writer;

use super::backend::Answer;
use super::StoreError;
use crate::config::{StoreConfig, SyncMode};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

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

/// The writer's page cache, in KiB. Its working set is the right-hand
/// edge of each table and index and the rows routed or completed shortly
/// after they were written; the OS page cache holds the rest of the file.
/// SQLite's default (2,000 KiB) only added peak RSS: 1 MiB measured 1.5 MiB
/// less at the same throughput (BENCHMARKS.md, fourth session), and 512
/// KiB 2 MiB less again with 100,000 events queued, at the same throughput
/// and CPU per event (ninth session).
const CACHE_KIB: u32 = 512;

/// A reader's page cache. Reads walk indexes and fetch rows here and
/// there, from pages the OS caches anyway; a full 1 MiB cache per reader
/// only held peak RSS up while a large backlog was scanned.
const READER_CACHE_KIB: u32 = 256;

/// Reader threads, each with its own connection. Two, so a long read (a
/// scan over a large backlog, a console search) never holds up the short
/// ones behind it. Reads queue for them: a burst of reads costs memory for
/// the queued closures, never a thread each.
const READERS: usize = 2;

/// A read, run on a reader thread.
type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

/// The SQLite spool; cheap to clone.
#[derive(Clone)]
pub struct Sqlite {
    /// Operations for the writer thread; dropping every sender stops it.
    tx: std::sync::mpsc::Sender<writer::Op>,
    /// Reads for the reader threads; dropping every sender stops them.
    reads: std::sync::mpsc::Sender<ReadJob>,
    path: PathBuf,
}

/// Starts the reader threads; they stop once every sender is dropped.
fn spawn_readers(
    path: &Path,
    sync: SyncMode,
) -> Result<std::sync::mpsc::Sender<ReadJob>, StoreError> {
    let (tx, rx) = std::sync::mpsc::channel::<ReadJob>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..READERS {
        let conn = open_connection(path, sync)?;
        conn.execute_batch(&format!(
            "PRAGMA query_only = ON; PRAGMA cache_size = -{READER_CACHE_KIB};"
        ))
        .map_err(|e| open_error(path, &e))?;
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("hookrelay-read{i}"))
            .spawn(move || loop {
                let job = rx.lock().unwrap_or_else(|p| p.into_inner()).recv();
                match job {
                    // A read that panics answers nothing (its caller gets
                    // an error); the thread goes on serving the others.
                    Ok(job) => {
                        let _ =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&conn)));
                    }
                    Err(_) => return,
                }
            })
            .map_err(|e| StoreError::Open(format!("cannot start a spool reader thread: {e}")))?;
    }
    Ok(tx)
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
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = {sync}; PRAGMA foreign_keys = OFF; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}; PRAGMA journal_size_limit = {WAL_SIZE_LIMIT}; PRAGMA cache_size = -{CACHE_KIB};"
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

impl Sqlite {
    /// Opens (creating if needed) and migrates the spool, and starts the
    /// writer thread.
    pub fn open(config: &StoreConfig) -> Result<Sqlite, StoreError> {
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
        let reads = spawn_readers(&path, config.sync)?;
        let stopped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        spawn_checkpointer(open_connection(&path, config.sync)?, stopped.clone())?;
        let tx = writer::spawn(conn, config.max_pending, stopped)?;
        Ok(Sqlite { tx, reads, path })
    }

    /// Queues a write for the writer thread; answered after its commit.
    fn call<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> writer::Op,
    ) -> Answer<'static, T> {
        let (reply, rx) = oneshot::channel();
        match self.tx.send(make(reply)) {
            Ok(()) => Answer::queued(rx, || StoreError::Closed),
            Err(_) => Answer::ready(Err(StoreError::Closed)),
        }
    }

    /// Runs a read query on a reader thread, off the async threads.
    fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Answer<'static, T> {
        let (reply, rx) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = reply.send(f(conn));
        });
        match self.reads.send(job) {
            // A read that panicked drops its reply.
            Ok(()) => Answer::queued(rx, || StoreError::Unavailable("a spool read failed".into())),
            Err(_) => Answer::ready(Err(StoreError::Closed)),
        }
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
