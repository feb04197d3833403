//! The handle on the shared database (`Postgres`): its connection pool,
//! whether the database is usable now and why not, the query helpers every
//! operation goes through, and the scrubbing of text PostgreSQL cannot
//! hold. Built by `open` in the folder's `mod.rs`.

use super::write::Queued;
use crate::store::{Attempted, Completion, NewEvent, Routing, StoreError};
use deadpool_postgres::Pool;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

/// A handle on the shared database; cheap to clone.
#[derive(Clone)]
pub struct Postgres {
    pub(super) inner: Arc<Inner>,
}

pub(super) struct Inner {
    pub(super) pool: Pool,
    /// This replica's name in `claimed_by`.
    pub(super) replica: String,
    pub(super) lease: Duration,
    pub(super) max_pending: u64,
    /// Connected and migrated: operations may run.
    pub(super) migrated: AtomicBool,
    /// The last operation or probe reached the database.
    pub(super) healthy: AtomicBool,
    /// Why the database is not usable, for errors and logs.
    pub(super) last_error: Mutex<String>,
    /// Undelivered events + deliveries, cluster-wide, as last counted, and
    /// what this replica added (or finished) since that count began: the
    /// sum is what `max_pending` is checked against. (Changes between the
    /// reset and the count's snapshot are counted twice: an over-estimate,
    /// never an under-estimate.)
    pub(super) counted: AtomicU64,
    pub(super) delta: AtomicI64,
    /// Where the database is (no credentials), for messages.
    pub(super) target: String,
    /// `NOTIFY hookrelay` payloads from any replica (a destination name, or
    /// empty for every destination), relayed by the listener task.
    pub(super) wake: tokio::sync::broadcast::Sender<String>,
    /// The hot path's writes, committed in batches (`batch`).
    pub(super) writes: tokio::sync::mpsc::Sender<Queued>,
}

/// The channel replicas wake each other on.
pub(super) const CHANNEL: &str = "hookrelay";

pub(super) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    // A server error carries its own message; the rest (I/O, closed) is
    // the connection. Neither includes the URL or its password.
    match e.as_db_error() {
        Some(db) => StoreError::Unavailable(format!("PostgreSQL: {}", db.message())),
        None => StoreError::Unavailable(format!("PostgreSQL connection: {}", explain(&e))),
    }
}

impl Postgres {
    pub fn healthy(&self) -> bool {
        self.inner.migrated.load(Ordering::Relaxed) && self.inner.healthy.load(Ordering::Relaxed)
    }

    pub fn lease(&self) -> Duration {
        self.inner.lease
    }

    /// Wake-ups sent by any replica (see [`Inner::wake`]).
    pub fn wakeups(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.inner.wake.subscribe()
    }

    /// Waits until the database is connected and migrated, or fails with
    /// the reason it is not.
    pub async fn wait_ready(&self, wait: Duration) -> Result<(), StoreError> {
        let deadline = tokio::time::Instant::now() + wait;
        while !self.inner.migrated.load(Ordering::Relaxed) {
            if tokio::time::Instant::now() >= deadline {
                return Err(StoreError::Open(format!(
                    "store.url: cannot use PostgreSQL at {}: {}",
                    self.inner.target,
                    self.inner.last_error()
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    pub(super) fn lease_until(&self, now: i64) -> i64 {
        now + self.inner.lease.as_millis() as i64
    }

    /// A connection, once the database is ready. While it is known to be
    /// unreachable this fails at once (senders get their 503 without
    /// waiting); the keeper's probe notices its return within a second.
    pub(super) async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        if !self.inner.migrated.load(Ordering::Relaxed)
            || !self.inner.healthy.load(Ordering::Relaxed)
        {
            return Err(StoreError::Unavailable(format!(
                "the database is not reachable: {}",
                self.inner.last_error()
            )));
        }
        match self.inner.pool.get().await {
            Ok(c) => Ok(c),
            Err(e) => {
                let text = explain(&e);
                self.inner.failed(&text);
                Err(StoreError::Unavailable(format!(
                    "cannot reach PostgreSQL: {text}"
                )))
            }
        }
    }

    /// Notes the outcome of an operation for readiness.
    pub(super) fn seen<T>(&self, r: Result<T, tokio_postgres::Error>) -> Result<T, StoreError> {
        match r {
            Ok(v) => {
                self.inner.healthy.store(true, Ordering::Relaxed);
                Ok(v)
            }
            Err(e) => {
                if e.as_db_error().is_none() {
                    self.inner.failed(&explain(&e));
                }
                Err(pg_error(e))
            }
        }
    }

    pub(super) async fn query(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let r = async {
            let stmt = client.prepare_cached(sql).await?;
            client.query(&stmt, params).await
        }
        .await;
        self.seen(r)
    }

    pub(super) async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let r = async {
            let stmt = client.prepare_cached(sql).await?;
            client.execute(&stmt, params).await
        }
        .await;
        self.seen(r)
    }
}

impl Inner {
    pub(super) fn pending(&self) -> u64 {
        let n = self.counted.load(Ordering::Relaxed) as i64 + self.delta.load(Ordering::Relaxed);
        n.max(0) as u64
    }

    pub(super) fn last_error(&self) -> String {
        self.last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub(super) fn failed(&self, text: &str) {
        self.healthy.store(false, Ordering::Relaxed);
        *self.last_error.lock().unwrap_or_else(|p| p.into_inner()) = text.to_owned();
    }
}

/// PostgreSQL's text cannot hold a NUL character (SQLite's can): one in an
/// alert's title or status, a webhook's short id, a chat service's error or
/// an action's detail would make every attempt to store it fail. Text bound
/// for PostgreSQL carries U+FFFD in its place, as undecodable bytes are
/// shown elsewhere. Each write that stores text from outside scrubs it.
pub(super) fn scrub<'a>(
    texts: impl IntoIterator<Item = &'a mut String>,
    options: impl IntoIterator<Item = &'a mut Option<String>>,
) {
    for s in texts.into_iter().chain(options.into_iter().flatten()) {
        if s.contains('\0') {
            *s = s.replace('\0', "\u{FFFD}");
        }
    }
}

pub(super) fn scrub_event(e: &mut NewEvent) {
    let id = e.message_id.as_mut().map(|(id, _)| id);
    scrub(
        [&mut e.hook, &mut e.kind, &mut e.action]
            .into_iter()
            .chain(id),
        [
            &mut e.short_id,
            &mut e.alert_uuid,
            &mut e.client,
            &mut e.auth,
        ],
    );
}

pub(super) fn scrub_routing(r: &mut Routing) {
    scrub([&mut r.enrichment], [&mut r.alert_json, &mut r.title]);
    for d in &mut r.deliveries {
        let key = d.dedup.as_mut().map(|(key, _)| key);
        scrub(
            [&mut d.route, &mut d.destination, &mut d.payload]
                .into_iter()
                .chain(key),
            [
                &mut d.failed,
                &mut d.muted,
                &mut d.summary,
                &mut d.thread_key,
            ],
        );
        // A first attempt made before the routing: a chat service's error.
        if let Some(error) = d.first.as_mut().and_then(Attempted::error_mut) {
            scrub([error], []);
        }
    }
}

pub(super) fn scrub_completion(c: &mut Completion) {
    match c {
        Completion::Delivered { thread, .. } => scrub([], [thread]),
        Completion::Retry { error, .. } | Completion::Dead { error, .. } => scrub([error], []),
    }
}

/// An error with its causes ("error performing TLS handshake: invalid peer
/// certificate: UnknownIssuer"), and what to do about a certificate the
/// roots do not trust. No part of it carries the URL or its password.
pub(super) fn explain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    if text.contains("UnknownIssuer") || text.contains("certificate") {
        text.push_str(
            " (is the server's certificate from a private CA? set store.ca_file to its PEM file)",
        );
    }
    text
}
