//! Events on SQLite, inside the writer's transaction: storing an accepted
//! webhook (a sender retry recognised by the record of recent bodies),
//! recording its routing and creating its deliveries, pruning finished
//! events. PostgreSQL's twin is `postgres::events`.

use super::deliveries::record_attempt;
use super::retries::RecentBodies;
use crate::store::{
    now_ms, Attempted, DeliveryState, DueDelivery, Inserted, NewDelivery, NewEvent, Routing,
    StoreError,
};
use rusqlite::{params, OptionalExtension, Transaction};

pub(super) fn insert(
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

/// What a routed event's deliveries carry from its row.
struct Accepted {
    received_at: i64,
    hook: String,
    short_id: Option<String>,
}

/// Records an event's routing and creates its deliveries. `None` when the
/// event was already routed (processed twice: nothing new).
pub(super) fn route(
    tx: &Transaction,
    r: Routing,
    pending: &mut u64,
) -> Result<Option<Vec<DueDelivery>>, StoreError> {
    let now = now_ms();
    let Some(event) = mark_routed(tx, &r, now)? else {
        return Ok(None);
    };
    *pending = pending.saturating_sub(1);
    let mut created = Vec::with_capacity(r.deliveries.len());
    for d in r.deliveries {
        let (state, note) = settle(tx, &d, now)?;
        if let Some(first) = &d.first {
            if insert_sent_first(tx, r.event_id, &d, first, event.received_at, now)?
                == DeliveryState::Pending
            {
                *pending += 1;
            }
            continue;
        }
        let id = insert_delivery(tx, r.event_id, &d, state, note, event.received_at, now)?;
        if state == DeliveryState::Pending {
            *pending += 1;
            created.push(DueDelivery {
                id,
                event_id: r.event_id,
                destination: d.destination,
                payload: d.payload,
                attempts: 0,
                created_at: event.received_at,
                accepted_at: event.received_at,
                hook: event.hook.clone(),
                short_id: event.short_id.clone(),
                digest: false,
                thread_key: d.thread_key,
            });
        }
    }
    Ok(Some(created))
}

/// Marks the event routed and writes its line of the console's list;
/// `None` when it was no longer `received` (routing it again would send
/// twice).
fn mark_routed(tx: &Transaction, r: &Routing, now: i64) -> Result<Option<Accepted>, StoreError> {
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
    Ok(Some(Accepted {
        received_at,
        hook,
        short_id,
    }))
}

/// The state a new delivery starts in and why: dead (not rendered), muted,
/// skipped (its route's dedup window, which this records when it sends),
/// else pending.
fn settle(
    tx: &Transaction,
    d: &NewDelivery,
    now: i64,
) -> Result<(DeliveryState, Option<String>), StoreError> {
    if let Some(reason) = &d.failed {
        return Ok((DeliveryState::Dead, Some(reason.clone())));
    }
    if let Some(why) = &d.muted {
        return Ok((DeliveryState::Muted, Some(why.clone())));
    }
    let Some((key, window)) = &d.dedup else {
        return Ok((DeliveryState::Pending, None));
    };
    let until: Option<i64> = tx
        .prepare_cached(
            "SELECT until FROM route_dedup WHERE route = ?1 AND destination = ?2 AND key = ?3",
        )?
        .query_row(params![d.route, d.destination, key], |row| row.get(0))
        .optional()?;
    if until.is_some_and(|u| u > now) {
        let note = format!("already sent within the route's dedup window ({key})");
        return Ok((DeliveryState::Skipped, Some(note)));
    }
    tx.prepare_cached(
        "INSERT INTO route_dedup (route, destination, key, until) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (route, destination, key) DO UPDATE SET until = excluded.until",
    )?
    .execute(params![d.route, d.destination, key, now + window])?;
    Ok((DeliveryState::Pending, None))
}

/// Stores a delivery sent before this routing was recorded with its first
/// attempt, in one write (see `NewDelivery::first`); the state it is left
/// in.
fn insert_sent_first(
    tx: &Transaction,
    event_id: i64,
    d: &NewDelivery,
    first: &Attempted,
    received_at: i64,
    now: i64,
) -> Result<DeliveryState, StoreError> {
    let (status, error, duration_ms) = first.parts();
    let state = first.state();
    tx.prepare_cached(
        "INSERT INTO deliveries (event_id, route, destination, payload, state, attempts, created_at, next_attempt_at, updated_at,
                                 last_status, last_error, summary, thread_key, thread)
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )?
    .execute(params![
        event_id, d.route, d.destination, d.payload, state.as_str(), received_at,
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
    Ok(state)
}

/// Stores a delivery not attempted yet; its id.
fn insert_delivery(
    tx: &Transaction,
    event_id: i64,
    d: &NewDelivery,
    state: DeliveryState,
    note: Option<String>,
    received_at: i64,
    now: i64,
) -> Result<i64, StoreError> {
    tx.prepare_cached(
        "INSERT INTO deliveries (event_id, route, destination, payload, state, created_at, next_attempt_at, updated_at, last_error, summary, thread_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        event_id, d.route, d.destination, d.payload, state.as_str(), received_at,
        d.in_flight_until.unwrap_or(now), now, note, d.summary, d.thread_key
    ])?;
    Ok(tx.last_insert_rowid())
}

pub(super) fn prune(tx: &Transaction, before: i64) -> Result<usize, StoreError> {
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
