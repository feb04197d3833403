//! A destination with `digest = true`: over its `max_per_minute`, messages
//! are held, and every `digest_interval` the held ones go out as one
//! digest message, on one replica at a time (`coord::digest_turn`).

use super::shared::Shared;
use crate::destinations::{own_message, Destination};
use crate::render::{Facts, Summary};
use crate::store::{DueDelivery, NewDigest};
use std::time::Duration;
use tokio::time::Instant;

/// Held deliveries folded into one digest at most.
const DIGEST_MAX: usize = 10_000;
/// How soon to ask again when whose turn it is could not be told.
const TURN_RETRY: Duration = Duration::from_secs(1);

/// When the next digest is due.
pub(super) struct Digest {
    pub every: Duration,
    next: Instant,
}

impl Digest {
    pub fn new(every: Duration, now: Instant) -> Digest {
        Digest {
            every,
            next: now + every,
        }
    }

    /// The digest to queue first, when one is due, it is this process's
    /// turn and deliveries are held. `Err(wake)` when none is due yet (or
    /// it could not be told): look again at `wake`. `Ok(None)`: it was
    /// due, and nothing (or nothing that could be recorded) came of it.
    pub async fn due(
        &mut self,
        now: Instant,
        shared: &Shared,
        name: &str,
        dest: &Destination,
    ) -> Result<Option<DueDelivery>, Instant> {
        if now < self.next {
            return Err(self.next);
        }
        self.next = Instant::now() + self.every;
        match shared.coord.digest_turn(name, self.every).await {
            Ok(true) => Ok(compose(shared, name, dest, self.every).await),
            Ok(false) => Ok(None),
            Err(e) => {
                tracing::error!(message = "Cannot tell whose turn the digest is; trying again.", destination = %name, error = %e);
                self.next = Instant::now() + TURN_RETRY;
                Ok(None)
            }
        }
    }
}

/// Replaces the held deliveries by one digest message, recorded in the
/// spool and returned to be queued first.
async fn compose(
    shared: &Shared,
    name: &str,
    dest: &Destination,
    every: Duration,
) -> Option<DueDelivery> {
    let held = match shared.store.held(name, DIGEST_MAX).await {
        Ok(h) if !h.is_empty() => h,
        Ok(_) => return None,
        Err(e) => {
            tracing::error!(message = "Cannot read held deliveries.", destination = %name, error = %e);
            return None;
        }
    };
    let summaries: Vec<Summary> = held
        .iter()
        .map(|(_, s)| {
            s.as_deref()
                .and_then(|s| serde_json::from_str(s).ok())
                .unwrap_or(Summary {
                    headline: "(no summary)".into(),
                    urgency: None,
                    short_id: None,
                    link: None,
                })
        })
        .collect();
    // The console lists exactly these: the held deliveries to this
    // destination in this id range (held are read in id order).
    let everything = match (&dest.console_url, held.first(), held.last()) {
        (Some(base), Some((first, _)), Some((last, _))) => Some(format!(
            "{base}/console/events?digest={}",
            url::form_urlencoded::byte_serialize(format!("{name}:{first}-{last}").as_bytes())
                .collect::<String>()
        )),
        _ => None,
    };
    let payload = own_message(
        dest,
        name,
        "digest",
        &Facts::digest(&summaries, every, everything.as_deref()),
    );
    let digest = NewDigest {
        destination: name.to_owned(),
        payload,
        held: held.iter().map(|(id, _)| *id).collect(),
    };
    match shared.store.digest(digest).await {
        Ok(d) => {
            tracing::info!(message = "Digest of held alerts queued.", destination = %name, count = held.len(), delivery_id = d.id);
            Some(d)
        }
        Err(e) => {
            tracing::error!(message = "Cannot create a digest; the alerts stay held.", destination = %name, error = %e);
            None
        }
    }
}
