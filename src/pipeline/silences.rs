//! The active silences, as the pipeline last read them from the spool.

use crate::config::When;
use crate::store::{spool_log, Store};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the active silences read from the spool are trusted: a
/// silence added (or expired) from the command line, on any replica,
/// takes effect within this.
const SILENCES_FRESH: Duration = Duration::from_secs(1);

/// One active silence: its matcher and what the event's history says of it.
pub(super) struct Silence {
    pub when: When,
    pub note: String,
}

/// The active silences and when they were read.
#[derive(Default)]
pub(super) struct Silences {
    cached: Mutex<(Option<Instant>, Arc<Vec<Silence>>)>,
    /// Held while the silences are read: when the list goes stale, one
    /// event reads it again and the others wait for that read, instead of
    /// every event in progress reading it at once.
    reading: tokio::sync::Mutex<()>,
}

impl Silences {
    /// The silences active now, read from the spool at most once a second.
    /// A spool that cannot be read keeps the last known list.
    pub(super) async fn active(&self, store: &Store) -> Arc<Vec<Silence>> {
        let fresh = || {
            let cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
            cached
                .0
                .is_some_and(|at| at.elapsed() < SILENCES_FRESH)
                .then(|| cached.1.clone())
        };
        if let Some(list) = fresh() {
            return list;
        }
        let _reading = self.reading.lock().await;
        if let Some(list) = fresh() {
            return list;
        }
        let now = crate::store::now_ms();
        let fresh = match store.silences(Some(now)).await {
            Ok(list) => Arc::new(
                list.into_iter()
                    .filter_map(|s| {
                        let when = When::from_inline(&s.matcher).ok()?;
                        let ends = crate::store::format_ms(s.ends_at);
                        let note = format!(
                            "silenced by silence {} ({}; by {}; until {ends})",
                            s.id, s.comment, s.author
                        );
                        Some(Silence { when, note })
                    })
                    .collect(),
            ),
            Err(e) => {
                spool_log!(warn, store, message = "Cannot read the silences; using the last known.", error = %e);
                self.cached
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .1
                    .clone()
            }
        };
        *self.cached.lock().unwrap_or_else(|p| p.into_inner()) =
            (Some(Instant::now()), fresh.clone());
        fresh
    }
}
