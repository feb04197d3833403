//! Cases from the origin's API (`GET /v1/sic/cases/{uuid}`), through
//! the same GET path and retry loop as alerts with a cache of their own,
//! and the names of their statuses, priorities and verdicts
//! (`/v1/sic/custom_*/{uuid}`, cached ten minutes).

use super::alert::Alert;
use super::case::{
    alert_changes, case_refs, label, own_names, updated_refs, Case, NameKind, ADDED_ALERTS_MAX,
};
use super::origin::{Attempt, Enricher, OriginClient};
use super::outcome::{EnrichError, Enrichment};
use crate::event::Event;
use crate::telemetry::{labels1, labels2};
use serde_json::Value;
use std::sync::Arc;
use uuid::Uuid;

/// Why a case could not be had: the category a message may show, then
/// the API's own words for the log and the journey (see
/// `Enrichment::shown_reason`).
fn reason(e: &EnrichError) -> String {
    let detail = match e {
        EnrichError::Permanent { status, text } => format!("case API answered {status} ({text})"),
        EnrichError::Invalid(m) => format!("case API answer is not a valid case: {m}"),
        EnrichError::NotAllowed(_) | EnrichError::Deadline { .. } => e.to_string(),
    };
    format!("{} ({detail})", e.shown())
}

impl Enricher {
    /// A case event's enrichment: the case, its names and its alerts.
    pub(super) async fn enrich_case(
        &self,
        client: &Arc<OriginClient>,
        event: &Event,
        uuid: Uuid,
    ) -> (Enrichment, bool) {
        // Every case event but its creation says it changed since.
        if !(event.is_case() && event.action == "created") {
            client.cases.invalidate(&uuid).await;
        }
        let (raw, cached) = match client.cases.get(&uuid).await {
            Some(raw) => {
                self.metrics
                    .enrich
                    .cache_hits
                    .get_or_create(&labels1("origin", &client.name))
                    .inc();
                (raw, true)
            }
            None => {
                let fetch = async {
                    self.retrying(client, || self.fetch_case_once(client, uuid))
                        .await
                        .map(Arc::new)
                };
                match client.cases.try_get_with(uuid, fetch).await {
                    Ok(raw) => (raw, false),
                    Err(e) => {
                        let label = match e.as_ref() {
                            EnrichError::Permanent { status, .. } => format!("http_{status}"),
                            EnrichError::Invalid(_) => "invalid".into(),
                            EnrichError::NotAllowed(_) => "not_allowed".into(),
                            EnrichError::Deadline { .. } => "deadline".into(),
                        };
                        self.metrics
                            .enrich
                            .degraded
                            .get_or_create(&labels2("origin", &client.name, "reason", &label))
                            .inc();
                        tracing::warn!(
                            message = "Case details unavailable; forwarding without them.",
                            origin = %client.name,
                            case_uuid = %uuid,
                            error = %e
                        );
                        return (Enrichment::Unavailable(reason(&e)), false);
                    }
                }
            }
        };
        let mut names = own_names(&raw);
        let mut wanted = case_refs(&raw);
        wanted.extend(updated_refs(event.updated.as_ref()));
        wanted.retain(|(_, u)| !names.contains_key(&u.to_string()));
        wanted.sort();
        wanted.dedup();
        let looked_up =
            futures_util::future::join_all(wanted.iter().map(|(k, u)| self.name(client, *k, *u)))
                .await;
        for ((_, u), name) in wanted.iter().zip(looked_up) {
            if let Some(n) = name {
                names.insert(u.to_string(), n);
            }
        }
        // Alerts just added that the case does not list yet.
        let (added, _) = alert_changes(event.updated.as_ref());
        let listed = |u: &Uuid| {
            raw.get("alerts")
                .and_then(Value::as_array)
                .is_some_and(|l| {
                    l.iter().any(|a| {
                        a.get("uuid")
                            .and_then(Value::as_str)
                            .is_some_and(|x| x.eq_ignore_ascii_case(&u.to_string()))
                    })
                })
        };
        let missing: Vec<Uuid> = added
            .into_iter()
            .filter(|u| !listed(u))
            .take(ADDED_ALERTS_MAX)
            .collect();
        let fetched =
            futures_util::future::join_all(missing.iter().map(|u| self.case_alert(client, *u)))
                .await;
        let added: Vec<Arc<Alert>> = fetched.into_iter().flatten().collect();
        let case = Case::from_parts((*raw).clone(), names, &added);
        (Enrichment::Case(Arc::new(case)), cached)
    }

    async fn fetch_case_once(&self, client: &OriginClient, uuid: Uuid) -> Result<Value, Attempt> {
        let url = api_url(client, &format!("v1/sic/cases/{uuid}"))?;
        let body = self.get_json(client, url).await?;
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) if v.is_object() => Ok(v),
            Ok(_) => Err(Attempt::Fatal(EnrichError::Invalid(
                "expected a JSON object".into(),
            ))),
            Err(e) => Err(Attempt::Fatal(EnrichError::Invalid(e.to_string()))),
        }
    }

    /// A status, priority or verdict name: cached, coalesced, retried
    /// within the enrich deadline; `None` when it cannot be had.
    async fn name(&self, client: &Arc<OriginClient>, kind: NameKind, uuid: Uuid) -> Option<String> {
        let fetch = self.retrying(client, || async {
            let url = api_url(client, &format!("v1/sic/{}/{uuid}", kind.path()))?;
            let body = self.get_json(client, url).await?;
            let v: Value = serde_json::from_slice(&body)
                .map_err(|e| Attempt::Fatal(EnrichError::Invalid(e.to_string())))?;
            label(Some(&v))
                .map(|l| Arc::<str>::from(l.as_str()))
                .ok_or_else(|| Attempt::Fatal(EnrichError::Invalid("no label".into())))
        });
        let lookup = client.names.try_get_with((kind, uuid), fetch);
        match tokio::time::timeout(client.deadline, lookup).await {
            Ok(Ok(name)) => Some(name.to_string()),
            Ok(Err(e)) => {
                tracing::warn!(message = "Case status, priority or verdict name unavailable.", origin = %client.name, uuid = %uuid, error = %e);
                None
            }
            Err(_) => None,
        }
    }

    /// An alert just added to a case, from the alert cache or the alert API.
    async fn case_alert(&self, client: &Arc<OriginClient>, uuid: Uuid) -> Option<Arc<Alert>> {
        let fetch = self.fetch_with_retries(client.clone(), uuid);
        match tokio::time::timeout(client.deadline, client.cache.try_get_with(uuid, fetch)).await {
            Ok(Ok(a)) => Some(a),
            Ok(Err(e)) => {
                tracing::warn!(message = "An alert added to a case is unavailable.", origin = %client.name, alert_uuid = %uuid, error = %e);
                None
            }
            Err(_) => None,
        }
    }
}

/// `{base_url}/{path}`, extending the base's own path segment by segment
/// (see `OriginClient::url`).
fn api_url(client: &OriginClient, path: &str) -> Result<reqwest::Url, Attempt> {
    let segments: Vec<&str> = path.split('/').collect();
    client.url(&segments).map_err(Attempt::Fatal)
}
