//! The writes of the hot path as they are queued to the batcher
//! (`batch`), and what each answers once committed.

use crate::store::{Completion, Inserted, NewEvent, Routing, StoreError};
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio_postgres::Row;

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
