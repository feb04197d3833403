//! The live configuration: one [`Generation`] (a validated config and what
//! is built from it), swapped as a whole by a reload. The composition root
//! (`app`) builds and swaps it; ingress, the pipeline, the workers and the
//! silence watch read it. It lives apart from `app` so that none of them
//! imports the module that composes them.

use crate::config::tenant::Tenant;
use crate::config::{Config, ConfigErrors};
use crate::destinations::Destination;
use crate::enrich::Enricher;
use crate::telemetry::Metrics;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// One configuration and what is built from it; replaced as a whole.
pub struct Generation {
    /// The running configuration: the file's with the tenants merged in.
    pub config: Arc<Config>,
    /// The file's configuration alone (a tenant change re-merges it).
    pub file: Arc<Config>,
    /// The tenants merged in.
    pub tenants: Arc<Vec<Tenant>>,
    pub enricher: Arc<Enricher>,
    /// Each destination with its compiled templates, by name.
    pub destinations: BTreeMap<String, Arc<Destination>>,
}

impl Generation {
    /// Builds what runs from the file's `config` and the `tenants`: merges
    /// them, compiles the destinations' templates (an error names the key,
    /// as a config error does) and the alert API clients. Template warnings
    /// join the config's warnings.
    pub fn build(
        file: Config,
        tenants: Vec<Tenant>,
        http: &reqwest::Client,
        metrics: &Arc<Metrics>,
    ) -> Result<Generation, ConfigErrors> {
        let mut config = crate::config::tenant::merge(&file, &tenants)?;
        let (destinations, warnings) = crate::destinations::destinations(&config)?;
        config.warnings.extend(warnings);
        Ok(Generation {
            enricher: Arc::new(Enricher::new(
                &config.origins,
                http.clone(),
                metrics.clone(),
            )),
            config: Arc::new(config),
            file: Arc::new(file),
            tenants: Arc::new(tenants),
            destinations,
        })
    }
}

/// Every tenant in the spool that can be served with `file`: opened with
/// the file's key, checked, and merged in name order. A tenant that cannot
/// be (a document this version refuses, a hook id another one took first
/// in a race between replicas, a byte changed in the spool) is left out
/// and logged, so one bad tenant never stops the others or the file. An
/// error only when tenants exist and none can be opened (a wrong key).
pub async fn load_tenants(
    store: &crate::store::Store,
    file: &Config,
) -> Result<Vec<Tenant>, String> {
    let stored = store.tenants().await.map_err(|e| e.to_string())?;
    if stored.is_empty() {
        return Ok(Vec::new());
    }
    let Some(key) = file.admin.secrets_key.as_ref() else {
        return Err(format!(
            "the spool holds {} tenants but admin.api_token and admin.secrets_key_file are not set",
            stored.len()
        ));
    };
    let total = stored.len();
    let mut opened = 0;
    let mut out: Vec<Tenant> = Vec::with_capacity(total);
    for t in stored {
        let parsed = crate::sealed::open(&key.0, &t.name, &t.sealed)
            .inspect(|_| opened += 1)
            .and_then(|plain| serde_json::from_slice(&plain).map_err(|e| e.to_string()))
            .and_then(|doc: serde_json::Value| {
                crate::config::tenant::parse(&t.name, &doc).map_err(|e| e.to_string())
            });
        let tenant = match parsed {
            Ok(tenant) => tenant,
            Err(e) => {
                tracing::error!(message = "A tenant cannot be served; it is left out.", tenant = %t.name, error = %e);
                continue;
            }
        };
        out.push(tenant);
        if let Err(e) = crate::config::tenant::merge(file, &out) {
            let t = out.pop().map(|t| t.name).unwrap_or_default();
            tracing::error!(message = "A tenant conflicts with the configuration or another tenant; it is left out.", tenant = %t, errors = %e);
        }
    }
    if opened == 0 {
        return Err(format!(
            "none of the {total} tenants in the spool opens with admin.secrets_key_file (another key than the one they were stored with?)"
        ));
    }
    Ok(out)
}

impl Generation {
    /// The facts of a message about an event to `destination`, with its
    /// action buttons when `[actions]` is set: only for an alert the relay
    /// could fetch (a degraded message has none), signed for this
    /// destination and the hook's origin, expiring after `actions.ttl`.
    pub fn with_actions<'a>(
        &self,
        facts: &'a crate::render::Facts,
        destination: &str,
        hook: &str,
        event: &crate::event::Event,
        enrichment: &crate::enrich::Enrichment,
    ) -> std::borrow::Cow<'a, crate::render::Facts> {
        use crate::action_link::{sign, tag, Link};
        use std::borrow::Cow;
        let (Some(actions), Some(alert), Some(dest), Some(origin)) = (
            &self.config.actions,
            event.alert_uuid,
            self.config.destinations.get(destination),
            self.config.hooks.get(hook).map(|h| &h.origin),
        ) else {
            return Cow::Borrowed(facts);
        };
        if !matches!(enrichment, crate::enrich::Enrichment::Fetched(_)) {
            return Cow::Borrowed(facts);
        }
        let buttons = dest.buttons.as_ref().unwrap_or(&actions.buttons);
        if buttons.is_empty() || !crate::destinations::of(dest.kind).action_buttons() {
            return Cow::Borrowed(facts);
        }
        let secret = actions.secret.expose().as_bytes();
        let expires = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            + actions.ttl.as_secs();
        let (destination_tag, origin_tag) = (
            tag(secret, "destination", destination),
            tag(secret, "origin", origin),
        );
        let mut f = facts.clone();
        f.actions = buttons
            .iter()
            .map(|kind| {
                let token = sign(
                    secret,
                    &Link {
                        alert,
                        action: *kind,
                        destination: destination_tag,
                        origin: origin_tag,
                        expires,
                    },
                );
                crate::render::Button {
                    name: kind.as_str(),
                    label: kind.label(),
                    url: format!("{}/actions/{token}", actions.public_url),
                    token,
                }
            })
            .collect();
        f.interactive = crate::destinations::of(dest.kind).interactive(dest);
        Cow::Owned(f)
    }
}

impl Generation {
    /// Admits one event of `hook` into enrichment, or `None` when its
    /// origin's group (its tenant, or the file's origin) already has its
    /// share in progress: see [`crate::enrich::Enricher::admit`]. A hook no
    /// longer configured is admitted (its event goes on degraded).
    pub fn admit(&self, hook: &str) -> Option<crate::enrich::Admission> {
        let origin = self.config.hooks.get(hook).map(|h| h.origin.as_str());
        self.enricher.admit(origin.unwrap_or_default())
    }
}

/// The current [`Generation`], swapped atomically by a reload. Readers take
/// an `Arc` and keep a consistent view for as long as they hold it.
pub struct Live {
    current: RwLock<Arc<Generation>>,
}

impl Live {
    pub fn new(generation: Generation) -> Live {
        Live {
            current: RwLock::new(Arc::new(generation)),
        }
    }

    pub fn get(&self) -> Arc<Generation> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn set(&self, generation: Generation) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(generation);
    }
}

/// A file configuration to switch to, or the errors of a file that failed
/// to load (SIGHUP, the console's reload button, tests), or — `None` — the
/// tenants changed in the spool (the tenants API, another replica);
/// `done` hears whether it was applied.
pub struct ReloadRequest {
    pub config: Option<Result<Config, ConfigErrors>>,
    pub done: Option<tokio::sync::oneshot::Sender<Result<(), ConfigErrors>>>,
}

/// Why a reload was not applied: the configuration's errors, or no
/// answer (the daemon is stopping, or busy past the wait).
#[derive(Debug)]
pub enum ReloadRefused {
    Invalid(ConfigErrors),
    NoAnswer,
}

impl ReloadRequest {
    /// Sends a reload of `config` (`None`: the tenants) to the running
    /// daemon and waits up to `wait` for its outcome.
    pub async fn send_and_wait(
        to: &tokio::sync::mpsc::UnboundedSender<ReloadRequest>,
        config: Option<Result<Config, ConfigErrors>>,
        wait: std::time::Duration,
    ) -> Result<(), ReloadRefused> {
        let (done, answer) = tokio::sync::oneshot::channel();
        to.send(ReloadRequest {
            config,
            done: Some(done),
        })
        .map_err(|_| ReloadRefused::NoAnswer)?;
        match tokio::time::timeout(wait, answer).await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(e))) => Err(ReloadRefused::Invalid(e)),
            _ => Err(ReloadRefused::NoAnswer),
        }
    }
}

impl From<Result<Config, ConfigErrors>> for ReloadRequest {
    fn from(config: Result<Config, ConfigErrors>) -> Self {
        ReloadRequest {
            config: Some(config),
            done: None,
        }
    }
}

/// Why a tenant was not stored.
#[derive(Debug)]
pub enum TenantRefusal {
    /// The document (or the name): every problem, by key.
    Invalid(ConfigErrors),
    /// A hook id the file or another tenant already uses.
    Conflict(ConfigErrors),
    /// The spool failed, or the key is missing; nothing was changed.
    Unavailable(String),
}

/// Checks `doc` as tenant `name` against the file's configuration and the
/// other tenants, seals it with the file's key and stores it (recording
/// `client` as who changed it); whether it is new. The running daemon
/// applies it when told (the API) or when its watcher sees the change.
pub async fn store_tenant(
    store: &crate::store::Store,
    file: &Config,
    current: &[Tenant],
    name: &str,
    doc: &serde_json::Value,
    client: &str,
) -> Result<bool, TenantRefusal> {
    let tenant = crate::config::tenant::parse(name, doc).map_err(TenantRefusal::Invalid)?;
    check_reach(file, &tenant)
        .await
        .map_err(TenantRefusal::Invalid)?;
    let mut all: Vec<Tenant> = current.iter().filter(|t| t.name != name).cloned().collect();
    all.push(tenant.clone());
    crate::config::tenant::merge(file, &all).map_err(TenantRefusal::Conflict)?;
    let key =
        file.admin.secrets_key.as_ref().ok_or_else(|| {
            TenantRefusal::Unavailable("admin.secrets_key_file is not set".into())
        })?;
    let summary = serde_json::json!({
        "hooks": tenant.hooks.values().map(|h| h.id.to_string()).collect::<Vec<_>>(),
        "origins": tenant.origins.len(),
        "destinations": tenant.destinations.len(),
        "routes": tenant.routes.len(),
    });
    let stored = crate::store::StoredTenant {
        name: name.to_owned(),
        summary: summary.to_string(),
        sealed: crate::sealed::seal(&key.0, name, doc.to_string().as_bytes()),
        updated_at: 0,
    };
    let change = crate::store::TenantChange {
        tenant: name.to_owned(),
        action: "put".into(),
        client: client.to_owned(),
    };
    store
        .put_tenant(stored, change)
        .await
        .map_err(|e| TenantRefusal::Unavailable(e.to_string()))
}

/// The stored document of tenant `name`, opened with the file's key.
pub async fn tenant_document(
    store: &crate::store::Store,
    file: &Config,
    name: &str,
) -> Result<Option<serde_json::Value>, String> {
    let key = file
        .admin
        .secrets_key
        .as_ref()
        .ok_or("admin.secrets_key_file is not set")?;
    let stored = store.tenants().await.map_err(|e| e.to_string())?;
    let Some(t) = stored.into_iter().find(|t| t.name == name) else {
        return Ok(None);
    };
    let plain = crate::sealed::open(&key.0, name, &t.sealed)?;
    serde_json::from_slice(&plain)
        .map(Some)
        .map_err(|e| e.to_string())
}

/// Where a tenant's destinations, origins and SMTP hosts are: none may be,
/// or resolve to, an address tenants may not reach (loopback, link-local,
/// private, CGNAT, the relay's own host) unless `[admin]
/// tenant_allow_hosts` lists it. Every refusal names its key. Checked when
/// a tenant is stored (and by `check --tenant`); the connections are
/// checked again when they are made, so a name that resolves elsewhere
/// later reaches nothing either.
pub async fn check_reach(file: &Config, tenant: &Tenant) -> Result<(), ConfigErrors> {
    use crate::config::ConfigError;
    use crate::destinations::Reach;
    let egress = file.tenant_egress();
    // (key, URL) and (key, host, port) to check.
    let mut urls: Vec<(String, String)> = Vec::new();
    let mut hosts: Vec<(String, String, u16)> = Vec::new();
    for (n, o) in &tenant.origins {
        if let Some(u) = &o.base_url {
            urls.push((format!("origins.{n}.base_url"), u.clone()));
        }
    }
    for (n, d) in &tenant.destinations {
        let key = |field: &str| format!("destinations.{n}.{field}");
        match crate::destinations::of(d.kind).reach(d) {
            Some(Reach::Url(field, url)) => urls.push((key(field), url)),
            Some(Reach::Host(field, host, port)) => hosts.push((key(field), host, port)),
            None => {}
        }
    }
    for (key, raw) in urls {
        // Validation has checked every URL; one that does not parse here
        // has nothing to reach.
        if let Ok(url) = url::Url::parse(&raw) {
            if let Some(host) = url.host_str() {
                let port = url.port_or_known_default().unwrap_or(443);
                hosts.push((key, host.to_owned(), port));
            }
        }
    }
    let checks = hosts
        .iter()
        .map(|(_, host, port)| egress.check_host(host, *port));
    let results = futures_util::future::join_all(checks).await;
    let errors: Vec<ConfigError> = hosts
        .into_iter()
        .zip(results)
        .filter_map(|((key, _, _), r)| r.err().map(|e| ConfigError { key, message: e.0 }))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ConfigErrors(errors))
    }
}
