//! What the web console reads, the same from both backends: a filtered,
//! paged list of events, the last hour per hook and per destination,
//! events and deliveries per minute, filtered dead letters, an event's
//! journey; and the parts of those answers both backends build alike
//! (pages from rows, counts into the overview). The queries are each
//! backend's (`sqlite::console`, `postgres::console`).
//!
//! The events list reads `event_facts`, one narrow row per routed event,
//! newest first, so a filter walks a few megabytes at most and a page
//! stops as soon as it is full; events not routed yet come from their own
//! partial index.

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

/// How a page's queries walk the events: the id bounds (exclusive), the
/// direction, and how many rows to fetch (`fetch`: one more than the page,
/// to know whether there is more that way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Walk {
    pub low: i64,
    pub high: i64,
    /// Newest first.
    pub backwards: bool,
    /// Rows on the page.
    pub limit: usize,
}

impl Walk {
    pub fn of(f: &EventFilter) -> Walk {
        let (low, high, backwards) = bounds(f.page);
        Walk {
            low,
            high,
            backwards,
            limit: f.limit.clamp(1, MAX_PAGE),
        }
    }

    /// `ORDER BY id` this way.
    pub fn order(&self) -> &'static str {
        if self.backwards {
            "DESC"
        } else {
            "ASC"
        }
    }

    pub fn fetch(&self) -> i64 {
        (self.limit + 1) as i64
    }
}

impl EventFilter {
    /// Whether events not routed yet may be on the page: only the filters
    /// they can answer (no delivery state but pending, no digest).
    pub(crate) fn wants_unrouted(&self) -> bool {
        matches!(self.state, None | Some(ListState::Pending)) && self.digest.is_none()
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

/// Events per (hook, minute): count, in the last hour, latest.
pub(crate) type EventCounts = (String, i64, i64, i64, i64);
/// Attempts per (destination, outcome, minute): count, in the last hour.
pub(crate) type AttemptCounts = (String, Option<String>, i64, i64, i64);

pub(crate) fn count_events(out: &mut Activity, rows: Vec<EventCounts>) {
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

pub(crate) fn count_attempts(out: &mut Activity, rows: Vec<AttemptCounts>) {
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

pub(crate) fn entry(list: &mut Vec<DestinationActivity>, name: String) -> &mut DestinationActivity {
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
