//! The checks of the plain sections: `[store]`, the limits of `[server]`
//! and `[delivery]`, `[origins]` (a region sets their URLs) and `[hooks]`.
//! Part of [`super::validate`].

use super::error::{err, http_url, ConfigError};
use super::schema::*;
use std::collections::HashSet;
use std::time::Duration;

/// The DER certificates in a PEM file (at least one).
fn read_ca_certs(path: &std::path::Path) -> Result<Vec<Vec<u8>>, String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer};
    let shown = path.display();
    let text = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&text)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{shown} is not valid PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!(
            "{shown} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    Ok(certs)
}

/// Sekoia.io regions: (name, API base URL, UI base URL).
pub(crate) const REGIONS: &[(&str, &str, &str)] = &[
    ("fra1", "https://api.sekoia.io", "https://app.sekoia.io"),
    (
        "fra2",
        "https://app.fra2.sekoia.io/api",
        "https://app.fra2.sekoia.io",
    ),
    (
        "mco1",
        "https://app.mco1.sekoia.io/api",
        "https://app.mco1.sekoia.io",
    ),
    (
        "uae1",
        "https://app.uae1.sekoia.io/api",
        "https://app.uae1.sekoia.io",
    ),
    (
        "usa1",
        "https://api.usa1.sekoia.io",
        "https://app.usa1.sekoia.io",
    ),
    (
        "sgp1",
        "https://api.sgp1.sekoia.io",
        "https://app.sgp1.sekoia.io",
    ),
];

/// `[store]`: PostgreSQL's URL, lease and CA certificates (read here).
pub(super) fn check_store(
    config: &mut Config,
    dir: &std::path::Path,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) {
    if config.store.kind == StoreKind::Postgres {
        match &config.store.url {
            None => errors.push(err(
                "store.url",
                "required with kind = \"postgres\" (postgres://user:password@host:5432/database), or set store.url_file",
            )),
            Some(url) => {
                if let Err(e) = url.expose().parse::<tokio_postgres::Config>() {
                    errors.push(err(
                        "store.url",
                        format!("not a valid PostgreSQL URL ({e}); expected postgres://user:password@host:5432/database"),
                    ));
                }
            }
        }
        if config.store.lease < std::time::Duration::from_secs(1) {
            errors.push(err("store.lease", "must be at least 1s"));
        }
        if let Some(file) = &config.store.ca_file {
            match read_ca_certs(&dir.join(file)) {
                Ok(certs) => config.store.ca_certs = certs,
                Err(e) => errors.push(err("store.ca_file", e)),
            }
        }
    } else {
        for (key, set) in [
            ("url", config.store.url.is_some()),
            ("ca_file", config.store.ca_file.is_some()),
        ] {
            if set {
                warnings.push(format!(
                    "store.{key} is set but store.kind is \"sqlite\"; it is ignored"
                ));
            }
        }
    }
}

/// The limits of `[server]`, `[store]` and `[delivery]`, and the two listeners.
pub(super) fn check_limits(config: &Config, errors: &mut Vec<ConfigError>) {
    if config.store.max_pending == 0 {
        errors.push(err("store.max_pending", "must be at least 1"));
    }
    if config.server.max_body_bytes == 0 {
        errors.push(err("server.max_body_bytes", "must be at least 1"));
    }
    if config.server.max_connections == 0 {
        errors.push(err("server.max_connections", "must be at least 1"));
    }
    for (key, value) in [
        (
            "server.header_read_timeout",
            config.server.header_read_timeout,
        ),
        ("server.request_timeout", config.server.request_timeout),
        ("server.idle_timeout", config.server.idle_timeout),
    ] {
        if value < Duration::from_millis(100) {
            errors.push(err(key, "must be at least 100ms"));
        }
    }
    if config.delivery.concurrency == 0 {
        errors.push(err("delivery.concurrency", "must be at least 1"));
    }
    if config.delivery.initial_backoff.is_zero() {
        errors.push(err("delivery.initial_backoff", "must be more than 0s"));
    }
    if config.delivery.max_backoff < config.delivery.initial_backoff {
        errors.push(err(
            "delivery.max_backoff",
            "must be at least delivery.initial_backoff",
        ));
    }
    if config.server.listen == config.admin.listen && config.server.listen.port() != 0 {
        errors.push(err(
            "admin.listen",
            "must differ from server.listen (the admin port is never public)",
        ));
    }
}

/// `[origins]`: a region sets the API and UI URLs; links checked.
pub(super) fn check_origins(config: &mut Config, errors: &mut Vec<ConfigError>) {
    for (name, origin) in config.origins.iter_mut() {
        let key = format!("origins.{name}");
        if let Some(region) = &origin.region {
            match REGIONS
                .iter()
                .find(|(r, _, _)| r.eq_ignore_ascii_case(region))
            {
                Some((_, api, ui)) => {
                    origin.base_url.get_or_insert_with(|| (*api).to_owned());
                    origin
                        .alert_link
                        .get_or_insert_with(|| format!("{ui}/operations/alerts/{{short_id}}"));
                    origin
                        .case_link
                        .get_or_insert_with(|| format!("{ui}/operations/cases/{{short_id}}"));
                }
                None => errors.push(err(
                    format!("{key}.region"),
                    format!(
                        "unknown region {region:?} (expected one of {})",
                        REGIONS.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
                    ),
                )),
            }
        }
        match &origin.base_url {
            None => errors.push(err(
                format!("{key}.base_url"),
                "missing (set base_url or region)",
            )),
            Some(u) => match http_url(u) {
                Err(e) => errors.push(err(format!("{key}.base_url"), e)),
                // The alert's and assets' paths are added to it: a query
                // or a fragment would swallow or steer them.
                Ok(url) if url.query().is_some() || url.fragment().is_some() => errors.push(err(
                    format!("{key}.base_url"),
                    "the API's base URL only: no ?query or #fragment (the alert's path is appended to it)",
                )),
                Ok(_) => {}
            },
        }
        if origin.alert_link.is_none() {
            origin.alert_link = Some("https://app.sekoia.io/operations/alerts/{short_id}".into());
        }
        if let Some(link) = &origin.alert_link {
            if let Err(e) = http_url(&link.replace("{short_id}", "x").replace("{uuid}", "x")) {
                errors.push(err(format!("{key}.alert_link"), e));
            }
        }
        if origin.case_link.is_none() {
            // Beside the alerts, in the same UI.
            origin.case_link = origin.alert_link.as_deref().and_then(|l| {
                let (ui, _) = l.split_once("/operations/alerts/")?;
                Some(format!("{ui}/operations/cases/{{short_id}}"))
            });
        }
        if let Some(link) = &origin.case_link {
            if let Err(e) = http_url(&link.replace("{short_id}", "x").replace("{uuid}", "x")) {
                errors.push(err(format!("{key}.case_link"), e));
            }
        }
        if origin.api_key.is_none() {
            errors.push(err(
                format!("{key}.api_key"),
                "missing (set api_key or api_key_file; the key needs SIC_READ_ALERT)",
            ));
        }
        if origin.concurrency == 0 {
            errors.push(err(format!("{key}.concurrency"), "must be at least 1"));
        }
    }
}

/// `[hooks]`: their origin, unique ids, signature secrets.
pub(super) fn check_hooks(config: &mut Config, errors: &mut Vec<ConfigError>) {
    let mut ids = HashSet::new();
    for (name, hook) in config.hooks.iter_mut() {
        let key = format!("hooks.{name}");
        if !config.origins.contains_key(&hook.origin) {
            errors.push(err(
                format!("{key}.origin"),
                format!(
                    "no origin named {:?} (define [origins.{}])",
                    hook.origin, hook.origin
                ),
            ));
        }
        if !ids.insert(hook.id) {
            errors.push(err(format!("{key}.id"), "another hook has the same id"));
        }
        match (&hook.secret, hook.signature) {
            (None, Some(_)) => errors.push(err(
                format!("{key}.signature"),
                "set a secret (or secret_file) to verify signatures",
            )),
            (Some(secret), scheme) => {
                let scheme = scheme.unwrap_or(SignatureScheme::StandardWebhooks);
                hook.signature = Some(scheme);
                match scheme {
                    SignatureScheme::StandardWebhooks => {
                        if let Some(problem) = crate::signing::secret_problem(secret.expose()) {
                            errors.push(err(format!("{key}.secret"), problem));
                        }
                    }
                    SignatureScheme::GithubSha256 if secret.expose().trim().is_empty() => {
                        errors.push(err(
                            format!("{key}.secret"),
                            "empty: a github-sha256 secret must not be empty (anyone could sign with it)",
                        ));
                    }
                    SignatureScheme::GithubSha256 => {}
                }
            }
            (None, None) => {}
        }
    }
}
