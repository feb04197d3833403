//! What a spool shared by several replicas answers besides the store's
//! operations (claims, pauses, send windows, digest turns, wake-ups:
//! [`Cluster`], used through `crate::coord`), and the words of the
//! operations that differ when replicas share it (a sweep of unrouted
//! events, a silence check).

use super::error::StoreError;
use super::ops::HookClock;
use super::postgres::Postgres;
use std::time::Duration;

/// What a silence check found for one hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockCheck {
    pub clock: HookClock,
    /// This call started the silence: announce it (once, cluster-wide).
    pub went_silent: bool,
}

/// An event accepted and not routed yet: id, hook, body, when it was
/// received (unix ms).
pub type UnroutedEvent = (i64, String, Vec<u8>, i64);

/// Which unrouted events a sweep takes (with a shared spool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unrouted {
    /// Those nobody holds and this replica's own: its backlog (events it
    /// accepted but left to the spool).
    Backlog,
    /// Only those whose claim ran out: a dead replica's.
    Abandoned,
}

/// What a replica claims and renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claimed {
    Events,
    Deliveries,
}

/// A send window: at most `limit` sends in any `window_ms`, kept under
/// `name` per destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendWindow {
    pub name: &'static str,
    pub limit: u32,
    pub window_ms: i64,
}

/// The cluster-wide state in a shared database: claims, pauses, send
/// windows, digest turns, wake-ups. Used through [`crate::coord`].
#[derive(Clone)]
pub struct Cluster(pub(super) Postgres);

impl Cluster {
    /// How long a claim on work lasts without renewal.
    pub fn lease(&self) -> Duration {
        self.0.lease()
    }

    pub async fn renew(&self, what: Claimed, ids: Vec<i64>) -> Result<(), StoreError> {
        let table = match what {
            Claimed::Events => "events",
            Claimed::Deliveries => "deliveries",
        };
        self.0.renew(table, ids).await
    }

    pub async fn release(&self) -> Result<(), StoreError> {
        self.0.release().await
    }

    /// `NOTIFY hookrelay` payloads from every replica.
    pub fn wakeups(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.0.wakeups()
    }

    pub async fn pause(&self, destination: &str, until: i64) -> Result<(), StoreError> {
        self.0.pause(destination, until).await
    }

    pub async fn paused_until(&self, destination: &str) -> Result<Option<i64>, StoreError> {
        self.0.paused_until(destination).await
    }

    /// Takes one send from every window at once, or from none: `None` when
    /// taken, else the first full window's name and the ms until it has room.
    pub async fn take_slots(
        &self,
        destination: &str,
        windows: &[SendWindow],
    ) -> Result<Option<(&'static str, i64)>, StoreError> {
        self.0.take_slots(destination, windows).await
    }

    /// Whether this replica sends `destination`'s digest now (one replica
    /// per interval).
    pub async fn digest_turn(&self, destination: &str, every_ms: i64) -> Result<bool, StoreError> {
        self.0.digest_turn(destination, every_ms).await
    }
}
