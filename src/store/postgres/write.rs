//! The writes of the hot path as they are queued to the batcher
//! (`batch`), and what each answers once committed; the statements that
//! store one event, shared by the batch and an insert of its own.

use crate::store::{Completion, Inserted, NewEvent, Routing, StoreError};
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio_postgres::{GenericClient, Row, Statement};

/// One write of the hot path.
pub(super) enum Write {
    /// An event without a webhook id to record, with room in the spool.
    Insert {
        e: Box<NewEvent>,
        now: i64,
        until: i64,
    },
    /// A routing without route dedup windows to settle.
    Route {
        r: Arc<Routing>,
        now: i64,
        until: i64,
    },
    /// A delivery attempt's outcome.
    Complete { c: Completion, now: i64 },
}

/// What a write returns once committed.
pub(super) enum Done {
    /// `None`: a sender retry whose window closed while it was checked.
    Inserted(Option<Inserted>),
    /// `ROUTE_EVENTS`' rows for the event: none when it was routed already.
    Routed(Vec<Row>),
    /// Rows changed: 0 when the delivery was no longer pending.
    Completed(u64),
}

/// A write and whom to answer once it is committed.
pub(super) struct Queued {
    pub(super) write: Write,
    pub(super) reply: oneshot::Sender<Result<Done, StoreError>>,
}

/// Stores an event unless its body was seen on its hook within the dedup
/// window: the window's row (whose primary key makes a sender retry that
/// reaches two replicas at once wait for the first) and the event, in one
/// statement.
pub(super) const INSERT_EVENT: &str = "WITH d AS (
        INSERT INTO event_dedup (hook, body_sha256, event_id, until)
        VALUES ($1, $2, nextval('events_id_seq'), $3)
        ON CONFLICT (hook, body_sha256) DO UPDATE
        SET event_id = excluded.event_id, until = excluded.until
        WHERE event_dedup.until <= $4
        RETURNING event_id)
     INSERT INTO events (id, hook, received_at, body_sha256, body, kind, action, short_id, state, claimed_by, claimed_until, alert_uuid, client, auth)
     SELECT event_id, $1, $4, $2, $5, $6, $7, $8, 'received', $9, $10, $11, $12, $13 FROM d
     RETURNING id";

/// The event a body within its dedup window was stored as.
/// It is counted as a sender retry (the console shows how many).
pub(super) const EXISTING_EVENT: &str = "WITH f AS (
        SELECT event_id FROM event_dedup WHERE hook = $1 AND body_sha256 = $2 AND until > $3),
     u AS (UPDATE events SET retries = retries + 1 WHERE id IN (SELECT event_id FROM f))
     SELECT event_id FROM f";

/// One event's values for [`INSERT_EVENT`] and [`EXISTING_EVENT`].
pub(super) struct EventParams<'a> {
    pub(super) e: &'a NewEvent,
    pub(super) now: i64,
    pub(super) until: i64,
    pub(super) replica: &'a str,
}

impl EventParams<'_> {
    /// Stores the event, or finds the one a sender retry repeats. `None`:
    /// the retry's window closed between the two statements.
    pub(super) async fn store(
        &self,
        c: &impl GenericClient,
        insert: &Statement,
        existing: &Statement,
    ) -> Result<Option<Inserted>, tokio_postgres::Error> {
        let e = self.e;
        let row = c
            .query_opt(
                insert,
                &[
                    &e.hook,
                    &&e.sha256[..],
                    &(self.now + e.dedup_window_ms),
                    &self.now,
                    &e.body,
                    &e.kind,
                    &e.action,
                    &e.short_id,
                    &self.replica,
                    &self.until,
                    &e.alert_uuid,
                    &e.client,
                    &e.auth,
                ],
            )
            .await?;
        match row {
            Some(row) => Ok(Some(Inserted {
                id: row.get(0),
                duplicate: false,
            })),
            None => self.find(c, existing).await,
        }
    }

    /// The stored event this body repeats within its window, if any.
    pub(super) async fn find(
        &self,
        c: &impl GenericClient,
        existing: &Statement,
    ) -> Result<Option<Inserted>, tokio_postgres::Error> {
        let row = c
            .query_opt(existing, &[&self.e.hook, &&self.e.sha256[..], &self.now])
            .await?;
        Ok(row.map(|row| Inserted {
            id: row.get(0),
            duplicate: true,
        }))
    }
}
