//! The store's operations on SQLite: each write an operation for the
//! writer thread (answered after its group commit), each read a query on
//! a reader thread. One process holds the spool, so nothing is claimed and
//! there is no cluster state.

use super::{console, reads, writer::Op, Sqlite};
use crate::store::backend::{Answer, Backend};
use crate::store::console::{Activity, DeadFilter, EventFilter, EventPage};
use crate::store::{
    ActionRecord, ClockCheck, Cluster, Completion, DeadLetter, DueDelivery, EventDetail,
    EventSummary, HookClock, Inserted, NewDigest, NewEvent, QueueDepth, RenderSource, Routing,
    Selector, Silence, StoredTenant, TenantChange, ThreadRoot, Unrouted, UnroutedEvent,
};
use std::path::Path;
use std::time::Duration;

impl Backend for Sqlite {
    fn path(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn cluster(&self) -> Option<Cluster> {
        None
    }

    fn healthy(&self) -> bool {
        true
    }

    fn wait_ready(&self, _wait: Duration) -> Answer<'_, ()> {
        Answer::ready(Ok(()))
    }

    fn insert_event(&self, event: NewEvent) -> Answer<'_, Inserted> {
        self.call(|r| Op::Insert(event, r))
    }

    fn record_routing(&self, routing: Routing) -> Answer<'_, Option<Vec<DueDelivery>>> {
        self.call(|r| Op::Route(routing, r))
    }

    fn complete(&self, completion: Completion) -> Answer<'_, ()> {
        self.call(|r| Op::Complete(completion, r))
    }

    fn replay(&self, selector: Selector) -> Answer<'_, usize> {
        self.call(|r| Op::Replay(selector, r))
    }

    fn orphan_destination(&self, destination: String, reason: String) -> Answer<'_, usize> {
        self.call(|r| Op::Orphan(destination, reason, r))
    }

    fn prune(&self, before: i64) -> Answer<'_, usize> {
        self.call(|r| Op::Prune(before, r))
    }

    fn hold(&self, ids: Vec<i64>) -> Answer<'_, ()> {
        self.call(|r| Op::Hold(ids, r))
    }

    fn digest(&self, digest: NewDigest) -> Answer<'_, DueDelivery> {
        self.call(|r| Op::Digest(digest, r))
    }

    fn due<'a>(
        &'a self,
        destination: &'a str,
        now: i64,
        after_id: i64,
        limit: usize,
    ) -> Answer<'a, Vec<DueDelivery>> {
        let name = destination.to_owned();
        self.read(move |c| reads::due(c, &name, now, after_id, limit))
    }

    /// Every unrouted event is this process's backlog: `which` does not
    /// matter.
    fn unrouted_after(
        &self,
        after_id: i64,
        limit: usize,
        _which: Unrouted,
    ) -> Answer<'_, Vec<UnroutedEvent>> {
        self.read(move |c| reads::unrouted_after(c, after_id, limit))
    }

    fn held<'a>(
        &'a self,
        destination: &'a str,
        limit: usize,
    ) -> Answer<'a, Vec<(i64, Option<String>)>> {
        let name = destination.to_owned();
        self.read(move |c| reads::held(c, &name, limit))
    }

    fn thread_ready(&self, id: i64) -> Answer<'_, bool> {
        self.read(move |c| reads::thread_ready(c, id))
    }

    fn thread_root<'a>(
        &'a self,
        destination: &'a str,
        alert: &'a str,
    ) -> Answer<'a, Option<ThreadRoot>> {
        let (d, a) = (destination.to_owned(), alert.to_owned());
        self.read(move |c| reads::thread_root(c, &d, &a))
    }

    fn set_thread<'a>(
        &'a self,
        destination: &'a str,
        alert: &'a str,
        root: ThreadRoot,
    ) -> Answer<'a, ()> {
        let (d, a) = (destination.to_owned(), alert.to_owned());
        self.call(|r| Op::SetThread(d, a, root, r))
    }

    fn clock_seen<'a>(&'a self, hook: &'a str, seen: i64) -> Answer<'a, Option<i64>> {
        let hook = hook.to_owned();
        self.call(|r| Op::ClockSeen(hook, seen, r))
    }

    fn clock_check<'a>(
        &'a self,
        hook: &'a str,
        now: i64,
        within_ms: i64,
    ) -> Answer<'a, ClockCheck> {
        let hook = hook.to_owned();
        self.call(|r| Op::ClockCheck(hook, now, within_ms, r))
    }

    fn clocks(&self) -> Answer<'_, Vec<HookClock>> {
        self.read(reads::clocks)
    }

    fn start_action(&self, record: ActionRecord, nonce: Option<String>) -> Answer<'_, Option<i64>> {
        self.call(|r| Op::StartAction(record, nonce, r))
    }

    fn finish_action<'a>(
        &'a self,
        id: i64,
        result: &'a str,
        detail: Option<String>,
    ) -> Answer<'a, ()> {
        let result = result.to_owned();
        self.call(|r| Op::FinishAction(id, result, detail, r))
    }

    fn actions_for<'a>(&'a self, alert: &'a str) -> Answer<'a, Vec<ActionRecord>> {
        let a = alert.to_owned();
        self.read(move |c| reads::actions_for(c, &a))
    }

    fn add_silence(&self, silence: Silence) -> Answer<'_, i64> {
        self.call(|r| Op::AddSilence(silence, r))
    }

    fn expire_silence(&self, id: i64, now: i64) -> Answer<'_, bool> {
        self.call(|r| Op::ExpireSilence(id, now, r))
    }

    fn silences(&self, active_at: Option<i64>) -> Answer<'_, Vec<Silence>> {
        self.read(move |c| reads::silences(c, active_at))
    }

    fn queue_depths(&self) -> Answer<'_, Vec<QueueDepth>> {
        self.read(reads::queue_depths)
    }

    fn dead_letters(&self, destination: Option<String>) -> Answer<'_, Vec<DeadLetter>> {
        self.read(move |c| reads::dead_letters(c, destination.as_deref()))
    }

    fn events_since(
        &self,
        since: i64,
        hook: Option<String>,
        limit: Option<usize>,
    ) -> Answer<'_, Vec<EventSummary>> {
        self.read(move |c| reads::events_since(c, since, hook.as_deref(), limit))
    }

    fn event_detail(&self, id: i64) -> Answer<'_, Option<EventDetail>> {
        self.read(move |c| reads::event_detail(c, id))
    }

    fn render_source(&self, delivery_id: i64) -> Answer<'_, Option<RenderSource>> {
        self.read(move |c| reads::render_source(c, delivery_id))
    }

    fn events_page(&self, filter: EventFilter) -> Answer<'_, EventPage> {
        self.read(move |c| console::events_page(c, &filter))
    }

    fn activity(
        &self,
        hooks: Vec<String>,
        destinations: Vec<String>,
        hour: i64,
        day: i64,
    ) -> Answer<'_, Activity> {
        self.read(move |c| console::activity(c, &hooks, &destinations, hour, day))
    }

    fn dead_page(&self, filter: DeadFilter) -> Answer<'_, Vec<DeadLetter>> {
        self.read(move |c| console::dead_page(c, &filter))
    }

    fn console_salt(&self, candidate: Vec<u8>) -> Answer<'_, Vec<u8>> {
        self.call(|r| Op::ConsoleSalt(candidate, r))
    }

    fn end_console_sessions(&self) -> Answer<'_, i64> {
        self.call(Op::EndConsoleSessions)
    }

    fn console_epoch(&self) -> Answer<'_, i64> {
        self.read(reads::console_epoch)
    }

    fn put_tenant(&self, tenant: StoredTenant, change: TenantChange) -> Answer<'_, bool> {
        self.call(|r| Op::PutTenant(tenant, change, r))
    }

    fn delete_tenant(&self, change: TenantChange) -> Answer<'_, bool> {
        self.call(|r| Op::DeleteTenant(change, r))
    }

    fn tenants(&self) -> Answer<'_, Vec<StoredTenant>> {
        self.read(reads::tenants)
    }

    fn tenants_version(&self) -> Answer<'_, i64> {
        self.read(reads::tenants_version)
    }
}
