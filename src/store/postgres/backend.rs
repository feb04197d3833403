//! The store's operations on PostgreSQL: each one the async method of
//! `Postgres` of the same name (in the file of its concern: `events`,
//! `deliveries`, `cluster`, `reads`, `console`, `tenants`), its future
//! boxed. (Inside this impl, `self.x(…)` is that inherent method: Rust
//! prefers an inherent method to a trait's of the same name.)

use super::Postgres;
use crate::store::backend::{Answer, Backend};
use crate::store::console::{Activity, DeadFilter, EventFilter, EventPage};
use crate::store::{
    ActionRecord, ClockCheck, Cluster, Completion, DeadLetter, DueDelivery, EventDetail,
    EventSummary, HookClock, Inserted, NewDigest, NewEvent, QueueDepth, RenderSource, Routing,
    Selector, Silence, StoreError, StoredTenant, TenantChange, ThreadRoot, Unrouted, UnroutedEvent,
};
use std::path::Path;
use std::time::Duration;

/// How long a sender's request waits for the database to store its event
/// before it is answered 503.
const INSERT_TIMEOUT: Duration = Duration::from_secs(10);

impl Backend for Postgres {
    fn path(&self) -> Option<&Path> {
        None
    }

    fn cluster(&self) -> Option<Cluster> {
        Some(Cluster(self.clone()))
    }

    fn healthy(&self) -> bool {
        self.healthy()
    }

    fn wait_ready(&self, wait: Duration) -> Answer<'_, ()> {
        Answer::boxed(self.wait_ready(wait))
    }

    fn insert_event(&self, event: NewEvent) -> Answer<'_, Inserted> {
        // A sender waits on this one: a database that stops answering (a
        // lock, a stalled disk) is a 503 it can retry, not a hang. Should
        // the insert commit after all, the retry is recognised by the
        // dedup window.
        Answer::boxed(async move {
            tokio::time::timeout(INSERT_TIMEOUT, self.insert_event(event))
                .await
                .map_err(|_| {
                    StoreError::Unavailable(format!(
                        "the database did not store the event within {} s",
                        INSERT_TIMEOUT.as_secs()
                    ))
                })?
        })
    }

    fn record_routing(&self, routing: Routing) -> Answer<'_, Option<Vec<DueDelivery>>> {
        Answer::boxed(self.record_routing(routing))
    }

    fn complete(&self, completion: Completion) -> Answer<'_, ()> {
        Answer::boxed(self.complete(completion))
    }

    fn replay(&self, selector: Selector) -> Answer<'_, usize> {
        Answer::boxed(self.replay(selector))
    }

    fn orphan_destination(&self, destination: String, reason: String) -> Answer<'_, usize> {
        Answer::boxed(async move { self.orphan(&destination, &reason).await })
    }

    fn prune(&self, before: i64) -> Answer<'_, usize> {
        Answer::boxed(self.prune(before))
    }

    fn hold(&self, ids: Vec<i64>) -> Answer<'_, ()> {
        Answer::boxed(async move { self.hold(&ids).await })
    }

    fn digest(&self, digest: NewDigest) -> Answer<'_, DueDelivery> {
        Answer::boxed(self.digest(digest))
    }

    /// Claimed for this replica (a lease).
    fn due<'a>(
        &'a self,
        destination: &'a str,
        now: i64,
        after_id: i64,
        limit: usize,
    ) -> Answer<'a, Vec<DueDelivery>> {
        Answer::boxed(self.claim_due(destination, now, after_id, limit))
    }

    fn unrouted_after(
        &self,
        after_id: i64,
        limit: usize,
        which: Unrouted,
    ) -> Answer<'_, Vec<UnroutedEvent>> {
        let own = which == Unrouted::Backlog;
        Answer::boxed(self.claim_unrouted(after_id, limit, own))
    }

    fn held<'a>(
        &'a self,
        destination: &'a str,
        limit: usize,
    ) -> Answer<'a, Vec<(i64, Option<String>)>> {
        Answer::boxed(self.held(destination, limit))
    }

    fn thread_ready(&self, id: i64) -> Answer<'_, bool> {
        Answer::boxed(self.thread_ready(id))
    }

    fn thread_root<'a>(
        &'a self,
        destination: &'a str,
        alert: &'a str,
    ) -> Answer<'a, Option<ThreadRoot>> {
        Answer::boxed(self.thread_root(destination, alert))
    }

    fn set_thread<'a>(
        &'a self,
        destination: &'a str,
        alert: &'a str,
        root: ThreadRoot,
    ) -> Answer<'a, ()> {
        Answer::boxed(self.set_thread(destination, alert, root))
    }

    fn clock_seen<'a>(&'a self, hook: &'a str, seen: i64) -> Answer<'a, Option<i64>> {
        Answer::boxed(self.clock_seen(hook, seen))
    }

    fn clock_check<'a>(
        &'a self,
        hook: &'a str,
        now: i64,
        within_ms: i64,
    ) -> Answer<'a, ClockCheck> {
        Answer::boxed(self.clock_check(hook, now, within_ms))
    }

    fn clocks(&self) -> Answer<'_, Vec<HookClock>> {
        Answer::boxed(self.clocks())
    }

    fn start_action(&self, record: ActionRecord, nonce: Option<String>) -> Answer<'_, Option<i64>> {
        Answer::boxed(async move { self.start_action(record, nonce.as_deref()).await })
    }

    fn finish_action<'a>(
        &'a self,
        id: i64,
        result: &'a str,
        detail: Option<String>,
    ) -> Answer<'a, ()> {
        Answer::boxed(self.finish_action(id, result, detail))
    }

    fn actions_for<'a>(&'a self, alert: &'a str) -> Answer<'a, Vec<ActionRecord>> {
        Answer::boxed(self.actions_for(alert))
    }

    fn add_silence(&self, silence: Silence) -> Answer<'_, i64> {
        Answer::boxed(self.add_silence(silence))
    }

    fn expire_silence(&self, id: i64, now: i64) -> Answer<'_, bool> {
        Answer::boxed(self.expire_silence(id, now))
    }

    fn silences(&self, active_at: Option<i64>) -> Answer<'_, Vec<Silence>> {
        Answer::boxed(self.silences(active_at))
    }

    fn queue_depths(&self) -> Answer<'_, Vec<QueueDepth>> {
        Answer::boxed(self.queue_depths())
    }

    fn dead_letters(&self, destination: Option<String>) -> Answer<'_, Vec<DeadLetter>> {
        Answer::boxed(async move { self.dead_letters(destination.as_deref()).await })
    }

    fn events_since(
        &self,
        since: i64,
        hook: Option<String>,
        limit: Option<usize>,
    ) -> Answer<'_, Vec<EventSummary>> {
        Answer::boxed(async move { self.summaries(since, hook.as_deref(), None, limit).await })
    }

    fn event_detail(&self, id: i64) -> Answer<'_, Option<EventDetail>> {
        Answer::boxed(self.event_detail(id))
    }

    fn render_source(&self, delivery_id: i64) -> Answer<'_, Option<RenderSource>> {
        Answer::boxed(self.render_source(delivery_id))
    }

    fn events_page(&self, filter: EventFilter) -> Answer<'_, EventPage> {
        Answer::boxed(async move { self.events_page(&filter).await })
    }

    fn activity(
        &self,
        hooks: Vec<String>,
        destinations: Vec<String>,
        hour: i64,
        day: i64,
    ) -> Answer<'_, Activity> {
        Answer::boxed(async move { self.activity(&hooks, &destinations, hour, day).await })
    }

    fn dead_page(&self, filter: DeadFilter) -> Answer<'_, Vec<DeadLetter>> {
        Answer::boxed(async move { self.dead_page(&filter).await })
    }

    fn console_salt(&self, candidate: Vec<u8>) -> Answer<'_, Vec<u8>> {
        Answer::boxed(async move { self.console_salt(&candidate).await })
    }

    fn end_console_sessions(&self) -> Answer<'_, i64> {
        Answer::boxed(self.end_console_sessions())
    }

    fn console_epoch(&self) -> Answer<'_, i64> {
        Answer::boxed(self.console_epoch())
    }

    fn put_tenant(&self, tenant: StoredTenant, change: TenantChange) -> Answer<'_, bool> {
        Answer::boxed(async move { self.put_tenant(&tenant, &change).await })
    }

    fn delete_tenant(&self, change: TenantChange) -> Answer<'_, bool> {
        Answer::boxed(async move { self.delete_tenant(&change).await })
    }

    fn tenants(&self) -> Answer<'_, Vec<StoredTenant>> {
        Answer::boxed(self.tenants())
    }

    fn tenants_version(&self) -> Answer<'_, i64> {
        Answer::boxed(self.tenants_version())
    }
}
