//! Cross-reference and value checks run once per load; every finding names
//! its key. Also fills in values derived from others (region → URLs).

use super::actions::ActionKind;
use super::destination::DestinationKind;
use super::error::{err, http_url, ConfigError, ConfigErrors};
use super::schema::*;
use super::sections::{check_hooks, check_limits, check_origins, check_store};
use super::when::When;
use std::collections::HashSet;
use std::time::Duration;

/// Checks `config` and sets what derives from other values (regions'
/// URLs, compiled intervals, templates' text, CA certificates); every
/// finding names its key, and all are reported at once.
pub(super) fn validate(mut config: Config, dir: &std::path::Path) -> Result<Config, ConfigErrors> {
    let mut errors = Vec::new();
    let mut warnings = std::mem::take(&mut config.warnings);

    check_actions(&mut config, &mut errors, &mut warnings);
    check_console(&mut config, &mut errors);
    check_api(&mut config, &mut errors);
    check_intervals(&mut config, &mut errors);
    check_store(&mut config, dir, &mut errors, &mut warnings);
    check_limits(&config, &mut errors);
    check_origins(&mut config, &mut errors);
    check_hooks(&mut config, &mut errors);
    check_destinations(&mut config, dir, &mut errors, &mut warnings);
    check_routes(&config, &mut errors, &mut warnings);
    warn_hidden_routes(&config, &mut warnings);

    if errors.is_empty() {
        config.warnings = warnings;
        Ok(config)
    } else {
        Err(ConfigErrors(errors))
    }
}

/// `[time_intervals]` parsed, and the routes' references to them.
fn check_intervals(config: &mut Config, errors: &mut Vec<ConfigError>) {
    for (name, interval) in config.time_intervals.iter_mut() {
        interval.parsed = interval.parse(&format!("time_intervals.{name}"), errors);
    }
    for (i, route) in config.routes.iter().enumerate() {
        for (field, names) in [
            ("active_during", &route.active_during),
            ("muted_during", &route.muted_during),
        ] {
            for (j, n) in names.iter().enumerate() {
                let bare = n.strip_prefix('!').unwrap_or(n);
                if !config.time_intervals.contains_key(bare) {
                    errors.push(err(
                        format!("routes[{i}].{field}[{j}]"),
                        format!("no [time_intervals.{bare}] is defined"),
                    ));
                }
            }
        }
    }
}

/// `[destinations]`: each kind's keys, templates (read here), pacing.
fn check_destinations(
    config: &mut Config,
    dir: &std::path::Path,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) {
    for (name, dest) in config.destinations.iter_mut() {
        let key = format!("destinations.{name}");
        if dest.kind == DestinationKind::TeamsLegacy {
            warnings.push(format!(
                "{key}: kind = \"teams-legacy\": Microsoft has retired Office 365 connectors (legacy Teams webhooks answer 403); use kind = \"teams\" with a Workflows webhook URL (docs/destinations.md)"
            ));
        }
        super::destination_keys::check(dest, &key, errors);
        if let Some(path) = &dest.template {
            let resolved = dir.join(path);
            match std::fs::read_to_string(&resolved) {
                Ok(text) => dest.template_source = Some(text),
                Err(e) => errors.push(err(
                    format!("{key}.template"),
                    format!("cannot read template {}: {e}", resolved.display()),
                )),
            }
        }
        if dest.digest && dest.max_per_minute.is_none() {
            errors.push(err(
                format!("{key}.digest"),
                "needs max_per_minute (digests hold what exceeds it)",
            ));
        }
        if dest.digest_interval < Duration::from_millis(100) {
            errors.push(err(
                format!("{key}.digest_interval"),
                "must be at least 100ms",
            ));
        }
        if dest.max_per_minute == Some(0) {
            errors.push(err(format!("{key}.max_per_minute"), "must be at least 1"));
        }
        if dest.concurrency == Some(0) {
            errors.push(err(format!("{key}.concurrency"), "must be at least 1"));
        }
    }
}

/// `[[routes]]`: names, references, conditions.
fn check_routes(config: &Config, errors: &mut Vec<ConfigError>, warnings: &mut Vec<String>) {
    let mut route_names = HashSet::new();
    for (i, route) in config.routes.iter().enumerate() {
        let key = format!("routes[{i}]");
        if route.name.trim().is_empty() {
            errors.push(err(format!("{key}.name"), "must not be empty"));
        } else if !route_names.insert(route.name.clone()) {
            errors.push(err(
                format!("{key}.name"),
                format!("another route is named {:?}", route.name),
            ));
        }
        if route.to.is_empty() {
            errors.push(err(format!("{key}.to"), "names no destination"));
        }
        for d in &route.to {
            if !config.destinations.contains_key(d) {
                errors.push(err(
                    format!("{key}.to"),
                    format!("no destination named {d:?}"),
                ));
            }
        }
        for h in route.hooks.iter().flatten() {
            if !config.hooks.contains_key(h) {
                errors.push(err(format!("{key}.hooks"), format!("no hook named {h:?}")));
            }
        }
        let w = &route.when;
        for (field, v) in [
            ("urgency_min", w.urgency_min),
            ("urgency_max", w.urgency_max),
            ("asset_criticality_min", w.asset_criticality_min),
        ] {
            if v.is_some_and(|v| v > 100) {
                errors.push(err(format!("{key}.when.{field}"), "0 to 100"));
            }
        }
        check_case_conditions(w, &format!("{key}.when"), errors, warnings);
        if let (Some(min), Some(max)) = (w.urgency_min, w.urgency_max) {
            if min > max {
                warnings.push(format!(
                    "{key}.when: urgency_min {min} > urgency_max {max}: route {:?} can never match",
                    route.name
                ));
            }
        }
    }
}

/// A route that takes every event and stops hides the routes after it;
/// no route at all, or only routes that need the alert, are warned about.
fn warn_hidden_routes(config: &Config, warnings: &mut Vec<String>) {
    // A route that takes every event and stops hides the routes after it.
    if let Some(i) = config
        .routes
        .iter()
        .position(|r| r.hooks.is_none() && !r.continue_ && when_is_empty(&r.when))
    {
        for (j, later) in config.routes.iter().enumerate().skip(i + 1) {
            warnings.push(format!(
                "routes[{j}]: route {:?} can never match: routes[{i}] ({:?}) takes every event and does not continue",
                later.name, config.routes[i].name
            ));
        }
    }
    if config.routes.is_empty() {
        warnings.push("routes: none defined: events are stored but sent nowhere".into());
    } else if !config.routes.iter().any(|r| !r.when.needs_alert()) {
        warnings.push(
            "routes: every route tests alert fields; an event whose alert cannot be fetched will match none"
                .into(),
        );
    }
}

impl When {
    /// Whether no condition is set (it matches every event).
    pub fn is_empty(&self) -> bool {
        when_is_empty(self)
    }
}

/// Whether a route has no condition at all.
fn when_is_empty(w: &When) -> bool {
    w.type_.is_none()
        && w.action.is_none()
        && w.urgency_min.is_none()
        && w.urgency_max.is_none()
        && w.similar_min.is_none()
        && w.asset_criticality_min.is_none()
        && w.status.is_none()
        && w.rule.is_none()
        && w.entity.is_none()
        && w.alert_type.is_none()
        && w.asset.is_none()
        && w.community.is_none()
        && w.updated.is_none()
        && w.case.priority.is_none()
        && w.case.status.is_none()
        && w.case.verdict.is_none()
        && w.case.assignees.is_none()
        && w.case.tags.is_none()
        && w.case.mode.is_none()
        && w.not.is_none()
}

/// A route's case conditions: `case_mode` takes `manual` or `automatic`;
/// a case condition with a `type` that leaves out cases can never match.
fn check_case_conditions(
    w: &When,
    key: &str,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<String>,
) {
    for mode in w.case.mode.iter().flatten() {
        if !["manual", "automatic"]
            .iter()
            .any(|m| m.eq_ignore_ascii_case(mode.trim()))
        {
            errors.push(err(
                format!("{key}.case_mode"),
                format!("unknown mode {mode:?} (expected \"manual\" or \"automatic\")"),
            ));
        }
    }
    let case_keys: Vec<&str> = [
        ("case_priority", w.case.priority.is_some()),
        ("case_status", w.case.status.is_some()),
        ("case_verdict", w.case.verdict.is_some()),
        ("assignees", w.case.assignees.is_some()),
        ("tags", w.case.tags.is_some()),
        ("case_mode", w.case.mode.is_some()),
    ]
    .iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| *k)
    .collect();
    if let (Some(types), Some(first)) = (&w.type_, case_keys.first()) {
        if !types
            .iter()
            .any(|t| crate::event::Subject::of(t, "") == crate::event::Subject::Case)
        {
            warnings.push(format!(
                "{key}.{first}: a case condition, but type = {types:?} leaves out cases: it can never hold"
            ));
        }
    }
    if let Some(not) = &w.not {
        check_case_conditions(not, &format!("{key}.not"), errors, warnings);
    }
}

/// `[admin] api_token`: a token long enough not to be guessed, and the
/// key that encrypts tenants' secrets.
fn check_api(config: &mut Config, errors: &mut Vec<ConfigError>) {
    let admin = &mut config.admin;
    admin.tenant_allow = admin
        .tenant_allow_hosts
        .iter()
        .enumerate()
        .filter_map(
            |(i, entry)| match crate::http::guard::Allowed::parse(entry) {
                Ok(a) => Some(a),
                Err(e) => {
                    errors.push(err(format!("admin.tenant_allow_hosts[{i}]"), e));
                    None
                }
            },
        )
        .collect();
    let Some(token) = &admin.api_token else {
        if admin.secrets_key_file.is_some() {
            errors.push(err(
                "admin.secrets_key_file",
                "only used with admin.api_token (the tenants API)",
            ));
        }
        return;
    };
    if token.expose().len() < 24 {
        errors.push(err(
            "admin.api_token",
            "must be at least 24 characters (e.g. `openssl rand -hex 32`)",
        ));
    }
    match &admin.secrets_key_file {
        None => errors.push(err(
            "admin.secrets_key_file",
            "required with admin.api_token: tenants' secrets are encrypted at rest with it (`head -c 32 /dev/urandom > /etc/hookrelay/secrets.key`)",
        )),
        Some(path) => match crate::config::SecretsKey::read(path) {
            Ok(k) => admin.secrets_key = Some(k),
            Err(e) => errors.push(err("admin.secrets_key_file", e)),
        },
    }
}

/// `[console]`: a password wherever the admin listener is reachable from
/// elsewhere; a login name and a session length that make sense.
fn check_console(config: &mut Config, errors: &mut Vec<ConfigError>) {
    let listen = config.admin.listen;
    let Some(c) = config.console.as_mut().filter(|c| c.enabled) else {
        return;
    };
    if let Some(url) = &mut c.public_url {
        match http_url(url) {
            Err(e) => errors.push(err("console.public_url", e)),
            Ok(u) if u.query().is_some() || u.fragment().is_some() => errors.push(err(
                "console.public_url",
                "the console's base URL as people reach it, without a query or fragment",
            )),
            Ok(_) => *url = url.trim_end_matches('/').to_owned(),
        }
    }
    match &c.password {
        None if !listen.ip().is_loopback() => errors.push(err(
            "console.password",
            format!("required: admin.listen ({listen}) is not a loopback address, and the console shows every event and replays dead letters (or set console.password_file)"),
        )),
        Some(p) if p.expose().chars().count() < 12 => errors.push(err(
            "console.password",
            "must be at least 12 characters",
        )),
        _ => {}
    }
    for (i, host) in c.allowed_hosts.iter_mut().enumerate() {
        match normalize_host(host) {
            Some(h) => *host = h,
            None => errors.push(err(
                format!("console.allowed_hosts[{i}]"),
                format!("expected a host name or address, optionally with :port (e.g. \"relay.example.org\" or \"[::1]:9091\"), found {host:?}"),
            )),
        }
    }
    if c.username.trim().is_empty() || c.username.len() > 64 {
        errors.push(err("console.username", "must be 1 to 64 characters"));
    }
    if c.session_ttl < Duration::from_secs(60) || c.session_ttl > Duration::from_secs(30 * 86_400) {
        errors.push(err("console.session_ttl", "must be between 1m and 30d"));
    }
}

/// A `console.allowed_hosts` entry as a `Host` header would carry it:
/// lower case, no trailing dot; `None` when it is not `host` or `host:port`.
fn normalize_host(entry: &str) -> Option<String> {
    let e = entry.trim().to_ascii_lowercase();
    if e.is_empty() || e.contains(['/', '@', '?', '#', ' ']) {
        return None;
    }
    let u = url::Url::parse(&format!("http://{e}/")).ok()?;
    u.host_str()?;
    Some(e)
}

/// `[actions]` and the destinations' `buttons` and `signing_secret`.
fn check_actions(config: &mut Config, errors: &mut Vec<ConfigError>, warnings: &mut Vec<String>) {
    if let Some(a) = &mut config.actions {
        match http_url(&a.public_url) {
            Err(e) => errors.push(err("actions.public_url", e)),
            Ok(u) if u.query().is_some() || u.fragment().is_some() => errors.push(err(
                "actions.public_url",
                "the relay's public base URL, without a query or fragment",
            )),
            Ok(_) => a.public_url = a.public_url.trim_end_matches('/').to_owned(),
        }
        if a.secret.expose().len() < 32 {
            errors.push(err(
                "actions.secret",
                "must be at least 32 bytes (e.g. `openssl rand -base64 48`)",
            ));
        }
        if a.ttl < Duration::from_secs(60) || a.ttl > Duration::from_secs(90 * 86_400) {
            errors.push(err("actions.ttl", "must be between 1m and 90d"));
        }
        check_buttons(&a.buttons, "actions.buttons", errors);
        warnings.push(
            "actions: the origins' API keys need the right to change alerts (their workflow status), not only to read them".into(),
        );
    }
    for (name, dest) in &config.destinations {
        let key = format!("destinations.{name}");
        if let Some(buttons) = &dest.buttons {
            check_buttons(buttons, &format!("{key}.buttons"), errors);
            if config.actions.is_none() && !buttons.is_empty() {
                errors.push(err(
                    format!("{key}.buttons"),
                    "needs an [actions] section (public_url and secret)",
                ));
            }
        }
        if dest.signing_secret.is_some()
            && !(dest.kind == DestinationKind::Slack && dest.token.is_some())
        {
            errors.push(err(
                format!("{key}.signing_secret"),
                "only for kind = \"slack\" in API mode (token and channel): it verifies Slack's button clicks",
            ));
        }
    }
}

fn check_buttons(buttons: &[ActionKind], key: &str, errors: &mut Vec<ConfigError>) {
    let mut seen = HashSet::new();
    for b in buttons {
        if !seen.insert(*b) {
            errors.push(err(key, format!("{:?} is listed twice", b.as_str())));
        }
    }
}

#[cfg(test)]
mod tests {
    fn warnings(routes: &str) -> Vec<String> {
        let text = crate::config::test_config_text(routes);
        crate::config::load_str(&text, &Default::default())
            .unwrap()
            .warnings
    }

    /// The alert's path is appended to `base_url`: a query or a fragment
    /// would swallow or steer it, in the file as in a tenant.
    #[test]
    fn a_base_url_with_a_query_or_fragment_is_refused() {
        for (base, refused) in [
            ("https://api.sekoia.io?x=", true),
            ("https://api.sekoia.io/api#f", true),
            ("https://api.sekoia.io/api/", false),
        ] {
            let text = format!(
                "[origins.o]\nkind = \"sekoia\"\napi_key = \"k\"\nbase_url = \"{base}\"\n[hooks.h]\nid = \"67a7472b-b43c-415d-b1ce-c135fb1dfb0e\"\norigin = \"o\"\n"
            );
            let r = crate::config::load_str(&text, &Default::default());
            match r {
                Err(e) if refused => assert_eq!(e.0[0].key, "origins.o.base_url", "{base}"),
                Ok(_) if !refused => {}
                other => panic!("{base}: {other:?}"),
            }
        }
    }

    #[test]
    fn regions_set_api_and_ui_urls_and_explicit_keys_win() {
        let load = |origin: &str| {
            let text = format!(
                "[origins.o]\nkind = \"sekoia\"\napi_key = \"k\"\n{origin}\n[hooks.h]\nid = \"67a7472b-b43c-415d-b1ce-c135fb1dfb0e\"\norigin = \"o\"\n"
            );
            crate::config::load_str(&text, &Default::default()).map(|c| c.origins["o"].clone())
        };
        let fra2 = load("region = \"fra2\"").unwrap();
        assert_eq!(
            fra2.base_url.as_deref(),
            Some("https://app.fra2.sekoia.io/api")
        );
        assert_eq!(
            fra2.alert_link.as_deref(),
            Some("https://app.fra2.sekoia.io/operations/alerts/{short_id}")
        );
        let usa1 = load("region = \"usa1\"").unwrap();
        assert_eq!(usa1.base_url.as_deref(), Some("https://api.usa1.sekoia.io"));
        assert_eq!(
            usa1.alert_link.as_deref(),
            Some("https://app.usa1.sekoia.io/operations/alerts/{short_id}")
        );
        let fra1 = load("region = \"fra1\"").unwrap();
        assert_eq!(fra1.base_url.as_deref(), Some("https://api.sekoia.io"));
        let own =
            load("region = \"mco1\"\nbase_url = \"https://proxy.example.org/sekoia\"").unwrap();
        assert_eq!(
            own.base_url.as_deref(),
            Some("https://proxy.example.org/sekoia")
        );
        assert_eq!(
            own.alert_link.as_deref(),
            Some("https://app.mco1.sekoia.io/operations/alerts/{short_id}")
        );
        let bad = load("region = \"mars1\"").unwrap_err().to_string();
        assert!(
            bad.contains("origins.o.region: unknown region \"mars1\""),
            "{bad}"
        );
    }

    #[test]
    fn impossible_routes_are_warned_about() {
        let w = warnings("[[routes]]\nname = \"x\"\nto = [\"a\"]\n[routes.when]\nurgency_min = 90\nurgency_max = 10\n");
        assert!(
            w.iter()
                .any(|w| w.contains("urgency_min 90 > urgency_max 10")),
            "{w:?}"
        );
        let w = warnings("[[routes]]\nname = \"x\"\nto = [\"a\"]\n[routes.when]\nstatus = []\n");
        assert!(
            w.iter()
                .any(|w| w.contains("routes[0].when.status: an empty list is ignored")),
            "{w:?}"
        );
        let w = warnings(
            "[[routes]]\nname = \"all\"\nto = [\"a\"]\n[[routes]]\nname = \"late\"\nto = [\"a\"]\n",
        );
        assert!(
            w.iter()
                .any(|w| w.contains("routes[1]: route \"late\" can never match")),
            "{w:?}"
        );
        let w =
            warnings("[[routes]]\nname = \"x\"\nto = [\"a\"]\n[routes.when]\nurgency_min = 50\n");
        assert!(
            w.iter()
                .any(|w| w.contains("alert cannot be fetched will match none")),
            "{w:?}"
        );
    }

    #[test]
    fn postgres_store_settings_are_checked_by_key() {
        let load = |store: &str| {
            let text = crate::config::test_config_text(store);
            crate::config::load_str(&text, &Default::default())
        };
        let errors = |store: &str| load(store).err().unwrap().to_string();
        let e = errors("[store]\nkind = \"postgres\"");
        assert!(e.contains("store.url: required"), "{e}");
        let e = errors("[store]\nkind = \"postgres\"\nurl = \"mysql://x\"");
        assert!(e.contains("store.url: not a valid PostgreSQL URL"), "{e}");
        let e = errors(
            "[store]\nkind = \"postgres\"\nurl = \"postgres://u:pw@db/x\"\nca_file = \"/nonexistent/ca.pem\"",
        );
        assert!(
            e.contains("store.ca_file: cannot read /nonexistent/ca.pem"),
            "{e}"
        );
        assert!(!e.contains("pw"), "no password in errors: {e}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("ca.pem");
        std::fs::write(&empty, "not a certificate").unwrap();
        let e = errors(&format!(
            "[store]\nkind = \"postgres\"\nurl = \"postgres://db/x\"\nca_file = \"{}\"",
            empty.display()
        ));
        assert!(e.contains("holds no PEM certificate"), "{e}");
        let ok = load(
            "[store]\nkind = \"postgres\"\nurl = \"postgres://u:pw@db:5432/x?sslmode=require\"",
        );
        assert_eq!(ok.unwrap().store.lease, std::time::Duration::from_secs(15));
        let ignored = load("[store]\nca_file = \"ca.pem\"").unwrap().warnings;
        assert!(
            ignored
                .iter()
                .any(|w| w.contains("store.ca_file is set but store.kind is \"sqlite\"")),
            "{ignored:?}"
        );
    }
}
