//! The writer thread: the only connection that writes, with group commit.
//! What each operation writes is in the file of its concern (`events`,
//! `deliveries`, `clocks`, `tenants`, `console`); this file queues them,
//! applies a batch in one transaction and answers after its commit.

use super::retries::RecentBodies;
use super::{clocks, console, deliveries, events, tenants};
use crate::store::ops::*;
use crate::store::{ClockCheck, DueDelivery, StoreError};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use tokio::sync::oneshot;

/// Operations per commit at most.
const MAX_BATCH: usize = 512;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Op {
    Insert(NewEvent, Reply<Inserted>),
    Route(Routing, Reply<Option<Vec<DueDelivery>>>),
    Complete(Completion, Reply<()>),
    Replay(Selector, Reply<usize>),
    Orphan(String, String, Reply<usize>),
    Prune(i64, Reply<usize>),
    ClockSeen(String, i64, Reply<Option<i64>>),
    ClockCheck(String, i64, i64, Reply<ClockCheck>),
    Hold(Vec<i64>, Reply<()>),
    Digest(NewDigest, Reply<DueDelivery>),
    /// (destination, alert, root): records an alert's root message.
    SetThread(String, String, ThreadRoot, Reply<()>),
    StartAction(ActionRecord, Option<String>, Reply<Option<i64>>),
    FinishAction(i64, String, Option<String>, Reply<()>),
    AddSilence(Silence, Reply<i64>),
    ExpireSilence(i64, i64, Reply<bool>),
    /// Creates or replaces a tenant; whether it was new.
    PutTenant(StoredTenant, TenantChange, Reply<bool>),
    /// Deletes a tenant; whether it existed.
    DeleteTenant(TenantChange, Reply<bool>),
    /// The console's session-key salt: the stored one, else this one,
    /// stored.
    ConsoleSalt(Vec<u8>, Reply<Vec<u8>>),
    /// Bumps the console's session epoch; the new one.
    EndConsoleSessions(Reply<i64>),
}

/// State the writer keeps between batches.
struct Writer {
    conn: Connection,
    /// Events not yet routed + pending deliveries, for `max_pending`.
    pending: u64,
    max_pending: u64,
    recent: RecentBodies,
}

/// A reply to send once the batch's commit is known.
type Finish = Box<dyn FnOnce(Option<&StoreError>) + Send>;

fn finish<T: Send + 'static>(reply: Reply<T>, result: Result<T, StoreError>) -> Finish {
    Box::new(move |commit_error| {
        let _ = reply.send(match (commit_error, result) {
            (Some(e), _) => Err(e.clone()),
            (None, r) => r,
        });
    })
}

pub(super) fn spawn(
    conn: Connection,
    max_pending: u64,
    stopped: Arc<AtomicBool>,
) -> Result<Sender<Op>, StoreError> {
    let mut writer = Writer {
        conn,
        pending: 0,
        max_pending,
        recent: RecentBodies::default(),
    };
    writer.recount()?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("hookrelay-spool".into())
        .spawn(move || {
            writer.run(rx);
            stopped.store(true, Ordering::Relaxed);
        })
        .map_err(|e| StoreError::Open(format!("cannot start the spool writer thread: {e}")))?;
    Ok(tx)
}

impl Writer {
    fn recount(&mut self) -> Result<(), StoreError> {
        let n: i64 = self.conn.query_row(
            "SELECT (SELECT COUNT(*) FROM events WHERE state = 'received')
                  + (SELECT COUNT(*) FROM deliveries WHERE state = 'pending')",
            [],
            |r| r.get(0),
        )?;
        self.pending = n.max(0) as u64;
        Ok(())
    }

    fn run(mut self, rx: Receiver<Op>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        while let Ok(op) = rx.recv() {
            batch.push(op);
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(op) => batch.push(op),
                    Err(_) => break,
                }
            }
            self.apply_batch(&mut batch);
        }
        // Every handle is gone: flush the WAL into the main file.
        let _ = self.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE);");
    }

    fn apply_batch(&mut self, batch: &mut Vec<Op>) {
        let pending_before = self.pending;
        let mut finishes: Vec<Finish> = Vec::with_capacity(batch.len());
        // IMMEDIATE: take the write lock up front, so another writer (the CLI,
        // a daemon shutting down) makes this wait (busy_timeout) instead of
        // failing the upgrade of a read snapshot with SQLITE_BUSY.
        let commit_error = match self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
        {
            Err(e) => Some(StoreError::from(e)),
            Ok(tx) => {
                let mut pending = self.pending;
                for op in batch.drain(..) {
                    finishes.push(apply(
                        &tx,
                        op,
                        &mut pending,
                        self.max_pending,
                        &mut self.recent,
                    ));
                }
                match tx.commit() {
                    Ok(()) => {
                        self.pending = pending;
                        None
                    }
                    Err(e) => Some(StoreError::from(e)),
                }
            }
        };
        if let Some(e) = &commit_error {
            tracing::error!(
                message = "Spool commit failed; the affected requests were refused (503) and nothing was acknowledged.",
                error = %e
            );
            self.pending = pending_before;
        }
        // Ops that could not even start (BEGIN failed) still answer, with
        // the reason.
        if let Some(e) = &commit_error {
            for op in batch.drain(..) {
                fail(op, e.clone());
            }
        }
        for f in finishes {
            f(commit_error.as_ref());
        }
    }
}

fn fail(op: Op, e: StoreError) {
    match op {
        Op::Insert(_, r) => drop(r.send(Err(e))),
        Op::Route(_, r) => drop(r.send(Err(e))),
        Op::Complete(_, r) => drop(r.send(Err(e))),
        Op::Replay(_, r) => drop(r.send(Err(e))),
        Op::Orphan(_, _, r) => drop(r.send(Err(e))),
        Op::Prune(_, r) => drop(r.send(Err(e))),
        Op::ClockSeen(_, _, r) => drop(r.send(Err(e))),
        Op::ClockCheck(_, _, _, r) => drop(r.send(Err(e))),
        Op::Hold(_, r) => drop(r.send(Err(e))),
        Op::Digest(_, r) => drop(r.send(Err(e))),
        Op::SetThread(_, _, _, r) => drop(r.send(Err(e))),
        Op::StartAction(_, _, r) => drop(r.send(Err(e))),
        Op::FinishAction(_, _, _, r) => drop(r.send(Err(e))),
        Op::AddSilence(_, r) => drop(r.send(Err(e))),
        Op::ExpireSilence(_, _, r) => drop(r.send(Err(e))),
        Op::PutTenant(_, _, r) => drop(r.send(Err(e))),
        Op::DeleteTenant(_, r) => drop(r.send(Err(e))),
        Op::ConsoleSalt(_, r) => drop(r.send(Err(e))),
        Op::EndConsoleSessions(r) => drop(r.send(Err(e))),
    }
}

/// Applies one operation inside the batch's transaction; its answer waits
/// for the commit.
fn apply(
    tx: &Transaction,
    op: Op,
    pending: &mut u64,
    max_pending: u64,
    recent: &mut RecentBodies,
) -> Finish {
    match op {
        Op::Insert(e, r) => finish(r, events::insert(tx, e, pending, max_pending, recent)),
        Op::Route(routing, r) => finish(r, events::route(tx, routing, pending)),
        Op::Prune(before, r) => finish(r, events::prune(tx, before)),
        Op::Complete(c, r) => finish(r, deliveries::complete(tx, c, pending)),
        Op::Replay(s, r) => finish(r, deliveries::replay(tx, s, pending)),
        Op::Orphan(dest, reason, r) => finish(r, deliveries::orphan(tx, &dest, &reason, pending)),
        Op::Hold(ids, r) => finish(r, deliveries::hold(tx, &ids)),
        Op::Digest(d, r) => finish(r, deliveries::digest(tx, d, pending)),
        Op::SetThread(dest, alert, root, r) => {
            finish(r, deliveries::set_thread(tx, &dest, &alert, &root))
        }
        Op::StartAction(a, nonce, r) => {
            finish(r, deliveries::start_action(tx, &a, nonce.as_deref()))
        }
        Op::FinishAction(id, result, detail, r) => finish(
            r,
            deliveries::finish_action(tx, id, &result, detail.as_deref()),
        ),
        Op::AddSilence(s, r) => finish(r, deliveries::add_silence(tx, &s)),
        Op::ExpireSilence(id, now, r) => finish(r, deliveries::expire_silence(tx, id, now)),
        Op::ClockSeen(hook, seen, r) => finish(r, clocks::clock_seen(tx, &hook, seen)),
        Op::ClockCheck(hook, now, within, r) => {
            finish(r, clocks::clock_check(tx, &hook, now, within))
        }
        Op::PutTenant(t, change, r) => finish(r, tenants::put_tenant(tx, &t, &change)),
        Op::DeleteTenant(change, r) => finish(r, tenants::delete_tenant(tx, &change)),
        Op::ConsoleSalt(candidate, r) => finish(r, console::salt(tx, &candidate)),
        Op::EndConsoleSessions(r) => finish(r, console::end_sessions(tx)),
    }
}
