//! From a TOML file to a [`Config`]: merge `HOOKRELAY_*` environment
//! overrides, expand `${VAR}` in strings, read `*_file`
//! secrets, deserialize each section on its own so that every schema error
//! is reported at once with its key, then check cross-references.
//!
//! No error message ever contains a value read from the environment or a
//! secret file: only names and keys.

use super::actions::ActionsConfig;
use super::console::ConsoleConfig;
use super::destination::DestinationConfig;
use super::error::{err, ConfigError, ConfigErrors};
use super::intervals::TimeIntervalConfig;
use super::schema::*;
use super::validate::validate;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::Path;

/// Environment variables that configure the program itself, not a key.
const NOT_OVERRIDES: &[&str] = &["HOOKRELAY_CONFIG", "HOOKRELAY_LOG", "HOOKRELAY_LOG_FORMAT"];

/// Keys that hold secrets and therefore also accept a `<key>_file` form.
const SECRET_KEYS: &[&str] = &[
    "api_key",
    "api_token",
    "url",
    "secret",
    "password",
    "routing_key",
    "access_token",
    "token",
    "signing_secret",
];

/// Loads and validates the file at `path`, using the process environment.
pub fn load_file(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigErrors(vec![err(
            "",
            format!("cannot read config file {}: {e}", path.display()),
        )])
    })?;
    let env: HashMap<String, String> = std::env::vars().collect();
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut config = load_str_in(&text, &env, dir)?;
    config.source = Some(path.to_owned());
    Ok(config)
}

/// `value` with every secret replaced by `"<redacted>"`: the secret keys
/// (and their `_file` forms' results), any key ending in `token`,
/// `password`, `secret` or `_key`, and every header value.
pub(super) fn redacted(value: &Value, key: &str) -> Value {
    let secret = |k: &str| {
        SECRET_KEYS.contains(&k)
            || k.ends_with("token")
            || k.ends_with("password")
            || k.ends_with("secret")
            || k.ends_with("_key")
    };
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let hidden = (secret(k) && !v.is_object()) || key.ends_with("headers");
                    let v = if hidden {
                        Value::String("<redacted>".into())
                    } else {
                        redacted(v, k)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(|v| redacted(v, key)).collect()),
        other => other.clone(),
    }
}

/// Loads and validates TOML text with the given environment (tests pass
/// their own so they stay parallel-safe).
pub fn load_str(text: &str, env: &HashMap<String, String>) -> Result<Config, ConfigErrors> {
    load_str_in(text, env, Path::new("."))
}

/// Like [`load_str`]; relative template paths are read from `dir`.
pub fn load_str_in(
    text: &str,
    env: &HashMap<String, String>,
    dir: &Path,
) -> Result<Config, ConfigErrors> {
    // Parse once on our own first: toml's syntax errors carry line and column.
    let raw = match text.parse::<toml::Table>() {
        Ok(t) => t,
        Err(e) => {
            return Err(ConfigErrors(vec![err(
                "",
                format!("invalid TOML: {}", e.to_string().trim_end()),
            )]))
        }
    };
    // A variable the file names in `${…}` is the file's value, not an
    // override (e.g. `api_token = "${HOOKRELAY_API_TOKEN}"`).
    let referenced: Vec<&str> = text
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .collect();
    let overrides: HashMap<String, String> = env
        .iter()
        .filter(|(k, _)| {
            k.starts_with("HOOKRELAY_")
                && !NOT_OVERRIDES.contains(&k.as_str())
                && !referenced.contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut merged = match serde_json::to_value(&raw) {
        Ok(v) => v,
        Err(e) => return Err(ConfigErrors(vec![err("", e.to_string())])),
    };
    let mut names: Vec<&String> = overrides.keys().collect();
    names.sort();
    for name in names {
        apply_override(&mut merged, name, &overrides[name])
            .map_err(|e| ConfigErrors(vec![err("", e)]))?;
    }

    let mut errors = Vec::new();
    let mut root = merged;
    expand_env(&mut root, "", env, &mut errors);
    read_secret_files(&mut root, "", &mut errors);
    let effective = redacted(&root, "");
    let Value::Object(mut top) = root else {
        return Err(ConfigErrors(vec![err(
            "",
            "the config must be a TOML table",
        )]));
    };

    let server = section::<ServerConfig>(&mut top, "server", &mut errors);
    let admin = section::<AdminConfig>(&mut top, "admin", &mut errors);
    let store = section::<StoreConfig>(&mut top, "store", &mut errors);
    let delivery = section::<DeliveryConfig>(&mut top, "delivery", &mut errors);
    let origins = named_tables::<OriginConfig>(&mut top, "origins", &mut errors);
    let hooks = named_tables::<HookConfig>(&mut top, "hooks", &mut errors);
    let destinations = named_tables::<DestinationConfig>(&mut top, "destinations", &mut errors);
    let routes = route_list(&mut top, &mut errors);
    let actions = section::<ActionsConfig>(&mut top, "actions", &mut errors);
    let time_intervals =
        named_tables::<TimeIntervalConfig>(&mut top, "time_intervals", &mut errors);
    let console = section::<ConsoleConfig>(&mut top, "console", &mut errors);
    for key in top.keys() {
        errors.push(err(
            key.clone(),
            "unknown section (expected server, admin, store, delivery, origins, hooks, destinations, routes, actions, time_intervals, console)",
        ));
    }

    let config = Config {
        warnings: empty_condition_lists(&raw),
        server: server.unwrap_or_default(),
        admin: admin.unwrap_or_default(),
        store: store.unwrap_or_default(),
        delivery: delivery.unwrap_or_default(),
        origins,
        hooks,
        destinations,
        routes,
        actions,
        time_intervals,
        console,
        source: None,
        tenants: Vec::new(),
        loaded_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        effective,
    };
    if !errors.is_empty() {
        // Reference checks on a partly-broken config would only add noise
        // about entries that failed to parse; report them after a fix.
        return Err(ConfigErrors(errors));
    }
    validate(config, dir)
}

/// `status = []` in a route's conditions matches nothing, but the merge
/// layer drops empty lists (the key would read as absent: match anything),
/// so they are found in the file as written.
fn empty_condition_lists(raw: &toml::Table) -> Vec<String> {
    let mut out = Vec::new();
    let Some(routes) = raw.get("routes").and_then(|r| r.as_array()) else {
        return out;
    };
    for (i, route) in routes.iter().enumerate() {
        let name = route.get("name").and_then(|n| n.as_str()).unwrap_or("?");
        let Some(when) = route.get("when").and_then(|w| w.as_table()) else {
            continue;
        };
        for (key, value) in when {
            if value.as_array().is_some_and(|a| a.is_empty()) {
                out.push(format!(
                    "routes[{i}].when.{key}: an empty list is ignored, so route {name:?} does not test {key} at all; remove the key or list values"
                ));
            }
        }
    }
    out
}

fn from_value<T: DeserializeOwned>(value: Value, key: &str) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let full = if inner == "." || inner.is_empty() {
            key.to_owned()
        } else {
            format!("{key}.{inner}")
        };
        err(full, e.into_inner().to_string())
    })
}

pub(super) fn section<T: DeserializeOwned>(
    top: &mut Map<String, Value>,
    name: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let value = top.remove(name)?;
    from_value(value, name).map_err(|e| errors.push(e)).ok()
}

pub(super) fn named_tables<T: DeserializeOwned>(
    top: &mut Map<String, Value>,
    name: &str,
    errors: &mut Vec<ConfigError>,
) -> BTreeMap<String, T> {
    let mut out = BTreeMap::new();
    let Some(value) = top.remove(name) else {
        return out;
    };
    let Value::Object(entries) = value else {
        errors.push(err(name, format!("expected tables like [{name}.<name>]")));
        return out;
    };
    for (entry, v) in entries {
        let key = format!("{name}.{entry}");
        match from_value::<T>(v, &key) {
            Ok(t) => {
                out.insert(entry, t);
            }
            Err(e) => errors.push(e),
        }
    }
    out
}

pub(super) fn route_list(
    top: &mut Map<String, Value>,
    errors: &mut Vec<ConfigError>,
) -> Vec<RouteConfig> {
    let Some(value) = top.remove("routes") else {
        return Vec::new();
    };
    let Value::Array(items) = value else {
        errors.push(err("routes", "expected an array of tables ([[routes]])"));
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, v) in items.into_iter().enumerate() {
        match from_value::<RouteConfig>(v, &format!("routes[{i}]")) {
            Ok(r) => out.push(r),
            Err(e) => errors.push(e),
        }
    }
    out
}

fn child_key(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

/// Replaces `${NAME}` in every string with the variable's value; an unset or
/// empty variable is an error naming the key and the variable.
fn expand_env(
    value: &mut Value,
    key: &str,
    env: &HashMap<String, String>,
    errors: &mut Vec<ConfigError>,
) {
    match value {
        Value::String(s) if s.contains("${") => match expand_str(s, env) {
            Ok(expanded) => *s = expanded,
            Err(message) => errors.push(err(key, message)),
        },
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                expand_env(item, &format!("{key}[{i}]"), env, errors);
            }
        }
        Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                expand_env(v, &child_key(key, k), env, errors);
            }
        }
        _ => {}
    }
}

fn expand_str(s: &str, env: &HashMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some((before, after)) = rest.split_once("${") {
        out.push_str(before);
        let (name, tail) = after
            .split_once('}')
            .ok_or_else(|| "unterminated ${ in value".to_owned())?;
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("invalid variable name in ${{{name}}}"));
        }
        match env.get(name) {
            Some(v) if !v.is_empty() => out.push_str(v),
            Some(_) => return Err(format!("environment variable {name} is empty")),
            None if name == "CREDENTIALS_DIRECTORY" => {
                return Err(format!(
                    "environment variable {name} is not set (systemd sets it for the service's \
                     LoadCredential= files; outside the service, point it at them: \
                     CREDENTIALS_DIRECTORY=/etc/hookrelay/credentials hookrelay check …)"
                ))
            }
            None => return Err(format!("environment variable {name} is not set")),
        }
        rest = tail;
    }
    out.push_str(rest);
    Ok(out)
}

/// Keys whose override is a comma-separated list.
const LIST_OVERRIDES: &[&str] = &["server.trusted_proxies", "admin.tenant_allow_hosts"];

/// Sets the key an environment override names: `HOOKRELAY_SERVER__LISTEN`
/// is `server.listen` ("__" between levels, lower case). The value is a
/// boolean, an integer or a float when it reads as one, else a string; the
/// keys in `LIST_OVERRIDES` take comma-separated lists.
fn apply_override(root: &mut Value, name: &str, raw: &str) -> Result<(), String> {
    let path: Vec<String> = name
        .strip_prefix("HOOKRELAY_")
        .unwrap_or(name)
        .split("__")
        .map(str::to_lowercase)
        .collect();
    if path.iter().any(String::is_empty) {
        return Err(format!(
            "environment variable {name}: not a key (HOOKRELAY_SECTION__KEY)"
        ));
    }
    let dotted = path.join(".");
    let value = if LIST_OVERRIDES.contains(&dotted.as_str()) {
        Value::Array(
            raw.split(',')
                .map(|item| Value::String(item.trim().to_owned()))
                .collect(),
        )
    } else if let Ok(b) = raw.to_lowercase().parse::<bool>() {
        Value::Bool(b)
    } else if let Ok(i) = raw.parse::<i64>() {
        Value::from(i)
    } else if let Some(f) = raw
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
    {
        Value::Number(f)
    } else {
        Value::String(raw.to_owned())
    };
    let (last, parents) = path.split_last().expect("at least one key");
    let mut table = root;
    for key in parents {
        let Value::Object(map) = table else {
            return Err(format!(
                "environment variable {name}: {dotted} is not inside a table"
            ));
        };
        table = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    let Value::Object(map) = table else {
        return Err(format!(
            "environment variable {name}: {dotted} is not inside a table"
        ));
    };
    map.insert(last.clone(), value);
    Ok(())
}

/// Turns `api_key_file = "/path"` into `api_key = <contents>` (trailing
/// newline removed), anywhere in the tree.
fn read_secret_files(value: &mut Value, key: &str, errors: &mut Vec<ConfigError>) {
    match value {
        Value::Object(map) => {
            for secret in SECRET_KEYS {
                let file_key = format!("{secret}_file");
                let Some(path) = map.remove(&file_key) else {
                    continue;
                };
                let full = child_key(key, &file_key);
                let Value::String(path) = path else {
                    errors.push(err(full, "expected a file path"));
                    continue;
                };
                if map.contains_key(*secret) {
                    errors.push(err(
                        full,
                        format!("set either {secret} or {secret}_file, not both"),
                    ));
                    continue;
                }
                match std::fs::read_to_string(&path) {
                    Ok(contents) => {
                        let trimmed = contents.trim_end_matches(['\n', '\r']).to_owned();
                        if trimmed.is_empty() {
                            errors.push(err(full, format!("secret file {path} is empty")));
                        } else {
                            map.insert(secret.to_string(), Value::String(trimmed));
                        }
                    }
                    Err(e) => {
                        errors.push(err(full, format!("cannot read secret file {path}: {e}")))
                    }
                }
            }
            for (k, v) in map.iter_mut() {
                read_secret_files(v, &child_key(key, k), errors);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                read_secret_files(item, &format!("{key}[{i}]"), errors);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    const MINIMAL: &str = r#"
        [origins.sekoia]
        kind = "sekoia"
        base_url = "https://api.sekoia.io"
        api_key = "${KEY}"
        [hooks.soc]
        id = "67a7472b-b43c-415d-b1ce-c135fb1dfb0e"
        origin = "sekoia"
        [destinations.chat]
        kind = "slack"
        url = "https://hooks.slack.com/services/T/B/X"
        [[routes]]
        name = "all"
        to = ["chat"]
    "#;

    #[test]
    fn expands_env_and_applies_overrides() {
        let cfg = load_str(
            MINIMAL,
            &env(&[
                ("KEY", "k3y"),
                ("HOOKRELAY_SERVER__LISTEN", "127.0.0.1:9999"),
            ]),
        )
        .unwrap();
        assert_eq!(
            cfg.origins["sekoia"].api_key.as_ref().unwrap().expose(),
            "k3y"
        );
        assert_eq!(cfg.server.listen.port(), 9999);
        assert_eq!(cfg.server.max_body_bytes, 65536);
        let cfg = load_str(
            MINIMAL,
            &env(&[
                ("KEY", "k"),
                ("HOOKRELAY_SERVER__TRUSTED_PROXIES", "10.0.0.0/8,::1/128"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.server.trusted_proxies.len(), 2);
    }

    #[test]
    fn overrides_take_numbers_and_booleans_and_create_sections() {
        let cfg = load_str(
            MINIMAL,
            &env(&[
                ("KEY", "k"),
                ("HOOKRELAY_SERVER__MAX_BODY_BYTES", "1024"),
                ("HOOKRELAY_STORE__SYNC", "normal"),
                ("HOOKRELAY_CONSOLE__ENABLED", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.server.max_body_bytes, 1024);
        let e = load_str(
            MINIMAL,
            &env(&[("KEY", "k"), ("HOOKRELAY_SERVER__LISTEN__PORT", "1")]),
        )
        .unwrap_err()
        .to_string();
        // A key below a value: the schema error names the key.
        assert!(e.contains("server.listen"), "{e}");
    }

    #[test]
    fn a_variable_the_file_names_is_not_an_override() {
        let text = MINIMAL.replace("${KEY}", "${HOOKRELAY_API_KEY}");
        let cfg = load_str(&text, &env(&[("HOOKRELAY_API_KEY", "from-env")])).unwrap();
        assert_eq!(
            cfg.origins["sekoia"].api_key.as_ref().unwrap().expose(),
            "from-env"
        );
    }

    #[test]
    fn missing_variable_is_named_without_value() {
        let e = load_str(MINIMAL, &env(&[])).unwrap_err().to_string();
        assert_eq!(
            e,
            "origins.sekoia.api_key: environment variable KEY is not set"
        );
    }

    #[test]
    fn unknown_keys_and_bad_types_are_all_reported() {
        let text = format!(
            "{MINIMAL}\n[server]\nlisten = \"nope\"\n[delivery]\nmax_agee = \"1h\"\n[bogus]\nx = 1\n"
        );
        let e = load_str(&text, &env(&[("KEY", "k")])).unwrap_err();
        let lines: Vec<String> = e.0.iter().map(|e| e.key.clone()).collect();
        assert!(lines.contains(&"server.listen".to_owned()), "{e}");
        assert!(
            lines.contains(&"delivery".to_owned())
                || lines.iter().any(|l| l.starts_with("delivery")),
            "{e}"
        );
        assert!(lines.contains(&"bogus".to_owned()), "{e}");
        assert!(e.to_string().contains("max_agee"), "{e}");
    }

    #[test]
    fn a_missing_secret_file_is_named() {
        let text = MINIMAL.replace(
            "url = \"https://hooks.slack.com/services/T/B/X\"",
            "url_file = \"/run/credentials/hookrelay.service/slack-url\"",
        );
        let e = load_str(&text, &env(&[("KEY", "k")]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("destinations.chat.url_file: cannot read secret file /run/credentials/hookrelay.service/slack-url"),
            "{e}"
        );
    }

    #[test]
    fn secret_files_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("url");
        std::fs::write(&path, "https://hooks.slack.com/services/T/B/FILE\n").unwrap();
        let text = MINIMAL.replace(
            "url = \"https://hooks.slack.com/services/T/B/X\"",
            &format!("url_file = \"{}\"", path.display()),
        );
        let cfg = load_str(&text, &env(&[("KEY", "k")])).unwrap();
        assert_eq!(
            cfg.destinations["chat"].url().expose(),
            "https://hooks.slack.com/services/T/B/FILE"
        );
    }
}
