//! How the spool fails, the same for both backends.

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// `store.max_pending` reached: back-pressure, try later.
    #[error("the spool holds {0} undelivered items (store.max_pending); try again later")]
    Full(u64),
    /// The spool cannot be used now: disk full, read-only or I/O error
    /// (SQLite), or a database that is unreachable or failing (PostgreSQL).
    /// Reads fail with it too.
    #[error("the spool is unavailable: {0}")]
    Unavailable(String),
    /// The writer has stopped (shutdown).
    #[error("the spool is closed")]
    Closed,
    #[error("{0}")]
    Open(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// A Standard Webhooks id already accepted (by any replica).
    #[error("webhook-id already seen (replay)")]
    Replay,
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}
