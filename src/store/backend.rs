//! The seam between [`Store`](super::Store) and its two backends: every
//! operation the spool offers, as one object-safe trait that SQLite
//! (`sqlite::Sqlite`) and PostgreSQL (`postgres::Postgres`) implement, so
//! `Store` holds one `Arc<dyn Backend>` and never asks which.
//!
//! Each operation's meaning is documented once, on the `Store` method of
//! the same name; what differs between the backends (how a sender retry is
//! recognised, claims and leases) is in their own modules.
//!
//! An operation returns an [`Answer`], a future of its result. Most of
//! SQLite's operations are queued to a thread (the writer, a reader) and
//! answered on a oneshot channel: their answer is that channel's receiver
//! as is, so the seam costs no allocation on the hot path (an event's
//! insert, routing and outcomes). PostgreSQL's are async code whose future
//! is boxed: one small allocation per operation, against a network round
//! trip. (Native `async fn` in traits cannot be called through `dyn`, and
//! `async-trait` would box every operation, SQLite's too.)

use super::console::{Activity, DeadFilter, EventFilter, EventPage};
use super::{
    ActionRecord, ClockCheck, Cluster, Completion, DeadLetter, DueDelivery, EventDetail,
    EventSummary, HookClock, Inserted, NewDigest, NewEvent, QueueDepth, RenderSource, Routing,
    Selector, Silence, StoreError, StoredTenant, TenantChange, ThreadRoot, Unrouted, UnroutedEvent,
};
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::sync::oneshot;

/// The spool's operations, implemented by each backend. See the `Store`
/// method of the same name for what each one means.
pub(crate) trait Backend: Send + Sync {
    /// The SQLite file, when that is the backend.
    fn path(&self) -> Option<&Path>;
    /// The cluster-wide state, when replicas may share the spool.
    fn cluster(&self) -> Option<Cluster>;
    fn healthy(&self) -> bool;
    /// Ready now, or once connected and migrated within `wait`.
    fn wait_ready(&self, wait: Duration) -> Answer<'_, ()>;

    fn insert_event(&self, event: NewEvent) -> Answer<'_, Inserted>;
    fn record_routing(&self, routing: Routing) -> Answer<'_, Option<Vec<DueDelivery>>>;
    fn complete(&self, completion: Completion) -> Answer<'_, ()>;
    fn replay(&self, selector: Selector) -> Answer<'_, usize>;
    fn orphan_destination(&self, destination: String, reason: String) -> Answer<'_, usize>;
    /// Deletes finished events received before `before` (unix ms).
    fn prune(&self, before: i64) -> Answer<'_, usize>;
    fn hold(&self, ids: Vec<i64>) -> Answer<'_, ()>;
    fn digest(&self, digest: NewDigest) -> Answer<'_, DueDelivery>;
    fn due<'a>(
        &'a self,
        destination: &'a str,
        now: i64,
        after_id: i64,
        limit: usize,
    ) -> Answer<'a, Vec<DueDelivery>>;
    fn unrouted_after(
        &self,
        after_id: i64,
        limit: usize,
        which: Unrouted,
    ) -> Answer<'_, Vec<UnroutedEvent>>;
    fn held<'a>(
        &'a self,
        destination: &'a str,
        limit: usize,
    ) -> Answer<'a, Vec<(i64, Option<String>)>>;

    fn thread_ready(&self, id: i64) -> Answer<'_, bool>;
    fn thread_root<'a>(
        &'a self,
        destination: &'a str,
        alert: &'a str,
    ) -> Answer<'a, Option<ThreadRoot>>;
    fn set_thread<'a>(
        &'a self,
        destination: &'a str,
        alert: &'a str,
        root: ThreadRoot,
    ) -> Answer<'a, ()>;

    fn clock_seen<'a>(&'a self, hook: &'a str, seen: i64) -> Answer<'a, Option<i64>>;
    fn clock_check<'a>(&'a self, hook: &'a str, now: i64, within_ms: i64)
        -> Answer<'a, ClockCheck>;
    fn clocks(&self) -> Answer<'_, Vec<HookClock>>;

    fn start_action(&self, record: ActionRecord, nonce: Option<String>) -> Answer<'_, Option<i64>>;
    fn finish_action<'a>(
        &'a self,
        id: i64,
        result: &'a str,
        detail: Option<String>,
    ) -> Answer<'a, ()>;
    fn actions_for<'a>(&'a self, alert: &'a str) -> Answer<'a, Vec<ActionRecord>>;

    fn add_silence(&self, silence: Silence) -> Answer<'_, i64>;
    /// Ends silence `id` at `now`.
    fn expire_silence(&self, id: i64, now: i64) -> Answer<'_, bool>;
    fn silences(&self, active_at: Option<i64>) -> Answer<'_, Vec<Silence>>;

    fn queue_depths(&self) -> Answer<'_, Vec<QueueDepth>>;
    fn dead_letters(&self, destination: Option<String>) -> Answer<'_, Vec<DeadLetter>>;
    fn events_since(
        &self,
        since: i64,
        hook: Option<String>,
        limit: Option<usize>,
    ) -> Answer<'_, Vec<EventSummary>>;
    fn event_detail(&self, id: i64) -> Answer<'_, Option<EventDetail>>;
    fn render_source(&self, delivery_id: i64) -> Answer<'_, Option<RenderSource>>;

    fn events_page(&self, filter: EventFilter) -> Answer<'_, EventPage>;
    fn activity(
        &self,
        hooks: Vec<String>,
        destinations: Vec<String>,
        hour: i64,
        day: i64,
    ) -> Answer<'_, Activity>;
    fn dead_page(&self, filter: DeadFilter) -> Answer<'_, Vec<DeadLetter>>;
    fn console_salt(&self, candidate: Vec<u8>) -> Answer<'_, Vec<u8>>;
    fn end_console_sessions(&self) -> Answer<'_, i64>;
    fn console_epoch(&self) -> Answer<'_, i64>;

    fn put_tenant(&self, tenant: StoredTenant, change: TenantChange) -> Answer<'_, bool>;
    fn delete_tenant(&self, change: TenantChange) -> Answer<'_, bool>;
    fn tenants(&self) -> Answer<'_, Vec<StoredTenant>>;
    fn tenants_version(&self) -> Answer<'_, i64>;
}

/// The future of a backend operation's result.
pub(crate) struct Answer<'a, T>(Pending<'a, T>);

enum Pending<'a, T> {
    /// Queued to a thread, answered on this channel; a channel dropped
    /// unanswered means the error `lost` makes.
    Queued(oneshot::Receiver<Result<T, StoreError>>, fn() -> StoreError),
    /// Known at once (`None` once taken).
    Ready(Option<Result<T, StoreError>>),
    /// Async work of its own.
    Boxed(Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>),
}

impl<'a, T> Answer<'a, T> {
    /// The answer of work queued to a thread, which replies on `rx`.
    pub(crate) fn queued(
        rx: oneshot::Receiver<Result<T, StoreError>>,
        lost: fn() -> StoreError,
    ) -> Self {
        Answer(Pending::Queued(rx, lost))
    }

    pub(crate) fn ready(result: Result<T, StoreError>) -> Self {
        Answer(Pending::Ready(Some(result)))
    }

    pub(crate) fn boxed(work: impl Future<Output = Result<T, StoreError>> + Send + 'a) -> Self {
        Answer(Pending::Boxed(Box::pin(work)))
    }
}

// Nothing in an `Answer` is pinned structurally: the receiver and the box
// are `Unpin` whatever `T` is, and a ready result is only moved out.
impl<T> Unpin for Answer<'_, T> {}

impl<T> Future for Answer<'_, T> {
    type Output = Result<T, StoreError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Pending::Queued(rx, lost) => Pin::new(rx)
                .poll(cx)
                .map(|answer| answer.unwrap_or_else(|_| Err(lost()))),
            // Polled again after it completed: a misuse that answers an
            // error rather than panicking.
            Pending::Ready(result) => Poll::Ready(result.take().unwrap_or(Err(StoreError::Closed))),
            Pending::Boxed(work) => work.as_mut().poll(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn answers_come_from_the_channel_the_value_or_the_work() {
        let (tx, rx) = oneshot::channel();
        tx.send(Ok(1)).unwrap();
        assert_eq!(Answer::queued(rx, || StoreError::Closed).await.unwrap(), 1);
        // A worker that dropped the reply: the error the backend chose.
        let (tx, rx) = oneshot::channel::<Result<i32, StoreError>>();
        drop(tx);
        let lost = Answer::queued(rx, || StoreError::Unavailable("a spool read failed".into()));
        assert_eq!(
            lost.await.unwrap_err().to_string(),
            "the spool is unavailable: a spool read failed"
        );
        assert_eq!(Answer::ready(Ok(2)).await.unwrap(), 2);
        assert_eq!(Answer::boxed(async { Ok(3) }).await.unwrap(), 3);
    }
}
