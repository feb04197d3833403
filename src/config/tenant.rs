//! Tenants: fragments of the same configuration (origins, hooks,
//! destinations, routes), managed over the API and stored in the spool,
//! checked by the same validation as the file, and merged into the running
//! configuration under their own names.
//!
//! A tenant's names are its own: in the running configuration they are
//! `tenant/name`, its routes see only its hooks and send only to its
//! destinations, and the file's routes see only the file's hooks. A tenant
//! document never reads the relay's host: no `${VAR}`, no `*_file`, no
//! `template` (each would read the environment or a file).
//!
//! A tenant is untrusted: it programs nothing (an e-mail `subject` is plain
//! text with three placeholders, never a template), its origins' `timeout`
//! and `enrich_deadline` are capped, and its merged origins and
//! destinations carry a [`TenantMark`]: their connections follow the
//! egress policy (`crate::http::guard`). Where its hosts resolve is checked
//! when it is stored (`live::store_tenant`), not here: this module reads
//! nothing of the host, the network included.

use super::error::err;
use super::load::{named_tables, redacted, route_list};
use super::*;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::Duration;

/// Per-tenant limits (a document beyond them is refused by key).
pub const MAX_ROUTES: usize = 1_000;
pub const MAX_ENTRIES: usize = 100;
/// A tenant document's size limit (the API answers 413 beyond it).
pub const MAX_DOCUMENT: usize = 1 << 20;
/// A tenant origin's `timeout` at most: one request to its API.
pub const MAX_ORIGIN_TIMEOUT: Duration = Duration::from_secs(30);
/// A tenant origin's `enrich_deadline` at most: how long one of its events
/// may wait for its alert (holding its share of the pipeline meanwhile).
pub const MAX_ENRICH_DEADLINE: Duration = Duration::from_secs(300);
/// What a tenant's e-mail `subject` may say besides text; each is replaced
/// by the message's own (the default subject is `[{urgency}] {headline} —
/// {summary}`).
pub const SUBJECT_PLACEHOLDERS: [&str; 3] = ["{urgency}", "{headline}", "{summary}"];

/// A tenant's validated fragment.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub name: String,
    pub origins: BTreeMap<String, OriginConfig>,
    pub hooks: BTreeMap<String, HookConfig>,
    pub destinations: BTreeMap<String, DestinationConfig>,
    pub routes: Vec<RouteConfig>,
}

/// Whether `name` can name a tenant: 1 to 63 of `a-z 0-9 - _`, starting
/// with a letter or digit (it becomes part of URLs, metric labels, names).
pub fn check_name(name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(err(
            "name",
            "a tenant's name is 1 to 63 of a-z, 0-9, '-' and '_', starting with a letter or digit",
        ))
    }
}

/// Too many entries in a section (the section is dropped), and the keys
/// only the file may set: templates, time intervals.
fn refuse_what_tenants_cannot_set(top: &mut Map<String, Value>, errors: &mut Vec<ConfigError>) {
    for (section_name, max) in [
        ("origins", MAX_ENTRIES),
        ("hooks", MAX_ENTRIES),
        ("destinations", MAX_ENTRIES),
        ("routes", MAX_ROUTES),
    ] {
        let n = match top.get(section_name) {
            Some(Value::Object(m)) => m.len(),
            Some(Value::Array(a)) => a.len(),
            _ => 0,
        };
        if n > max {
            errors.push(err(
                section_name,
                format!("at most {max} per tenant ({n} given)"),
            ));
            top.remove(section_name);
        }
    }
    for (entry, v) in top
        .get("destinations")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if v.get("template").is_some() {
            errors.push(err(
                format!("destinations.{entry}.template"),
                "not available to tenants (a template is a file on the relay's host); tenants get the built-in messages",
            ));
        }
        if let Some(subject) = v.get("subject").and_then(Value::as_str) {
            if ["{{", "{%", "{#"].iter().any(|t| subject.contains(t)) {
                errors.push(err(
                    format!("destinations.{entry}.subject"),
                    "plain text for tenants, not a template (no {{ }}, {% %} or {# #}); {urgency}, {headline} and {summary} are replaced by the message's own",
                ));
            }
        }
    }
    for (i, r) in top
        .get("routes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        for key in ["active_during", "muted_during"] {
            if r.get(key).is_some() {
                errors.push(err(
                    format!("routes[{i}].{key}"),
                    "not available to tenants (time intervals are the relay's)",
                ));
            }
        }
    }
}

/// A tenant's origins wait for their API within the tenants' limits.
fn origin_limits(checked: &Config) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for (n, o) in &checked.origins {
        for (field, value, max) in [
            ("timeout", o.timeout, MAX_ORIGIN_TIMEOUT),
            ("enrich_deadline", o.enrich_deadline, MAX_ENRICH_DEADLINE),
        ] {
            if value > max {
                errors.push(err(
                    format!("origins.{n}.{field}"),
                    format!(
                        "at most {} for a tenant ({} given)",
                        humantime::format_duration(max),
                        humantime::format_duration(value)
                    ),
                ));
            }
        }
    }
    errors
}

/// Parses and validates a tenant document (the JSON form of the TOML
/// fragment): every problem at once, each with its key.
pub fn parse(name: &str, doc: &Value) -> Result<Tenant, ConfigErrors> {
    let mut errors = Vec::new();
    if let Err(e) = check_name(name) {
        errors.push(e);
    }
    let Value::Object(top) = doc else {
        errors.push(err(
            "",
            "a tenant is an object with origins, hooks, destinations and routes",
        ));
        return Err(ConfigErrors(errors));
    };
    let mut top: Map<String, Value> = top.clone();
    reads_nothing(&Value::Object(top.clone()), "", &mut errors);
    refuse_what_tenants_cannot_set(&mut top, &mut errors);
    let origins = named_tables::<OriginConfig>(&mut top, "origins", &mut errors);
    let hooks = named_tables::<HookConfig>(&mut top, "hooks", &mut errors);
    let destinations = named_tables::<DestinationConfig>(&mut top, "destinations", &mut errors);
    let routes = route_list(&mut top, &mut errors);
    for key in top.keys() {
        errors.push(err(
            key.clone(),
            "unknown key (a tenant has origins, hooks, destinations and routes)",
        ));
    }
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    if hooks.is_empty() {
        return Err(ConfigErrors(vec![err(
            "hooks",
            "a tenant needs at least one hook",
        )]));
    }
    // The same checks as the file: references, URLs, secrets, kinds.
    let config = Config {
        origins,
        hooks,
        destinations,
        routes,
        ..Config::default()
    };
    let checked = super::validate::validate(config, std::path::Path::new("/nonexistent")).map_err(
        |ConfigErrors(errors)| {
            ConfigErrors(
                errors
                    .into_iter()
                    .map(|e| ConfigError {
                        message: without_file_hints(&e.message),
                        ..e
                    })
                    .collect(),
            )
        },
    )?;
    let errors = origin_limits(&checked);
    if !errors.is_empty() {
        return Err(ConfigErrors(errors));
    }
    Ok(Tenant {
        name: name.to_owned(),
        origins: checked.origins,
        hooks: checked.hooks,
        destinations: checked.destinations,
        routes: checked.routes,
    })
}

/// The file's validation suggests `x_file` beside `x` ("set api_key or
/// api_key_file"); a tenant may not use `*_file`, so its errors name the
/// value only.
// The offsets all come from `find` on the same string and the lengths of
// ASCII openers, so every one is a character boundary.
#[allow(clippy::string_slice)]
fn without_file_hints(message: &str) -> String {
    let mut out = message.to_owned();
    // " (or x_file)", then " or x_file", then ", or set s.x_file".
    for opener in [" (or ", ", or set ", " or "] {
        let mut from = 0;
        while let Some(found) = out[from..].find(opener) {
            let at = from + found;
            let rest = &out[at + opener.len()..];
            let word = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .unwrap_or(rest.len());
            if !rest[..word].ends_with("_file") {
                from = at + opener.len();
                continue;
            }
            let mut end = at + opener.len() + word;
            if opener == " (or " && out[end..].starts_with(')') {
                end += 1;
            }
            out.replace_range(at..end, "");
            from = at;
        }
    }
    out
}

/// `${VAR}` and `*_file` would read the relay's environment and files: a
/// tenant document must not contain either.
fn reads_nothing(value: &Value, key: &str, errors: &mut Vec<ConfigError>) {
    let child = |k: &str| {
        if key.is_empty() {
            k.to_owned()
        } else {
            format!("{key}.{k}")
        }
    };
    match value {
        Value::String(s) if s.contains("${") => errors.push(err(
            key,
            "${…} is not expanded in a tenant (it would read the relay's environment)",
        )),
        Value::Object(map) => {
            for (k, v) in map {
                if k.ends_with("_file") {
                    errors.push(err(
                        child(k),
                        "not available to tenants (it reads a file on the relay's host); give the value itself",
                    ));
                } else {
                    reads_nothing(v, &child(k), errors);
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                reads_nothing(v, &format!("{key}[{i}]"), errors);
            }
        }
        _ => {}
    }
}

/// The document with every secret as `"<redacted>"`, as the API answers it.
pub fn redact(doc: &Value) -> Value {
    redacted(doc, "")
}

/// The running configuration: the file's, with each tenant added under
/// `tenant/name`. The file's routes are limited to the file's hooks and
/// each tenant's to its own (a route without `hooks` gets them). A hook id
/// used twice is an error naming it.
pub fn merge(file: &Config, tenants: &[Tenant]) -> Result<Config, ConfigErrors> {
    let mut out = file.clone();
    if tenants.is_empty() {
        return Ok(out);
    }
    let file_hooks: Vec<String> = file.hooks.keys().cloned().collect();
    for r in &mut out.routes {
        if r.hooks.is_none() {
            r.hooks = Some(file_hooks.clone());
        }
    }
    let mut errors = Vec::new();
    let mut ids: BTreeMap<uuid::Uuid, String> =
        file.hooks.iter().map(|(n, h)| (h.id, n.clone())).collect();
    // One policy for every tenant, from the file.
    let egress = std::sync::Arc::new(file.tenant_egress());
    for t in tenants {
        let scoped = |n: &str| format!("{}/{n}", t.name);
        let mark = TenantMark {
            name: t.name.clone(),
            egress: egress.clone(),
        };
        for (n, o) in &t.origins {
            let mut o = o.clone();
            o.tenant = Some(mark.clone());
            out.origins.insert(scoped(n), o);
        }
        for (n, h) in &t.hooks {
            if let Some(other) = ids.insert(h.id, scoped(n)) {
                errors.push(err(
                    format!("hooks.{n}.id"),
                    format!("{} is already the id of hook {other:?}", h.id),
                ));
            }
            let mut h = h.clone();
            h.origin = scoped(&h.origin);
            out.hooks.insert(scoped(n), h);
        }
        for (n, d) in &t.destinations {
            let mut d = d.clone();
            d.tenant = Some(mark.clone());
            out.destinations.insert(scoped(n), d);
        }
        let own_hooks: Vec<String> = t.hooks.keys().map(|h| scoped(h)).collect();
        for r in &t.routes {
            let mut r = r.clone();
            r.name = scoped(&r.name);
            r.to = r.to.iter().map(|d| scoped(d)).collect();
            r.hooks = Some(match &r.hooks {
                Some(hs) => hs.iter().map(|h| scoped(h)).collect(),
                None => own_hooks.clone(),
            });
            out.routes.push(r);
        }
    }
    out.tenants = tenants.iter().map(|t| t.name.clone()).collect();
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ConfigErrors(errors))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(hook_id: &str) -> Value {
        json!({
            "origins": {"sekoia": {"kind": "sekoia", "base_url": "https://api.sekoia.io", "api_key": "sk-acme-1"}},
            "hooks": {"soc": {"id": hook_id, "origin": "sekoia"}},
            "destinations": {"teams": {"kind": "teams", "url": "https://acme.webhook.office.com/x/secret"}},
            "routes": [{"name": "all", "to": ["teams"]}]
        })
    }

    #[test]
    fn a_tenants_errors_never_suggest_a_file() {
        assert_eq!(
            without_file_hints(
                "missing (set api_key or api_key_file; the key needs SIC_READ_ALERT)"
            ),
            "missing (set api_key; the key needs SIC_READ_ALERT)"
        );
        assert_eq!(
            without_file_hints("set a secret (or secret_file) to verify signatures"),
            "set a secret to verify signatures"
        );
        assert_eq!(
            without_file_hints("use a or b, or set token or token_file"),
            "use a or b, or set token"
        );
        let mut d =
            json!({"origins": {"o": {"kind": "sekoia", "base_url": "https://api.sekoia.io"}}});
        d["hooks"] = json!({"soc": {"id": "c0c0c0c0-1111-4222-8333-444444444444", "origin": "o"}});
        let e = parse("acme", &d).unwrap_err().to_string();
        assert!(e.contains("origins.o.api_key"), "{e}");
        assert!(!e.contains("_file"), "{e}");
    }

    #[test]
    fn a_tenant_is_checked_like_the_file() {
        let t = parse("acme", &doc("11111111-1111-4111-8111-111111111111")).unwrap();
        assert_eq!(t.routes.len(), 1);
        let bad = json!({
            "hooks": {"soc": {"id": "not-a-uuid", "origin": "nowhere"}},
            "destinations": {"teams": {"kind": "teams", "url": "ftp://x", "template": "/etc/passwd"}},
            "routes": [{"name": "all", "to": ["elsewhere"], "active_during": ["x"]}],
            "server": {}
        });
        let errors = parse("Acme/../x", &bad).unwrap_err();
        let keys: Vec<&str> = errors.0.iter().map(|e| e.key.as_str()).collect();
        for k in [
            "name",
            "destinations.teams.template",
            "routes[0].active_during",
            "hooks.soc.id",
            "server",
        ] {
            assert!(keys.contains(&k), "{k} not in {keys:?}");
        }
    }

    #[test]
    fn a_tenant_reads_nothing_of_the_host() {
        let mut d = doc("11111111-1111-4111-8111-111111111111");
        d["origins"]["sekoia"]["api_key"] = "${HOME}".into();
        d["destinations"]["teams"]["url_file"] = "/etc/shadow".into();
        let errors = parse("acme", &d).unwrap_err();
        let keys: Vec<&str> = errors.0.iter().map(|e| e.key.as_str()).collect();
        assert!(keys.contains(&"origins.sekoia.api_key"), "{keys:?}");
        assert!(keys.contains(&"destinations.teams.url_file"), "{keys:?}");
    }

    #[test]
    fn merged_names_are_scoped_and_routes_see_only_their_own_hooks() {
        let file = load_str(
            "[origins.o]\nkind = \"sekoia\"\nbase_url = \"https://api.sekoia.io\"\napi_key = \"k\"\n\
             [hooks.main]\nid = \"22222222-2222-4222-8222-222222222222\"\norigin = \"o\"\n\
             [destinations.ops]\nkind = \"slack\"\nurl = \"https://hooks.slack.com/services/x\"\n\
             [[routes]]\nname = \"all\"\nto = [\"ops\"]\n",
            &Default::default(),
        )
        .unwrap();
        let acme = parse("acme", &doc("11111111-1111-4111-8111-111111111111")).unwrap();
        let merged = merge(&file, std::slice::from_ref(&acme)).unwrap();
        assert_eq!(
            merged.routes[0].hooks.as_deref(),
            Some(&["main".to_owned()][..])
        );
        let r = &merged.routes[1];
        assert_eq!(r.name, "acme/all");
        assert_eq!(r.to, ["acme/teams"]);
        assert_eq!(r.hooks.as_deref(), Some(&["acme/soc".to_owned()][..]));
        assert_eq!(merged.hooks["acme/soc"].origin, "acme/sekoia");
        // The same hook id twice: refused, naming the hook.
        let twin = parse("twin", &doc("11111111-1111-4111-8111-111111111111")).unwrap();
        let errors = merge(&file, &[acme, twin]).unwrap_err();
        assert_eq!(errors.0[0].key, "hooks.soc.id");
    }

    #[test]
    fn a_tenant_programs_nothing_and_waits_within_caps() {
        let mut d = doc("11111111-1111-4111-8111-111111111111");
        d["destinations"]["mail"] = json!({"kind": "email", "host": "smtp.example.org",
            "from": "r@example.org", "to": ["s@example.org"], "subject": "{# x #}{urgency}"});
        d["origins"]["sekoia"]["timeout"] = "31s".into();
        d["origins"]["sekoia"]["enrich_deadline"] = "301s".into();
        let keys = |d: &Value| -> Vec<String> {
            parse("acme", d)
                .err()
                .map(|e| e.0.into_iter().map(|e| e.key).collect())
                .unwrap_or_default()
        };
        assert_eq!(keys(&d), ["destinations.mail.subject"], "syntax first");
        for (subject, refused) in [
            ("{{ alert.title }}", true),
            ("{% if x %}y{% endif %}", true),
            ("{#", true),
            ("[{urgency}] {headline} — {summary}", false),
            ("{ not a template }", false),
        ] {
            d["destinations"]["mail"]["subject"] = subject.into();
            assert_eq!(
                keys(&d).contains(&"destinations.mail.subject".to_owned()),
                refused,
                "{subject}"
            );
        }
        assert_eq!(
            keys(&d),
            ["origins.sekoia.timeout", "origins.sekoia.enrich_deadline"]
        );
        d["origins"]["sekoia"]["timeout"] = "30s".into();
        d["origins"]["sekoia"]["enrich_deadline"] = "5m".into();
        assert!(keys(&d).is_empty());
    }

    #[test]
    fn merged_tenants_carry_their_mark_and_the_files_policy() {
        let file = load_str(
            "[admin]\ntenant_allow_hosts = [\"10.0.0.0/8\", \"mail.internal\"]\n",
            &Default::default(),
        )
        .unwrap();
        let acme = parse("acme", &doc("11111111-1111-4111-8111-111111111111")).unwrap();
        let merged = merge(&file, &[acme]).unwrap();
        let mark = merged.destinations["acme/teams"].tenant.as_ref().unwrap();
        assert_eq!(mark.name, "acme");
        assert_eq!(
            mark.egress.forbidden("10.1.1.1".parse().unwrap()),
            None,
            "listed"
        );
        assert!(mark
            .egress
            .forbidden("192.168.1.1".parse().unwrap())
            .is_some());
        assert!(merged.origins["acme/sekoia"].tenant.is_some());
        let bad = load_str(
            "[admin]\ntenant_allow_hosts = [\"http://x\"]\n",
            &Default::default(),
        )
        .unwrap_err();
        assert_eq!(bad.0[0].key, "admin.tenant_allow_hosts[0]");
    }

    #[test]
    fn documents_are_answered_redacted() {
        let r = redact(&doc("11111111-1111-4111-8111-111111111111"));
        let text = r.to_string();
        assert!(
            !text.contains("sk-acme-1") && !text.contains("secret"),
            "{text}"
        );
        assert_eq!(r["origins"]["sekoia"]["api_key"], "<redacted>");
    }
}
