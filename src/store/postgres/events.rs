//! Events: storing an accepted webhook (with the sender-retry window),
//! recording its routing and deliveries in one statement, claiming
//! unrouted events, pruning finished ones.

use super::write::{Done, EventParams, Write, EXISTING_EVENT, INSERT_EVENT};
use super::*;
use crate::store::{DeliveryState, NewDelivery};

/// The pending deliveries among rows (id, route, destination, state) just
/// inserted for `r`, in id order. (route, destination) is unique within an
/// event.
fn due_from<'a>(
    r: &Routing,
    rows: impl Iterator<Item = (i64, &'a str, &'a str, &'a str)>,
    received_at: i64,
    hook: &str,
    short_id: &Option<String>,
) -> Vec<DueDelivery> {
    let mut created: Vec<DueDelivery> = rows
        .filter(|(_, _, _, state)| *state == DeliveryState::Pending.as_str())
        .filter_map(|(id, route, destination, _)| {
            let d = r
                .deliveries
                .iter()
                .find(|d| d.route == route && d.destination == destination)
                // Sent already; a retry is found by the worker's scan.
                .filter(|d| d.first.is_none())?;
            Some(DueDelivery {
                id,
                event_id: r.event_id,
                destination: d.destination.clone(),
                payload: d.payload.clone(),
                attempts: 0,
                created_at: received_at,
                accepted_at: received_at,
                hook: hook.to_owned(),
                short_id: short_id.clone(),
                digest: false,
                thread_key: d.thread_key.clone(),
            })
        })
        .collect();
    created.sort_by_key(|d| d.id);
    created
}

fn window_closed() -> StoreError {
    StoreError::Unavailable(
        "a sender retry's dedup window closed while it was checked; try again".into(),
    )
}

impl Postgres {
    pub async fn insert_event(&self, mut e: NewEvent) -> Result<Inserted, StoreError> {
        scrub_event(&mut e);
        let now = now_ms();
        let full = self.inner.pending() >= self.inner.max_pending;
        let inserted = if full || e.message_id.is_some() {
            self.insert_alone(e, now, full).await?
        } else {
            // The common case: committed with the other writes waiting.
            let until = self.lease_until(now);
            let e = Box::new(e);
            match self.write(Write::Insert { e, now, until }).await? {
                Done::Inserted(Some(inserted)) => inserted,
                _ => return Err(window_closed()),
            }
        };
        if !inserted.duplicate {
            self.inner.delta.fetch_add(1, Ordering::Relaxed);
        }
        Ok(inserted)
    }

    /// An insert that needs its own transaction (a webhook id to record
    /// with it) or none at all (a full spool: only a sender retry of a
    /// stored event gets its 202).
    async fn insert_alone(
        &self,
        e: NewEvent,
        now: i64,
        full: bool,
    ) -> Result<Inserted, StoreError> {
        let mut client = self.client().await?;
        let r: Result<Result<Inserted, StoreError>, tokio_postgres::Error> = async {
            let insert = client.prepare_cached(INSERT_EVENT).await?;
            let existing = client.prepare_cached(EXISTING_EVENT).await?;
            let params = EventParams {
                e: &e,
                now,
                until: self.lease_until(now),
                replica: &self.inner.replica,
            };
            if full {
                let found = params.find(&**client, &existing).await?;
                return Ok(found.ok_or(StoreError::Full(self.inner.pending())));
            }
            let Some((id, window)) = &e.message_id else {
                let stored = params.store(&**client, &insert, &existing).await?;
                return Ok(stored.ok_or_else(window_closed));
            };
            // A webhook id to record too: both or neither.
            let tx = client.transaction().await?;
            let Some(stored) = params.store(&*tx, &insert, &existing).await? else {
                return Ok(Err(window_closed()));
            };
            if !stored.duplicate {
                let seen = tx
                    .prepare_cached(
                        "INSERT INTO webhook_ids (hook, id, until) VALUES ($1, $2, $3)
                         ON CONFLICT (hook, id) DO UPDATE SET until = excluded.until
                         WHERE webhook_ids.until < $4 RETURNING 1",
                    )
                    .await?;
                let until = now + window;
                let fresh = tx.query_opt(&seen, &[&e.hook, id, &until, &now]).await?;
                if fresh.is_none() {
                    tx.rollback().await?;
                    return Ok(Err(StoreError::Replay));
                }
            }
            tx.commit().await?;
            Ok(Ok(stored))
        }
        .await;
        self.seen(r)?
    }

    pub async fn record_routing(
        &self,
        mut r: Routing,
    ) -> Result<Option<Vec<DueDelivery>>, StoreError> {
        scrub_routing(&mut r);
        let now = now_ms();
        let until = self.lease_until(now);
        if r.deliveries.iter().all(|d| d.dedup.is_none()) {
            self.route_batched(r, now, until).await
        } else {
            self.route_with_dedup(r, now, until).await
        }
    }

    /// A routing without route dedup windows to settle: one statement,
    /// committed with the other writes waiting ([`batch`]).
    async fn route_batched(
        &self,
        r: Routing,
        now: i64,
        until: i64,
    ) -> Result<Option<Vec<DueDelivery>>, StoreError> {
        let r = Arc::new(r);
        let write = Write::Route {
            r: r.clone(),
            now,
            until,
        };
        let Done::Routed(rows) = self.write(write).await? else {
            return Err(StoreError::Closed);
        };
        let Some(first) = rows.first() else {
            let exists = self
                .query("SELECT 1 FROM events WHERE id = $1", &[&r.event_id])
                .await?;
            return if exists.is_empty() {
                Err(StoreError::NotFound(format!("event {}", r.event_id)))
            } else {
                Ok(None)
            };
        };
        let (received_at, hook, short_id): (i64, String, Option<String>) =
            (first.get(0), first.get(1), first.get(2));
        let inserted = rows.iter().filter_map(|row| {
            let id: Option<i64> = row.get(3);
            Some((id?, row.get(4), row.get(5), row.get(6)))
        });
        // A first attempt's retry is pending too, though no worker is
        // handed it.
        let pending = rows
            .iter()
            .filter(|row| row.get::<_, Option<&str>>(6) == Some(DeliveryState::Pending.as_str()))
            .count();
        let created = due_from(&r, inserted, received_at, &hook, &short_id);
        self.adjust_pending(pending);
        Ok(Some(created))
    }

    /// A routing with route dedup windows: a transaction of its own, in
    /// which the event's row is locked, each window settled, then every
    /// delivery inserted in one statement.
    async fn route_with_dedup(
        &self,
        r: Routing,
        now: i64,
        until: i64,
    ) -> Result<Option<Vec<DueDelivery>>, StoreError> {
        let mut client = self.client().await?;
        let claim = (self.inner.replica.as_str(), until);
        let result: Result<Result<Option<Vec<DueDelivery>>, StoreError>, tokio_postgres::Error> =
            async {
                let tx = client.transaction().await?;
                let Some(event) = mark_routed(&tx, &r, now).await? else {
                    let exists = tx
                        .query_opt("SELECT 1 FROM events WHERE id = $1", &[&r.event_id])
                        .await?
                        .is_some();
                    tx.rollback().await?;
                    return Ok(if exists {
                        Ok(None)
                    } else {
                        Err(StoreError::NotFound(format!("event {}", r.event_id)))
                    });
                };
                let mut settled = Vec::with_capacity(r.deliveries.len());
                for d in &r.deliveries {
                    settled.push(settle(&tx, d, now).await?);
                }
                let mut created = Vec::new();
                if !r.deliveries.is_empty() {
                    let rows = insert_deliveries(&tx, &r, &settled, &event, now, claim).await?;
                    let rows = rows
                        .iter()
                        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3)));
                    created = due_from(&r, rows, event.received_at, &event.hook, &event.short_id);
                }
                tx.commit().await?;
                Ok(Ok(Some(created)))
            }
            .await;
        let created = self.seen(result)??;
        if let Some(c) = &created {
            self.adjust_pending(c.len());
        }
        Ok(created)
    }

    /// An event routed into `created` pending deliveries.
    fn adjust_pending(&self, created: usize) {
        self.inner
            .delta
            .fetch_add(created as i64 - 1, Ordering::Relaxed);
    }

    pub async fn prune(&self, before: i64) -> Result<usize, StoreError> {
        let mut client = self.client().await?;
        let now = now_ms();
        let r: Result<u64, tokio_postgres::Error> = async {
            let tx = client.transaction().await?;
            tx.execute(
                "CREATE TEMP TABLE doomed ON COMMIT DROP AS
                 SELECT id FROM events e WHERE received_at < $1 AND state = 'routed'
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id AND d.state IN ('pending', 'dead', 'held'))",
                &[&before],
            )
            .await?;
            tx.execute(
                "DELETE FROM attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE event_id IN (SELECT id FROM doomed))",
                &[],
            )
            .await?;
            tx.execute("DELETE FROM deliveries WHERE event_id IN (SELECT id FROM doomed)", &[])
                .await?;
            tx.execute("DELETE FROM event_facts WHERE id IN (SELECT id FROM doomed)", &[])
                .await?;
            let n = tx
                .execute("DELETE FROM events WHERE id IN (SELECT id FROM doomed)", &[])
                .await?;
            tx.execute("DELETE FROM route_dedup WHERE until < $1", &[&now]).await?;
            tx.execute("DELETE FROM webhook_ids WHERE until < $1", &[&now]).await?;
            tx.execute("DELETE FROM event_dedup WHERE until < $1", &[&now]).await?;
            // Send windows are at most an hour or so; keep a day.
            tx.execute("DELETE FROM send_slots WHERE at < $1", &[&(now - 86_400_000)])
                .await?;
            tx.execute("DELETE FROM threads WHERE updated_at < $1", &[&before])
                .await?;
            tx.commit().await?;
            Ok(n)
        }
        .await;
        Ok(self.seen(r)? as usize)
    }

    pub async fn claim_unrouted(
        &self,
        after_id: i64,
        limit: usize,
        own: bool,
    ) -> Result<Vec<crate::store::UnroutedEvent>, StoreError> {
        let now = now_ms();
        let limit = limit as i64;
        let rows = self
            .query(
                "UPDATE events e SET claimed_by = $4, claimed_until = $5
                 FROM (SELECT id FROM events
                       WHERE state = 'received' AND id > $1
                         AND (claimed_until IS NULL OR claimed_until < $2 OR ($6 AND claimed_by = $4))
                       ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED) c
                 WHERE e.id = c.id
                 RETURNING e.id, e.hook, e.body, e.received_at",
                &[&after_id, &now, &limit, &self.inner.replica, &self.lease_until(now), &own],
            )
            .await?;
        let mut out: Vec<crate::store::UnroutedEvent> = rows
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect();
        out.sort_by_key(|r| r.0);
        Ok(out)
    }
}

/// What a routed event's deliveries carry from its row.
struct Accepted {
    received_at: i64,
    hook: String,
    short_id: Option<String>,
}

/// Marks the event routed and writes its line of the console's list;
/// `None` when it is no longer `received`. Routed once: the row lock makes
/// a second routing of the same event (another replica after a lease ran
/// out) wait, then find it routed.
async fn mark_routed(
    tx: &deadpool_postgres::Transaction<'_>,
    r: &Routing,
    now: i64,
) -> Result<Option<Accepted>, tokio_postgres::Error> {
    let routes = r.routes_json();
    let mark = tx
        .prepare_cached(
            "WITH e AS (UPDATE events SET state = 'routed', enrichment = $2, alert_json = $3, routes = $4, routed_at = $5,
             claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND state = 'received'
             RETURNING received_at, hook, short_id, kind, action),
             facts AS (INSERT INTO event_facts (id, received_at, hook, kind, action, short_id, title, targets)
                       SELECT $1, received_at, hook, kind, action, short_id, $6, $7 FROM e)
             SELECT received_at, hook, short_id FROM e",
        )
        .await?;
    let row = tx
        .query_opt(
            &mark,
            &[
                &r.event_id,
                &r.enrichment,
                &r.alert_json,
                &routes,
                &now,
                &r.title,
                &(r.deliveries.len() as i32),
            ],
        )
        .await?;
    Ok(row.map(|row| Accepted {
        received_at: row.get(0),
        hook: row.get(1),
        short_id: row.get(2),
    }))
}

/// The state a new delivery starts in and why: dead (not rendered), muted,
/// skipped (its route's dedup window, which this records when it sends),
/// else pending.
async fn settle(
    tx: &deadpool_postgres::Transaction<'_>,
    d: &NewDelivery,
    now: i64,
) -> Result<(DeliveryState, Option<String>), tokio_postgres::Error> {
    if let Some(reason) = &d.failed {
        return Ok((DeliveryState::Dead, Some(reason.clone())));
    }
    if let Some(why) = &d.muted {
        return Ok((DeliveryState::Muted, Some(why.clone())));
    }
    let Some((key, window)) = &d.dedup else {
        return Ok((DeliveryState::Pending, None));
    };
    // Inserted, or replaced an expired window: send.
    let dedup = tx
        .prepare_cached(
            "INSERT INTO route_dedup (route, destination, key, until) VALUES ($1, $2, $3, $4)
             ON CONFLICT (route, destination, key) DO UPDATE SET until = excluded.until
             WHERE route_dedup.until <= $5 RETURNING 1",
        )
        .await?;
    let fresh = tx
        .query_opt(
            &dedup,
            &[&d.route, &d.destination, key, &(now + window), &now],
        )
        .await?;
    Ok(match fresh {
        Some(_) => (DeliveryState::Pending, None),
        None => (
            DeliveryState::Skipped,
            Some(format!(
                "already sent within the route's dedup window ({key})"
            )),
        ),
    })
}

/// Every delivery of `r`, each in its `settled` state, in one statement;
/// pending ones are claimed (`claim`: this replica, lease until) by this
/// replica, which delivers them. Answers (id, route, destination, state).
async fn insert_deliveries(
    tx: &deadpool_postgres::Transaction<'_>,
    r: &Routing,
    settled: &[(DeliveryState, Option<String>)],
    event: &Accepted,
    now: i64,
    (replica, until): (&str, i64),
) -> Result<Vec<Row>, tokio_postgres::Error> {
    let n = r.deliveries.len();
    let (mut routes, mut dests, mut payloads) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut summaries, mut thread_keys) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for d in &r.deliveries {
        routes.push(d.route.as_str());
        dests.push(d.destination.as_str());
        payloads.push(d.payload.as_str());
        summaries.push(d.summary.as_deref());
        thread_keys.push(d.thread_key.as_deref());
    }
    let states: Vec<&str> = settled.iter().map(|(s, _)| s.as_str()).collect();
    let notes: Vec<Option<&str>> = settled.iter().map(|(_, n)| n.as_deref()).collect();
    let insert = tx
        .prepare_cached(
            "INSERT INTO deliveries (event_id, route, destination, payload, state, created_at, next_attempt_at, updated_at,
                                     last_error, summary, claimed_by, claimed_until, thread_key)
             SELECT $1, u.route, u.destination, u.payload, u.state, $2, $3, $3, u.note, u.summary,
                    CASE WHEN u.state = 'pending' THEN $4 END, CASE WHEN u.state = 'pending' THEN $5::BIGINT END, u.thread_key
             FROM UNNEST($6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::TEXT[])
                  AS u(route, destination, payload, state, note, summary, thread_key)
             RETURNING id, route, destination, state",
        )
        .await?;
    tx.query(
        &insert,
        &[
            &r.event_id,
            &event.received_at,
            &now,
            &replica,
            &until,
            &routes,
            &dests,
            &payloads,
            &states,
            &notes,
            &summaries,
            &thread_keys,
        ],
    )
    .await
}
