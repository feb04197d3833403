//! The console's reads (see `store::console`), on PostgreSQL: the same
//! questions, with the database's own indexes on times.

use super::*;
use crate::store::console::{
    assemble, count_attempts, count_events, entry, like_pattern, merge, row_state, Activity,
    DeadFilter, EventFilter, EventPage, EventRow, HookActivity, ListState, Walk, LATENCY_SAMPLE,
};

impl Postgres {
    /// See `Store::console_salt`: the first replica's salt wins.
    pub async fn console_salt(&self, candidate: &[u8]) -> Result<Vec<u8>, StoreError> {
        let rows = self
            .query(
                "INSERT INTO console_state (id, salt) VALUES (1, $1)
                 ON CONFLICT (id) DO UPDATE SET salt = COALESCE(console_state.salt, excluded.salt)
                 RETURNING salt",
                &[&candidate],
            )
            .await?;
        rows.first()
            .and_then(|r| r.get::<_, Option<Vec<u8>>>(0))
            .ok_or_else(|| StoreError::Unavailable("the console salt was not stored".into()))
    }

    pub async fn end_console_sessions(&self) -> Result<i64, StoreError> {
        let rows = self
            .query(
                "INSERT INTO console_state (id, epoch) VALUES (1, 1)
                 ON CONFLICT (id) DO UPDATE SET epoch = console_state.epoch + 1 RETURNING epoch",
                &[],
            )
            .await?;
        Ok(rows.first().map(|r| r.get(0)).unwrap_or(0))
    }

    pub async fn console_epoch(&self) -> Result<i64, StoreError> {
        Ok(self
            .query("SELECT epoch FROM console_state WHERE id = 1", &[])
            .await?
            .first()
            .map(|r| r.get(0))
            .unwrap_or(0))
    }

    /// A page of the events list: routed events from `event_facts` (with
    /// their deliveries' counts in the same statement), merged with those
    /// not routed yet when the filter allows.
    pub async fn events_page(&self, f: &EventFilter) -> Result<EventPage, StoreError> {
        let walk = Walk::of(f);
        let mut rows = self.routed_page(f, &walk).await?;
        if f.wants_unrouted() {
            let waiting = self.unrouted_page(f, &walk).await?;
            rows = merge(rows, waiting, walk.backwards, walk.limit);
        }
        Ok(assemble(rows, f.page, walk.limit))
    }

    /// Routed events matching `f`, in walking order.
    async fn routed_page(&self, f: &EventFilter, walk: &Walk) -> Result<Vec<EventRow>, StoreError> {
        let state = f.state.map(ListState::sql).unwrap_or("TRUE");
        let digest = if f.digest.is_some() {
            "f.id IN (SELECT event_id FROM deliveries WHERE destination = $11 AND id BETWEEN $12 AND $13 AND state = 'digested')"
        } else {
            "($11::TEXT IS NULL AND $12::BIGINT IS NOT NULL AND $13::BIGINT IS NOT NULL)"
        };
        let sql = format!(
            "SELECT f.id, f.received_at, f.hook, f.kind, f.action, f.short_id, f.title, f.targets,
                    (SELECT array_agg(d.state || ':' || d.n) FROM
                        (SELECT state, COUNT(*) AS n FROM deliveries WHERE event_id = f.id GROUP BY state ORDER BY state) d)
             FROM event_facts f
             WHERE f.id > $1 AND f.id < $2
               AND ($3::TEXT IS NULL OR f.hook = $3)
               AND ($4::TEXT IS NULL OR f.short_id = $4 OR f.title ILIKE $5)
               AND ($6::TEXT IS NULL OR f.kind = $6) AND ($7::TEXT IS NULL OR f.action = $7)
               AND ($8::BIGINT IS NULL OR f.received_at >= $8) AND ($9::BIGINT IS NULL OR f.received_at < $9)
               AND {state} AND {digest}
             ORDER BY f.id {} LIMIT $10",
            walk.order()
        );
        let pattern = f.text.as_deref().map(like_pattern);
        let (dd, d1, d2) = match &f.digest {
            Some(d) => (Some(d.destination.as_str()), d.first, d.last),
            None => (None, 0, 0),
        };
        let rows = self
            .query(
                &sql,
                &[
                    &walk.low,
                    &walk.high,
                    &f.hook,
                    &f.text,
                    &pattern,
                    &f.kind,
                    &f.action,
                    &f.from,
                    &f.to,
                    &walk.fetch(),
                    &dd,
                    &d1,
                    &d2,
                ],
            )
            .await?;
        Ok(rows.iter().map(routed_row).collect())
    }

    /// Events not routed yet matching the filters they can answer, in
    /// walking order.
    async fn unrouted_page(
        &self,
        f: &EventFilter,
        walk: &Walk,
    ) -> Result<Vec<EventRow>, StoreError> {
        let sql = format!(
            "SELECT id, received_at, hook, kind, action, short_id FROM events
             WHERE state = 'received' AND id > $1 AND id < $2
               AND ($3::TEXT IS NULL OR hook = $3) AND ($4::TEXT IS NULL OR short_id = $4)
               AND ($5::TEXT IS NULL OR kind = $5) AND ($6::TEXT IS NULL OR action = $6)
               AND ($7::BIGINT IS NULL OR received_at >= $7) AND ($8::BIGINT IS NULL OR received_at < $8)
             ORDER BY id {} LIMIT $9",
            walk.order()
        );
        let rows = self
            .query(
                &sql,
                &[
                    &walk.low,
                    &walk.high,
                    &f.hook,
                    &f.text,
                    &f.kind,
                    &f.action,
                    &f.from,
                    &f.to,
                    &walk.fetch(),
                ],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| EventRow {
                id: r.get(0),
                received_at: r.get(1),
                hook: r.get(2),
                kind: r.get(3),
                action: r.get(4),
                short_id: r.get(5),
                title: None,
                state: "received",
                deliveries: Vec::new(),
            })
            .collect())
    }

    pub async fn activity(
        &self,
        hooks: &[String],
        destinations: &[String],
        hour: i64,
        day: i64,
    ) -> Result<Activity, StoreError> {
        let mut out = Activity::default();
        let rows = self
            .query(
                "SELECT hook, received_at / 60000, COUNT(*), COUNT(*) FILTER (WHERE received_at >= $2), MAX(received_at)
                 FROM event_facts WHERE received_at >= $1 GROUP BY 1, 2",
                &[&day, &hour],
            )
            .await?;
        count_events(
            &mut out,
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                .collect(),
        );
        for hook in hooks {
            if !out.hooks.iter().any(|h| &h.hook == hook) {
                let last = self
                    .query(
                        "SELECT received_at FROM event_facts WHERE hook = $1 ORDER BY id DESC LIMIT 1",
                        &[hook],
                    )
                    .await?;
                out.hooks.push(HookActivity {
                    hook: hook.clone(),
                    last_at: last.first().map(|r| r.get(0)),
                    recent: 0,
                });
            }
        }
        let rows = self
            .query(
                "SELECT destination, outcome, at / 60000, COUNT(*), COUNT(*) FILTER (WHERE at >= $2)
                 FROM attempts WHERE at >= $1 AND destination IS NOT NULL GROUP BY 1, 2, 3",
                &[&day, &hour],
            )
            .await?;
        count_attempts(
            &mut out,
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
                .collect(),
        );
        for name in destinations {
            let ages: Vec<i64> = self
                .query(
                    "SELECT age_ms FROM attempts WHERE at >= $1 AND destination = $2 AND outcome = 'delivered'
                     ORDER BY at DESC LIMIT $3",
                    &[&hour, name, &LATENCY_SAMPLE],
                )
                .await?
                .iter()
                .filter_map(|r| r.get::<_, Option<i64>>(0))
                .collect();
            if !ages.is_empty() {
                entry(&mut out.destinations, name.clone()).latencies = ages;
            }
        }
        for r in self
            .query(
                "SELECT destination, COUNT(*) FROM deliveries WHERE state = 'dead' GROUP BY destination",
                &[],
            )
            .await?
        {
            entry(&mut out.destinations, r.get(0)).dead = r.get(1);
        }
        for d in &mut out.destinations {
            d.latencies.sort_unstable();
        }
        Ok(out)
    }

    pub async fn dead_page(&self, f: &DeadFilter) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = self
            .query(
                "SELECT d.id, d.event_id, d.destination, e.kind, e.action, e.short_id, d.attempts, d.last_status, d.last_error, d.updated_at, e.hook
                 FROM deliveries d JOIN events e ON e.id = d.event_id
                 WHERE d.state = 'dead' AND ($1::TEXT IS NULL OR d.destination = $1) AND ($2::TEXT IS NULL OR e.hook = $2)
                   AND ($3::TEXT IS NULL OR e.short_id = $3) AND d.id < $4
                 ORDER BY d.id DESC LIMIT $5",
                &[
                    &f.destination,
                    &f.hook,
                    &f.short_id,
                    &f.before.unwrap_or(i64::MAX),
                    &(f.limit as i64),
                ],
            )
            .await?;
        Ok(rows.iter().map(super::reads::dead_letter).collect())
    }

    pub async fn clocks(&self) -> Result<Vec<HookClock>, StoreError> {
        Ok(self
            .query(
                "SELECT hook, last_event_at, silent_since FROM hook_clocks",
                &[],
            )
            .await?
            .iter()
            .map(|r| HookClock {
                hook: r.get(0),
                last_event_at: r.get(1),
                silent_since: r.get(2),
            })
            .collect())
    }
}

/// A routed event's line from a row of `f.id, f.received_at, f.hook,
/// f.kind, f.action, f.short_id, f.title, f.targets` and its deliveries'
/// counts as `state:n` texts.
fn routed_row(r: &Row) -> EventRow {
    let counts: Vec<(String, i64)> = r
        .get::<_, Option<Vec<String>>>(8)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|x| {
            let (s, n) = x.split_once(':')?;
            Some((s.to_owned(), n.parse().ok()?))
        })
        .collect();
    let targets: i32 = r.get(7);
    EventRow {
        id: r.get(0),
        received_at: r.get(1),
        hook: r.get(2),
        kind: r.get(3),
        action: r.get(4),
        short_id: r.get(5),
        title: r.get(6),
        state: row_state(Some(targets.into()), &counts),
        deliveries: counts,
    }
}
