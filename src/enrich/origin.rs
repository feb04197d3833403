//! The origin API client: one client per configured origin (its
//! concurrency bound, caches, deadline, egress guard for a tenant's), one
//! GET path timed and counted by outcome, and one retry loop within the
//! enrich deadline, shared by alerts, assets, cases and their names.

use super::alert::{Alert, Asset};
use super::case::{NameKind, NAME_TTL};
use super::outcome::EnrichError;
use crate::config::OriginConfig;
use crate::http::{excerpt, read_capped, retry_after, MAX_RESPONSE_BYTES};
use crate::secret::{scrub, Secret};
use crate::telemetry::{labels1, labels2, Metrics};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use uuid::Uuid;

pub(super) struct OriginClient {
    pub(super) name: String,
    /// `base_url` parsed once; each request appends its path segments
    /// (never text: a `?` or `#` in an id cannot steer the request).
    pub(super) base: Option<reqwest::Url>,
    /// A tenant's origin: the client that resolves through the egress
    /// guard, and the policy its literal addresses are checked against.
    pub(super) guarded: Option<(reqwest::Client, Arc<crate::http::guard::Egress>)>,
    /// In-flight events of this origin's admission group (its tenant's, or
    /// its own): see [`Enricher::admit`].
    pub(super) admission: Arc<Semaphore>,
    pub(super) api_key: Secret,
    pub(super) timeout: Duration,
    pub(super) deadline: Duration,
    /// Caps concurrent requests to this origin's API.
    pub(super) permits: Semaphore,
    /// Recent alerts; `try_get_with` also makes concurrent misses for one
    /// uuid share a single request.
    pub(super) cache: moka::future::Cache<Uuid, Arc<Alert>>,
    /// Recent assets, the same way.
    pub(super) assets: moka::future::Cache<Uuid, Arc<Asset>>,
    /// Recent cases (the API's objects), the same way.
    pub(super) cases: moka::future::Cache<Uuid, Arc<serde_json::Value>>,
    /// Status, priority and verdict names by uuid.
    pub(super) names: moka::future::Cache<(NameKind, Uuid), Arc<str>>,
}

/// The enrich client for every configured origin.
pub struct Enricher {
    pub(super) http: reqwest::Client,
    pub(super) origins: HashMap<String, Arc<OriginClient>>,
    pub(super) metrics: Arc<Metrics>,
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
                        .time_to_live(NAME_TTL)
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

    /// Runs `attempt` until it succeeds, fails for good, or the next wait
    /// would pass the origin's enrich deadline (exponential back-off with
    /// jitter, or the origin's `Retry-After`).
    pub(super) async fn retrying<T, F, Fut>(
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

    /// One GET of a JSON document from the origin (an alert, an asset),
    /// within its concurrency bound, timed and counted by outcome: the
    /// body, or whether trying again may help.
    pub(super) async fn get_json(
        &self,
        client: &OriginClient,
        url: reqwest::Url,
    ) -> Result<Vec<u8>, Attempt> {
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

/// `{base}/{segments…}`: each segment percent-encoded as one path segment,
/// the base's own query and fragment dropped (validation refuses them).
pub(super) fn api_url(base: &reqwest::Url, segments: &[&str]) -> reqwest::Url {
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
    pub(super) fn url(&self, segments: &[&str]) -> Result<reqwest::Url, EnrichError> {
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
    pub(super) fn http_for<'a>(
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

pub(super) enum Attempt {
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
