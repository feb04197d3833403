//! Read queries, run on a reader thread's connection (see `Sqlite::read`).

use crate::store::reads::*;
use crate::store::StoreError;
use crate::store::{
    ActionRecord, DeliveryState, HookClock, Silence, StoredTenant, ThreadRoot, UnroutedEvent,
};
use rusqlite::{params, Connection, OptionalExtension};

/// Pending deliveries to `destination` due at `now`, from `after_id` on.
pub fn due(
    conn: &Connection,
    destination: &str,
    now: i64,
    after_id: i64,
    limit: usize,
) -> Result<Vec<DueDelivery>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT d.id, d.event_id, d.payload, d.attempts, d.created_at, e.hook, e.short_id, d.digest, d.thread_key, e.received_at
         FROM deliveries d JOIN events e ON e.id = d.event_id
         WHERE d.state = 'pending' AND d.destination = ?1 AND d.id > ?2 AND d.next_attempt_at <= ?3
           AND {THREAD_IN_ORDER}
         ORDER BY d.id LIMIT ?4"
    ))?;
    let rows = stmt.query_map(params![destination, after_id, now, limit as i64], |r| {
        Ok(DueDelivery {
            id: r.get(0)?,
            event_id: r.get(1)?,
            destination: destination.to_owned(),
            payload: r.get(2)?,
            attempts: r.get(3)?,
            created_at: r.get(4)?,
            hook: r.get(5)?,
            short_id: r.get(6)?,
            digest: r.get::<_, i64>(7)? != 0,
            thread_key: r.get(8)?,
            accepted_at: r.get(9)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Whether pending delivery `id` may go out now as far as its
/// conversation's order goes (see [`THREAD_IN_ORDER`]).
pub fn thread_ready(conn: &Connection, id: i64) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT 1 FROM deliveries d WHERE d.id = ?1 AND d.state = 'pending' AND {THREAD_IN_ORDER}"
        ))?
        .query_row([id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// The root of `alert`'s conversation on `destination`.
pub fn thread_root(
    conn: &Connection,
    destination: &str,
    alert: &str,
) -> Result<Option<ThreadRoot>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT channel, ts, status, urgency FROM threads WHERE destination = ?1 AND alert = ?2",
        )?
        .query_row([destination, alert], |r| {
            Ok(ThreadRoot {
                channel: r.get(0)?,
                ts: r.get(1)?,
                status: r.get(2)?,
                urgency: r.get(3)?,
            })
        })
        .optional()?)
}

/// Events accepted but not yet routed, after `after_id`: (id, hook, body).
pub fn unrouted_after(
    conn: &Connection,
    after_id: i64,
    limit: usize,
) -> Result<Vec<UnroutedEvent>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, hook, body, received_at FROM events WHERE state = 'received' AND id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![after_id, limit as i64], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn queue_depths(conn: &Connection) -> Result<Vec<QueueDepth>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT destination, COUNT(*), MIN(created_at) FROM deliveries WHERE state = 'pending' GROUP BY destination",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(QueueDepth {
            destination: r.get(0)?,
            pending: r.get(1)?,
            oldest_created_at: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn dead_letters(
    conn: &Connection,
    destination: Option<&str>,
) -> Result<Vec<DeadLetter>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT d.id, d.event_id, d.destination, e.kind, e.action, e.short_id, d.attempts, d.last_status, d.last_error, d.updated_at, e.hook
         FROM deliveries d JOIN events e ON e.id = d.event_id
         WHERE d.state = 'dead' AND (?1 IS NULL OR d.destination = ?1) ORDER BY d.id",
    )?;
    let rows = stmt.query_map([destination], dead_letter)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A dead letter from a row of `d.id, d.event_id, d.destination, e.kind,
/// e.action, e.short_id, d.attempts, d.last_status, d.last_error,
/// d.updated_at, e.hook`.
pub(crate) fn dead_letter(r: &rusqlite::Row) -> rusqlite::Result<DeadLetter> {
    Ok(DeadLetter {
        id: r.get(0)?,
        event_id: r.get(1)?,
        destination: r.get(2)?,
        kind: r.get(3)?,
        action: r.get(4)?,
        short_id: r.get(5)?,
        attempts: r.get(6)?,
        last_status: r.get(7)?,
        last_error: r.get(8)?,
        updated_at: r.get(9)?,
        hook: r.get(10)?,
    })
}

pub fn events_since(
    conn: &Connection,
    since: i64,
    hook: Option<&str>,
    limit: Option<usize>,
) -> Result<Vec<EventSummary>, StoreError> {
    summaries(conn, since, hook, limit)
}

fn summaries(
    conn: &Connection,
    since: i64,
    hook: Option<&str>,
    limit: Option<usize>,
) -> Result<Vec<EventSummary>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT e.id, e.received_at, e.hook, e.kind, e.action, e.short_id, e.state,
                SUM(d.state = 'pending'), SUM(d.state = 'dead'), SUM(d.state = 'delivered'), COUNT(d.id)
         FROM events e LEFT JOIN deliveries d ON d.event_id = e.id
         WHERE e.received_at >= ?1 AND (?2 IS NULL OR e.hook = ?2)
         GROUP BY e.id ORDER BY e.id DESC LIMIT ?3",
    )?;
    let limit = limit.map(|l| l as i64).unwrap_or(-1);
    let rows = stmt.query_map(params![since, hook, limit], summary)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// An event's line from a row of `e.id, e.received_at, e.hook, e.kind,
/// e.action, e.short_id, e.state` and its deliveries' counts (pending,
/// dead, delivered, all).
fn summary(r: &rusqlite::Row) -> rusqlite::Result<EventSummary> {
    let raw_state: String = r.get(6)?;
    let counts = [
        r.get::<_, Option<i64>>(7)?.unwrap_or(0),
        r.get::<_, Option<i64>>(8)?.unwrap_or(0),
        r.get::<_, Option<i64>>(9)?.unwrap_or(0),
        r.get(10)?,
    ];
    Ok(EventSummary {
        id: r.get(0)?,
        received_at: r.get(1)?,
        hook: r.get(2)?,
        kind: r.get(3)?,
        action: r.get(4)?,
        short_id: r.get(5)?,
        state: summary_state(&raw_state, counts).to_owned(),
    })
}

/// One event's line, by id (a primary-key lookup, not a scan).
fn summary_of(conn: &Connection, id: i64) -> Result<Option<EventSummary>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT e.id, e.received_at, e.hook, e.kind, e.action, e.short_id, e.state,
                    (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = e.id AND d.state = 'pending'),
                    (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = e.id AND d.state = 'dead'),
                    (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = e.id AND d.state = 'delivered'),
                    (SELECT COUNT(*) FROM deliveries d WHERE d.event_id = e.id)
             FROM events e WHERE e.id = ?1",
        )?
        .query_row([id], summary)
        .optional()?)
}

pub fn event_detail(conn: &Connection, id: i64) -> Result<Option<EventDetail>, StoreError> {
    let Some(summary) = summary_of(conn, id)? else {
        return Ok(None);
    };
    let mut detail = conn
        .prepare_cached(
            "SELECT body, enrichment, alert_json, routes, client, auth, retries, alert_uuid, routed_at
             FROM events WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok(EventDetail {
                summary,
                body: String::from_utf8_lossy(&r.get::<_, Vec<u8>>(0)?).into_owned(),
                enrichment: r.get(1)?,
                alert_json: r.get(2)?,
                routes: r.get(3)?,
                client: r.get(4)?,
                auth: r.get(5)?,
                retries: r.get(6)?,
                alert_uuid: r.get(7)?,
                routed_at: r.get(8)?,
                deliveries: Vec::new(),
            })
        })?;
    let mut stmt = conn.prepare_cached(
        "SELECT id, route, destination, state, last_error, thread, payload, updated_at FROM deliveries WHERE event_id = ?1 ORDER BY id",
    )?;
    let mut deliveries: Vec<DeliveryDetail> = stmt
        .query_map([id], |r| {
            Ok(DeliveryDetail {
                id: r.get(0)?,
                route: r.get(1)?,
                destination: r.get(2)?,
                state: r.get(3)?,
                last_error: r.get(4)?,
                thread: r.get(5)?,
                payload: r.get(6)?,
                updated_at: r.get(7)?,
                attempts: Vec::new(),
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut attempts = conn.prepare_cached(
        "SELECT at, status, error, duration_ms FROM attempts WHERE delivery_id = ?1 ORDER BY id",
    )?;
    for d in &mut deliveries {
        d.attempts = attempts
            .query_map([d.id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
            .collect::<Result<_, _>>()?;
    }
    detail.deliveries = deliveries;
    Ok(Some(detail))
}

/// Every hook's silence-detection clock.
pub fn clocks(conn: &Connection) -> Result<Vec<HookClock>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT hook, last_event_at, silent_since FROM hook_clocks")?;
    let rows = stmt.query_map([], |r| {
        Ok(HookClock {
            hook: r.get(0)?,
            last_event_at: r.get(1)?,
            silent_since: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Held deliveries to `destination` (id, summary JSON), oldest first.
pub fn held(
    conn: &Connection,
    destination: &str,
    limit: usize,
) -> Result<Vec<(i64, Option<String>)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, summary FROM deliveries WHERE state = 'held' AND destination = ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![destination, limit as i64], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn render_source(
    conn: &Connection,
    delivery_id: i64,
) -> Result<Option<RenderSource>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT e.hook, e.body, e.alert_json, e.enrichment, d.route
             FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = ?1",
        )?
        .query_row([delivery_id], |r| {
            Ok(RenderSource {
                hook: r.get(0)?,
                body: r.get(1)?,
                alert_json: r.get(2)?,
                enrichment: r.get(3)?,
                route: r.get(4)?,
            })
        })
        .optional()?)
}

impl rusqlite::types::FromSql for DeliveryState {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        v.as_str()?
            .parse()
            .map_err(|e: StoreError| rusqlite::types::FromSqlError::Other(Box::new(e)))
    }
}

/// The actions taken on `alert`, oldest first.
pub fn actions_for(conn: &Connection, alert: &str) -> Result<Vec<ActionRecord>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT at, alert, action, destination, client, result, detail FROM actions WHERE alert = ?1 ORDER BY id",
    )?;
    let rows = stmt.query_map([alert], |r| {
        Ok(ActionRecord {
            at: r.get(0)?,
            alert: r.get(1)?,
            action: r.get(2)?,
            destination: r.get(3)?,
            client: r.get(4)?,
            result: r.get(5)?,
            detail: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Silences, newest first (only those active at `active_at`, if given).
pub fn silences(conn: &Connection, active_at: Option<i64>) -> Result<Vec<Silence>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, created_at, ends_at, matcher, comment, author, expired_at FROM silences
         WHERE ?1 IS NULL OR (expired_at IS NULL AND ends_at > ?1) ORDER BY id DESC LIMIT 1000",
    )?;
    let rows = stmt.query_map([active_at], |r| {
        Ok(Silence {
            id: r.get(0)?,
            created_at: r.get(1)?,
            ends_at: r.get(2)?,
            matcher: r.get(3)?,
            comment: r.get(4)?,
            author: r.get(5)?,
            expired_at: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every tenant, by name.
pub fn tenants(conn: &Connection) -> Result<Vec<StoredTenant>, StoreError> {
    let mut stmt =
        conn.prepare_cached("SELECT name, summary, sealed, updated_at FROM tenants ORDER BY name")?;
    let rows = stmt.query_map([], |r| {
        Ok(StoredTenant {
            name: r.get(0)?,
            summary: r.get(1)?,
            sealed: r.get(2)?,
            updated_at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// The latest tenant change's id (0 when none): a replica that saw a
/// smaller one reloads its tenants.
pub fn tenants_version(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT IFNULL(MAX(id), 0) FROM tenant_changes")?
        .query_row([], |r| r.get(0))?)
}

/// The console's session epoch (0 before the first logout).
pub fn console_epoch(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("SELECT epoch FROM console_state WHERE id = 1")?
        .query_row([], |r| r.get(0))
        .optional()?
        .unwrap_or(0))
}
