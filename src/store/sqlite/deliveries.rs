//! Deliveries on SQLite, inside the writer's transaction: outcomes and
//! their attempts, replays, holds and digests, an alert's conversation
//! root, actions and silences. PostgreSQL's twin is `postgres::deliveries`.

use crate::store::{
    now_ms, ActionRecord, Completion, DueDelivery, NewDigest, Selector, Silence, StoreError,
    ThreadRoot,
};
use rusqlite::{params, Transaction};

pub(super) fn record_attempt(
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

pub(super) fn complete(
    tx: &Transaction,
    c: Completion,
    pending: &mut u64,
) -> Result<(), StoreError> {
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

pub(super) fn replay(
    tx: &Transaction,
    s: Selector,
    pending: &mut u64,
) -> Result<usize, StoreError> {
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

pub(super) fn orphan(
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

/// Puts a delivery aside for the next digest (it stays pending work).
pub(super) fn hold(tx: &Transaction, ids: &[i64]) -> Result<(), StoreError> {
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
pub(super) fn digest(
    tx: &Transaction,
    d: NewDigest,
    pending: &mut u64,
) -> Result<DueDelivery, StoreError> {
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

pub(super) fn set_thread(
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

pub(super) fn start_action(
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

pub(super) fn finish_action(
    tx: &Transaction,
    id: i64,
    result: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    tx.prepare_cached("UPDATE actions SET result = ?2, detail = ?3 WHERE id = ?1")?
        .execute(params![id, result, detail])?;
    Ok(())
}

pub(super) fn add_silence(tx: &Transaction, s: &Silence) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO silences (created_at, ends_at, matcher, comment, author) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![s.created_at, s.ends_at, s.matcher, s.comment, s.author])?;
    Ok(tx.last_insert_rowid())
}

/// Ends silence `id` at `now`; false if it was not active.
pub(super) fn expire_silence(tx: &Transaction, id: i64, now: i64) -> Result<bool, StoreError> {
    let n = tx
        .prepare_cached(
            "UPDATE silences SET expired_at = ?2 WHERE id = ?1 AND expired_at IS NULL AND ends_at > ?2",
        )?
        .execute(params![id, now])?;
    Ok(n > 0)
}
