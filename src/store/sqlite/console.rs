//! The console's reads on SQLite (the types and what both backends share
//! are in `store::console`).

use crate::store::console::*;
use crate::store::reads::DeadLetter;
use crate::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

/// A page of the events list: routed events from `event_facts`, merged
/// with those not routed yet when the filter allows.
pub fn events_page(conn: &Connection, f: &EventFilter) -> Result<EventPage, StoreError> {
    let walk = Walk::of(f);
    let mut rows = routed(conn, f, &walk)?;
    if f.wants_unrouted() {
        rows = merge(rows, unrouted(conn, f, &walk)?, walk.backwards, walk.limit);
    }
    Ok(assemble(rows, f.page, walk.limit))
}

/// Routed events matching `f`, in walking order, each with its
/// deliveries' counts per state.
fn routed(conn: &Connection, f: &EventFilter, walk: &Walk) -> Result<Vec<EventRow>, StoreError> {
    let state = f.state.map(ListState::sql).unwrap_or("1");
    let digest = "(?11 IS NULL OR f.id IN (SELECT event_id FROM deliveries
                   WHERE destination = ?11 AND id BETWEEN ?12 AND ?13 AND state = 'digested'))";
    let sql = format!(
        "SELECT f.id, f.received_at, f.hook, f.kind, f.action, f.short_id, f.title, f.targets
         FROM event_facts f
         WHERE f.id > ?1 AND f.id < ?2
           AND (?3 IS NULL OR f.hook = ?3)
           AND (?4 IS NULL OR f.short_id = ?4 OR f.title LIKE ?5 ESCAPE '\\')
           AND (?6 IS NULL OR f.kind = ?6) AND (?7 IS NULL OR f.action = ?7)
           AND (?8 IS NULL OR f.received_at >= ?8) AND (?9 IS NULL OR f.received_at < ?9)
           AND {state} AND {digest}
         ORDER BY f.id {} LIMIT ?10",
        walk.order()
    );
    let pattern = f.text.as_deref().map(like_pattern);
    let (dd, d1, d2) = match &f.digest {
        Some(d) => (Some(d.destination.as_str()), d.first, d.last),
        None => (None, 0, 0),
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut targets: Vec<i64> = Vec::new();
    let mut rows: Vec<EventRow> = stmt
        .query_map(
            params![
                walk.low,
                walk.high,
                f.hook,
                f.text,
                pattern,
                f.kind,
                f.action,
                f.from,
                f.to,
                walk.fetch(),
                dd,
                d1,
                d2
            ],
            |r| {
                Ok((
                    EventRow {
                        id: r.get(0)?,
                        received_at: r.get(1)?,
                        hook: r.get(2)?,
                        kind: r.get(3)?,
                        action: r.get(4)?,
                        short_id: r.get(5)?,
                        title: r.get(6)?,
                        state: "received",
                        deliveries: Vec::new(),
                    },
                    r.get::<_, i64>(7)?,
                ))
            },
        )?
        .map(|x| {
            x.map(|(row, t)| {
                targets.push(t);
                row
            })
        })
        .collect::<Result<_, _>>()?;
    let mut counts = conn.prepare_cached(
        "SELECT state, COUNT(*) FROM deliveries WHERE event_id = ?1 GROUP BY state ORDER BY state",
    )?;
    for (row, t) in rows.iter_mut().zip(targets) {
        row.deliveries = counts
            .query_map([row.id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        row.state = row_state(Some(t), &row.deliveries);
    }
    Ok(rows)
}

/// Events not routed yet matching the filters they can answer, in
/// walking order.
fn unrouted(conn: &Connection, f: &EventFilter, walk: &Walk) -> Result<Vec<EventRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT id, received_at, hook, kind, action, short_id FROM events
         WHERE state = 'received' AND id > ?1 AND id < ?2
           AND (?3 IS NULL OR hook = ?3) AND (?4 IS NULL OR short_id = ?4)
           AND (?5 IS NULL OR kind = ?5) AND (?6 IS NULL OR action = ?6)
           AND (?7 IS NULL OR received_at >= ?7) AND (?8 IS NULL OR received_at < ?8)
         ORDER BY id {} LIMIT ?9",
        walk.order()
    ))?;
    let rows = stmt
        .query_map(
            params![
                walk.low,
                walk.high,
                f.hook,
                f.text,
                f.kind,
                f.action,
                f.from,
                f.to,
                walk.fetch()
            ],
            |r| {
                Ok(EventRow {
                    id: r.get(0)?,
                    received_at: r.get(1)?,
                    hook: r.get(2)?,
                    kind: r.get(3)?,
                    action: r.get(4)?,
                    short_id: r.get(5)?,
                    title: None,
                    state: "received",
                    deliveries: Vec::new(),
                })
            },
        )?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}

/// The first rowid of `table` whose `column` (which grows with the rowid:
/// both are assigned by the single writer) is at or after `t`.
fn first_id_since(conn: &Connection, table: &str, column: &str, t: i64) -> Result<i64, StoreError> {
    let (mut lo, mut hi): (i64, i64) = conn
        .prepare_cached(&format!(
            "SELECT IFNULL(MIN(rowid), 0), IFNULL(MAX(rowid), 0) FROM {table}"
        ))?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    hi += 1;
    let mut probe = conn.prepare_cached(&format!(
        "SELECT {column} FROM {table} WHERE rowid >= ?1 ORDER BY rowid LIMIT 1"
    ))?;
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let at: Option<i64> = probe.query_row([mid], |r| r.get(0)).optional()?;
        match at {
            Some(at) if at < t => lo = mid + 1,
            _ => hi = mid,
        }
    }
    Ok(lo)
}

/// The overview's numbers: per hook since `hour`, per destination since
/// `hour`, per minute since `day`. Each table is read once, counted by
/// the database (by hook or destination, outcome and minute); the median
/// latency is that of each destination's latest deliveries.
pub fn activity(
    conn: &Connection,
    hooks: &[String],
    destinations: &[String],
    hour: i64,
    day: i64,
) -> Result<Activity, StoreError> {
    let mut out = Activity::default();
    let from = first_id_since(conn, "event_facts", "received_at", day)?;
    let rows = conn
        .prepare_cached(
            "SELECT hook, received_at / 60000, COUNT(*), SUM(received_at >= ?3), MAX(received_at)
             FROM event_facts WHERE id >= ?1 AND received_at >= ?2 GROUP BY 1, 2",
        )?
        .query_map(params![from, day, hour], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    count_events(&mut out, rows);
    let mut last = conn.prepare_cached(
        "SELECT received_at FROM event_facts WHERE hook = ?1 ORDER BY id DESC LIMIT 1",
    )?;
    for hook in hooks {
        if !out.hooks.iter().any(|h| &h.hook == hook) {
            out.hooks.push(HookActivity {
                hook: hook.clone(),
                last_at: last.query_row([hook], |r| r.get(0)).optional()?,
                recent: 0,
            });
        }
    }
    let from = first_id_since(conn, "attempts", "at", day)?;
    let rows = conn
        .prepare_cached(
            "SELECT destination, outcome, at / 60000, COUNT(*), SUM(at >= ?3)
             FROM attempts WHERE rowid >= ?1 AND at >= ?2 AND destination IS NOT NULL GROUP BY 1, 2, 3",
        )?
        .query_map(params![from, day, hour], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<Vec<_>, _>>()?;
    count_attempts(&mut out, rows);
    let from = first_id_since(conn, "attempts", "at", hour)?;
    let mut latest = conn.prepare_cached(
        "SELECT age_ms FROM attempts WHERE rowid >= ?1 AND destination = ?2 AND outcome = 'delivered'
         ORDER BY rowid DESC LIMIT ?3",
    )?;
    for name in destinations {
        let ages: Vec<i64> = latest
            .query_map(params![from, name, LATENCY_SAMPLE], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        if !ages.is_empty() {
            entry(&mut out.destinations, name.clone()).latencies = ages;
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT d.destination, COUNT(*) FROM deliveries d WHERE d.state = 'dead' GROUP BY d.destination",
    )?;
    for r in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
        let (destination, n) = r?;
        entry(&mut out.destinations, destination).dead = n;
    }
    for d in &mut out.destinations {
        d.latencies.sort_unstable();
    }
    Ok(out)
}

pub fn dead_page(conn: &Connection, f: &DeadFilter) -> Result<Vec<DeadLetter>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.event_id, d.destination, e.kind, e.action, e.short_id, d.attempts, d.last_status, d.last_error, d.updated_at, e.hook
         FROM deliveries d JOIN events e ON e.id = d.event_id
         WHERE d.state = 'dead' AND (?1 IS NULL OR d.destination = ?1) AND (?2 IS NULL OR e.hook = ?2)
           AND (?3 IS NULL OR e.short_id = ?3) AND d.id < ?4
         ORDER BY d.id DESC LIMIT ?5",
    )?;
    let rows = stmt.query_map(
        params![
            f.destination,
            f.hook,
            f.short_id,
            f.before.unwrap_or(i64::MAX),
            f.limit as i64
        ],
        super::reads::dead_letter,
    )?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The console's session-key salt: the stored one, else `candidate`,
/// stored now (in the writer's transaction).
pub(super) fn salt(tx: &Transaction, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
    Ok(tx
        .prepare_cached(
            "INSERT INTO console_state (id, salt) VALUES (1, ?1)
             ON CONFLICT (id) DO UPDATE SET salt = COALESCE(console_state.salt, excluded.salt)
             RETURNING salt",
        )?
        .query_row([candidate], |row| row.get(0))?)
}

/// Bumps the session epoch (a logout); the new one.
pub(super) fn end_sessions(tx: &Transaction) -> Result<i64, StoreError> {
    Ok(tx
        .prepare_cached(
            "INSERT INTO console_state (id, epoch) VALUES (1, 1)
             ON CONFLICT (id) DO UPDATE SET epoch = console_state.epoch + 1 RETURNING epoch",
        )?
        .query_row([], |row| row.get(0))?)
}
