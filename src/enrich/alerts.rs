//! Alerts and their assets from the origin's API: cached and coalesced
//! (an update or a comment fetches its alert fresh), retried within the
//! enrich deadline.

use super::alert::{Alert, Asset};
use super::origin::{Attempt, Enricher, OriginClient};
use super::outcome::{EnrichError, Enrichment};
use crate::event::Event;
use crate::telemetry::{labels1, labels2};
use std::sync::Arc;
use uuid::Uuid;

impl Enricher {
    /// An alert event's enrichment from its origin's client.
    pub(super) async fn enrich_alert(
        &self,
        client: &Arc<OriginClient>,
        event: &Event,
        uuid: Uuid,
    ) -> (Enrichment, bool) {
        // Something happened to the alert since: what the cache holds may be
        // from before (a thread's root must show the alert as it is now, and
        // with replicas another one may have seen the change).
        if !(event.is_alert() && event.action == "created") {
            client.cache.invalidate(&uuid).await;
        }
        if let Some(alert) = client.cache.get(&uuid).await {
            self.metrics
                .enrich
                .cache_hits
                .get_or_create(&labels1("origin", &client.name))
                .inc();
            return (Enrichment::Fetched(alert), true);
        }
        let fetch = self.fetch_with_retries(client.clone(), uuid);
        let fetched = match client.cache.try_get_with(uuid, fetch).await {
            Ok(alert) => Enrichment::Fetched(alert),
            Err(e) => {
                let reason = match e.as_ref() {
                    EnrichError::Permanent { status, .. } => format!("http_{status}"),
                    EnrichError::Invalid(_) => "invalid".into(),
                    EnrichError::NotAllowed(_) => "not_allowed".into(),
                    EnrichError::Deadline { .. } => "deadline".into(),
                };
                let shown = e.shown();
                self.metrics
                    .enrich
                    .degraded
                    .get_or_create(&labels2("origin", &client.name, "reason", &reason))
                    .inc();
                tracing::warn!(
                    message = "Alert details unavailable; forwarding without them.",
                    origin = %client.name,
                    alert_uuid = %uuid,
                    error = %e
                );
                Enrichment::Unavailable(format!("{shown} ({e})"))
            }
        };
        (fetched, false)
    }

    pub(super) async fn fetch_with_retries(
        &self,
        client: Arc<OriginClient>,
        uuid: Uuid,
    ) -> Result<Arc<Alert>, EnrichError> {
        self.retrying(&client, || self.fetch_once(&client, uuid))
            .await
            .map(Arc::new)
    }

    pub(super) async fn fetch_once(
        &self,
        client: &OriginClient,
        uuid: Uuid,
    ) -> Result<Alert, Attempt> {
        let mut url = client
            .url(&["v1", "sic", "alerts", &uuid.to_string()])
            .map_err(Attempt::Fatal)?;
        url.set_query(Some("stix=false"));
        let body = self.get_json(client, url).await?;
        Alert::from_slice(&body).map_err(|e| Attempt::Fatal(EnrichError::Invalid(e)))
    }
}

/// Alert assets fetched per alert at most (a larger list is cut).
const ASSETS_MAX: usize = 20;

impl Enricher {
    /// The alert with its assets described (name, criticality) by the
    /// origin's asset API: cached and coalesced like alerts, retried
    /// within the enrich deadline; an asset that cannot be fetched is
    /// kept as unknown.
    pub async fn with_assets(&self, origin: &str, alert: &Arc<Alert>) -> Arc<Alert> {
        let Some(client) = self.origins.get(origin) else {
            return alert.clone();
        };
        let uuids: Vec<String> = alert.asset_uuids().into_iter().take(ASSETS_MAX).collect();
        if uuids.is_empty() {
            return alert.clone();
        }
        let lookups = uuids.iter().map(|u| self.asset(client, u));
        let assets = futures_util::future::join_all(lookups).await;
        let mut out = (**alert).clone();
        out.assets = assets;
        Arc::new(out)
    }

    async fn asset(&self, client: &Arc<OriginClient>, uuid: &str) -> Asset {
        let unknown = || Asset {
            uuid: uuid.to_owned(),
            name: None,
            criticality: None,
        };
        let Ok(id) = Uuid::parse_str(uuid) else {
            return unknown();
        };
        let fetch = self.retrying(client, || self.fetch_asset_once(client, id));
        let lookup = client.assets.try_get_with(id, fetch);
        match tokio::time::timeout(client.deadline, lookup).await {
            Ok(Ok(a)) => (*a).clone(),
            Ok(Err(e)) => {
                tracing::warn!(message = "Asset details unavailable.", origin = %client.name, asset_uuid = %id, error = %e);
                unknown()
            }
            Err(_) => unknown(),
        }
    }

    async fn fetch_asset_once(
        &self,
        client: &OriginClient,
        id: Uuid,
    ) -> Result<Arc<Asset>, Attempt> {
        let url = client
            .url(&["v2", "asset-management", "assets", &id.to_string()])
            .map_err(Attempt::Fatal)?;
        let body = self.get_json(client, url).await?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| Attempt::Fatal(EnrichError::Invalid(e.to_string())))?;
        Ok(Arc::new(Asset {
            uuid: id.to_string(),
            name: v
                .get("name")
                .and_then(|n| n.as_str())
                .map(|n| n.chars().take(200).collect()),
            criticality: v
                .get("criticality")
                .and_then(|c| c.as_f64())
                .map(|c| c.clamp(0.0, 100.0).round() as u32),
        }))
    }
}
