//! Enrichment: fetch the alert (or the case, `case.rs`) an event is about
//! from its origin's API.
//!
//! Owns the per-origin HTTP concurrency bound, the short TTL cache and the
//! coalescing of concurrent look-ups of one alert (both through `moka`), and
//! the retry-within-a-deadline policy. It never fails an event: when the
//! alert cannot be had, the result says so and the event goes on degraded.
//!
//! A tenant's origins are untrusted: their requests go through the egress
//! guard (`crate::http::guard`), what their messages say of a failure is a
//! short category (never the API's words or a connection's details), and
//! [`Enricher::admit`] bounds how many of a tenant's events are in
//! enrichment at once, so one slow origin cannot hold the whole pipeline.

mod alert;
mod case;

pub use alert::{Alert, Asset, Urgency};
pub use case::{alert_changes, updated_refs, Case, CaseAlert, NameKind};

use crate::config::OriginConfig;
use crate::event::Event;
use crate::http::{excerpt, read_capped, retry_after, MAX_RESPONSE_BYTES};
use crate::secret::{scrub, Secret};
use crate::telemetry::{labels1, labels2, Metrics};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// What enrichment produced for one event.
#[derive(Debug, Clone)]
pub enum Enrichment {
    /// The alert object from the API.
    Fetched(Arc<Alert>),
    /// The case object from the API, its names looked up.
    Case(Arc<Case>),
    /// The event is about neither an alert nor a case (a content
    /// proposal, a platform health notice, …).
    NotApplicable,
    /// The alert could not be fetched: `"<category> (<detail>)"`. The
    /// detail (the API's answer, the connection's error) is for the log and
    /// the operator's journey; messages show only the category
    /// ([`Enrichment::shown_reason`]).
    Unavailable(String),
}

/// What a message may say of why an alert is unavailable. Anything else
/// (the API's text, connection refused vs reset, addresses, OS errors)
/// would let a tenant use its own messages to scan the relay's network.
const SHOWN: &[&str] = &[
    "timeout",
    "refused",
    "unreachable",
    "network error",
    "address not allowed",
    "invalid answer",
    "not configured",
    "unreadable",
    "shutting down",
];

impl Enrichment {
    pub fn alert(&self) -> Option<&Alert> {
        match self {
            Enrichment::Fetched(a) => Some(a),
            _ => None,
        }
    }

    /// Why the alert is unavailable, as a message may say it: `timeout`,
    /// `refused`, `HTTP 503`, `HTTP 404`, … (`None`: not unavailable, or a
    /// reason without a category, which messages then do not explain).
    pub fn shown_reason(&self) -> Option<String> {
        let Enrichment::Unavailable(reason) = self else {
            return None;
        };
        let head = reason.split(" (").next().unwrap_or_default();
        let http = |s: &str| {
            (s.len() == 3 && s.bytes().all(|b| b.is_ascii_digit())).then(|| format!("HTTP {s}"))
        };
        if SHOWN.contains(&head) {
            return Some(head.to_owned());
        }
        if let Some(code) = head.strip_prefix("HTTP ") {
            return http(code);
        }
        // Recorded before categories (a replayed dead letter).
        let code = reason.strip_prefix("alert API answered ")?.get(..3)?;
        http(code)
    }

    pub fn case(&self) -> Option<&Case> {
        match self {
            Enrichment::Case(c) => Some(c),
            _ => None,
        }
    }

    /// How the spool records it: a note (`ok`, `n/a`, `unavailable: …`,
    /// shown by `events show`) and the alert's JSON.
    pub fn stored(&self) -> (String, Option<String>) {
        match self {
            Enrichment::Fetched(alert) => ("ok".to_owned(), Some(alert.json.clone())),
            Enrichment::Case(case) => (CASE_NOTE.to_owned(), Some(case.json.clone())),
            Enrichment::NotApplicable => ("n/a".to_owned(), None),
            Enrichment::Unavailable(reason) => (format!("unavailable: {reason}"), None),
        }
    }

    /// Back from the spool's record (to render a message again).
    pub fn from_stored(note: Option<&str>, alert_json: Option<&str>) -> Enrichment {
        match (alert_json, note) {
            (Some(json), Some(CASE_NOTE)) => match Case::from_stored(json) {
                Ok(case) => Enrichment::Case(Arc::new(case)),
                Err(e) => Enrichment::Unavailable(format!("the stored case is unreadable: {e}")),
            },
            (Some(json), _) => match Alert::from_slice(json.as_bytes()) {
                Ok(alert) => Enrichment::Fetched(Arc::new(alert)),
                Err(e) => Enrichment::Unavailable(format!(
                    "unreadable (the stored alert is unreadable: {e})"
                )),
            },
            (None, Some(note)) => match note.strip_prefix("unavailable: ") {
                Some(reason) => Enrichment::Unavailable(reason.to_owned()),
                None => Enrichment::NotApplicable,
            },
            (None, None) => Enrichment::NotApplicable,
        }
    }
}

/// The spool's note for an enrichment that is a case.
const CASE_NOTE: &str = "ok: case";

/// Why one look-up failed, as shared between coalesced waiters.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EnrichError {
    #[error("alert API answered {status} ({text})")]
    Permanent { status: u16, text: String },
    #[error("alert API answer is not a valid alert: {0}")]
    Invalid(String),
    /// A tenant's origin at an address tenants may not reach.
    #[error("{0}")]
    NotAllowed(String),
    #[error("gave up after {attempts} attempts within the enrich deadline; last error: {last}")]
    Deadline {
        attempts: u32,
        last: String,
        /// The last error's category (see [`Enrichment::shown_reason`]).
        cause: &'static str,
    },
}

impl EnrichError {
    /// The category a message may show.
    fn shown(&self) -> String {
        match self {
            EnrichError::Permanent { status, .. } => format!("HTTP {status}"),
            EnrichError::Invalid(_) => "invalid answer".into(),
            EnrichError::NotAllowed(_) => "address not allowed".into(),
            EnrichError::Deadline { cause, .. } => (*cause).to_owned(),
        }
    }
}

struct OriginClient {
    name: String,
    /// `base_url` parsed once; each request appends its path segments
    /// (never text: a `?` or `#` in an id cannot steer the request).
    base: Option<reqwest::Url>,
    /// A tenant's origin: the client that resolves through the egress
    /// guard, and the policy its literal addresses are checked against.
    guarded: Option<(reqwest::Client, Arc<crate::http::guard::Egress>)>,
    /// In-flight events of this origin's admission group (its tenant's, or
    /// its own): see [`Enricher::admit`].
    admission: Arc<Semaphore>,
    api_key: Secret,
    timeout: Duration,
    deadline: Duration,
    /// Caps concurrent requests to this origin's API.
    permits: Semaphore,
    /// Recent alerts; `try_get_with` also makes concurrent misses for one
    /// uuid share a single request.
    cache: moka::future::Cache<Uuid, Arc<Alert>>,
    /// Recent assets, the same way.
    assets: moka::future::Cache<Uuid, Arc<alert::Asset>>,
    /// Recent cases (the API's objects), the same way.
    cases: moka::future::Cache<Uuid, Arc<serde_json::Value>>,
    /// Status, priority and verdict names by uuid.
    names: moka::future::Cache<(NameKind, Uuid), Arc<str>>,
}

/// The enrich client for every configured origin.
pub struct Enricher {
    http: reqwest::Client,
    origins: HashMap<String, Arc<OriginClient>>,
    metrics: Arc<Metrics>,
}

impl Enricher {
    pub fn new(
        origins: &std::collections::BTreeMap<String, OriginConfig>,
        http: reqwest::Client,
        metrics: Arc<Metrics>,
    ) -> Self {
        // One guarded client per egress policy (every tenant shares the
        // file's), one admission group per tenant and per file origin.
        let mut guarded: Vec<(Arc<crate::http::guard::Egress>, reqwest::Client)> = Vec::new();
        let mut groups: HashMap<String, Arc<Semaphore>> = HashMap::new();
        let origins = origins
            .iter()
            .map(|(name, o)| {
                let base_url = o
                    .base_url
                    .clone()
                    .unwrap_or_default()
                    .trim_end_matches('/')
                    .to_owned();
                let guarded = o.tenant.as_ref().map(|mark| {
                    let found = guarded.iter().find(|(e, _)| Arc::ptr_eq(e, &mark.egress));
                    let http = match found {
                        Some((_, c)) => c.clone(),
                        None => {
                            let c = crate::http::guarded_client(mark.egress.clone());
                            guarded.push((mark.egress.clone(), c.clone()));
                            c
                        }
                    };
                    (http, mark.egress.clone())
                });
                let (group, share) = match &o.tenant {
                    Some(mark) => (format!("tenant {}", mark.name), TENANT_SHARE),
                    None => (format!("origin {name}"), ORIGIN_SHARE),
                };
                let admission = groups
                    .entry(group)
                    .or_insert_with(|| Arc::new(Semaphore::new(share)))
                    .clone();
                let client = OriginClient {
                    name: name.clone(),
                    base: reqwest::Url::parse(&base_url)
                        .ok()
                        .filter(|u| !u.cannot_be_a_base()),
                    guarded,
                    admission,
                    api_key: o.api_key.clone().unwrap_or_else(|| Secret::new("")),
                    timeout: o.timeout,
                    deadline: o.enrich_deadline,
                    permits: Semaphore::new(o.concurrency.max(1)),
                    cache: moka::future::Cache::builder()
                        .max_capacity(1_000)
                        .time_to_live(o.cache_ttl.max(Duration::from_millis(1)))
                        .build(),
                    assets: moka::future::Cache::builder()
                        .max_capacity(5_000)
                        .time_to_live(o.cache_ttl.max(Duration::from_millis(1)))
                        .build(),
                    cases: moka::future::Cache::builder()
                        .max_capacity(1_000)
                        .time_to_live(o.cache_ttl.max(Duration::from_millis(1)))
                        .build(),
                    names: moka::future::Cache::builder()
                        .max_capacity(1_000)
                        .time_to_live(case::NAME_TTL)
                        .build(),
                };
                (name.clone(), Arc::new(client))
            })
            .collect();
        Self {
            http,
            origins,
            metrics,
        }
    }

    /// Admits one event from `origin` into enrichment, or `None` when its
    /// group — a tenant's origins together, or one of the file's origins —
    /// already has its share of events in progress ([`TENANT_SHARE`],
    /// [`ORIGIN_SHARE`] of the pipeline's permits). The pipeline asks before
    /// it takes a shared permit and holds the admission until the event is
    /// routed; on `None` it leaves the event in the spool for a later sweep,
    /// so an origin that tarpits holds its share and no more. An origin
    /// no longer configured (or an event without one) is admitted.
    pub fn admit(&self, origin: &str) -> Option<Admission> {
        let Some(client) = self.origins.get(origin) else {
            return Some(Admission { _permit: None });
        };
        let permit = client.admission.clone().try_acquire_owned().ok()?;
        Some(Admission {
            _permit: Some(permit),
        })
    }

    /// Enriches one event from `origin`. Never fails: see [`Enrichment`].
    pub async fn enrich(&self, origin: &str, event: &Event) -> Enrichment {
        self.enrich_traced(origin, event).await.0
    }

    /// Like [`Enricher::enrich`]; also says whether the alert came from the
    /// cache (for the console's journey).
    pub async fn enrich_traced(&self, origin: &str, event: &Event) -> (Enrichment, bool) {
        let Some(uuid) = event.alert_uuid else {
            return match (event.case_uuid, self.origins.get(origin)) {
                (Some(case), Some(client)) => self.enrich_case(client, event, case).await,
                (Some(_), None) => (
                    Enrichment::Unavailable(format!("origin {origin:?} is no longer configured")),
                    false,
                ),
                (None, _) => (Enrichment::NotApplicable, false),
            };
        };
        let Some(client) = self.origins.get(origin) else {
            // Validation ties every hook to an origin; a reload may have
            // removed it since the event was accepted.
            return (
                Enrichment::Unavailable(format!(
                    "not configured (origin {origin:?} is no longer configured)"
                )),
                false,
            );
        };
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

    async fn fetch_with_retries(
        &self,
        client: Arc<OriginClient>,
        uuid: Uuid,
    ) -> Result<Arc<Alert>, EnrichError> {
        self.retrying(&client, || self.fetch_once(&client, uuid))
            .await
            .map(Arc::new)
    }

    /// Runs `attempt` until it succeeds, fails for good, or the next wait
    /// would pass the origin's enrich deadline (exponential back-off with
    /// jitter, or the origin's `Retry-After`).
    async fn retrying<T, F, Fut>(
        &self,
        client: &OriginClient,
        mut attempt: F,
    ) -> Result<T, EnrichError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Attempt>>,
    {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(200);
        let mut attempts = 0;
        loop {
            attempts += 1;
            match attempt().await {
                Ok(v) => return Ok(v),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Transient {
                    error,
                    retry_after,
                    cause,
                }) => {
                    let wait = retry_after.unwrap_or_else(|| jitter(backoff));
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    if started.elapsed() + wait >= client.deadline {
                        return Err(EnrichError::Deadline {
                            attempts,
                            last: error,
                            cause,
                        });
                    }
                    tracing::debug!(origin = %client.name, attempt = attempts, %error, "Origin API attempt failed; retrying.");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    async fn fetch_once(&self, client: &OriginClient, uuid: Uuid) -> Result<Alert, Attempt> {
        let mut url = client
            .url(&["v1", "sic", "alerts", &uuid.to_string()])
            .map_err(Attempt::Fatal)?;
        url.set_query(Some("stix=false"));
        let body = self.get_json(client, url).await?;
        Alert::from_slice(&body).map_err(|e| Attempt::Fatal(EnrichError::Invalid(e)))
    }

    /// One GET of a JSON document from the origin (an alert, an asset),
    /// within its concurrency bound, timed and counted by outcome: the
    /// body, or whether trying again may help.
    async fn get_json(&self, client: &OriginClient, url: reqwest::Url) -> Result<Vec<u8>, Attempt> {
        let http = self.http_for(client, &url).map_err(Attempt::Fatal)?;
        let _permit = client
            .permits
            .acquire()
            .await
            .map_err(|_| Attempt::Transient {
                error: "shutting down".into(),
                retry_after: None,
                cause: "shutting down",
            })?;
        let started = Instant::now();
        let result = http
            .get(url)
            .bearer_auth(client.api_key.expose())
            .header("accept", "application/json")
            .timeout(client.timeout)
            .send()
            .await;
        let outcome_labels = |outcome: &str| labels2("origin", &client.name, "outcome", outcome);
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                let outcome = if e.is_timeout() { "timeout" } else { "network" };
                self.metrics
                    .enrich
                    .requests
                    .get_or_create(&outcome_labels(outcome))
                    .inc();
                return Err(Attempt::Transient {
                    error: scrub(&error_chain(&e), &[&client.api_key]),
                    retry_after: None,
                    cause: crate::http::failure_category(&e),
                });
            }
        };
        let status = resp.status();
        let after = retry_after(resp.headers());
        let body = read_capped(resp, MAX_RESPONSE_BYTES).await;
        self.metrics
            .enrich
            .duration
            .get_or_create(&labels1("origin", &client.name))
            .observe(started.elapsed().as_secs_f64());
        let outcome = match status.as_u16() {
            200..=299 => "ok",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "not_found",
            429 => "rate_limited",
            500..=599 => "server_error",
            _ => "client_error",
        };
        self.metrics
            .enrich
            .requests
            .get_or_create(&outcome_labels(outcome))
            .inc();
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                return Err(Attempt::Transient {
                    error: format!(
                        "reading the answer: {}",
                        scrub(&error_chain(&e), &[&client.api_key])
                    ),
                    retry_after: None,
                    cause: crate::http::failure_category(&e),
                })
            }
        };
        match status.as_u16() {
            200..=299 => Ok(body),
            408 | 429 | 500..=599 => Err(Attempt::Transient {
                error: format!("HTTP {} {}", status.as_u16(), excerpt(&body)),
                retry_after: after,
                cause: http_cause(status.as_u16()),
            }),
            code => Err(Attempt::Fatal(EnrichError::Permanent {
                status: code,
                text: status.canonical_reason().unwrap_or("error").to_owned(),
            })),
        }
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

    async fn asset(&self, client: &Arc<OriginClient>, uuid: &str) -> alert::Asset {
        let unknown = || alert::Asset {
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
    ) -> Result<Arc<alert::Asset>, Attempt> {
        let url = client
            .url(&["v2", "asset-management", "assets", &id.to_string()])
            .map_err(Attempt::Fatal)?;
        let body = self.get_json(client, url).await?;
        let v: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| Attempt::Fatal(EnrichError::Invalid(e.to_string())))?;
        Ok(Arc::new(alert::Asset {
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

/// `{base}/{segments…}`: each segment percent-encoded as one path segment,
/// the base's own query and fragment dropped (validation refuses them).
fn api_url(base: &reqwest::Url, segments: &[&str]) -> reqwest::Url {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

impl OriginClient {
    /// The URL of an API resource below the origin's `base_url`.
    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, EnrichError> {
        let base = self.base.as_ref().ok_or_else(|| {
            EnrichError::Invalid(format!(
                "origin {:?}: base_url is not a base URL",
                self.name
            ))
        })?;
        Ok(api_url(base, segments))
    }
}

impl Enricher {
    /// The client for a request to `client`'s API: a tenant's goes through
    /// the egress guard (a literal IP in its URL is checked here; names
    /// when they resolve).
    fn http_for<'a>(
        &'a self,
        client: &'a OriginClient,
        url: &reqwest::Url,
    ) -> Result<&'a reqwest::Client, EnrichError> {
        match &client.guarded {
            Some((http, egress)) => {
                egress
                    .check_url(url)
                    .map_err(|e| EnrichError::NotAllowed(e.0))?;
                Ok(http)
            }
            None => Ok(&self.http),
        }
    }
}

/// The category of an HTTP status worth retrying.
fn http_cause(status: u16) -> &'static str {
    match status {
        408 => "HTTP 408",
        429 => "HTTP 429",
        500 => "HTTP 500",
        502 => "HTTP 502",
        503 => "HTTP 503",
        504 => "HTTP 504",
        _ => "HTTP 5xx",
    }
}

/// Events of one tenant (all its origins together) in enrichment at once,
/// at most: an eighth of the pipeline's 512 permits, so eight tenants whose
/// origins all tarpit still leave half of them to everyone else.
pub const TENANT_SHARE: usize = 64;
/// Events of one of the file's origins in enrichment at once, at most:
/// half the pipeline's permits (the operator's own origins are trusted,
/// but one that stalls still leaves the other half to the rest).
pub const ORIGIN_SHARE: usize = 256;

/// An event's place in its origin's share ([`Enricher::admit`]): held
/// until the event is routed, released when dropped.
#[derive(Debug)]
pub struct Admission {
    _permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

enum Attempt {
    Fatal(EnrichError),
    Transient {
        error: String,
        retry_after: Option<Duration>,
        /// What a message may say of it (see [`Enrichment::shown_reason`]).
        cause: &'static str,
    },
}

/// Full jitter: uniformly in [d/2, d].
fn jitter(d: Duration) -> Duration {
    use rand::Rng;
    let half = d / 2;
    half + rand::thread_rng().gen_range(Duration::ZERO..=half)
}

/// `reqwest` errors keep their cause (connection refused, …) in `source()`.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alert_urls_extend_the_base_path() {
        let uuid = "5d5d3d3a-3c4b-4b0a-9a2c-1e0e0e0e0e0e";
        for (base, want) in [
            (
                "https://api.sekoia.io",
                "https://api.sekoia.io/v1/sic/alerts/5d5d3d3a-3c4b-4b0a-9a2c-1e0e0e0e0e0e",
            ),
            (
                "http://127.0.0.1:9/api",
                "http://127.0.0.1:9/api/v1/sic/alerts/5d5d3d3a-3c4b-4b0a-9a2c-1e0e0e0e0e0e",
            ),
            (
                "http://h/a/b/",
                "http://h/a/b/v1/sic/alerts/5d5d3d3a-3c4b-4b0a-9a2c-1e0e0e0e0e0e",
            ),
            // A query or fragment in the base (refused by validation) never
            // swallows the path.
            (
                "http://h/a?x=1#f",
                "http://h/a/v1/sic/alerts/5d5d3d3a-3c4b-4b0a-9a2c-1e0e0e0e0e0e",
            ),
        ] {
            let base = reqwest::Url::parse(base).unwrap();
            assert_eq!(
                api_url(&base, &["v1", "sic", "alerts", uuid]).as_str(),
                want
            );
        }
        // A segment is one segment, whatever it holds.
        let base = reqwest::Url::parse("https://api.sekoia.io").unwrap();
        assert_eq!(
            api_url(&base, &["v2", "assets", "x?y=1#z/../w"]).as_str(),
            "https://api.sekoia.io/v2/assets/x%3Fy=1%23z%2F..%2Fw"
        );
    }

    /// Messages say a category, never the API's words or the connection's
    /// details; older records (a replayed dead letter) get one too.
    #[test]
    fn shown_reasons_are_categories() {
        let shown = |r: &str| Enrichment::Unavailable(r.into()).shown_reason();
        for (reason, want) in [
            ("timeout (gave up after 3 attempts within the enrich deadline; last error: operation timed out)", Some("timeout")),
            ("refused (gave up after 2 attempts; last error: tcp connect error: Connection refused (os error 111))", Some("refused")),
            ("HTTP 503 (gave up after 4 attempts; last error: HTTP 503 <html>internal secret page</html>)", Some("HTTP 503")),
            ("HTTP 404 (alert API answered 404 (Not Found))", Some("HTTP 404")),
            ("address not allowed (10.0.0.1 is a private address)", Some("address not allowed")),
            ("alert API answered 403 (Forbidden)", Some("HTTP 403")),
            ("hook \"x\" is no longer configured", None),
            ("tcp connect error: Connection refused (os error 111)", None),
            ("HTTP 50x (x)", None),
        ] {
            assert_eq!(shown(reason).as_deref(), want, "{reason}");
        }
        assert_eq!(Enrichment::NotApplicable.shown_reason(), None);
    }

    /// A tenant's events hold at most its share; the file's origins theirs.
    #[tokio::test]
    async fn admission_is_bounded_per_tenant() {
        let origin = |tenant: Option<&str>| OriginConfig {
            kind: crate::config::OriginKind::Sekoia,
            region: None,
            base_url: Some("https://api.sekoia.io".into()),
            api_key: Some(Secret::new("k")),
            alert_link: None,
            case_link: None,
            timeout: Duration::from_secs(1),
            concurrency: 1,
            cache_ttl: Duration::from_secs(1),
            enrich_deadline: Duration::from_secs(1),
            tenant: tenant.map(|t| crate::config::TenantMark {
                name: t.into(),
                egress: Arc::new(Default::default()),
            }),
        };
        let origins = std::collections::BTreeMap::from([
            ("acme/a".to_owned(), origin(Some("acme"))),
            ("acme/b".to_owned(), origin(Some("acme"))),
            ("beta/a".to_owned(), origin(Some("beta"))),
            ("file".to_owned(), origin(None)),
        ]);
        let e = Enricher::new(&origins, reqwest::Client::new(), Arc::new(Metrics::new()));
        // acme's two origins share one budget.
        let mut held: Vec<Admission> = (0..TENANT_SHARE)
            .map(|i| {
                e.admit(if i % 2 == 0 { "acme/a" } else { "acme/b" })
                    .unwrap()
            })
            .collect();
        assert!(e.admit("acme/a").is_none());
        assert!(e.admit("acme/b").is_none());
        // Others are not affected.
        assert!(e.admit("beta/a").is_some());
        assert!(e.admit("file").is_some());
        assert!(e.admit("gone").is_some(), "an unknown origin is admitted");
        // A routed event gives its place back.
        held.pop();
        assert!(e.admit("acme/b").is_some());
    }

    /// What the spool records is enough to rebuild the enrichment when a
    /// message is rendered again (a replayed dead letter).
    #[test]
    fn the_stored_form_reads_back() {
        let alert =
            Alert::from_slice(include_bytes!("../../tests/fixtures/alert-full.json")).unwrap();
        for e in [
            Enrichment::Fetched(Arc::new(alert)),
            Enrichment::NotApplicable,
            Enrichment::Unavailable("alert API answered 404 (Not Found)".into()),
        ] {
            let (note, json) = e.stored();
            let back = Enrichment::from_stored(Some(&note), json.as_deref());
            assert_eq!(back.stored(), (note, json));
        }
        assert!(matches!(
            Enrichment::from_stored(Some("ok"), Some("[1]")),
            Enrichment::Unavailable(r) if r.starts_with("unreadable (the stored alert is unreadable")
        ));
    }
}
