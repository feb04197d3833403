//! What the web console reads: a filtered, paged list of events, the last
//! hour per hook and per destination, events and deliveries per minute, and
//! filtered dead letters. The types are shared by both backends; the
//! functions here are SQLite's (PostgreSQL's are in `postgres::console`).
//!
//! The events list reads `event_facts`, one narrow row per routed event,
//! newest first, so a filter walks a few megabytes at most and a page
//! stops as soon as it is full; events not routed yet come from their own
//! partial index.

use super::reads::DeadLetter;
use super::StoreError;
use rusqlite::{params, Connection, OptionalExtension};

/// Rows per page at most.
pub const MAX_PAGE: usize = 200;

/// What the events page asks for.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub hook: Option<String>,
    /// An alert short id (exact) or text of its title (contained).
    pub text: Option<String>,
    pub kind: Option<String>,
    pub action: Option<String>,
    pub state: Option<ListState>,
    /// Received at or after (unix ms).
    pub from: Option<i64>,
    /// Received before (unix ms).
    pub to: Option<i64>,
    /// The deliveries a digest covered: to this destination, ids in range.
    pub digest: Option<DigestRange>,
    pub page: Cursor,
    pub limit: usize,
}

/// The held deliveries a digest folded in (they are the digested
/// deliveries to `destination` with ids in `first..=last`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRange {
    pub destination: String,
    pub first: i64,
    pub last: i64,
}

/// Where a page starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Cursor {
    /// The newest events.
    #[default]
    Newest,
    /// Events older than this id (the next page).
    Before(i64),
    /// Events newer than this id (the previous page).
    After(i64),
}

/// The states the events page filters by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListState {
    /// Every delivery went out (none pending or dead).
    Delivered,
    /// Not routed yet, or a delivery waiting (retry, pacing, digest).
    Pending,
    /// A delivery failed for good (a dead letter).
    Dead,
    /// Routed, but no route matched.
    Unrouted,
    /// A delivery was muted (a time interval) or silenced.
    Muted,
}

impl ListState {
    pub const ALL: [ListState; 5] = [
        ListState::Delivered,
        ListState::Pending,
        ListState::Dead,
        ListState::Unrouted,
        ListState::Muted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ListState::Delivered => "delivered",
            ListState::Pending => "pending",
            ListState::Dead => "dead",
            ListState::Unrouted => "unrouted",
            ListState::Muted => "muted",
        }
    }

    pub fn parse(s: &str) -> Option<ListState> {
        ListState::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// The condition on `f` (an `event_facts` row); the same SQL on both
    /// backends.
    pub(crate) fn sql(self) -> &'static str {
        match self {
            ListState::Delivered => {
                "f.targets > 0
                 AND EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = f.id AND d.state = 'delivered')
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = f.id AND d.state IN ('pending', 'held', 'dead'))"
            }
            ListState::Pending => {
                "(f.id IN (SELECT event_id FROM deliveries WHERE state = 'pending')
                  OR f.id IN (SELECT event_id FROM deliveries WHERE state = 'held'))"
            }
            ListState::Dead => "f.id IN (SELECT event_id FROM deliveries WHERE state = 'dead')",
            ListState::Unrouted => "f.targets = 0",
            ListState::Muted => "f.id IN (SELECT event_id FROM deliveries WHERE state = 'muted')",
        }
    }
}

/// One line of the events page.
#[derive(Debug, Clone)]
pub struct EventRow {
    pub id: i64,
    pub received_at: i64,
    pub hook: String,
    pub kind: String,
    pub action: String,
    pub short_id: Option<String>,
    pub title: Option<String>,
    /// received, unrouted, pending, dead, delivered, muted, skipped.
    pub state: &'static str,
    /// Deliveries per state, e.g. `[("delivered", 2)]`.
    pub deliveries: Vec<(String, i64)>,
}

/// A page of events, newest first, with the cursors of its neighbours.
#[derive(Debug, Clone, Default)]
pub struct EventPage {
    pub rows: Vec<EventRow>,
    /// `Cursor::After(newer)` shows the newer page, if there is one.
    pub newer: Option<i64>,
    /// `Cursor::Before(older)` shows the older page, if there is one.
    pub older: Option<i64>,
}

/// An event's state from its deliveries' counts per state (`targets`:
/// how many its routing created; `None` while not routed).
pub fn row_state(targets: Option<i64>, counts: &[(String, i64)]) -> &'static str {
    let has = |s: &str| counts.iter().any(|(k, n)| k == s && *n > 0);
    match targets {
        None => "received",
        Some(0) => "unrouted",
        Some(_) if has("dead") => "dead",
        Some(_) if has("pending") || has("held") => "pending",
        Some(_) if has("delivered") => "delivered",
        Some(_) if has("muted") => "muted",
        Some(_) => "skipped",
    }
}

/// `%text%` for LIKE, with the wildcards in `text` taken literally.
pub fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// How a page's rows are ordered and bounded, from its cursor: the id
/// bounds (exclusive) and whether the query walks backwards (newest first).
pub fn bounds(cursor: Cursor) -> (i64, i64, bool) {
    match cursor {
        Cursor::Newest => (i64::MIN, i64::MAX, true),
        Cursor::Before(id) => (i64::MIN, id, true),
        Cursor::After(id) => (id, i64::MAX, false),
    }
}

/// Assembles a page from up to `limit + 1` rows fetched in walking order:
/// the extra row only says there is more that way.
pub fn assemble(mut rows: Vec<EventRow>, cursor: Cursor, limit: usize) -> EventPage {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let backwards = !matches!(cursor, Cursor::After(_));
    if !backwards {
        rows.reverse();
    }
    let (first, last) = match (rows.first(), rows.last()) {
        (Some(f), Some(l)) => (f.id, l.id),
        _ => return EventPage::default(),
    };
    let (newer, older) = match cursor {
        Cursor::Newest => (None, more.then_some(last)),
        Cursor::Before(_) => (Some(first), more.then_some(last)),
        Cursor::After(_) => (more.then_some(first), Some(last)),
    };
    EventPage { rows, newer, older }
}

/// Merges the routed rows with the not-yet-routed ones (both in walking
/// order) and keeps `limit + 1`.
pub fn merge(
    mut a: Vec<EventRow>,
    b: Vec<EventRow>,
    backwards: bool,
    limit: usize,
) -> Vec<EventRow> {
    if b.is_empty() {
        return a;
    }
    a.extend(b);
    if backwards {
        a.sort_by_key(|x| std::cmp::Reverse(x.id));
    } else {
        a.sort_by_key(|x| x.id);
    }
    a.truncate(limit + 1);
    a
}

pub fn events_page(conn: &Connection, f: &EventFilter) -> Result<EventPage, StoreError> {
    let limit = f.limit.clamp(1, MAX_PAGE);
    let (low, high, backwards) = bounds(f.page);
    let order = if backwards { "DESC" } else { "ASC" };
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
         ORDER BY f.id {order} LIMIT ?10"
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
                low,
                high,
                f.hook,
                f.text,
                pattern,
                f.kind,
                f.action,
                f.from,
                f.to,
                (limit + 1) as i64,
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
    // Events not routed yet: only the filters they can answer.
    if matches!(f.state, None | Some(ListState::Pending)) && f.digest.is_none() {
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT id, received_at, hook, kind, action, short_id FROM events
             WHERE state = 'received' AND id > ?1 AND id < ?2
               AND (?3 IS NULL OR hook = ?3) AND (?4 IS NULL OR short_id = ?4)
               AND (?5 IS NULL OR kind = ?5) AND (?6 IS NULL OR action = ?6)
               AND (?7 IS NULL OR received_at >= ?7) AND (?8 IS NULL OR received_at < ?8)
             ORDER BY id {order} LIMIT ?9"
        ))?;
        let waiting: Vec<EventRow> = stmt
            .query_map(
                params![
                    low,
                    high,
                    f.hook,
                    f.text,
                    f.kind,
                    f.action,
                    f.from,
                    f.to,
                    (limit + 1) as i64
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
        rows = merge(rows, waiting, backwards, limit);
    }
    Ok(assemble(rows, f.page, limit))
}

/// Per hook: events in the window and the last one ever.
#[derive(Debug, Clone, Default)]
pub struct HookActivity {
    pub hook: String,
    pub last_at: Option<i64>,
    pub recent: i64,
}

/// Per destination over the window: attempts by outcome and the
/// acceptance-to-delivery times of the delivered ones.
#[derive(Debug, Clone, Default)]
pub struct DestinationActivity {
    pub destination: String,
    pub delivered: i64,
    pub failed: i64,
    pub retried: i64,
    /// Milliseconds from acceptance to delivery of the latest
    /// [`LATENCY_SAMPLE`] deliveries, sorted.
    pub latencies: Vec<i64>,
    pub dead: i64,
}

/// Counts per minute (minute index since the epoch, count).
#[derive(Debug, Clone, Default)]
pub struct Activity {
    pub hooks: Vec<HookActivity>,
    pub destinations: Vec<DestinationActivity>,
    pub events_per_minute: Vec<(i64, i64)>,
    pub deliveries_per_minute: Vec<(i64, i64)>,
}

/// Deliveries whose latency makes a destination's median: its latest in
/// the last hour.
pub const LATENCY_SAMPLE: i64 = 2_000;

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

/// Events per (hook, minute): count, in the last hour, latest.
pub(super) type EventCounts = (String, i64, i64, i64, i64);
/// Attempts per (destination, outcome, minute): count, in the last hour.
pub(super) type AttemptCounts = (String, Option<String>, i64, i64, i64);

pub(super) fn count_events(out: &mut Activity, rows: Vec<EventCounts>) {
    let mut per_minute: std::collections::BTreeMap<i64, i64> = Default::default();
    for (hook, minute, n, recent, latest) in rows {
        *per_minute.entry(minute).or_default() += n;
        match out.hooks.iter_mut().find(|h| h.hook == hook) {
            Some(h) => {
                h.recent += recent;
                h.last_at = h.last_at.max(Some(latest));
            }
            None => out.hooks.push(HookActivity {
                hook,
                last_at: Some(latest),
                recent,
            }),
        }
    }
    out.events_per_minute = per_minute.into_iter().collect();
}

pub(super) fn count_attempts(out: &mut Activity, rows: Vec<AttemptCounts>) {
    let mut per_minute: std::collections::BTreeMap<i64, i64> = Default::default();
    for (destination, outcome, minute, n, recent) in rows {
        let d = entry(&mut out.destinations, destination);
        match outcome.as_deref() {
            Some("delivered") => {
                d.delivered += recent;
                *per_minute.entry(minute).or_default() += n;
            }
            Some("dead") => d.failed += recent,
            _ => d.retried += recent,
        }
    }
    out.deliveries_per_minute = per_minute.into_iter().collect();
}

pub(super) fn entry(list: &mut Vec<DestinationActivity>, name: String) -> &mut DestinationActivity {
    let i = match list.iter().position(|d| d.destination == name) {
        Some(i) => i,
        None => {
            list.push(DestinationActivity {
                destination: name,
                ..Default::default()
            });
            list.len() - 1
        }
    };
    &mut list[i]
}

/// What the dead-letters page asks for.
#[derive(Debug, Clone, Default)]
pub struct DeadFilter {
    pub destination: Option<String>,
    pub hook: Option<String>,
    /// An alert short id.
    pub short_id: Option<String>,
    /// Dead letters older than this delivery id (the next page).
    pub before: Option<i64>,
    pub limit: usize,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64) -> EventRow {
        EventRow {
            id,
            received_at: 0,
            hook: "h".into(),
            kind: "alert".into(),
            action: "created".into(),
            short_id: None,
            title: None,
            state: "received",
            deliveries: Vec::new(),
        }
    }

    #[test]
    fn pages_link_to_their_neighbours() {
        // Newest page, more behind it.
        let p = assemble((0..4).rev().map(row).collect(), Cursor::Newest, 3);
        assert_eq!(p.rows.iter().map(|r| r.id).collect::<Vec<_>>(), [3, 2, 1]);
        assert_eq!((p.newer, p.older), (None, Some(1)));
        // The previous page, fetched oldest first.
        let p = assemble(vec![row(4), row(5)], Cursor::After(3), 3);
        assert_eq!(p.rows.iter().map(|r| r.id).collect::<Vec<_>>(), [5, 4]);
        assert_eq!((p.newer, p.older), (None, Some(4)));
        let p = assemble(Vec::new(), Cursor::Before(1), 3);
        assert!(p.rows.is_empty() && p.newer.is_none() && p.older.is_none());
    }

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }

    #[test]
    fn row_state_prefers_what_needs_attention() {
        let c = |v: &[(&str, i64)]| {
            v.iter()
                .map(|(s, n)| (s.to_string(), *n))
                .collect::<Vec<_>>()
        };
        assert_eq!(row_state(None, &[]), "received");
        assert_eq!(row_state(Some(0), &[]), "unrouted");
        assert_eq!(
            row_state(Some(2), &c(&[("delivered", 1), ("dead", 1)])),
            "dead"
        );
        assert_eq!(
            row_state(Some(2), &c(&[("delivered", 1), ("held", 1)])),
            "pending"
        );
        assert_eq!(row_state(Some(1), &c(&[("delivered", 1)])), "delivered");
        assert_eq!(row_state(Some(1), &c(&[("muted", 1)])), "muted");
    }
}

/// An event's routing as recorded (the `routes` column): the matched
/// routes, and since the console, every route's verdict, the enrichment's
/// latency and source, and a silence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Journey {
    pub matched: Vec<String>,
    /// (route, matched, the condition that decided).
    pub decisions: Vec<(String, bool, String)>,
    pub enrich_ms: Option<u64>,
    pub cached: Option<bool>,
    pub silenced: Option<String>,
    /// Processing failed inside the relay (see `ops::Journey::failed`).
    pub failed: Option<String>,
}

impl Journey {
    /// Reads the column; an older relay stored only the matched names.
    pub fn parse(routes: &str) -> Journey {
        use serde_json::Value;
        let Ok(doc) = serde_json::from_str::<Value>(routes) else {
            return Journey::default();
        };
        let names = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        if doc.is_array() {
            return Journey {
                matched: names(Some(&doc)),
                ..Journey::default()
            };
        }
        Journey {
            matched: names(doc.get("matched")),
            decisions: doc
                .get("decisions")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|d| {
                            let text =
                                |k: &str| d.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                            let matched =
                                d.get("matched").and_then(Value::as_bool).unwrap_or(false);
                            (text("route"), matched, text("reason"))
                        })
                        .collect()
                })
                .unwrap_or_default(),
            enrich_ms: doc.pointer("/enrich/ms").and_then(Value::as_u64),
            cached: doc.pointer("/enrich/cached").and_then(Value::as_bool),
            silenced: doc
                .get("silenced")
                .and_then(Value::as_str)
                .map(str::to_owned),
            failed: doc.get("failed").and_then(Value::as_str).map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod journey_tests {
    use super::Journey;

    #[test]
    fn reads_both_the_old_list_and_the_journey() {
        assert_eq!(Journey::parse(r#"["a","b"]"#).matched, ["a", "b"]);
        let j = Journey::parse(
            r#"{"matched":["p1"],"enrich":{"ms":12,"cached":true},"decisions":[{"route":"p1","matched":true,"reason":"urgency_min = 70: alert urgency is 80"}],"silenced":"silenced by silence 3"}"#,
        );
        assert_eq!(j.matched, ["p1"]);
        assert_eq!((j.enrich_ms, j.cached), (Some(12), Some(true)));
        assert_eq!(j.decisions[0].2, "urgency_min = 70: alert urgency is 80");
        assert_eq!(j.silenced.as_deref(), Some("silenced by silence 3"));
        assert_eq!(Journey::parse("not json"), Journey::default());
    }
}
