//! The writer thread: the only connection that writes, with group commit.

use super::ops::*;
use super::retries::RecentBodies;
use super::{now_ms, reads::DueDelivery, ClockCheck, DeliveryState, StoreError, MAX_BATCH};
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use tokio::sync::oneshot;

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

fn apply(
    tx: &Transaction,
    op: Op,
    pending: &mut u64,
    max_pending: u64,
    recent: &mut RecentBodies,
) -> Finish {
    match op {
        Op::Insert(e, r) => finish(r, insert(tx, e, pending, max_pending, recent)),
        Op::Route(routing, r) => finish(r, route(tx, routing, pending)),
        Op::Complete(c, r) => finish(r, complete(tx, c, pending)),
        Op::Replay(s, r) => finish(r, replay(tx, s, pending)),
        Op::Orphan(dest, reason, r) => finish(r, orphan(tx, &dest, &reason, pending)),
        Op::Prune(before, r) => finish(r, prune(tx, before)),
        Op::ClockSeen(hook, seen, r) => finish(r, clock_seen(tx, &hook, seen)),
        Op::ClockCheck(hook, now, within, r) => finish(r, clock_check(tx, &hook, now, within)),
        Op::Hold(ids, r) => finish(r, hold(tx, &ids)),
        Op::Digest(d, r) => finish(r, digest(tx, d, pending)),
        Op::SetThread(dest, alert, root, r) => finish(r, set_thread(tx, &dest, &alert, &root)),
        Op::StartAction(a, nonce, r) => finish(r, start_action(tx, &a, nonce.as_deref())),
        Op::AddSilence(s, r) => finish(
            r,
            tx.prepare_cached(
                "INSERT INTO silences (created_at, ends_at, matcher, comment, author) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut st| st.execute(params![s.created_at, s.ends_at, s.matcher, s.comment, s.author]))
            .map(|_| tx.last_insert_rowid())
            .map_err(StoreError::from),
        ),
        Op::ExpireSilence(id, now, r) => finish(
            r,
            tx.prepare_cached(
                "UPDATE silences SET expired_at = ?2 WHERE id = ?1 AND expired_at IS NULL AND ends_at > ?2",
            )
            .and_then(|mut st| st.execute(params![id, now]))
            .map(|n| n > 0)
            .map_err(StoreError::from),
        ),
        Op::PutTenant(t, change, r) => finish(r, put_tenant(tx, &t, &change)),
        Op::DeleteTenant(change, r) => finish(r, delete_tenant(tx, &change)),
        Op::ConsoleSalt(candidate, r) => finish(r, console_salt(tx, &candidate)),
        Op::EndConsoleSessions(r) => finish(
            r,
            tx.prepare_cached(
                "INSERT INTO console_state (id, epoch) VALUES (1, 1)
                 ON CONFLICT (id) DO UPDATE SET epoch = console_state.epoch + 1 RETURNING epoch",
            )
            .and_then(|mut st| st.query_row([], |row| row.get(0)))
            .map_err(StoreError::from),
        ),
        Op::FinishAction(id, result, detail, r) => finish(
            r,
            tx.prepare_cached("UPDATE actions SET result = ?2, detail = ?3 WHERE id = ?1")
                .and_then(|mut s| s.execute(params![id, result, detail]))
                .map(|_| ())
                .map_err(StoreError::from),
        ),
    }
}

fn record_change(tx: &Transaction, c: &TenantChange) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO tenant_changes (at, tenant, action, client) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![now_ms(), c.tenant, c.action, c.client])?;
    Ok(())
}

fn put_tenant(tx: &Transaction, t: &StoredTenant, c: &TenantChange) -> Result<bool, StoreError> {
    let now = now_ms();
    let existed = tx
        .prepare_cached("SELECT 1 FROM tenants WHERE name = ?1")?
        .query_row([&t.name], |_| Ok(()))
        .optional()?
        .is_some();
    tx.prepare_cached(
        "INSERT INTO tenants (name, summary, sealed, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4)
         ON CONFLICT (name) DO UPDATE SET summary = excluded.summary, sealed = excluded.sealed, updated_at = excluded.updated_at",
    )?
    .execute(params![t.name, t.summary, t.sealed, now])?;
    let action = if existed { "replaced" } else { "created" };
    record_change(
        tx,
        &TenantChange {
            action: action.into(),
            ..c.clone()
        },
    )?;
    Ok(!existed)
}

fn delete_tenant(tx: &Transaction, c: &TenantChange) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached("DELETE FROM tenants WHERE name = ?1")?
        .execute([&c.tenant])?;
    if n > 0 {
        record_change(tx, c)?;
    }
    Ok(n > 0)
}

fn console_salt(tx: &Transaction, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
    Ok(tx
        .prepare_cached(
            "INSERT INTO console_state (id, salt) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET salt = COALESCE(console_state.salt, excluded.salt)
             RETURNING salt",
        )?
        .query_row([candidate], |row| row.get(0))?)
}

fn start_action(
    tx: &Transaction,
    a: &ActionRecord,
    nonce: Option<&str>,
) -> Result<Option<i64>, StoreError> {
    let n = tx
        .prepare_cached(
            "INSERT INTO actions (at, alert, action, destination, client, result, detail, nonce)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (nonce) DO NOTHING",
        )?
        .execute(params![
            a.at,
            a.alert,
            a.action,
            a.destination,
            a.client,
            a.result,
            a.detail,
            nonce
        ])?;
    Ok((n > 0).then(|| tx.last_insert_rowid()))
}

fn set_thread(
    tx: &Transaction,
    destination: &str,
    alert: &str,
    root: &ThreadRoot,
) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO threads (destination, alert, channel, ts, status, urgency, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (destination, alert) DO UPDATE SET channel = excluded.channel, ts = excluded.ts,
             status = excluded.status, urgency = excluded.urgency, updated_at = excluded.updated_at",
    )?
    .execute(params![
        destination,
        alert,
        root.channel,
        root.ts,
        root.status,
        root.urgency,
        now_ms()
    ])?;
    Ok(())
}

fn insert(
    tx: &Transaction,
    e: NewEvent,
    pending: &mut u64,
    max_pending: u64,
    recent: &mut RecentBodies,
) -> Result<Inserted, StoreError> {
    let now = now_ms();
    recent.ready(tx, e.dedup_window_ms, now)?;
    let fp = recent.fingerprint(&e.hook, &e.sha256);
    if let Some(id) = recent.candidate(fp) {
        let same: Option<i64> = tx
            .prepare_cached(
                "SELECT 1 FROM events WHERE id = ?1 AND hook = ?2 AND body_sha256 = ?3 AND received_at >= ?4",
            )?
            .query_row(
                params![id, e.hook, &e.sha256[..], now - e.dedup_window_ms],
                |r| r.get(0),
            )
            .optional()?;
        if same.is_some() {
            // Counted for the console's journey ("sent 3 times").
            tx.prepare_cached("UPDATE events SET retries = retries + 1 WHERE id = ?1")?
                .execute([id])?;
            return Ok(Inserted {
                id,
                duplicate: true,
            });
        }
    }
    if *pending >= max_pending {
        return Err(StoreError::Full(*pending));
    }
    tx.prepare_cached(
        "INSERT INTO events (hook, received_at, body_sha256, body, kind, action, short_id, alert_uuid, state, client, auth)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'received', ?9, ?10)",
    )?
    .execute(params![
        e.hook,
        now,
        &e.sha256[..],
        e.body,
        e.kind,
        e.action,
        e.short_id,
        e.alert_uuid,
        e.client,
        e.auth
    ])?;
    *pending += 1;
    let id = tx.last_insert_rowid();
    recent.remember(fp, id, now);
    Ok(Inserted {
        id,
        duplicate: false,
    })
}

/// `None` when the event was already routed (processed twice: nothing new).
fn route(
    tx: &Transaction,
    r: Routing,
    pending: &mut u64,
) -> Result<Option<Vec<DueDelivery>>, StoreError> {
    let now = now_ms();
    type Row = (String, i64, String, Option<String>, String, String);
    let (state, received_at, hook, short_id, kind, action): Row = tx
        .prepare_cached(
            "SELECT state, received_at, hook, short_id, kind, action FROM events WHERE id = ?1",
        )?
        .query_row([r.event_id], |row| {
            Ok((
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
            ))
        })
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("event {}", r.event_id)))?;
    if state != "received" {
        // Already routed: creating deliveries again would send twice.
        return Ok(None);
    }
    let routes = r.routes_json();
    tx.prepare_cached(
        "UPDATE events SET state = 'routed', enrichment = ?2, alert_json = ?3, routes = ?4, routed_at = ?5
         WHERE id = ?1",
    )?
    .execute(params![r.event_id, r.enrichment, r.alert_json, routes, now])?;
    tx.prepare_cached(
        "INSERT INTO event_facts (id, received_at, hook, kind, action, short_id, title, targets)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        r.event_id,
        received_at,
        hook,
        kind,
        action,
        short_id,
        r.title,
        r.deliveries.len() as i64
    ])?;
    *pending = pending.saturating_sub(1);

    let mut created = Vec::with_capacity(r.deliveries.len());
    for d in r.deliveries {
        let mut state = DeliveryState::Pending;
        let mut note: Option<String> = None;
        if let Some(reason) = &d.failed {
            state = DeliveryState::Dead;
            note = Some(reason.clone());
        } else if let Some(why) = &d.muted {
            state = DeliveryState::Muted;
            note = Some(why.clone());
        } else if let Some((key, window)) = &d.dedup {
            let until: Option<i64> = tx
                .prepare_cached(
                    "SELECT until FROM route_dedup WHERE route = ?1 AND destination = ?2 AND key = ?3",
                )?
                .query_row(params![d.route, d.destination, key], |row| row.get(0))
                .optional()?;
            if until.is_some_and(|u| u > now) {
                state = DeliveryState::Skipped;
                note = Some(format!(
                    "already sent within the route's dedup window ({key})"
                ));
            } else {
                tx.prepare_cached(
                    "INSERT INTO route_dedup (route, destination, key, until) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (route, destination, key) DO UPDATE SET until = excluded.until",
                )?
                .execute(params![d.route, d.destination, key, now + window])?;
            }
        }
        if let Some(first) = &d.first {
            // Sent before this routing was recorded: stored with its
            // first attempt, in one write.
            let (status, error, duration_ms) = first.parts();
            let state = first.state();
            tx.prepare_cached(
                "INSERT INTO deliveries (event_id, route, destination, payload, state, attempts, created_at, next_attempt_at, updated_at,
                                         last_status, last_error, summary, thread_key, thread)
                 VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            )?
            .execute(params![
                r.event_id, d.route, d.destination, d.payload, state.as_str(), received_at,
                first.next_attempt_at().unwrap_or(now), now, status, error, d.summary, d.thread_key, first.thread()
            ])?;
            record_attempt(
                tx,
                tx.last_insert_rowid(),
                status,
                error,
                duration_ms,
                first.outcome(),
            )?;
            if state == DeliveryState::Pending {
                *pending += 1;
            }
            continue;
        }
        tx.prepare_cached(
            "INSERT INTO deliveries (event_id, route, destination, payload, state, created_at, next_attempt_at, updated_at, last_error, summary, thread_key)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![
            r.event_id, d.route, d.destination, d.payload, state.as_str(), received_at,
            d.in_flight_until.unwrap_or(now), now, note, d.summary, d.thread_key
        ])?;
        if state == DeliveryState::Pending {
            *pending += 1;
            created.push(DueDelivery {
                id: tx.last_insert_rowid(),
                event_id: r.event_id,
                destination: d.destination,
                payload: d.payload,
                attempts: 0,
                created_at: received_at,
                accepted_at: received_at,
                hook: hook.clone(),
                short_id: short_id.clone(),
                digest: false,
                thread_key: d.thread_key,
            });
        }
    }
    Ok(Some(created))
}

fn record_attempt(
    tx: &Transaction,
    id: i64,
    status: Option<u16>,
    error: Option<&str>,
    duration_ms: i64,
    outcome: &str,
) -> Result<(), StoreError> {
    let now = now_ms();
    tx.prepare_cached(
        "INSERT INTO attempts (delivery_id, at, status, error, duration_ms, destination, outcome, age_ms)
         SELECT ?1, ?2, ?3, ?4, ?5, destination, ?6, ?2 - created_at FROM deliveries WHERE id = ?1",
    )?
    .execute(params![id, now, status, error, duration_ms, outcome])?;
    Ok(())
}

fn complete(tx: &Transaction, c: Completion, pending: &mut u64) -> Result<(), StoreError> {
    let now = now_ms();
    let changed = match &c {
        Completion::Delivered {
            id,
            status,
            duration_ms,
            thread,
        } => {
            record_attempt(tx, *id, Some(*status), None, *duration_ms, "delivered")?;
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'delivered', attempts = attempts + 1, updated_at = ?2,
                 last_status = ?3, last_error = NULL, thread = ?4 WHERE id = ?1 AND state = 'pending'",
            )?
            .execute(params![id, now, status, thread])?
        }
        Completion::Retry {
            id,
            status,
            error,
            next_attempt_at,
            duration_ms,
        } => {
            record_attempt(tx, *id, *status, Some(error), *duration_ms, "retry")?;
            tx.prepare_cached(
                "UPDATE deliveries SET attempts = attempts + 1, updated_at = ?2, next_attempt_at = ?3,
                 last_status = ?4, last_error = ?5 WHERE id = ?1 AND state = 'pending'",
            )?
            .execute(params![id, now, next_attempt_at, status, error])?;
            0
        }
        Completion::Dead {
            id,
            status,
            error,
            duration_ms,
        } => {
            record_attempt(tx, *id, *status, Some(error), *duration_ms, "dead")?;
            tx.prepare_cached(
                "UPDATE deliveries SET state = 'dead', attempts = attempts + 1, updated_at = ?2,
                 last_status = ?3, last_error = ?4 WHERE id = ?1 AND state = 'pending'",
            )?
            .execute(params![id, now, status, error])?
        }
    };
    *pending = pending.saturating_sub(changed as u64);
    Ok(())
}

fn replay(tx: &Transaction, s: Selector, pending: &mut u64) -> Result<usize, StoreError> {
    let now = now_ms();
    // A replayed delivery gets a fresh max_age from now.
    let sql_base = "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = ?1, created_at = ?1, updated_at = ?1 WHERE state = 'dead'";
    let n = match s {
        Selector::Ids(ids) => {
            let mut n = 0;
            let mut stmt = tx.prepare_cached(&format!("{sql_base} AND id = ?2"))?;
            for id in ids {
                n += stmt.execute(params![now, id])?;
            }
            n
        }
        Selector::All { destination: None } => tx.execute(sql_base, params![now])?,
        Selector::All {
            destination: Some(d),
        } => tx.execute(&format!("{sql_base} AND destination = ?2"), params![now, d])?,
    };
    *pending += n as u64;
    Ok(n)
}

fn orphan(
    tx: &Transaction,
    destination: &str,
    reason: &str,
    pending: &mut u64,
) -> Result<usize, StoreError> {
    let n = tx.execute(
        "UPDATE deliveries SET state = 'dead', updated_at = ?2, last_error = ?3
         WHERE state = 'pending' AND destination = ?1",
        params![destination, now_ms(), reason],
    )?;
    *pending = pending.saturating_sub(n as u64);
    Ok(n)
}

fn prune(tx: &Transaction, before: i64) -> Result<usize, StoreError> {
    let doomed = "SELECT id FROM events WHERE received_at < ?1 AND state = 'routed'
                  AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id AND d.state IN ('pending', 'dead'))";
    tx.execute(
        &format!("DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id IN ({doomed}))"),
        [before],
    )?;
    tx.execute(
        &format!("DELETE FROM deliveries WHERE event_id IN ({doomed})"),
        [before],
    )?;
    tx.execute(
        &format!("DELETE FROM event_facts WHERE id IN ({doomed})"),
        [before],
    )?;
    let n = tx.execute(
        &format!("DELETE FROM events WHERE id IN ({doomed})"),
        [before],
    )?;
    tx.execute("DELETE FROM route_dedup WHERE until < ?1", [now_ms()])?;
    // A conversation quiet for the whole retention starts over with a new
    // root should its alert come back.
    tx.execute("DELETE FROM threads WHERE updated_at < ?1", [before])?;
    Ok(n)
}

fn read_clock(tx: &Transaction, hook: &str) -> Result<Option<HookClock>, StoreError> {
    Ok(tx
        .prepare_cached("SELECT last_event_at, silent_since FROM hook_clocks WHERE hook = ?1")?
        .query_row([hook], |r| {
            Ok(HookClock {
                hook: hook.to_owned(),
                last_event_at: r.get(0)?,
                silent_since: r.get(1)?,
            })
        })
        .optional()?)
}

fn write_clock(tx: &Transaction, c: &HookClock) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO hook_clocks (hook, last_event_at, silent_since) VALUES (?1, ?2, ?3)
         ON CONFLICT (hook) DO UPDATE SET last_event_at = excluded.last_event_at, silent_since = excluded.silent_since",
    )?
    .execute(params![c.hook, c.last_event_at, c.silent_since])?;
    Ok(())
}

/// A real event was seen at `seen`; returns the previous last event time
/// when this ends a silence.
fn clock_seen(tx: &Transaction, hook: &str, seen: i64) -> Result<Option<i64>, StoreError> {
    let old = read_clock(tx, hook)?;
    if old.as_ref().is_some_and(|c| c.last_event_at >= seen) {
        return Ok(None);
    }
    write_clock(
        tx,
        &HookClock {
            hook: hook.to_owned(),
            last_event_at: seen,
            silent_since: None,
        },
    )?;
    Ok(old
        .filter(|c| c.silent_since.is_some())
        .map(|c| c.last_event_at))
}

fn clock_check(
    tx: &Transaction,
    hook: &str,
    now: i64,
    within_ms: i64,
) -> Result<ClockCheck, StoreError> {
    let Some(mut clock) = read_clock(tx, hook)? else {
        // Never heard from: the clock starts when the hook is first watched.
        let clock = HookClock {
            hook: hook.to_owned(),
            last_event_at: now,
            silent_since: None,
        };
        write_clock(tx, &clock)?;
        return Ok(ClockCheck {
            clock,
            went_silent: false,
        });
    };
    let went_silent = clock.silent_since.is_none() && now - clock.last_event_at >= within_ms;
    if went_silent {
        clock.silent_since = Some(now);
        write_clock(tx, &clock)?;
    }
    Ok(ClockCheck { clock, went_silent })
}

/// Puts a delivery aside for the next digest (it stays pending work).
fn hold(tx: &Transaction, ids: &[i64]) -> Result<(), StoreError> {
    let now = now_ms();
    let mut stmt = tx.prepare_cached(
        "UPDATE deliveries SET state = 'held', updated_at = ?2 WHERE id = ?1 AND state = 'pending'",
    )?;
    for id in ids {
        stmt.execute(params![id, now])?;
    }
    Ok(())
}

/// Creates the digest delivery (under a synthetic event) and marks the held
/// deliveries it covers as `digested`, in one commit.
fn digest(tx: &Transaction, d: NewDigest, pending: &mut u64) -> Result<DueDelivery, StoreError> {
    let now = now_ms();
    let (body, sha) = d.event(now);
    tx.prepare_cached(
        "INSERT INTO events (hook, received_at, body_sha256, body, kind, action, state, enrichment, routes, routed_at)
         VALUES ('-', ?1, ?2, ?3, 'hookrelay.digest', 'created', 'routed', 'n/a', '[]', ?1)",
    )?
    .execute(params![now, &sha[..], body.as_bytes()])?;
    let event_id = tx.last_insert_rowid();
    tx.prepare_cached(
        "INSERT INTO event_facts (id, received_at, hook, kind, action, title, targets)
         VALUES (?1, ?2, '-', 'hookrelay.digest', 'created', ?3, 1)",
    )?
    .execute(params![event_id, now, d.title()])?;
    tx.prepare_cached(
        "INSERT INTO deliveries (event_id, route, destination, payload, state, created_at, next_attempt_at, updated_at, digest)
         VALUES (?1, 'digest', ?2, ?3, 'pending', ?4, ?4, ?4, 1)",
    )?
    .execute(params![event_id, d.destination, d.payload, now])?;
    let id = tx.last_insert_rowid();
    let note = format!("sent in digest delivery {id}");
    let mut covered = 0u64;
    let mut stmt = tx.prepare_cached(
        "UPDATE deliveries SET state = 'digested', updated_at = ?2, last_error = ?3 WHERE id = ?1 AND state = 'held'",
    )?;
    for held in &d.held {
        covered += stmt.execute(params![held, now, note])? as u64;
    }
    *pending = pending.saturating_sub(covered) + 1;
    Ok(d.due(id, event_id, now))
}
