//! Ingress's side of the pipeline: a bounded queue of accepted events, and
//! the flag that sends the pipeline to the spool when the queue was full.

use crate::event::Event;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Accepted events waiting in memory at most; beyond, the spool holds them.
/// Kept small: a long in-memory queue only makes every alert later.
pub const INTAKE_CAPACITY: usize = 64;
/// How long ingress may hold a sender's 202 while the intake is full
/// (backpressure: under overload senders slow down a little instead of a
/// backlog building up behind them). After that the event is left to the
/// spool and the 202 goes out anyway.
pub const ADMISSION_WAIT: Duration = Duration::from_millis(100);

/// An accepted event on its way to routing.
pub struct Accepted {
    pub id: i64,
    pub hook: String,
    pub event: Event,
    /// When it was received (unix ms): where the age of a delivery sent
    /// before its routing is recorded counts from.
    pub received_at: i64,
}

/// Ingress's side of the pipeline.
#[derive(Clone)]
pub struct Intake {
    tx: mpsc::Sender<Accepted>,
    /// Set when an event was left in the spool (queue full, or at start):
    /// the pipeline reads unrouted events back from the spool until it has
    /// caught up.
    behind: Arc<AtomicBool>,
}

impl Intake {
    pub fn new() -> (Intake, mpsc::Receiver<Accepted>) {
        let (tx, rx) = mpsc::channel(INTAKE_CAPACITY);
        let intake = Intake {
            tx,
            behind: Arc::new(AtomicBool::new(true)),
        };
        (intake, rx)
    }

    /// Whether events are being left in the spool: the pipeline reads
    /// them from there until it has caught up.
    pub(super) fn behind(&self) -> bool {
        self.behind.load(Ordering::SeqCst)
    }

    /// Caught up (false), or events were left in the spool (true).
    pub(super) fn set_behind(&self, behind: bool) {
        self.behind.store(behind, Ordering::SeqCst);
    }

    /// Hands over a committed event, or leaves it to be read from the spool.
    pub fn submit(&self, a: Accepted) {
        if self.behind.load(Ordering::SeqCst) {
            return;
        }
        if let Err(mpsc::error::TrySendError::Full(_)) = self.tx.try_send(a) {
            self.behind.store(true, Ordering::SeqCst);
        }
    }

    /// Like [`Intake::submit`], but waits up to [`ADMISSION_WAIT`] for room
    /// (ingress calls this before answering, so overload pushes back on
    /// senders).
    pub async fn admit(&self, a: Accepted) {
        if self.behind.load(Ordering::SeqCst) {
            return;
        }
        let a = match self.tx.try_send(a) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Full(a)) => a,
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        };
        match tokio::time::timeout(ADMISSION_WAIT, self.tx.send(a)).await {
            Ok(_) => {}
            Err(_) => self.behind.store(true, Ordering::SeqCst),
        }
    }
}
