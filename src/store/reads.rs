//! What the store's reads answer, the same from both backends: a due
//! delivery, a dead letter, an event's line and detail, queue depths, what
//! a message is re-rendered from; and the SQL condition both backends'
//! scans use to keep a conversation in order.

/// A pending delivery ready to be attempted.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: i64,
    pub event_id: i64,
    pub destination: String,
    pub payload: String,
    pub attempts: i64,
    /// The start of `max_age` (unix ms): when its event was accepted, or
    /// when it was last replayed.
    pub created_at: i64,
    /// When its event was accepted (unix ms), which a replay does not
    /// change: with `id`, the delivery's message id (`delivery::message_id`).
    pub accepted_at: i64,
    /// The event's hook and alert short id, for log lines.
    pub hook: String,
    pub short_id: Option<String>,
    /// A digest of held deliveries: not counted by the throttle.
    pub digest: bool,
    /// The alert conversation it belongs to, on a threaded destination.
    pub thread_key: Option<String>,
}

/// The condition that keeps a conversation in order: a delivery with a
/// thread key waits while an earlier event about the same alert is not
/// routed yet or has a delivery to the same destination still pending.
/// `d` is the delivery. Shared by both backends' queries.
pub(crate) const THREAD_IN_ORDER: &str = "(d.thread_key IS NULL OR (
    NOT EXISTS (SELECT 1 FROM deliveries o
                WHERE o.destination = d.destination AND o.thread_key = d.thread_key
                  AND o.state = 'pending' AND o.event_id < d.event_id)
    AND NOT EXISTS (SELECT 1 FROM events u
                    WHERE u.state = 'received' AND u.id < d.event_id AND u.alert_uuid = d.thread_key)))";

/// Pending work per destination.
#[derive(Debug, Clone)]
pub struct QueueDepth {
    pub destination: String,
    pub pending: i64,
    pub oldest_created_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub id: i64,
    pub event_id: i64,
    pub destination: String,
    pub kind: String,
    pub action: String,
    pub short_id: Option<String>,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub updated_at: i64,
    pub hook: String,
}

/// One line of `events list`.
#[derive(Debug, Clone)]
pub struct EventSummary {
    pub id: i64,
    pub received_at: i64,
    pub hook: String,
    pub kind: String,
    pub action: String,
    pub short_id: Option<String>,
    /// received, unrouted, pending, delivered, failed (some dead), partial.
    pub state: String,
}

/// An event's state for `events list`, from its own state and its
/// deliveries' counts: `[pending, dead, delivered, total]`.
pub(crate) fn summary_state(
    raw_state: &str,
    [pending, dead, delivered, total]: [i64; 4],
) -> &'static str {
    if raw_state == "received" {
        "received"
    } else if total == 0 {
        "unrouted"
    } else if dead > 0 {
        "failed"
    } else if pending > 0 {
        "pending"
    } else if delivered > 0 {
        "delivered"
    } else {
        "skipped"
    }
}

/// Everything known about one event, for `events show`.
#[derive(Debug, Clone)]
pub struct EventDetail {
    pub summary: EventSummary,
    pub body: String,
    pub enrichment: Option<String>,
    pub alert_json: Option<String>,
    pub routes: Option<String>,
    pub deliveries: Vec<DeliveryDetail>,
    /// Who sent it (through trusted proxies) and how it proved itself.
    pub client: Option<String>,
    pub auth: Option<String>,
    /// Sender retries of the same body recognised within the dedup window.
    pub retries: i64,
    pub alert_uuid: Option<String>,
    pub routed_at: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct DeliveryDetail {
    pub id: i64,
    pub route: String,
    pub destination: String,
    pub state: super::DeliveryState,
    /// Every attempt: (at, status, error, duration ms).
    pub attempts: Vec<(i64, Option<i64>, Option<String>, i64)>,
    pub last_error: Option<String>,
    /// Where it went in its alert's conversation, once delivered.
    pub thread: Option<String>,
    /// The rendered request body, as stored.
    pub payload: String,
    pub updated_at: i64,
}

/// What a delivery's message is made from, for rendering it again.
pub struct RenderSource {
    pub hook: String,
    pub body: Vec<u8>,
    pub alert_json: Option<String>,
    /// `ok`, `n/a` or `unavailable: <reason>`.
    pub enrichment: Option<String>,
    pub route: String,
}
