//! Group commit: the writes every event makes (its insert, its routing,
//! each delivery's outcome) from many events in one transaction, as the
//! SQLite writer thread does.
//!
//! - One task takes whatever writes are waiting (up to [`MAX_BATCH`]),
//!   sends `BEGIN`, one statement for all the batch's new events, one for
//!   its routings, one for its outcomes, and `COMMIT` down one connection
//!   without waiting between them (tokio-postgres pipelines requests
//!   polled together), and answers each caller after the commit: a 202
//!   still follows a durable commit, and costs a share of one instead of
//!   a commit of its own.
//! - While one batch commits, the next one gathers.
//! - A batch is all or nothing. When the server refuses one write (a
//!   deadlock with another replica, a constraint), the batch rolls back
//!   and each of its writes is retried in a transaction of its own, so
//!   one write cannot fail another. A lost connection fails them all, as
//!   it would have failed each.

use super::pool::{pg_error, Inner, Postgres};
use super::write::{Done, EventParams, Queued, Write, EXISTING_EVENT, INSERT_EVENT};
use crate::store::{Attempted, Completion, DeliveryState, Inserted, NewEvent, Routing, StoreError};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Weak;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Row, Statement};

/// Writes committed together, at most.
const MAX_BATCH: usize = 256;
/// Writes waiting for a batch, at most; a caller beyond waits to queue.
pub(super) const QUEUE: usize = 4096;

/// Routes events that need no route dedup (a batch's, or one alone):
/// marks each routed (unless it already was: then no row comes back for
/// it) and inserts their deliveries from arrays, pending ones claimed by
/// this replica, each first attempt made before the routing with its
/// delivery. One row per delivery (or one with NULL delivery columns for
/// an event without any), the event's id last. An event id may appear
/// once per statement. (`id = ANY($1)` lets the planner look the events
/// up by id, where a join alone scans every unrouted event.)
const ROUTE_EVENTS: &str = "WITH r AS (
        SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::BIGINT[], $7::TEXT[], $8::INTEGER[])
        AS r(id, enrichment, alert_json, routes, now, until, title, targets)),
     e AS (
        UPDATE events SET state = 'routed', enrichment = r.enrichment, alert_json = r.alert_json, routes = r.routes,
        routed_at = r.now, claimed_by = NULL, claimed_until = NULL
        FROM r WHERE events.id = r.id AND events.id = ANY($1) AND events.state = 'received'
        RETURNING events.id, events.received_at, events.hook, events.short_id, events.kind, events.action,
                  r.now, r.until, r.title, r.targets),
     facts AS (
        INSERT INTO event_facts (id, received_at, hook, kind, action, short_id, title, targets)
        SELECT id, received_at, hook, kind, action, short_id, title, targets FROM e),
     u AS (
        SELECT * FROM UNNEST($10::BIGINT[], $11::TEXT[], $12::TEXT[], $13::TEXT[], $14::TEXT[], $15::TEXT[], $16::TEXT[],
                             $17::TEXT[], $18::TEXT[], $19::BIGINT[], $20::BIGINT[], $21::BIGINT[], $22::TEXT[])
        AS u(event_id, route, destination, payload, state, note, summary, thread_key, outcome, status, duration, next, thread)),
     ins AS (
        INSERT INTO deliveries (event_id, route, destination, payload, state, attempts, created_at, next_attempt_at, updated_at,
                                last_status, last_error, summary, claimed_by, claimed_until, thread_key, thread)
        SELECT e.id, u.route, u.destination, u.payload, u.state, CASE WHEN u.outcome IS NULL THEN 0 ELSE 1 END,
               e.received_at, COALESCE(u.next, e.now), e.now, u.status, u.note, u.summary,
               CASE WHEN u.state = 'pending' AND u.outcome IS NULL THEN $9::TEXT END,
               CASE WHEN u.state = 'pending' AND u.outcome IS NULL THEN e.until END, u.thread_key, u.thread
        FROM e JOIN u ON u.event_id = e.id
        RETURNING id, event_id, route, destination, state, created_at, updated_at),
     att AS (
        INSERT INTO attempts (delivery_id, at, status, error, duration_ms, destination, outcome, age_ms)
        SELECT ins.id, ins.updated_at, u.status, u.note, u.duration, ins.destination, u.outcome, ins.updated_at - ins.created_at
        FROM ins JOIN u ON u.event_id = ins.event_id AND u.route = ins.route AND u.destination = ins.destination
        WHERE u.outcome IS NOT NULL)
     SELECT e.received_at, e.hook, e.short_id, ins.id, ins.route, ins.destination, ins.state, e.id
     FROM e LEFT JOIN ins ON ins.event_id = e.id";

/// Outcomes in one statement (a batch's, or one retried alone): each
/// attempt recorded, and each delivery still pending updated (delivered or
/// dead, or a retry's next attempt time); answers the ids it updated.
/// (`id = ANY($1)`: looked up by id, see [`ROUTE_EVENTS`].)
const COMPLETE_MANY: &str = "WITH u AS (
        SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::TEXT[], $5::BIGINT[], $6::TEXT[], $7::BIGINT[], $8::TEXT[])
        AS u(id, at, status, error, duration, outcome, next, thread)),
     a AS (INSERT INTO attempts (delivery_id, at, status, error, duration_ms, destination, outcome, age_ms)
        SELECT u.id, u.at, u.status, u.error, u.duration, d.destination, u.outcome, u.at - d.created_at
        FROM u JOIN deliveries d ON d.id = u.id)
     UPDATE deliveries d SET
        state = CASE WHEN u.outcome = 'retry' THEN d.state ELSE u.outcome END,
        next_attempt_at = CASE WHEN u.outcome = 'retry' THEN u.next ELSE d.next_attempt_at END,
        last_error = CASE WHEN u.outcome = 'delivered' THEN NULL ELSE u.error END,
        attempts = d.attempts + 1, updated_at = u.at, last_status = u.status,
        thread = COALESCE(u.thread, d.thread), claimed_by = NULL, claimed_until = NULL
     FROM u WHERE d.id = u.id AND d.id = ANY($1) AND d.state = 'pending'
     RETURNING d.id";

/// The batch's statements, prepared once per connection.
struct Statements {
    insert: Statement,
    existing: Statement,
    route: Statement,
    complete_many: Statement,
    insert_many: Statement,
}

impl Statements {
    async fn prepare(c: &deadpool_postgres::Client) -> Result<Statements, tokio_postgres::Error> {
        Ok(Statements {
            insert: c.prepare_cached(INSERT_EVENT).await?,
            existing: c.prepare_cached(EXISTING_EVENT).await?,
            route: c.prepare_cached(ROUTE_EVENTS).await?,
            complete_many: c.prepare_cached(COMPLETE_MANY).await?,
            insert_many: c.prepare_cached(INSERT_MANY).await?,
        })
    }
}

impl Write {
    async fn run(
        &self,
        c: &tokio_postgres::Transaction<'_>,
        s: &Statements,
        replica: &str,
    ) -> Result<Done, tokio_postgres::Error> {
        match self {
            Write::Insert { e, now, until } => {
                let params = EventParams {
                    e,
                    now: *now,
                    until: *until,
                    replica,
                };
                Ok(Done::Inserted(
                    params.store(c, &s.insert, &s.existing).await?,
                ))
            }
            Write::Route { r, now, until } => {
                let mut rows = route_many(c, s, &[(&**r, *now, *until)], replica).await?;
                Ok(Done::Routed(rows.remove(&r.event_id).unwrap_or_default()))
            }
            Write::Complete { c: outcome, now } => {
                let updated = complete_many(c, s, std::iter::once((outcome, *now))).await?;
                Ok(Done::Completed(u64::from(
                    updated.contains(&outcome.parts().0),
                )))
            }
        }
    }
}

/// Takes the queued writes in batches until the store is dropped.
pub(super) async fn batcher(inner: Weak<Inner>, mut queue: mpsc::Receiver<Queued>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        Postgres { inner }.commit(&mut batch).await;
    }
}

impl Postgres {
    /// Queues a write and waits until it is committed (or failed).
    pub(super) async fn write(&self, write: Write) -> Result<Done, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .writes
            .send(Queued { write, reply })
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Commits `batch` (emptying it) and answers each of its writes.
    async fn commit(&self, batch: &mut Vec<Queued>) {
        let mut client = match self.client().await {
            Ok(c) => c,
            Err(e) => return fail(batch, e),
        };
        let replica = self.inner.replica.as_str();
        match commit_together(&mut client, batch, replica).await {
            Ok(done) => {
                self.inner.healthy.store(true, Ordering::Relaxed);
                for (q, d) in batch.drain(..).zip(done) {
                    let _ = q.reply.send(Ok(d));
                }
            }
            Err(e) if e.as_db_error().is_some() && batch.len() > 1 => {
                tracing::debug!(
                    writes = batch.len(),
                    error = %pg_error(e),
                    "a batched write was refused; committing each on its own"
                );
                for q in batch.drain(..) {
                    let alone: Result<Done, tokio_postgres::Error> = async {
                        let s = Statements::prepare(&client).await?;
                        let tx = client.transaction().await?;
                        let done = q.write.run(&tx, &s, replica).await?;
                        tx.commit().await?;
                        Ok(done)
                    }
                    .await;
                    let _ = q.reply.send(self.seen(alone));
                }
            }
            Err(e) => {
                let e = self.seen::<()>(Err(e)).err().unwrap_or(StoreError::Closed);
                fail(batch, e)
            }
        }
    }
}

/// Which of a batch's writes its shared statements take: one statement
/// may not insert or update a key twice, so only the first insert of each
/// body (hook and hash) and the first routing of each event go in them; a
/// repeat is written after them (a routing of an event already in the
/// statement, possible if unlikely after a lease ran out, in a statement
/// of its own).
struct Plan<'b> {
    /// Positions of the inserts in the statement for new events.
    firsts: HashSet<usize>,
    /// Positions of the routings in the statement for routings.
    first_routes: HashSet<usize>,
    /// Those routings, in batch order.
    routings: Vec<(&'b Routing, i64, i64)>,
    /// The other routings, in batch order.
    again: Vec<(&'b Routing, i64, i64)>,
}

impl<'b> Plan<'b> {
    fn of(batch: &'b [Queued]) -> Plan<'b> {
        let firsts = first_of_each(batch, |w| match w {
            Write::Insert { e, .. } => Some((e.hook.as_str(), &e.sha256[..])),
            _ => None,
        });
        let first_routes = first_of_each(batch, |w| match w {
            Write::Route { r, .. } => Some(r.event_id),
            _ => None,
        });
        let (mut routings, mut again) = (Vec::new(), Vec::new());
        for (i, q) in batch.iter().enumerate() {
            if let Write::Route { r, now, until } = &q.write {
                let to = if first_routes.contains(&i) {
                    &mut routings
                } else {
                    &mut again
                };
                to.push((&**r, *now, *until));
            }
        }
        Plan {
            firsts,
            first_routes,
            routings,
            again,
        }
    }
}

/// What the shared statements wrote, for [`answers`].
struct Written<'b> {
    /// The deliveries whose outcome was recorded (those still pending).
    updated: HashSet<i64>,
    /// The events stored, by hook and body hash.
    inserted: HashMap<(&'b str, &'b [u8]), i64>,
    /// Each routed event's rows, by event id.
    routed: HashMap<i64, Vec<Row>>,
    /// The rows of the plan's other routings, in its order.
    again: std::vec::IntoIter<Result<HashMap<i64, Vec<Row>>, tokio_postgres::Error>>,
}

/// The batch in one transaction: the outcomes in one statement, the new
/// events in another and the routings in a third, pipelined, then what
/// each write answers; committed.
async fn commit_together(
    client: &mut deadpool_postgres::Object,
    batch: &[Queued],
    replica: &str,
) -> Result<Vec<Done>, tokio_postgres::Error> {
    let s = Statements::prepare(client).await?;
    let tx = client.transaction().await?;
    let plan = Plan::of(batch);
    let outcomes = complete_many(
        &tx,
        &s,
        batch.iter().filter_map(|q| match &q.write {
            Write::Complete { c, now } => Some((c, *now)),
            _ => None,
        }),
    );
    let inserted = insert_many(&tx, &s, batch, &plan.firsts, replica);
    let routed = route_many(&tx, &s, &plan.routings, replica);
    let again = plan
        .again
        .iter()
        .map(|routing| route_many(&tx, &s, std::slice::from_ref(routing), replica));
    let (updated, inserted, routed, again) = futures_util::future::join4(
        outcomes,
        inserted,
        routed,
        futures_util::future::join_all(again),
    )
    .await;
    let written = Written {
        updated: updated?,
        inserted: inserted?,
        routed: routed?,
        again: again.into_iter(),
    };
    let done = answers(&tx, &s, batch, &plan, written, replica).await?;
    tx.commit().await?;
    Ok(done)
}

/// What each write of the batch answers, in its order, from what the
/// shared statements wrote; an insert left out of them (a sender retry, a
/// repeat within the batch) is looked up or stored now.
async fn answers(
    tx: &tokio_postgres::Transaction<'_>,
    s: &Statements,
    batch: &[Queued],
    plan: &Plan<'_>,
    mut written: Written<'_>,
    replica: &str,
) -> Result<Vec<Done>, tokio_postgres::Error> {
    let mut done = Vec::with_capacity(batch.len());
    for (i, q) in batch.iter().enumerate() {
        done.push(match &q.write {
            Write::Complete { c, .. } => {
                Done::Completed(u64::from(written.updated.contains(&c.parts().0)))
            }
            Write::Route { r, .. } if plan.first_routes.contains(&i) => {
                Done::Routed(written.routed.remove(&r.event_id).unwrap_or_default())
            }
            Write::Route { r, .. } => Done::Routed(
                written
                    .again
                    .next()
                    .transpose()?
                    .and_then(|mut rows| rows.remove(&r.event_id))
                    .unwrap_or_default(),
            ),
            Write::Insert { e, now, until } => {
                let params = EventParams {
                    e,
                    now: *now,
                    until: *until,
                    replica,
                };
                let stored = written.inserted.get(&(e.hook.as_str(), &e.sha256[..]));
                match stored {
                    // Stored by the statement for the batch.
                    Some(id) if plan.firsts.contains(&i) => Done::Inserted(Some(Inserted {
                        id: *id,
                        duplicate: false,
                    })),
                    // Its body is within its window from before the
                    // batch: a sender retry.
                    _ if plan.firsts.contains(&i) => {
                        Done::Inserted(params.find(tx, &s.existing).await?)
                    }
                    // A repeat of a body earlier in the batch: found (or
                    // stored) after that one.
                    _ => Done::Inserted(params.store(tx, &s.insert, &s.existing).await?),
                }
            }
        });
    }
    Ok(done)
}

/// The new events of a batch in one statement: each body's dedup window
/// and its event, as [`INSERT_EVENT`] does for one. A body within its
/// window on its hook (a sender retry) comes back without an id. Whether a
/// window has ended is decided at the batch's latest receipt time, a few
/// milliseconds at most after the event's own.
const INSERT_MANY: &str = "WITH u AS (
        SELECT * FROM UNNEST($1::TEXT[], $2::BYTEA[], $3::BIGINT[], $4::BIGINT[], $5::BYTEA[], $6::TEXT[], $7::TEXT[],
                             $8::TEXT[], $9::BIGINT[], $10::TEXT[], $11::TEXT[], $12::TEXT[])
        AS u(hook, sha, until, now, body, kind, action, short_id, claimed_until, alert_uuid, client, auth)),
     d AS (
        INSERT INTO event_dedup (hook, body_sha256, event_id, until)
        SELECT hook, sha, nextval('events_id_seq'), until FROM u
        ON CONFLICT (hook, body_sha256) DO UPDATE
        SET event_id = excluded.event_id, until = excluded.until
        WHERE event_dedup.until <= $14
        RETURNING hook, body_sha256, event_id)
     INSERT INTO events (id, hook, received_at, body_sha256, body, kind, action, short_id, state, claimed_by, claimed_until, alert_uuid, client, auth)
     SELECT d.event_id, u.hook, u.now, u.sha, u.body, u.kind, u.action, u.short_id, 'received', $13, u.claimed_until, u.alert_uuid, u.client, u.auth
     FROM d JOIN u ON u.hook = d.hook AND u.sha = d.body_sha256
     RETURNING id, hook, body_sha256";

/// The positions in `batch` of the first write of each key (`key` is
/// `None` for writes of another kind): one statement may not insert or
/// update a key twice, so a repeat within the batch (the same body on the
/// same hook, or the same event routed twice) is written after it.
fn first_of_each<'b, K: std::hash::Hash + Eq>(
    batch: &'b [Queued],
    key: impl Fn(&'b Write) -> Option<K>,
) -> std::collections::HashSet<usize> {
    let mut seen = std::collections::HashSet::new();
    batch
        .iter()
        .enumerate()
        .filter(|(_, q)| key(&q.write).is_some_and(|k| seen.insert(k)))
        .map(|(i, _)| i)
        .collect()
}

/// Stores the events at `firsts` with one statement; answers the ids of
/// those stored, by hook and body hash.
async fn insert_many<'b>(
    tx: &tokio_postgres::Transaction<'_>,
    s: &Statements,
    batch: &'b [Queued],
    firsts: &std::collections::HashSet<usize>,
    replica: &str,
) -> Result<std::collections::HashMap<(&'b str, &'b [u8]), i64>, tokio_postgres::Error> {
    let events: Vec<(&NewEvent, i64, i64)> = batch
        .iter()
        .enumerate()
        .filter(|(i, _)| firsts.contains(i))
        .filter_map(|(_, q)| match &q.write {
            Write::Insert { e, now, until } => Some((&**e, *now, *until)),
            _ => None,
        })
        .collect();
    if events.is_empty() {
        return Ok(Default::default());
    }
    let col = |f: fn(&NewEvent) -> Option<&str>| -> Vec<Option<&str>> {
        events.iter().map(|(e, _, _)| f(e)).collect()
    };
    let hooks = col(|e| Some(e.hook.as_str()));
    let shas: Vec<&[u8]> = events.iter().map(|(e, _, _)| &e.sha256[..]).collect();
    let untils: Vec<i64> = events
        .iter()
        .map(|(e, now, _)| now + e.dedup_window_ms)
        .collect();
    let nows: Vec<i64> = events.iter().map(|(_, now, _)| *now).collect();
    let bodies: Vec<&[u8]> = events.iter().map(|(e, _, _)| &e.body[..]).collect();
    let leases: Vec<i64> = events.iter().map(|(_, _, until)| *until).collect();
    let latest = nows.iter().copied().max().unwrap_or(0);
    let rows = tx
        .query(
            &s.insert_many,
            &[
                &hooks,
                &shas,
                &untils,
                &nows,
                &bodies,
                &col(|e| Some(e.kind.as_str())),
                &col(|e| Some(e.action.as_str())),
                &col(|e| e.short_id.as_deref()),
                &leases,
                &col(|e| e.alert_uuid.as_deref()),
                &col(|e| e.client.as_deref()),
                &col(|e| e.auth.as_deref()),
                &replica,
                &latest,
            ],
        )
        .await?;
    let index: std::collections::HashMap<(&str, &[u8]), usize> = events
        .iter()
        .enumerate()
        .map(|(i, (e, _, _))| ((e.hook.as_str(), &e.sha256[..]), i))
        .collect();
    // Keyed by the batch's own strings (the rows' are copies).
    let mut out = std::collections::HashMap::with_capacity(rows.len());
    for row in &rows {
        let (id, hook, sha): (i64, &str, &[u8]) = (row.get(0), row.get(1), row.get(2));
        if let Some(&i) = index.get(&(hook, sha)) {
            let e = events[i].0;
            out.insert((e.hook.as_str(), &e.sha256[..]), id);
        }
    }
    Ok(out)
}

/// Records `routings` (each `(routing, now, lease until)`, an event at
/// most once) with one [`ROUTE_EVENTS`] statement; answers each routed
/// event's rows by its id (none for an event routed already).
async fn route_many(
    c: &tokio_postgres::Transaction<'_>,
    s: &Statements,
    routings: &[(&Routing, i64, i64)],
    replica: &str,
) -> Result<std::collections::HashMap<i64, Vec<Row>>, tokio_postgres::Error> {
    if routings.is_empty() {
        return Ok(Default::default());
    }
    let (mut ids, mut enrichment, mut alerts, mut routes) = (vec![], vec![], vec![], vec![]);
    let (mut nows, mut untils, mut titles, mut targets) = (vec![], vec![], vec![], vec![]);
    // One entry per delivery, across the events.
    let (mut event, mut route, mut destination, mut payload) = (vec![], vec![], vec![], vec![]);
    let (mut state, mut note, mut summary, mut thread_key) = (vec![], vec![], vec![], vec![]);
    let (mut outcome, mut status, mut duration, mut next) = (vec![], vec![], vec![], vec![]);
    let mut thread = vec![];
    for &(r, now, until) in routings {
        ids.push(r.event_id);
        enrichment.push(r.enrichment.as_str());
        alerts.push(r.alert_json.as_deref());
        routes.push(r.routes_json());
        nows.push(now);
        untils.push(until);
        titles.push(r.title.as_deref());
        targets.push(r.deliveries.len() as i32);
        for d in &r.deliveries {
            event.push(r.event_id);
            route.push(d.route.as_str());
            destination.push(d.destination.as_str());
            payload.push(d.payload.as_str());
            // A first attempt made before the routing (see `NewDelivery::first`).
            let first = d.first.as_ref();
            state.push(match first {
                Some(f) => f.state().as_str(),
                None if d.failed.is_some() => DeliveryState::Dead.as_str(),
                None if d.muted.is_some() => DeliveryState::Muted.as_str(),
                None => DeliveryState::Pending.as_str(),
            });
            note.push(match first {
                Some(f) => f.parts().1,
                None => d.failed.as_deref().or(d.muted.as_deref()),
            });
            summary.push(d.summary.as_deref());
            thread_key.push(d.thread_key.as_deref());
            outcome.push(first.map(Attempted::outcome));
            status.push(first.and_then(|f| f.parts().0.map(i64::from)));
            duration.push(first.map(|f| f.parts().2));
            next.push(match first {
                Some(f) => f.next_attempt_at(),
                None => d.in_flight_until,
            });
            thread.push(first.and_then(Attempted::thread));
        }
    }
    let rows = c
        .query(
            &s.route,
            &[
                &ids,
                &enrichment,
                &alerts,
                &routes,
                &nows,
                &untils,
                &titles,
                &targets,
                &replica,
                &event,
                &route,
                &destination,
                &payload,
                &state,
                &note,
                &summary,
                &thread_key,
                &outcome,
                &status,
                &duration,
                &next,
                &thread,
            ],
        )
        .await?;
    let mut by_event: std::collections::HashMap<i64, Vec<Row>> =
        std::collections::HashMap::with_capacity(routings.len());
    for row in rows {
        by_event.entry(row.get(7)).or_default().push(row);
    }
    Ok(by_event)
}

/// Records every outcome in `batch` with one statement; answers the ids of
/// the deliveries it updated (those still pending).
async fn complete_many<'a>(
    tx: &tokio_postgres::Transaction<'_>,
    s: &Statements,
    outcomes: impl Iterator<Item = (&'a Completion, i64)>,
) -> Result<std::collections::HashSet<i64>, tokio_postgres::Error> {
    let (mut ids, mut at, mut status, mut error, mut duration) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut outcome, mut next, mut thread) = (Vec::new(), Vec::new(), Vec::new());
    for (c, now) in outcomes {
        let (id, st, err, dur) = c.parts();
        ids.push(id);
        at.push(now);
        status.push(st.map(i64::from));
        error.push(err);
        duration.push(dur);
        let (o, n, t) = match c {
            Completion::Delivered { thread, .. } => ("delivered", 0, thread.as_deref()),
            Completion::Retry {
                next_attempt_at, ..
            } => ("retry", *next_attempt_at, None),
            Completion::Dead { .. } => ("dead", 0, None),
        };
        outcome.push(o);
        next.push(n);
        thread.push(t);
    }
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let rows = tx
        .query(
            &s.complete_many,
            &[
                &ids, &at, &status, &error, &duration, &outcome, &next, &thread,
            ],
        )
        .await?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

fn fail(batch: &mut Vec<Queued>, e: StoreError) {
    for q in batch.drain(..) {
        let _ = q.reply.send(Err(e.clone()));
    }
}
