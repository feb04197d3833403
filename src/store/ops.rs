//! What callers hand the store and what it answers: the vocabulary both
//! backends speak (the SQLite writer thread and PostgreSQL).

use super::reads::DueDelivery;

/// An accepted webhook to store.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub hook: String,
    pub body: Vec<u8>,
    pub sha256: [u8; 32],
    pub kind: String,
    pub action: String,
    pub short_id: Option<String>,
    /// Same body on the same hook within this many ms is a sender retry.
    pub dedup_window_ms: i64,
    /// A Standard Webhooks `webhook-id` and how long (ms) to refuse it
    /// again. A single SQLite process checks ids in memory; with a shared
    /// spool the insert refuses an id another replica already took.
    pub message_id: Option<(String, i64)>,
    /// The alert or case the event is about (its conversation, on threaded
    /// destinations: `Event::thread_key`).
    pub alert_uuid: Option<String>,
    /// The sender's address (through trusted proxies), for the console.
    pub client: Option<String>,
    /// How the request proved itself ("hmac-sha256 signature verified",
    /// "no authentication configured", …).
    pub auth: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inserted {
    pub id: i64,
    /// A sender retry: nothing new was stored.
    pub duplicate: bool,
}

/// One delivery to create.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    pub route: String,
    pub destination: String,
    pub payload: String,
    /// Set when the message could not be rendered (a template error): the
    /// delivery is recorded as a dead letter with this reason.
    pub failed: Option<String>,
    /// Set when the route was muted or inactive (a time interval): the
    /// delivery is recorded as `muted` with this reason, never sent.
    pub muted: Option<String>,
    /// `(key, window ms)`: skip when the same key went to this destination
    /// through this route within the window.
    pub dedup: Option<(String, i64)>,
    /// One-line summary (JSON) for a digest, should it be held.
    pub summary: Option<String>,
    /// On a threaded destination, the alert whose conversation this is:
    /// deliveries with the same key go out one at a time, in the order
    /// their events were accepted.
    pub thread_key: Option<String>,
    /// Its first attempt, when its worker sent it before recording the
    /// routing (a destination that may, see `delivery::first`): the
    /// delivery is stored with that outcome and its attempt, in the
    /// routing's transaction, and is not handed to a worker (a retry is
    /// found by the worker's scan).
    pub first: Option<Attempted>,
    /// Sent before the routing was recorded and not answered yet: stored
    /// as pending but not due before this time (unix ms; its send times
    /// out first), and not handed to a worker. Its outcome is recorded
    /// when it comes; if it never does (a crash), it is retried then.
    pub in_flight_until: Option<i64>,
}

/// The outcome of enrichment and routing for one event.
#[derive(Debug, Clone)]
pub struct Routing {
    pub event_id: i64,
    pub enrichment: String,
    pub alert_json: Option<String>,
    pub routes: Vec<String>,
    pub deliveries: Vec<NewDelivery>,
    /// The alert's title, when known (the console searches it).
    pub title: Option<String>,
    /// How the event was routed, for the console. Stored with `routes`.
    pub journey: Journey,
}

/// How an event was routed, for the console: enrichment latency and
/// source, every route's verdict, a silence.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Journey {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enrich: Option<EnrichStep>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<RouteDecision>,
    /// The note of the silence that held the event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub silenced: Option<String>,
    /// Why processing the event failed inside the relay (a panic, a
    /// stored body that no longer parses): the event is recorded with no
    /// delivery instead of staying `received` for ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<String>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EnrichStep {
    pub ms: u64,
    /// Served from the alert cache.
    pub cached: bool,
}

/// One route's verdict and why.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RouteDecision {
    pub route: String,
    pub matched: bool,
    pub reason: String,
}

impl Routing {
    /// The `routes` column: the journey with the matched routes' names
    /// under `"matched"`.
    pub(super) fn routes_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Column<'a> {
            #[serde(flatten)]
            journey: &'a Journey,
            matched: &'a [String],
        }
        serde_json::to_string(&Column {
            journey: &self.journey,
            matched: &self.routes,
        })
        .unwrap_or_default()
    }
}

/// The result of one delivery attempt.
#[derive(Debug, Clone)]
pub enum Completion {
    Delivered {
        id: i64,
        status: u16,
        duration_ms: i64,
        /// Where it went in a conversation ("root …", "reply in …").
        thread: Option<String>,
    },
    Retry {
        id: i64,
        status: Option<u16>,
        error: String,
        next_attempt_at: i64,
        duration_ms: i64,
    },
    Dead {
        id: i64,
        status: Option<u16>,
        error: String,
        duration_ms: i64,
    },
}

/// What one attempt found, before it is tied to a delivery row: a first
/// attempt is recorded with the routing that creates its row.
#[derive(Debug, Clone)]
pub enum Attempted {
    Delivered {
        status: u16,
        duration_ms: i64,
        /// Where it went in a conversation ("root …", "reply in …").
        thread: Option<String>,
    },
    Retry {
        status: Option<u16>,
        error: String,
        next_attempt_at: i64,
        duration_ms: i64,
    },
    Dead {
        status: Option<u16>,
        error: String,
        duration_ms: i64,
    },
}

impl Attempted {
    /// The outcome of delivery `id`.
    pub fn of(self, id: i64) -> Completion {
        match self {
            Attempted::Delivered {
                status,
                duration_ms,
                thread,
            } => Completion::Delivered {
                id,
                status,
                duration_ms,
                thread,
            },
            Attempted::Retry {
                status,
                error,
                next_attempt_at,
                duration_ms,
            } => Completion::Retry {
                id,
                status,
                error,
                next_attempt_at,
                duration_ms,
            },
            Attempted::Dead {
                status,
                error,
                duration_ms,
            } => Completion::Dead {
                id,
                status,
                error,
                duration_ms,
            },
        }
    }

    /// Whether it leaves the delivery waiting for a retry.
    pub fn is_retry(&self) -> bool {
        matches!(self, Attempted::Retry { .. })
    }

    /// The delivery state it leaves: `delivered`, `dead`, or still
    /// `pending` (a retry).
    pub(super) fn state(&self) -> super::DeliveryState {
        match self {
            Attempted::Delivered { .. } => super::DeliveryState::Delivered,
            Attempted::Retry { .. } => super::DeliveryState::Pending,
            Attempted::Dead { .. } => super::DeliveryState::Dead,
        }
    }

    /// What the attempt row records as its outcome.
    pub(super) fn outcome(&self) -> &'static str {
        match self {
            Attempted::Delivered { .. } => "delivered",
            Attempted::Retry { .. } => "retry",
            Attempted::Dead { .. } => "dead",
        }
    }

    /// When a retry comes due.
    pub(super) fn next_attempt_at(&self) -> Option<i64> {
        match self {
            Attempted::Retry {
                next_attempt_at, ..
            } => Some(*next_attempt_at),
            _ => None,
        }
    }

    /// Where it went in a conversation, if it was delivered there.
    pub(super) fn thread(&self) -> Option<&str> {
        match self {
            Attempted::Delivered { thread, .. } => thread.as_deref(),
            _ => None,
        }
    }

    /// The answer status, error and duration of the attempt.
    pub(super) fn parts(&self) -> (Option<u16>, Option<&str>, i64) {
        match self {
            Attempted::Delivered {
                status,
                duration_ms,
                ..
            } => (Some(*status), None, *duration_ms),
            Attempted::Retry {
                status,
                error,
                duration_ms,
                ..
            }
            | Attempted::Dead {
                status,
                error,
                duration_ms,
            } => (*status, Some(error.as_str()), *duration_ms),
        }
    }

    /// Its error text, for scrubbing before it is stored.
    pub(super) fn error_mut(&mut self) -> Option<&mut String> {
        match self {
            Attempted::Delivered { .. } => None,
            Attempted::Retry { error, .. } | Attempted::Dead { error, .. } => Some(error),
        }
    }
}

/// Which dead letters to replay.
#[derive(Debug, Clone)]
pub enum Selector {
    Ids(Vec<i64>),
    All { destination: Option<String> },
}

/// A digest replacing held deliveries to one destination.
#[derive(Debug, Clone)]
pub struct NewDigest {
    pub destination: String,
    pub payload: String,
    pub held: Vec<i64>,
}

impl NewDigest {
    /// What the console lists the digest as.
    pub(super) fn title(&self) -> String {
        format!(
            "Digest of {} held alerts to {}",
            self.held.len(),
            self.destination
        )
    }

    /// The synthetic event a digest is stored under (its body and that
    /// body's hash), at `now`.
    pub(super) fn event(&self, now: i64) -> (String, [u8; 32]) {
        use sha2::Digest as _;
        let body = format!(
            "{{\"type\":\"hookrelay.digest\",\"action\":\"created\",\"attributes\":{{\"destination\":{},\"count\":{}}}}}",
            serde_json::Value::from(self.destination.clone()),
            self.held.len()
        );
        let sha = sha2::Sha256::digest(format!("{body}{now}").as_bytes()).into();
        (body, sha)
    }

    /// The digest delivery, stored as `id` under event `event_id`.
    pub(super) fn due(self, id: i64, event_id: i64, now: i64) -> DueDelivery {
        DueDelivery {
            id,
            event_id,
            destination: self.destination,
            payload: self.payload,
            attempts: 0,
            created_at: now,
            // Its synthetic event is stored at `now` too.
            accepted_at: now,
            hook: "-".into(),
            short_id: None,
            digest: true,
            thread_key: None,
        }
    }
}

impl Completion {
    /// The delivery, answer status, error and duration of an attempt.
    pub(super) fn parts(&self) -> (i64, Option<u16>, Option<&str>, i64) {
        match self {
            Completion::Delivered {
                id,
                status,
                duration_ms,
                ..
            } => (*id, Some(*status), None, *duration_ms),
            Completion::Retry {
                id,
                status,
                error,
                duration_ms,
                ..
            }
            | Completion::Dead {
                id,
                status,
                error,
                duration_ms,
            } => (*id, *status, Some(error.as_str()), *duration_ms),
        }
    }
}

/// The root message of an alert's conversation on one destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadRoot {
    /// The channel it is in (Slack's channel id, Mattermost's channel id).
    pub channel: String,
    /// Slack's `ts`, Mattermost's post id.
    pub ts: String,
    /// The alert's status and urgency as the root last showed them (what
    /// a reply says changed).
    pub status: Option<String>,
    pub urgency: Option<i64>,
}

/// An action taken on an alert from the chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRecord {
    pub at: i64,
    pub alert: String,
    /// `acknowledge`, `ongoing`, `close`, `reject`.
    pub action: String,
    pub destination: String,
    /// The client address, or the chat user (`slack:@name`).
    pub client: String,
    /// `pending`, `done`, `already`, `refused`, `failed`.
    pub result: String,
    pub detail: Option<String>,
}

/// A silence: events matching `matcher` are not sent until `ends_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Silence {
    pub id: i64,
    pub created_at: i64,
    pub ends_at: i64,
    /// The `[routes.when]` keys, as TOML inline-table contents.
    pub matcher: String,
    pub comment: String,
    pub author: String,
    pub expired_at: Option<i64>,
}

impl Silence {
    /// Active at `now` (unix ms).
    pub fn active(&self, now: i64) -> bool {
        self.expired_at.is_none() && self.ends_at > now
    }
}

/// A hook's silence-detection clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookClock {
    pub hook: String,
    pub last_event_at: i64,
    pub silent_since: Option<i64>,
}

/// A tenant as the spool keeps it: its document sealed, what can be listed
/// without the key in the clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTenant {
    pub name: String,
    /// JSON: `{"hooks": [ids], "origins": n, "destinations": n, "routes": n}`.
    pub summary: String,
    pub sealed: Vec<u8>,
    pub updated_at: i64,
}

/// A change to a tenant, as recorded: who (the client address) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantChange {
    pub tenant: String,
    /// created, replaced (set by the store), deleted, rotated.
    pub action: String,
    pub client: String,
}

#[cfg(test)]
mod journey_tests {
    use super::*;

    fn routing(journey: Journey) -> Routing {
        Routing {
            event_id: 1,
            enrichment: "ok".into(),
            alert_json: None,
            routes: vec!["p1".into()],
            deliveries: Vec::new(),
            title: None,
            journey,
        }
    }

    #[test]
    fn the_routes_column_keeps_its_shape() {
        let full = Journey {
            enrich: Some(EnrichStep {
                ms: 12,
                cached: true,
            }),
            decisions: vec![RouteDecision {
                route: "p1".into(),
                matched: true,
                reason: "urgency_min = 70: alert urgency is \"80\"".into(),
            }],
            silenced: Some("silenced by silence 3".into()),
            failed: None,
        };
        let column = routing(full.clone()).routes_json();
        assert_eq!(
            column,
            r#"{"enrich":{"ms":12,"cached":true},"decisions":[{"route":"p1","matched":true,"reason":"urgency_min = 70: alert urgency is \"80\""}],"silenced":"silenced by silence 3","matched":["p1"]}"#
        );
        // Read back as it was written.
        assert_eq!(serde_json::from_str::<Journey>(&column).unwrap(), full);
        assert_eq!(
            routing(Journey::default()).routes_json(),
            r#"{"matched":["p1"]}"#
        );
    }
}
