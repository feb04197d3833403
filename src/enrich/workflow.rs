//! The workflow change behind action buttons (`PATCH …/workflow`) and
//! the fresh read a person acting on an alert must see.

use super::alert::Alert;
use super::origin::error_chain;
use super::origin::{Attempt, Enricher};
use crate::http::{excerpt, read_capped};
use crate::secret::scrub;
use std::sync::Arc;
use uuid::Uuid;

/// Why a status change did not happen.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkflowError {
    /// The origin said no (4xx): its message, e.g. a transition its
    /// workflow does not allow. Trying again will not help.
    #[error("{0}")]
    Refused(String),
    /// No answer, or a 5xx: nothing changed; try again later.
    #[error("{0}")]
    Failed(String),
}

impl Enricher {
    /// Fetches an alert now, once, past the cache (what a person acting on
    /// it must see), and refreshes the cache with it.
    pub async fn fetch_now(&self, origin: &str, uuid: Uuid) -> Result<Arc<Alert>, WorkflowError> {
        let client = self.origins.get(origin).ok_or_else(|| {
            WorkflowError::Refused(format!("origin {origin:?} is no longer configured"))
        })?;
        match self.fetch_once(client, uuid).await {
            Ok(alert) => {
                let alert = Arc::new(alert);
                client.cache.insert(uuid, alert.clone()).await;
                Ok(alert)
            }
            Err(Attempt::Fatal(e)) => Err(WorkflowError::Refused(e.to_string())),
            Err(Attempt::Transient { error, .. }) => Err(WorkflowError::Failed(error)),
        }
    }

    /// Moves an alert to the workflow status `action_uuid` with `comment`
    /// (`PATCH {base_url}/v1/sic/alerts/{uuid}/workflow`).
    pub async fn change_status(
        &self,
        origin: &str,
        uuid: Uuid,
        action_uuid: &str,
        comment: &str,
    ) -> Result<(), WorkflowError> {
        let client = self.origins.get(origin).ok_or_else(|| {
            WorkflowError::Refused(format!("origin {origin:?} is no longer configured"))
        })?;
        let url = client
            .url(&["v1", "sic", "alerts", &uuid.to_string(), "workflow"])
            .map_err(|e| WorkflowError::Refused(e.to_string()))?;
        let http = self
            .http_for(client, &url)
            .map_err(|e| WorkflowError::Refused(e.to_string()))?;
        let result = http
            .patch(url)
            .bearer_auth(client.api_key.expose())
            .header("accept", "application/json")
            .json(&serde_json::json!({"action_uuid": action_uuid, "comment": comment}))
            .timeout(client.timeout)
            .send()
            .await;
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() {
                    "timed out"
                } else {
                    "request failed"
                };
                return Err(WorkflowError::Failed(format!(
                    "{what}: {}",
                    scrub(&error_chain(&e), &[&client.api_key])
                )));
            }
        };
        client.cache.invalidate(&uuid).await;
        let status = resp.status().as_u16();
        let body = read_capped(resp, 16 * 1024).await.unwrap_or_default();
        // Sekoia.io explains a refusal in `message` (or `detail`).
        let said = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                ["message", "detail", "error"]
                    .iter()
                    .find_map(|k| v.get(*k)?.as_str().map(str::to_owned))
            })
            .unwrap_or_else(|| excerpt(&body));
        let said = scrub(&said, &[&client.api_key]);
        match status {
            200..=299 => Ok(()),
            408 | 429 | 500..=599 => Err(WorkflowError::Failed(format!("HTTP {status}: {said}"))),
            _ => Err(WorkflowError::Refused(format!("HTTP {status}: {said}"))),
        }
    }
}
