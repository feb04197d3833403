//! Cluster coordination in the database: a destination's pause after a
//! 429, its send windows, whose turn the digest is, and the silence clocks.
//! The seam callers use is [`crate::coord`]; this is its database side.

use super::*;
use crate::store::SendWindow;

impl Postgres {
    pub async fn clock_seen(&self, hook: &str, seen: i64) -> Result<Option<i64>, StoreError> {
        // The row lock orders replicas; only the one that clears
        // `silent_since` gets the previous time back.
        let rows = self
            .query(
                "WITH old AS (SELECT last_event_at, silent_since FROM hook_clocks WHERE hook = $1 FOR UPDATE),
                 up AS (
                    INSERT INTO hook_clocks (hook, last_event_at, silent_since) VALUES ($1, $2, NULL)
                    ON CONFLICT (hook) DO UPDATE SET last_event_at = excluded.last_event_at, silent_since = NULL
                    WHERE hook_clocks.last_event_at < excluded.last_event_at
                    RETURNING 1
                 )
                 SELECT old.last_event_at, old.silent_since FROM old, up",
                &[&hook, &seen],
            )
            .await?;
        Ok(rows.into_iter().next().and_then(|r| {
            let last: i64 = r.get(0);
            let silent: Option<i64> = r.get(1);
            silent.map(|_| last)
        }))
    }

    pub async fn clock_check(
        &self,
        hook: &str,
        now: i64,
        within_ms: i64,
    ) -> Result<ClockCheck, StoreError> {
        self.execute(
            "INSERT INTO hook_clocks (hook, last_event_at, silent_since) VALUES ($1, $2, NULL) ON CONFLICT (hook) DO NOTHING",
            &[&hook, &now],
        )
        .await?;
        let went = self
            .query(
                "UPDATE hook_clocks SET silent_since = $2 WHERE hook = $1 AND silent_since IS NULL AND last_event_at <= $2::BIGINT - $3::BIGINT
                 RETURNING last_event_at, silent_since",
                &[&hook, &now, &within_ms],
            )
            .await?;
        let (row, went_silent) = match went.into_iter().next() {
            Some(r) => (r, true),
            None => (
                self.query(
                    "SELECT last_event_at, silent_since FROM hook_clocks WHERE hook = $1",
                    &[&hook],
                )
                .await?
                .into_iter()
                .next()
                .ok_or_else(|| StoreError::NotFound(format!("clock of hook {hook}")))?,
                false,
            ),
        };
        Ok(ClockCheck {
            clock: HookClock {
                hook: hook.to_owned(),
                last_event_at: row.get(0),
                silent_since: row.get(1),
            },
            went_silent,
        })
    }

    pub async fn pause(&self, destination: &str, until: i64) -> Result<(), StoreError> {
        // The other replicas hear of it at once (NOTIFY is sent at commit).
        self.query(
            "WITH p AS (
                INSERT INTO destination_state (destination, paused_until) VALUES ($1, $2)
                ON CONFLICT (destination) DO UPDATE
                SET paused_until = GREATEST(COALESCE(destination_state.paused_until, 0), excluded.paused_until))
             SELECT pg_notify('hookrelay', $1)",
            &[&destination, &until],
        )
        .await?;
        Ok(())
    }

    pub async fn paused_until(&self, destination: &str) -> Result<Option<i64>, StoreError> {
        let rows = self
            .query(
                "SELECT paused_until FROM destination_state WHERE destination = $1 AND paused_until > $2",
                &[&destination, &now_ms()],
            )
            .await?;
        Ok(rows.into_iter().next().and_then(|r| r.get(0)))
    }

    /// One transaction under the destination's advisory lock: every window
    /// is counted first, and the send is recorded in all of them only if
    /// none is full, so a refusal never uses up a slot.
    pub async fn take_slots(
        &self,
        destination: &str,
        windows: &[SendWindow],
    ) -> Result<Option<(&'static str, i64)>, StoreError> {
        let mut client = self.client().await?;
        let now = now_ms();
        let r: Result<Option<(&'static str, i64)>, tokio_postgres::Error> = async {
            let tx = client.transaction().await?;
            tx.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
                &[&format!("slots/{destination}")],
            )
            .await?;
            for w in windows {
                let row = tx
                    .query_one(
                        "SELECT COUNT(*), (ARRAY_AGG(at ORDER BY at DESC))[$4] FROM send_slots
                         WHERE destination = $1 AND kind = $2 AND at > $3",
                        &[
                            &destination,
                            &w.name,
                            &(now - w.window_ms),
                            &(i64::from(w.limit.max(1)) as i32),
                        ],
                    )
                    .await?;
                let count: i64 = row.get(0);
                if count >= i64::from(w.limit.max(1)) {
                    // The send that leaves the window first makes room.
                    let oldest: Option<i64> = row.get(1);
                    tx.commit().await?;
                    let wait = oldest.map_or(w.window_ms, |o| o + w.window_ms - now).max(1);
                    return Ok(Some((w.name, wait)));
                }
            }
            for w in windows {
                tx.execute(
                    "INSERT INTO send_slots (destination, kind, at) VALUES ($1, $2, $3)",
                    &[&destination, &w.name, &now],
                )
                .await?;
            }
            tx.commit().await?;
            Ok(None)
        }
        .await;
        self.seen(r)
    }

    pub async fn digest_turn(&self, destination: &str, every_ms: i64) -> Result<bool, StoreError> {
        let now = now_ms();
        let rows = self
            .query(
                "INSERT INTO destination_state (destination, next_digest_at) VALUES ($1, $2)
                 ON CONFLICT (destination) DO UPDATE SET next_digest_at = excluded.next_digest_at
                 WHERE destination_state.next_digest_at IS NULL OR destination_state.next_digest_at <= $3
                 RETURNING 1",
                &[&destination, &(now + every_ms), &(now + every_ms / 10)],
            )
            .await?;
        Ok(!rows.is_empty())
    }
}
