//! Where a delivery is in its life, as both backends store it.

use super::error::StoreError;

/// Where a delivery is in its life; stored as its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting to be sent (or retried).
    Pending,
    Delivered,
    /// Failed for good (or could not be rendered): a dead letter, replayable.
    Dead,
    /// Over `max_per_minute`, set aside for the next digest.
    Held,
    /// Not sent: the route's dedup window had already sent it.
    Skipped,
    /// Folded into a digest that was sent instead.
    Digested,
    /// Not sent: its route was muted or inactive (a time interval).
    Muted,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Dead => "dead",
            DeliveryState::Held => "held",
            DeliveryState::Skipped => "skipped",
            DeliveryState::Digested => "digested",
            DeliveryState::Muted => "muted",
        }
    }
}

impl std::fmt::Display for DeliveryState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DeliveryState {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => DeliveryState::Pending,
            "delivered" => DeliveryState::Delivered,
            "dead" => DeliveryState::Dead,
            "held" => DeliveryState::Held,
            "skipped" => DeliveryState::Skipped,
            "digested" => DeliveryState::Digested,
            "muted" => DeliveryState::Muted,
            other => {
                return Err(StoreError::Unavailable(format!(
                    "the spool holds a delivery in an unknown state {other:?} (written by a newer version?)"
                )))
            }
        })
    }
}
