//! Deliveries: outcomes, replays, holds and digests, and claims on
//! pending rows (scans with `FOR UPDATE SKIP LOCKED`, lease renewal,
//! release at shutdown).

use super::*;

impl Postgres {
    pub async fn complete(&self, mut c: Completion) -> Result<(), StoreError> {
        scrub_completion(&mut c);
        // The attempt and the new state in one statement, committed with
        // the other writes waiting.
        let finished = !matches!(c, Completion::Retry { .. });
        let write = write::Write::Complete { c, now: now_ms() };
        let write::Done::Completed(changed) = self.write(write).await? else {
            return Err(StoreError::Closed);
        };
        if changed > 0 && finished {
            self.inner.delta.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(())
    }

    pub async fn replay(&self, s: Selector) -> Result<usize, StoreError> {
        let now = now_ms();
        let base = "UPDATE deliveries SET state = 'pending', attempts = 0, next_attempt_at = $1, created_at = $1, updated_at = $1,
                    claimed_by = NULL, claimed_until = NULL WHERE state = 'dead'";
        let n = match s {
            Selector::Ids(ids) => {
                self.execute(&format!("{base} AND id = ANY($2)"), &[&now, &ids])
                    .await?
            }
            Selector::All { destination: None } => self.execute(base, &[&now]).await?,
            Selector::All {
                destination: Some(d),
            } => {
                self.execute(&format!("{base} AND destination = $2"), &[&now, &d])
                    .await?
            }
        };
        if n > 0 {
            // Replayed work is due now: wake every replica's workers.
            self.query("SELECT pg_notify('hookrelay', '')", &[]).await?;
        }
        Ok(n as usize)
    }

    pub async fn orphan(&self, destination: &str, reason: &str) -> Result<usize, StoreError> {
        let n = self
            .execute(
                "UPDATE deliveries SET state = 'dead', updated_at = $2, last_error = $3, claimed_by = NULL, claimed_until = NULL
                 WHERE state = 'pending' AND destination = $1",
                &[&destination, &now_ms(), &reason],
            )
            .await?;
        Ok(n as usize)
    }

    pub async fn hold(&self, ids: &[i64]) -> Result<(), StoreError> {
        self.execute(
            "UPDATE deliveries SET state = 'held', updated_at = $2, claimed_by = NULL, claimed_until = NULL
             WHERE id = ANY($1) AND state = 'pending'",
            &[&ids, &now_ms()],
        )
        .await?;
        Ok(())
    }

    pub async fn digest(&self, mut d: NewDigest) -> Result<DueDelivery, StoreError> {
        scrub([&mut d.payload], []);
        let mut client = self.client().await?;
        let now = now_ms();
        let until = self.lease_until(now);
        let (body, sha) = d.event(now);
        let r: Result<(i64, i64), tokio_postgres::Error> = async {
            let tx = client.transaction().await?;
            let event_id: i64 = tx
                .query_one(
                    "INSERT INTO events (hook, received_at, body_sha256, body, kind, action, state, enrichment, routes, routed_at)
                     VALUES ('-', $1, $2, $3, 'hookrelay.digest', 'created', 'routed', 'n/a', '[]', $1) RETURNING id",
                    &[&now, &&sha[..], &body.as_bytes()],
                )
                .await?
                .get(0);
            tx.execute(
                "INSERT INTO event_facts (id, received_at, hook, kind, action, title, targets)
                 VALUES ($1, $2, '-', 'hookrelay.digest', 'created', $3, 1)",
                &[&event_id, &now, &d.title()],
            )
            .await?;
            let id: i64 = tx
                .query_one(
                    "INSERT INTO deliveries (event_id, route, destination, payload, state, created_at, next_attempt_at, updated_at, digest, claimed_by, claimed_until)
                     VALUES ($1, 'digest', $2, $3, 'pending', $4, $4, $4, TRUE, $5, $6) RETURNING id",
                    &[&event_id, &d.destination, &d.payload, &now, &self.inner.replica, &until],
                )
                .await?
                .get(0);
            let note = format!("sent in digest delivery {id}");
            tx.execute(
                "UPDATE deliveries SET state = 'digested', updated_at = $2, last_error = $3 WHERE id = ANY($1) AND state = 'held'",
                &[&d.held, &now, &note],
            )
            .await?;
            tx.commit().await?;
            Ok((id, event_id))
        }
        .await;
        let (id, event_id) = self.seen(r)?;
        Ok(d.due(id, event_id, now))
    }

    pub async fn claim_due(
        &self,
        destination: &str,
        now: i64,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let limit = limit as i64;
        let rows = self
            .query(
                &format!("UPDATE deliveries d SET claimed_by = $5, claimed_until = $6
                 FROM (SELECT id FROM deliveries d
                       WHERE state = 'pending' AND destination = $1 AND id > $2 AND next_attempt_at <= $3
                         AND (claimed_until IS NULL OR claimed_until < $3 OR claimed_by = $5)
                         AND {THREAD_IN_ORDER}
                       ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED) c,
                      events e
                 WHERE d.id = c.id AND e.id = d.event_id
                 RETURNING d.id, d.event_id, d.payload, d.attempts, d.created_at, e.hook, e.short_id, d.digest, d.thread_key, e.received_at"),
                &[&destination, &after_id, &now, &limit, &self.inner.replica, &self.lease_until(now)],
            )
            .await?;
        let mut due: Vec<DueDelivery> = rows
            .into_iter()
            .map(|r| DueDelivery {
                id: r.get(0),
                event_id: r.get(1),
                destination: destination.to_owned(),
                payload: r.get(2),
                attempts: r.get(3),
                created_at: r.get(4),
                hook: r.get(5),
                short_id: r.get(6),
                digest: r.get(7),
                thread_key: r.get(8),
                accepted_at: r.get(9),
            })
            .collect();
        due.sort_by_key(|d| d.id);
        Ok(due)
    }

    /// See [`crate::store::Store::thread_ready`].
    pub async fn thread_ready(&self, id: i64) -> Result<bool, StoreError> {
        let rows = self
            .query(
                &format!(
                    "SELECT 1 FROM deliveries d WHERE d.id = $1 AND d.state = 'pending' AND {THREAD_IN_ORDER}"
                ),
                &[&id],
            )
            .await?;
        Ok(!rows.is_empty())
    }

    pub async fn start_action(
        &self,
        mut a: ActionRecord,
        nonce: Option<&str>,
    ) -> Result<Option<i64>, StoreError> {
        scrub(
            [
                &mut a.alert,
                &mut a.action,
                &mut a.destination,
                &mut a.client,
                &mut a.result,
            ],
            [&mut a.detail],
        );
        let rows = self
            .query(
                "INSERT INTO actions (at, alert, action, destination, client, result, detail, nonce)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (nonce) DO NOTHING RETURNING id",
                &[&a.at, &a.alert, &a.action, &a.destination, &a.client, &a.result, &a.detail, &nonce],
            )
            .await?;
        Ok(rows.first().map(|r| r.get(0)))
    }

    pub async fn add_silence(&self, mut s: Silence) -> Result<i64, StoreError> {
        scrub([&mut s.matcher, &mut s.comment, &mut s.author], []);
        let rows = self
            .query(
                "INSERT INTO silences (created_at, ends_at, matcher, comment, author) VALUES ($1, $2, $3, $4, $5) RETURNING id",
                &[&s.created_at, &s.ends_at, &s.matcher, &s.comment, &s.author],
            )
            .await?;
        Ok(rows[0].get(0))
    }

    pub async fn expire_silence(&self, id: i64, now: i64) -> Result<bool, StoreError> {
        let n = self
            .execute(
                "UPDATE silences SET expired_at = $2 WHERE id = $1 AND expired_at IS NULL AND ends_at > $2",
                &[&id, &now],
            )
            .await?;
        Ok(n > 0)
    }

    pub async fn silences(&self, active_at: Option<i64>) -> Result<Vec<Silence>, StoreError> {
        let rows = self
            .query(
                "SELECT id, created_at, ends_at, matcher, comment, author, expired_at FROM silences
                 WHERE $1::BIGINT IS NULL OR (expired_at IS NULL AND ends_at > $1) ORDER BY id DESC LIMIT 1000",
                &[&active_at],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| Silence {
                id: r.get(0),
                created_at: r.get(1),
                ends_at: r.get(2),
                matcher: r.get(3),
                comment: r.get(4),
                author: r.get(5),
                expired_at: r.get(6),
            })
            .collect())
    }

    pub async fn finish_action(
        &self,
        id: i64,
        result: &str,
        mut detail: Option<String>,
    ) -> Result<(), StoreError> {
        scrub([], [&mut detail]);
        self.execute(
            "UPDATE actions SET result = $2, detail = $3 WHERE id = $1",
            &[&id, &result, &detail],
        )
        .await?;
        Ok(())
    }

    pub async fn actions_for(&self, alert: &str) -> Result<Vec<ActionRecord>, StoreError> {
        let rows = self
            .query(
                "SELECT at, alert, action, destination, client, result, detail FROM actions WHERE alert = $1 ORDER BY id",
                &[&alert],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| ActionRecord {
                at: r.get(0),
                alert: r.get(1),
                action: r.get(2),
                destination: r.get(3),
                client: r.get(4),
                result: r.get(5),
                detail: r.get(6),
            })
            .collect())
    }

    pub async fn thread_root(
        &self,
        destination: &str,
        alert: &str,
    ) -> Result<Option<ThreadRoot>, StoreError> {
        let rows = self
            .query(
                "SELECT channel, ts, status, urgency FROM threads WHERE destination = $1 AND alert = $2",
                &[&destination, &alert],
            )
            .await?;
        Ok(rows.first().map(|r| ThreadRoot {
            channel: r.get(0),
            ts: r.get(1),
            status: r.get(2),
            urgency: r.get(3),
        }))
    }

    pub async fn set_thread(
        &self,
        destination: &str,
        alert: &str,
        mut root: ThreadRoot,
    ) -> Result<(), StoreError> {
        scrub([&mut root.channel, &mut root.ts], [&mut root.status]);
        self.execute(
            "INSERT INTO threads (destination, alert, channel, ts, status, urgency, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (destination, alert) DO UPDATE SET channel = excluded.channel, ts = excluded.ts,
                 status = excluded.status, urgency = excluded.urgency, updated_at = excluded.updated_at",
            &[&destination, &alert, &root.channel, &root.ts, &root.status, &root.urgency, &now_ms()],
        )
        .await?;
        Ok(())
    }

    /// `table` is `events` or `deliveries` (never user input).
    pub async fn renew(&self, table: &'static str, ids: Vec<i64>) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let until = self.lease_until(now_ms());
        let live_state = if table == "events" {
            "received"
        } else {
            "pending"
        };
        self.execute(
            &format!(
                "UPDATE {table} SET claimed_until = $1 WHERE id = ANY($2) AND claimed_by = $3 AND state = '{live_state}'"
            ),
            &[&until, &ids, &self.inner.replica],
        )
        .await?;
        Ok(())
    }

    pub async fn release(&self) -> Result<(), StoreError> {
        for table in ["events", "deliveries"] {
            self.execute(
                &format!("UPDATE {table} SET claimed_by = NULL, claimed_until = NULL WHERE claimed_by = $1"),
                &[&self.inner.replica],
            )
            .await?;
        }
        Ok(())
    }
}
