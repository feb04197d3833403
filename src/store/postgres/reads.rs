//! Read-only queries for the CLI, the gauges and re-rendering.

use super::*;

impl Postgres {
    pub async fn queue_depths(&self) -> Result<Vec<QueueDepth>, StoreError> {
        let rows = self
            .query(
                "SELECT destination, COUNT(*), MIN(created_at) FROM deliveries WHERE state = 'pending' GROUP BY destination",
                &[],
            )
            .await?;
        Ok(rows
            .into_iter()
            .map(|r| QueueDepth {
                destination: r.get(0),
                pending: r.get(1),
                oldest_created_at: r.get(2),
            })
            .collect())
    }

    pub async fn dead_letters(
        &self,
        destination: Option<&str>,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let rows = self
            .query(
                "SELECT d.id, d.event_id, d.destination, e.kind, e.action, e.short_id, d.attempts, d.last_status, d.last_error, d.updated_at, e.hook
                 FROM deliveries d JOIN events e ON e.id = d.event_id
                 WHERE d.state = 'dead' AND ($1::TEXT IS NULL OR d.destination = $1) ORDER BY d.id",
                &[&destination],
            )
            .await?;
        Ok(rows.iter().map(dead_letter).collect())
    }

    pub async fn summaries(
        &self,
        since: i64,
        hook: Option<&str>,
        id: Option<i64>,
        limit: Option<usize>,
    ) -> Result<Vec<EventSummary>, StoreError> {
        let limit = limit.map(|l| l as i64);
        // One event: a statement of its own, so its plan is a key lookup.
        let by_id = if id.is_some() {
            "e.id = $4"
        } else {
            "$4::BIGINT IS NULL"
        };
        let sql = format!(
            "SELECT e.id, e.received_at, e.hook, e.kind, e.action, e.short_id, e.state,
                    COUNT(*) FILTER (WHERE d.state = 'pending'), COUNT(*) FILTER (WHERE d.state = 'dead'),
                    COUNT(*) FILTER (WHERE d.state = 'delivered'), COUNT(d.id)
             FROM events e LEFT JOIN deliveries d ON d.event_id = e.id
             WHERE {by_id} AND e.received_at >= $1 AND ($2::TEXT IS NULL OR e.hook = $2)
             GROUP BY e.id ORDER BY e.id DESC LIMIT $3"
        );
        let rows = self.query(&sql, &[&since, &hook, &limit, &id]).await?;
        Ok(rows
            .into_iter()
            .map(|r| {
                let raw: String = r.get(6);
                let counts: [i64; 4] = [r.get(7), r.get(8), r.get(9), r.get(10)];
                EventSummary {
                    id: r.get(0),
                    received_at: r.get(1),
                    hook: r.get(2),
                    kind: r.get(3),
                    action: r.get(4),
                    short_id: r.get(5),
                    state: crate::store::reads::summary_state(&raw, counts).to_owned(),
                }
            })
            .collect())
    }

    pub async fn event_detail(&self, id: i64) -> Result<Option<EventDetail>, StoreError> {
        let Some(summary) = self
            .summaries(0, None, Some(id), None)
            .await?
            .into_iter()
            .next()
        else {
            return Ok(None);
        };
        let row = self
            .query(
                "SELECT body, enrichment, alert_json, routes, client, auth, retries, alert_uuid, routed_at FROM events WHERE id = $1",
                &[&id],
            )
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::NotFound(format!("event {id}")))?;
        let body: Vec<u8> = row.get(0);
        let mut deliveries: Vec<DeliveryDetail> = self
            .query(
                "SELECT id, route, destination, state, last_error, thread, payload, updated_at FROM deliveries WHERE event_id = $1 ORDER BY id",
                &[&id],
            )
            .await?
            .into_iter()
            .map(|r| {
                Ok(DeliveryDetail {
                    id: r.get(0),
                    route: r.get(1),
                    destination: r.get(2),
                    state: r.get::<_, &str>(3).parse()?,
                    last_error: r.get(4),
                    thread: r.get(5),
                    payload: r.get(6),
                    updated_at: r.get(7),
                    attempts: Vec::new(),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        for d in &mut deliveries {
            d.attempts = self
                .query(
                    "SELECT at, status, error, duration_ms FROM attempts WHERE delivery_id = $1 ORDER BY id",
                    &[&d.id],
                )
                .await?
                .into_iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect();
        }
        Ok(Some(EventDetail {
            summary,
            body: String::from_utf8_lossy(&body).into_owned(),
            enrichment: row.get(1),
            alert_json: row.get(2),
            routes: row.get(3),
            deliveries,
            client: row.get(4),
            auth: row.get(5),
            retries: row.get(6),
            alert_uuid: row.get(7),
            routed_at: row.get(8),
        }))
    }

    pub async fn held(
        &self,
        destination: &str,
        limit: usize,
    ) -> Result<Vec<(i64, Option<String>)>, StoreError> {
        let rows = self
            .query(
                "SELECT id, summary FROM deliveries WHERE state = 'held' AND destination = $1 ORDER BY id LIMIT $2",
                &[&destination, &(limit as i64)],
            )
            .await?;
        Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    pub async fn render_source(
        &self,
        delivery_id: i64,
    ) -> Result<Option<RenderSource>, StoreError> {
        let rows = self
            .query(
                "SELECT e.hook, e.body, e.alert_json, e.enrichment, d.route
                 FROM deliveries d JOIN events e ON e.id = d.event_id WHERE d.id = $1",
                &[&delivery_id],
            )
            .await?;
        Ok(rows.into_iter().next().map(|r| RenderSource {
            hook: r.get(0),
            body: r.get(1),
            alert_json: r.get(2),
            enrichment: r.get(3),
            route: r.get(4),
        }))
    }
}

/// A dead letter from a row of `d.id, d.event_id, d.destination, e.kind,
/// e.action, e.short_id, d.attempts, d.last_status, d.last_error,
/// d.updated_at, e.hook`.
pub(super) fn dead_letter(r: &tokio_postgres::Row) -> DeadLetter {
    DeadLetter {
        id: r.get(0),
        event_id: r.get(1),
        destination: r.get(2),
        kind: r.get(3),
        action: r.get(4),
        short_id: r.get(5),
        attempts: r.get(6),
        last_status: r.get(7),
        last_error: r.get(8),
        updated_at: r.get(9),
        hook: r.get(10),
    }
}
