//! Documented → accepted: each documented key planted in a config file
//! given to the real `hookrelay check`.

use super::reference::{KindSection, Reference};
use std::collections::BTreeSet;
use std::path::Path;

/// A valid configuration the keys are planted in: origin `o`, hook `h`,
/// destination `d`, route 0.
pub(crate) fn base_config() -> toml::Table {
    r#"
    [origins.o]
    kind = "sekoia"
    base_url = "http://127.0.0.1:1"
    api_key = "k"
    [hooks.h]
    id = "67a7472b-b43c-415d-b1ce-c135fb1dfb0e"
    origin = "o"
    [destinations.d]
    kind = "teams"
    url = "https://example.org/teams"
    [[routes]]
    name = "r"
    to = ["d"]
    "#
    .parse()
    .expect("the base config is TOML")
}

/// A value of the documented type (the first quoted alternative of an
/// enumeration; a file holding a value for `*_file` keys and paths).
pub(crate) fn value_for(key: &str, ty: &str, file: &Path) -> toml::Value {
    use toml::Value as V;
    let ty_l = ty.to_lowercase();
    let path = || V::String(file.display().to_string());
    if key.ends_with("_file") || ty_l.starts_with("path") {
        return path();
    }
    if ty_l.starts_with("list of tables") {
        let mut t = toml::Table::new();
        t.insert("id".into(), V::String("29:abc".into()));
        t.insert("name".into(), V::String("SOC".into()));
        return V::Array(vec![V::Table(t)]);
    }
    if ty_l.starts_with("list") {
        let item = quoted(ty).unwrap_or_else(|| "x".into());
        return V::Array(vec![V::String(item)]);
    }
    if let Some(q) = quoted(ty) {
        return V::String(q);
    }
    match ty_l.as_str() {
        t if t.starts_with("boolean") => V::Boolean(true),
        t if t.starts_with("integer") => V::Integer(1),
        t if t.starts_with("duration") => V::String("1s".into()),
        t if t.starts_with("rate") => V::String("1/s".into()),
        t if t.starts_with("address") => V::String("127.0.0.1:0".into()),
        t if t.starts_with("uuid") => V::String("5696845f-9ecf-4431-9f0f-48ee0ee2eff1".into()),
        t if t.starts_with("table") => {
            let mut t = toml::Table::new();
            t.insert("x-test".into(), V::String("y".into()));
            V::Table(t)
        }
        _ => V::String("https://example.org/x".into()),
    }
}

/// The first `"…"` in a type cell.
pub(crate) fn quoted(ty: &str) -> Option<String> {
    let start = ty.find('"')? + 1;
    let len = ty[start..].find('"')?;
    Some(ty[start..start + len].to_owned())
}

/// The table at `path` below `doc`, created empty where missing.
pub(crate) fn table_at<'a>(doc: &'a mut toml::Table, path: &[&str]) -> &'a mut toml::Table {
    let mut t = doc;
    for p in path {
        t = t
            .entry(p.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()))
            .as_table_mut()
            .expect("a table");
    }
    t
}

/// The configuration with `key = value` planted in `section` (for
/// destinations: on `example`, the kind's example destination).
pub(crate) fn planted(
    section: &str,
    example: Option<&toml::Table>,
    key: &str,
    value: toml::Value,
) -> Result<toml::Table, String> {
    let mut doc = base_config();
    let target = match section {
        "server" | "admin" | "store" | "delivery" | "console" | "actions" => {
            table_at(&mut doc, &[section])
        }
        "origins.*" => table_at(&mut doc, &["origins", "o"]),
        "hooks.*" => table_at(&mut doc, &["hooks", "h"]),
        "time_intervals.*" => table_at(&mut doc, &["time_intervals", "t"]),
        "destinations.*" => {
            let d = table_at(&mut doc, &["destinations", "d"]);
            if let Some(example) = example {
                *d = example.clone();
            }
            d
        }
        "routes[]" | "routes[].when" => {
            let route = doc["routes"].as_array_mut().expect("routes")[0]
                .as_table_mut()
                .expect("a route");
            if section == "routes[]" {
                route
            } else {
                table_at(route, &["when"])
            }
        }
        other => return Err(format!("section {other:?} is not known to tests/docs.rs")),
    };
    target.insert(key.to_owned(), value);
    Ok(doc)
}

/// How `check` answered about one key.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accepted,
    /// Refused as unknown, or as another kind's (the line).
    Refused(String),
    /// Recognised, but the documented type is not what it takes (the line).
    WrongType(String),
}

/// Reads `check`'s output for what it says about `key`.
pub(crate) fn verdict(output: &str, key: &str) -> Verdict {
    for line in output.lines().map(str::trim) {
        // serde's wording, and the forms a hand-written check may use.
        let named = [
            format!("unknown field `{key}`"),
            format!("unknown key `{key}`"),
            format!("unknown field \"{key}\""),
            format!("unknown key \"{key}\""),
        ];
        if named.iter().any(|n| line.contains(n.as_str())) {
            return Verdict::Refused(line.to_owned());
        }
        let Some((path, message)) = line.split_once(": ") else {
            continue;
        };
        let last = path.rsplit('.').next().unwrap_or(path);
        let last = last.split('[').next().unwrap_or(last);
        if last != key {
            continue;
        }
        let m = message.to_lowercase();
        if m.contains("only for kind") || m.contains("not a key of") || m.contains("unknown key") {
            return Verdict::Refused(line.to_owned());
        }
        if m.contains("invalid type") {
            return Verdict::WrongType(line.to_owned());
        }
    }
    Verdict::Accepted
}

/// Runs `hookrelay check` on `doc`: whether it passed, its stdout and stderr.
pub(crate) fn check(doc: &toml::Table, dir: &Path, n: usize) -> (bool, String) {
    let path = dir.join(format!("c{n}.toml"));
    std::fs::write(&path, toml::to_string(doc).expect("serializable")).expect("write");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_hookrelay"));
    cmd.args(["check", "--config"]).arg(&path);
    for (k, _) in std::env::vars() {
        if k.starts_with("HOOKRELAY_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("run hookrelay check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// One trial: a key planted in a section (on a kind's example).
pub(crate) struct Trial {
    pub(crate) what: String,
    pub(crate) doc: Result<toml::Table, String>,
    pub(crate) key: String,
    /// Whether `check` must refuse it (the self-checks) or accept it.
    pub(crate) expect_refused: bool,
}

/// The trials for every documented key, and the self-checks that show
/// a refusal is seen: an invented key in every section and every kind's
/// example, and one kind's key on another kind.
pub(crate) fn trials(r: &Reference, file: &Path) -> Vec<Trial> {
    let mut out = Vec::new();
    let kinds: Vec<&KindSection> = r.kinds.iter().collect();
    let mut sections = BTreeSet::new();
    for k in &r.keys {
        sections.insert(k.section.clone());
        let value = value_for(&k.key, &k.ty, file);
        let targets: Vec<(Option<&KindSection>, String)> = match (&k.section[..], &k.kind) {
            ("destinations.*", None) => kinds
                .iter()
                .map(|s| (Some(*s), format!("kind {} {}", s.kind, s.variant)))
                .collect(),
            ("destinations.*", Some(kind)) => kinds
                .iter()
                .filter(|s| &s.kind == kind && s.variant == k.variant)
                .map(|s| (Some(*s), format!("kind {} {}", s.kind, s.variant)))
                .collect(),
            _ => vec![(None, String::new())],
        };
        if targets.is_empty() {
            out.push(Trial {
                what: format!("{} (kind {:?})", k.key, k.kind),
                doc: Err("no kind section with an example".into()),
                key: k.key.clone(),
                expect_refused: false,
            });
        }
        for (kind, label) in targets {
            let example = kind.and_then(|s| s.example.as_ref());
            let doc = if kind.is_some() && example.is_none() {
                Err(format!(
                    "the section of {label} has no ```toml example with a [destinations.NAME] table"
                ))
            } else {
                planted(&k.section, example, &k.key, value.clone())
            };
            out.push(Trial {
                what: format!("{}.{} {label}", k.section, k.key),
                doc,
                key: k.key.clone(),
                expect_refused: false,
            });
        }
    }
    let bogus = "zz_not_a_key";
    for s in sections.iter().filter(|s| *s != "destinations.*") {
        out.push(Trial {
            what: format!("self-check: {s}.{bogus}"),
            doc: planted(s, None, bogus, toml::Value::Integer(1)),
            key: bogus.into(),
            expect_refused: true,
        });
    }
    for s in &kinds {
        out.push(Trial {
            what: format!("self-check: {bogus} on kind {} {}", s.kind, s.variant),
            doc: planted(
                "destinations.*",
                s.example.as_ref(),
                bogus,
                toml::Value::Integer(1),
            ),
            key: bogus.into(),
            expect_refused: true,
        });
    }
    // Another kind's key: PagerDuty's routing key on the first kind that
    // is not PagerDuty.
    if let Some(other) = kinds.iter().find(|s| s.kind != "pagerduty") {
        out.push(Trial {
            what: format!("self-check: routing_key on kind {}", other.kind),
            doc: planted(
                "destinations.*",
                other.example.as_ref(),
                "routing_key",
                toml::Value::String("R0123".into()),
            ),
            key: "routing_key".into(),
            expect_refused: true,
        });
    }
    out
}

/// Every problem with the documented keys: refused, wrong type, a base
/// example that does not check clean, a self-check that was not refused.
pub(crate) fn documented_but_refused(r: &Reference) -> Vec<String> {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("secret");
    std::fs::write(&file, "https://example.org/secret-value-0123456789abcdef\n").expect("write");
    let mut problems = Vec::new();
    // Each kind's example must pass `check` on its own: an error in it
    // would hide the planted key's.
    for (i, s) in r.kinds.iter().enumerate() {
        let kind = toml::Value::String(s.kind.clone());
        if let Ok(doc) = planted("destinations.*", s.example.as_ref(), "kind", kind) {
            let (ok, out) = check(&doc, dir.path(), 100_000 + i);
            if !ok {
                problems.push(format!(
                    "the example of kind {} {} does not check clean:\n{out}",
                    s.kind, s.variant
                ));
            }
        }
    }
    let trials = trials(r, &file);
    let results: Vec<(usize, Result<String, String>)> = std::thread::scope(|scope| {
        let workers = 4;
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let trials = &trials;
                let dir = dir.path();
                scope.spawn(move || {
                    trials
                        .iter()
                        .enumerate()
                        .skip(w)
                        .step_by(workers)
                        .map(|(i, t)| {
                            (
                                i,
                                t.doc
                                    .as_ref()
                                    .map(|d| check(d, dir, i).1)
                                    .map_err(Clone::clone),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a worker"))
            .collect()
    });
    for (i, result) in results {
        let t = &trials[i];
        match result {
            Err(e) => problems.push(format!("{}: {e}", t.what)),
            Ok(out) => match (verdict(&out, &t.key), t.expect_refused) {
                (Verdict::Refused(_), true) => {}
                (v, true) => problems.push(format!(
                    "{}: check did not refuse it ({v:?}); does tests/docs.rs still read check's errors right?\n{out}",
                    t.what
                )),
                (Verdict::Accepted, false) => {}
                (Verdict::Refused(line), false) => {
                    problems.push(format!("{}: documented but refused: {line}", t.what))
                }
                (Verdict::WrongType(line), false) => problems.push(format!(
                    "{}: documented type is not what the key takes: {line}",
                    t.what
                )),
            },
        }
    }
    problems.sort();
    problems
}
