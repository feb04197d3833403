//! Silence detection: a hook with `expect_within` that receives nothing for
//! that long gets a synthetic `hookrelay.silence` event, and a
//! `hookrelay.recovered` event when events resume. Both go through the
//! spool and the routing table like any other event from that hook.
//!
//! The clocks live in the spool (`hook_clocks`) so a restart neither
//! forgets a silence nor announces it twice; a hook never heard from starts
//! its clock when it is first watched. One notice per silence.

use crate::coord::Coordinator;
use crate::live::Live;
use crate::pipeline::{Accepted, Intake};
use crate::store::{now_ms, spool_log, HookClock, NewEvent, Store};
use serde_json::json;
use sha2::Digest;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The last real event per hook, as ingress saw it.
#[derive(Default)]
pub struct Watch {
    last_seen: Mutex<HashMap<String, i64>>,
}

impl Watch {
    /// Records an accepted event on `hook` (called by ingress).
    pub fn saw(&self, hook: &str) {
        let mut seen = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.insert(hook.to_owned(), now_ms());
    }

    fn last(&self, hook: &str) -> Option<i64> {
        self.last_seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(hook)
            .copied()
    }
}

fn iso(ms: i64) -> String {
    crate::store::format_ms(ms)
}

/// Checks every watched hook at least once a second until `cancel`.
///
/// The spool holds each clock; with several replicas any of them may see a
/// hook's events, and the spool's answer says which one announces a
/// silence or a recovery (exactly one). This loop keeps a copy of each
/// clock, refreshed at least once per `expect_within`, to ask the spool
/// only when something may have changed.
pub async fn run(
    watch: Arc<Watch>,
    live: Arc<Live>,
    store: Store,
    coord: Coordinator,
    intake: Intake,
    cancel: CancellationToken,
) {
    // hook → (clock as last read, when it was read)
    let mut known: HashMap<String, (HookClock, i64)> = HashMap::new();
    // hook → the last event time this replica told the spool about
    let mut pushed: HashMap<String, i64> = HashMap::new();
    loop {
        let config = live.get().config.clone();
        let watched: Vec<(String, Duration)> = config
            .hooks
            .iter()
            .filter_map(|(name, h)| h.expect_within.map(|w| (name.clone(), w)))
            .collect();
        let tick = watched
            .iter()
            .map(|(_, w)| *w / 4)
            .min()
            .unwrap_or(Duration::from_secs(1))
            .clamp(Duration::from_millis(50), Duration::from_secs(1));
        for (hook, within) in watched {
            let within_ms = within.as_millis() as i64;
            if let Some(seen) = watch
                .last(&hook)
                .filter(|s| pushed.get(&hook).is_none_or(|p| s > p))
            {
                match coord.clock_seen(&hook, seen).await {
                    Ok(recovered) => {
                        pushed.insert(hook.clone(), seen);
                        if let Some((clock, _)) = known.get_mut(&hook) {
                            clock.last_event_at = clock.last_event_at.max(seen);
                            clock.silent_since = None;
                        }
                        if let Some(last) = recovered {
                            let silent_for = (seen - last) / 1000;
                            emit(
                                &store,
                                &intake,
                                &hook,
                                "hookrelay.recovered",
                                silent_for,
                                last,
                            )
                            .await;
                        }
                    }
                    Err(e) => {
                        spool_log!(warn, store, message = "Cannot save a silence clock.", hook = %hook, error = %e)
                    }
                }
            }
            let now = now_ms();
            let ask = match known.get(&hook) {
                None => true,
                Some((clock, read_at)) => {
                    now - read_at >= within_ms
                        || (clock.silent_since.is_none() && now - clock.last_event_at >= within_ms)
                }
            };
            if !ask {
                continue;
            }
            match coord.clock_check(&hook, now, within_ms).await {
                Ok(check) => {
                    if check.went_silent {
                        let last = check.clock.last_event_at;
                        emit(
                            &store,
                            &intake,
                            &hook,
                            "hookrelay.silence",
                            (now - last) / 1000,
                            last,
                        )
                        .await;
                    }
                    known.insert(hook, (check.clock, now));
                }
                Err(e) => {
                    spool_log!(warn, store, message = "Cannot read a silence clock.", hook = %hook, error = %e)
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(tick) => {}
        }
    }
}

/// Stores a synthetic event from `hook` and hands it to the pipeline.
async fn emit(
    store: &Store,
    intake: &Intake,
    hook: &str,
    kind: &str,
    silent_for: i64,
    last_event_at: i64,
) {
    let body = json!({
        "type": kind,
        "action": "created",
        "attributes": {
            "hook": hook,
            "silent_for": silent_for,
            "last_event_at": iso(last_event_at),
        },
        "metadata": {"created_at": iso(now_ms())},
    })
    .to_string()
    .into_bytes();
    let new = NewEvent {
        hook: hook.to_owned(),
        sha256: sha2::Sha256::digest(&body).into(),
        body: body.clone(),
        kind: kind.to_owned(),
        action: "created".into(),
        short_id: None,
        dedup_window_ms: 0,
        message_id: None,
        alert_uuid: None,
        client: None,
        auth: Some("hookrelay's own notice".into()),
    };
    match store.insert_event(new).await {
        Ok(inserted) => {
            tracing::warn!(
                message = "Hook silence notice.",
                hook,
                kind,
                silent_for_s = silent_for,
                event_id = inserted.id
            );
            if let Ok(event) = crate::event::parse(&body) {
                intake.submit(Accepted {
                    id: inserted.id,
                    hook: hook.to_owned(),
                    event,
                    received_at: crate::store::now_ms(),
                });
            }
        }
        Err(e) => tracing::error!(message = "Cannot store a silence notice.", hook, error = %e),
    }
}
