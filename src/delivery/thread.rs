//! Sending a threaded delivery (Slack or Mattermost API mode): the
//! alert's first message becomes its root, recorded in the spool; every
//! later one edits the root to show the alert's current state, then
//! replies in its thread with what changed.
//!
//! The edit comes first because it is idempotent: a reply that fails is
//! retried with the edit repeated, never with the reply posted twice. A
//! root deleted in the channel is replaced by a new one, and the alert's
//! record moved to it. The worker sends one delivery per alert at a time,
//! in the order the events were accepted, so the record read here is
//! exactly what the channel shows.

use super::shared::Shared;
use crate::destinations::{ApiError, Call, Outcome, Sink};
use crate::render::thread::Threaded;
use crate::store::{DueDelivery, ThreadRoot};
use serde_json::json;

/// What a threaded send did: its outcome, and where it went.
pub(super) struct Sent {
    pub outcome: Outcome,
    pub thread: Option<String>,
}

fn failed(outcome: Outcome) -> Sent {
    Sent {
        outcome,
        thread: None,
    }
}

pub(super) async fn send(shared: &Shared, sink: &Sink, d: &DueDelivery, t: Threaded) -> Sent {
    let root = match shared.store.thread_root(&d.destination, &t.alert).await {
        Ok(root) => root,
        Err(e) => {
            return failed(Outcome::Retry {
                status: None,
                error: format!("cannot read the alert's thread from the spool: {e}"),
                retry_after: None,
                throttled: false,
            })
        }
    };
    if t.reply_only {
        return reply_only(sink, &t, root.as_ref()).await;
    }
    let Some(root) = root else {
        return post_root(shared, sink, d, &t, None).await;
    };
    let edit = sink
        .api_call(Call::Update {
            channel: &root.channel,
            ts: &root.ts,
            message: &t.message,
        })
        .await;
    match edit {
        Ok(_) => {}
        Err(ApiError::RootGone(why)) => {
            return post_root(shared, sink, d, &t, Some((&root.ts, &why))).await;
        }
        Err(e) => return failed(e.outcome()),
    }
    let change = t.change(root.status.as_deref(), root.urgency);
    let reply = json!({ "text": change.text(sink.kind().markup()) });
    let posted = sink
        .api_call(Call::Post {
            message: &reply,
            thread: Some(&root.ts),
            broadcast: change.broadcast,
        })
        .await;
    if let Err(e) = posted {
        return failed(e.outcome());
    }
    let now = ThreadRoot {
        status: t.status.clone().or(root.status.clone()),
        urgency: t.urgency.or(root.urgency),
        ..root.clone()
    };
    record(shared, d, &t.alert, now).await;
    Sent {
        outcome: Outcome::Delivered { status: 200 },
        thread: Some(format!(
            "reply in thread {} of channel {}{}, root edited",
            root.ts,
            root.channel,
            if change.broadcast {
                " (also sent to the channel)"
            } else {
                ""
            }
        )),
    }
}

/// A reply in an alert's thread that leaves its root alone (a case took
/// the alert). No thread on this destination: nothing to reply to.
async fn reply_only(sink: &Sink, t: &Threaded, root: Option<&ThreadRoot>) -> Sent {
    let Some(root) = root else {
        return Sent {
            outcome: Outcome::Delivered { status: 200 },
            thread: Some("no thread of this alert on this destination: no reply".into()),
        };
    };
    let change = t.change(root.status.as_deref(), root.urgency);
    let reply = json!({ "text": change.text(sink.kind().markup()) });
    let posted = sink
        .api_call(Call::Post {
            message: &reply,
            thread: Some(&root.ts),
            broadcast: false,
        })
        .await;
    match posted {
        Err(e) => failed(e.outcome()),
        Ok(_) => Sent {
            outcome: Outcome::Delivered { status: 200 },
            thread: Some(format!(
                "reply in thread {} of channel {}",
                root.ts, root.channel
            )),
        },
    }
}

/// Posts the alert's root and records it; `replacing` names a deleted root.
async fn post_root(
    shared: &Shared,
    sink: &Sink,
    d: &DueDelivery,
    t: &Threaded,
    replacing: Option<(&str, &str)>,
) -> Sent {
    let posted = sink
        .api_call(Call::Post {
            message: &t.message,
            thread: None,
            broadcast: false,
        })
        .await;
    let posted = match posted {
        Ok(p) => p,
        Err(e) => return failed(e.outcome()),
    };
    if let Some((old, why)) = replacing {
        tracing::warn!(message = "The alert's root message is gone; posted a new one.", destination = %d.destination, alert_short_id = d.short_id.as_deref(), old_root = old, new_root = %posted.ts, reason = why);
    }
    let root = ThreadRoot {
        channel: posted.channel.clone(),
        ts: posted.ts.clone(),
        status: t.status.clone(),
        urgency: t.urgency,
    };
    record(shared, d, &t.alert, root).await;
    Sent {
        outcome: Outcome::Delivered { status: 200 },
        thread: Some(match replacing {
            None => format!("root {} in channel {}", posted.ts, posted.channel),
            Some((old, _)) => format!(
                "new root {} in channel {} (root {old} was deleted)",
                posted.ts, posted.channel
            ),
        }),
    }
}

/// Records the root (and what it shows). The message is out: a failure
/// here is logged, not retried (a retry would post it again); the alert's
/// next event then starts a new thread.
async fn record(shared: &Shared, d: &DueDelivery, alert: &str, root: ThreadRoot) {
    if let Err(e) = shared.store.set_thread(&d.destination, alert, root).await {
        tracing::error!(message = "Cannot record the alert's thread; its next message starts a new one.", destination = %d.destination, alert_short_id = d.short_id.as_deref(), error = %e);
    }
}
