//! The configuration reference (`docs/configuration.md`) and the parser
//! agree, both ways:
//!
//! - **documented → accepted**: for every key a table of the reference
//!   lists (with its section, and for destinations its kind), a config
//!   file that sets it is given to the real `hookrelay check`; its answer
//!   must not refuse the key as unknown or as another kind's. Running the
//!   binary (not a library function) ties the test to the command-line
//!   contract, which the refactors of the config types do not change.
//!   The value set is derived from the documented type, so a documented
//!   type the parser does not take ("invalid type") fails too.
//! - **accepted → documented**: the keys the config structs accept are
//!   read from the source with `syn` — every `#[derive(Deserialize)]`
//!   struct or enum with `deny_unknown_fields` under `src/config/` and
//!   `src/destinations/` (wherever they are in those folders), with
//!   `rename`, `rename_all`, `alias`, `flatten`, `skip` and an enum's
//!   `tag` applied — plus the `*_file` form of each key in the loader's
//!   `SECRET_KEYS`; each must appear in the reference (a struct under
//!   `src/destinations/<kind>/` in that kind's section or the keys every
//!   destination takes).
//!
//! Reading the source rather than asking the parser for its keys means a
//! field added to a struct without docs fails here whatever the parser's
//! error messages say; asking the real binary for the other direction
//! means a documented key is proven accepted by what users run. Both
//! checkers are plain functions, each shown to fail on a planted mistake
//! (the unit tests at the end).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------
// The reference, as tables of keys.

/// One key a table of the reference documents.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DocKey {
    /// `server`, `origins.*`, `routes[]`, `routes[].when`, `destinations.*`…
    section: String,
    /// For destinations, the kind section it is under (`slack`); `None`
    /// for the keys every destination takes.
    kind: Option<String>,
    /// Mode words after the kind in its heading (`API mode`), to tell
    /// two sections of one kind apart.
    variant: String,
    key: String,
    /// The type column, from which the test value is derived.
    ty: String,
}

/// A kind's section: its example destination (the first TOML block).
#[derive(Debug, Clone)]
struct KindSection {
    kind: String,
    variant: String,
    example: Option<toml::Table>,
}

#[derive(Debug, Default)]
struct Reference {
    keys: Vec<DocKey>,
    kinds: Vec<KindSection>,
}

/// `[server]` → `server`, `[origins.NAME]` → `origins.*`, `[[routes]]` →
/// `routes[]`, `[routes.when]` → `routes[].when`.
fn section_path(header: &str) -> String {
    let array = header.starts_with("[[");
    let inner = header.trim_matches(|c| c == '[' || c == ']');
    let mut parts: Vec<String> = Vec::new();
    for (i, part) in inner.split('.').enumerate() {
        if i > 0 && part.chars().all(|c| c.is_ascii_uppercase() || c == '_') {
            parts.push("*".into());
        } else if i == 0 && (array || part == "routes") {
            parts.push(format!("{part}[]"));
        } else {
            parts.push(part.to_owned());
        }
    }
    parts.join(".")
}

/// The backticked spans of a line.
fn backticked(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

fn parse_reference(text: &str) -> Reference {
    let mut r = Reference::default();
    let mut section: Option<String> = None;
    let mut kind: Option<(String, String)> = None;
    let mut in_toml = false;
    let mut toml_text = String::new();
    for line in text.lines() {
        if in_toml {
            if line.starts_with("```") {
                in_toml = false;
                if let Some((k, v)) = &kind {
                    let ks = r
                        .kinds
                        .iter_mut()
                        .rev()
                        .find(|s| &s.kind == k && &s.variant == v);
                    if let Some(ks) = ks.filter(|ks| ks.example.is_none()) {
                        ks.example = toml_text
                            .parse::<toml::Table>()
                            .ok()
                            .and_then(|t| first_destination(&t));
                    }
                }
                toml_text.clear();
            } else {
                toml_text.push_str(line);
                toml_text.push('\n');
            }
            continue;
        }
        if line.starts_with("```toml") {
            in_toml = true;
            continue;
        }
        if line.starts_with('#') {
            let spans = backticked(line);
            if let Some(h) = spans.first().filter(|s| s.starts_with('[')) {
                section = Some(section_path(h));
                kind = None;
            } else if let Some(k) = spans.first().and_then(|s| s.strip_prefix("kind = ")) {
                let k = k.trim_matches('"').to_owned();
                let after = line.rsplit('`').next().unwrap_or("");
                let variant = after.trim_matches(|c: char| c == ',' || c.is_whitespace());
                kind = Some((k.clone(), variant.to_owned()));
                r.kinds.push(KindSection {
                    kind: k,
                    variant: variant.to_owned(),
                    example: None,
                });
            } else {
                section = None;
                kind = None;
            }
            continue;
        }
        let Some(section) = &section else { continue };
        let Some(row) = line.strip_prefix('|') else {
            continue;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        if cells.len() < 2 {
            continue;
        }
        for key in backticked(cells[0]) {
            if !key.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                continue;
            }
            r.keys.push(DocKey {
                section: section.clone(),
                kind: kind.as_ref().map(|(k, _)| k.clone()),
                variant: kind.as_ref().map(|(_, v)| v.clone()).unwrap_or_default(),
                key: key.to_owned(),
                ty: cells[1].to_owned(),
            });
        }
    }
    r
}

fn first_destination(t: &toml::Table) -> Option<toml::Table> {
    t.get("destinations")?
        .as_table()?
        .values()
        .next()?
        .as_table()
        .cloned()
}

// ---------------------------------------------------------------------
// Documented → accepted: the real `hookrelay check`.

/// A valid configuration the keys are planted in: origin `o`, hook `h`,
/// destination `d`, route 0.
fn base_config() -> toml::Table {
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
fn value_for(key: &str, ty: &str, file: &Path) -> toml::Value {
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
fn quoted(ty: &str) -> Option<String> {
    let start = ty.find('"')? + 1;
    let len = ty[start..].find('"')?;
    Some(ty[start..start + len].to_owned())
}

/// The table at `path` below `doc`, created empty where missing.
fn table_at<'a>(doc: &'a mut toml::Table, path: &[&str]) -> &'a mut toml::Table {
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
fn planted(
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
enum Verdict {
    Accepted,
    /// Refused as unknown, or as another kind's (the line).
    Refused(String),
    /// Recognised, but the documented type is not what it takes (the line).
    WrongType(String),
}

/// Reads `check`'s output for what it says about `key`.
fn verdict(output: &str, key: &str) -> Verdict {
    for line in output.lines().map(str::trim) {
        if line.contains(&format!("unknown field `{key}`")) {
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
        if m.contains("only for kind") || m.contains("not a key of") || m.contains("unknown key")
        {
            return Verdict::Refused(line.to_owned());
        }
        if m.contains("invalid type") {
            return Verdict::WrongType(line.to_owned());
        }
    }
    Verdict::Accepted
}

/// Runs `hookrelay check` on `doc`: whether it passed, its stdout and stderr.
fn check(doc: &toml::Table, dir: &Path, n: usize) -> (bool, String) {
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
struct Trial {
    what: String,
    doc: Result<toml::Table, String>,
    key: String,
    /// Whether `check` must refuse it (the self-checks) or accept it.
    expect_refused: bool,
}

/// The trials for every documented key, and the self-checks that show
/// a refusal is seen: an invented key in every section and every kind's
/// example, and one kind's key on another kind.
fn trials(r: &Reference, file: &Path) -> Vec<Trial> {
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
fn documented_but_refused(r: &Reference) -> Vec<String> {
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
                                t.doc.as_ref().map(|d| check(d, dir, i).1).map_err(Clone::clone),
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

// ---------------------------------------------------------------------
// Accepted → documented: the config structs, read with syn.

/// One key the configuration accepts, and where it is declared.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Accepted {
    file: String,
    item: String,
    key: String,
    /// `src/destinations/<kind>/…`: the kind (`teams-legacy` from
    /// `teams_legacy`).
    kind: Option<String>,
    /// Declared under `src/destinations/`.
    destination: bool,
}

/// A Deserialize item's keys before `flatten` is resolved.
struct Item {
    file: String,
    name: String,
    deny_unknown: bool,
    keys: Vec<String>,
    /// Types (last path segment) of flattened fields.
    flattened: Vec<String>,
}

/// `serde(...)` name-value and flag arguments of these attributes.
fn serde_args(attrs: &[syn::Attribute]) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            let name = meta
                .path
                .get_ident()
                .map(|i| i.to_string())
                .unwrap_or_default();
            if meta.input.peek(syn::Token![=]) {
                let lit: syn::Lit = meta.value()?.parse()?;
                let value = match lit {
                    syn::Lit::Str(s) => Some(s.value()),
                    _ => None,
                };
                out.push((name, value));
            } else if meta.input.peek(syn::token::Paren) {
                // rename(deserialize = "x"), alias forms
                meta.parse_nested_meta(|inner| {
                    let which = inner
                        .path
                        .get_ident()
                        .map(|i| i.to_string())
                        .unwrap_or_default();
                    if inner.input.peek(syn::Token![=]) {
                        let lit: syn::Lit = inner.value()?.parse()?;
                        if let (true, syn::Lit::Str(s)) = (which == "deserialize", lit) {
                            out.push((name.clone(), Some(s.value())));
                        }
                    }
                    Ok(())
                })?;
            } else {
                out.push((name, None));
            }
            Ok(())
        });
    }
    out
}

fn derives_deserialize(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().filter(|a| a.path().is_ident("derive")).any(|a| {
        let mut found = false;
        let _ = a.parse_nested_meta(|m| {
            if m.path.segments.last().is_some_and(|s| s.ident == "Deserialize") {
                found = true;
            }
            Ok(())
        });
        found
    })
}

fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta
                .require_list()
                .is_ok_and(|l| l.tokens.to_string().contains("test"))
    })
}

/// A field name as serde reads it under `rename_all`.
fn renamed(ident: &str, rule: Option<&str>) -> String {
    let ident = ident.strip_prefix("r#").unwrap_or(ident);
    let words: Vec<&str> = ident.split('_').filter(|w| !w.is_empty()).collect();
    let cap = |w: &str| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    match rule {
        Some("kebab-case") => ident.replace('_', "-"),
        Some("lowercase") => ident.replace('_', "").to_lowercase(),
        Some("UPPERCASE") => ident.replace('_', "").to_uppercase(),
        Some("SCREAMING_SNAKE_CASE") => ident.to_uppercase(),
        Some("SCREAMING-KEBAB-CASE") => ident.to_uppercase().replace('_', "-"),
        Some("camelCase") => words
            .iter()
            .enumerate()
            .map(|(i, w)| if i == 0 { w.to_string() } else { cap(w) })
            .collect(),
        Some("PascalCase") => words.iter().map(|w| cap(w)).collect(),
        _ => ident.to_owned(),
    }
}

/// The last path segment of a type, through `Option<…>` and `Box<…>`.
fn type_name(ty: &syn::Type) -> String {
    if let syn::Type::Path(p) = ty {
        if let Some(seg) = p.path.segments.last() {
            let name = seg.ident.to_string();
            if name == "Option" || name == "Box" {
                if let syn::PathArguments::AngleBracketed(a) = &seg.arguments {
                    if let Some(syn::GenericArgument::Type(inner)) = a.args.first() {
                        return type_name(inner);
                    }
                }
            }
            return name;
        }
    }
    String::new()
}

/// The keys of named fields under a container's `rename_all`.
fn field_keys(fields: &syn::FieldsNamed, rule: Option<&str>, item: &mut Item) {
    for f in &fields.named {
        let args = serde_args(&f.attrs);
        let has = |n: &str| args.iter().any(|(k, _)| k == n);
        if has("skip") || has("skip_deserializing") {
            continue;
        }
        if has("flatten") {
            item.flattened.push(type_name(&f.ty));
            continue;
        }
        let ident = f.ident.as_ref().map(|i| i.to_string()).unwrap_or_default();
        let name = args
            .iter()
            .find(|(k, v)| k == "rename" && v.is_some())
            .and_then(|(_, v)| v.clone())
            .unwrap_or_else(|| renamed(&ident, rule));
        item.keys.push(name);
        for (k, v) in &args {
            if let (true, Some(alias)) = (k == "alias", v) {
                item.keys.push(alias.clone());
            }
        }
    }
}

fn collect_items(file: &str, items: &[syn::Item], out: &mut Vec<Item>) {
    for it in items {
        match it {
            syn::Item::Mod(m) if !is_cfg_test(&m.attrs) => {
                if let Some((_, inner)) = &m.content {
                    collect_items(file, inner, out);
                }
            }
            syn::Item::Struct(s) if derives_deserialize(&s.attrs) && !is_cfg_test(&s.attrs) => {
                let args = serde_args(&s.attrs);
                let rule = args
                    .iter()
                    .find(|(k, _)| k == "rename_all")
                    .and_then(|(_, v)| v.as_deref());
                let mut item = Item {
                    file: file.to_owned(),
                    name: s.ident.to_string(),
                    deny_unknown: args.iter().any(|(k, _)| k == "deny_unknown_fields"),
                    keys: Vec::new(),
                    flattened: Vec::new(),
                };
                if let syn::Fields::Named(named) = &s.fields {
                    field_keys(named, rule, &mut item);
                }
                out.push(item);
            }
            syn::Item::Enum(e) if derives_deserialize(&e.attrs) && !is_cfg_test(&e.attrs) => {
                let args = serde_args(&e.attrs);
                let fields_rule = args
                    .iter()
                    .find(|(k, _)| k == "rename_all_fields")
                    .and_then(|(_, v)| v.as_deref());
                let mut item = Item {
                    file: file.to_owned(),
                    name: e.ident.to_string(),
                    deny_unknown: args.iter().any(|(k, _)| k == "deny_unknown_fields"),
                    keys: Vec::new(),
                    flattened: Vec::new(),
                };
                if let Some((_, Some(tag))) = args.iter().find(|(k, _)| k == "tag") {
                    item.keys.push(tag.clone());
                }
                for v in &e.variants {
                    match &v.fields {
                        syn::Fields::Named(named) => field_keys(named, fields_rule, &mut item),
                        // `Kind(KindConfig)`: the variant's struct holds the keys.
                        syn::Fields::Unnamed(u) if item.keys.first().is_some() => {
                            if let Some(f) = u.unnamed.first() {
                                item.flattened.push(type_name(&f.ty));
                            }
                        }
                        _ => {}
                    }
                }
                out.push(item);
            }
            _ => {}
        }
    }
}

/// Strings of `const SECRET_KEYS: &[&str] = &[…]`, if the source has it.
fn secret_keys(sources: &[(String, String)]) -> Option<Vec<String>> {
    for (_, text) in sources {
        let Ok(file) = syn::parse_file(text) else {
            continue;
        };
        for it in &file.items {
            let syn::Item::Const(c) = it else { continue };
            if c.ident != "SECRET_KEYS" {
                continue;
            }
            let mut expr = &*c.expr;
            if let syn::Expr::Reference(r) = expr {
                expr = &r.expr;
            }
            let syn::Expr::Array(array) = expr else {
                return None;
            };
            return Some(
                array
                    .elems
                    .iter()
                    .filter_map(|e| match e {
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(s),
                            ..
                        }) => Some(s.value()),
                        _ => None,
                    })
                    .collect(),
            );
        }
    }
    None
}

/// The accepted keys of `sources` (path relative to the crate, text).
fn accepted_keys(sources: &[(String, String)]) -> Result<Vec<Accepted>, String> {
    let mut items = Vec::new();
    for (path, text) in sources {
        let file = syn::parse_file(text).map_err(|e| format!("{path}: {e}"))?;
        collect_items(path, &file.items, &mut items);
    }
    let secret = secret_keys(sources).unwrap_or_default();
    let mut out = Vec::new();
    for root in items.iter().filter(|i| i.deny_unknown) {
        let (kind, destination) = kind_of(&root.file);
        let mut keys = Vec::new();
        let mut pending = vec![root];
        let mut seen = BTreeSet::new();
        while let Some(item) = pending.pop() {
            if !seen.insert(item.name.clone()) {
                continue;
            }
            keys.extend(item.keys.iter().cloned());
            for f in &item.flattened {
                pending.extend(items.iter().filter(|i| &i.name == f));
            }
        }
        let files: Vec<String> = keys
            .iter()
            .filter(|k| secret.contains(k))
            .map(|k| format!("{k}_file"))
            .collect();
        for key in keys.into_iter().chain(files) {
            out.push(Accepted {
                file: root.file.clone(),
                item: root.name.clone(),
                key,
                kind: kind.clone(),
                destination,
            });
        }
    }
    Ok(out)
}

/// `src/destinations/teams_legacy/config.rs` → (`teams-legacy`, true).
fn kind_of(path: &str) -> (Option<String>, bool) {
    let Some(rest) = path.split("src/destinations/").nth(1) else {
        return (None, false);
    };
    let mut parts = rest.split('/');
    let first = parts.next().unwrap_or("");
    match parts.next() {
        Some(_) => (Some(first.replace('_', "-")), true),
        None => (None, true),
    }
}

/// Keys accepted but not documented where they belong.
fn accepted_but_undocumented(accepted: &[Accepted], r: &Reference) -> Vec<String> {
    let mut problems = BTreeSet::new();
    let documented_kinds: BTreeSet<&str> = r.kinds.iter().map(|k| k.kind.as_str()).collect();
    for a in accepted {
        let in_destinations = |k: &DocKey| k.section == "destinations.*";
        let ok = match (&a.kind, a.destination) {
            (Some(kind), _) if documented_kinds.contains(kind.as_str()) => r.keys.iter().any(|k| {
                in_destinations(k)
                    && k.key == a.key
                    && k.kind.as_deref().is_none_or(|dk| dk == kind)
            }),
            (Some(kind), _) => {
                problems.insert(format!(
                    "{}: kind {kind:?} has no `kind = \"{kind}\"` section in docs/configuration.md",
                    a.file
                ));
                continue;
            }
            (None, true) => r.keys.iter().any(|k| in_destinations(k) && k.key == a.key),
            (None, false) => r.keys.iter().any(|k| k.key == a.key),
        };
        if !ok {
            problems.insert(format!(
                "`{}` ({} in {}{}) is accepted but not documented in docs/configuration.md",
                a.key,
                a.item,
                a.file,
                a.kind
                    .as_ref()
                    .map(|k| format!(", kind {k}"))
                    .unwrap_or_default()
            ));
        }
    }
    problems.into_iter().collect()
}

// ---------------------------------------------------------------------
// The real files.

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<(String, String)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let rel = p
                .strip_prefix(root())
                .unwrap_or(&p)
                .display()
                .to_string();
            out.push((rel, std::fs::read_to_string(&p).expect("read source")));
        }
    }
}

fn real_reference() -> Reference {
    let text = std::fs::read_to_string(root().join("docs/configuration.md"))
        .expect("docs/configuration.md");
    parse_reference(&text)
}

#[test]
fn every_key_the_config_accepts_is_documented() {
    let mut sources = Vec::new();
    rust_files(&root().join("src/config"), &mut sources);
    rust_files(&root().join("src/destinations"), &mut sources);
    let accepted = accepted_keys(&sources).expect("the sources parse");
    assert!(
        accepted.iter().any(|a| a.key == "listen") && accepted.iter().any(|a| a.key == "url"),
        "the collector found no config structs: {accepted:?}"
    );
    if secret_keys(&sources).is_none() {
        eprintln!("note: SECRET_KEYS not found under src/config: *_file forms not required");
    }
    let problems = accepted_but_undocumented(&accepted, &real_reference());
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn every_key_the_reference_documents_is_accepted() {
    let reference = real_reference();
    assert!(
        reference.keys.len() > 100 && reference.kinds.len() >= 12,
        "the reference's tables were not read: {} keys, {} kinds",
        reference.keys.len(),
        reference.kinds.len()
    );
    let problems = documented_but_refused(&reference);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

// ---------------------------------------------------------------------
// The checkers, each shown to fail on a planted mistake.

const PLANTED_DOC: &str = r#"
## `[server]`

| key | type | default | meaning |
|---|---|---|---|
| `listen` | address | `"0.0.0.0:8080"` | … |
| `zz_documented_only` | integer | none | not a key the parser takes |

## `[destinations.NAME]`

| key | type | default | meaning |
|---|---|---|---|
| `kind` | `"teams"` | required | … |

### `kind = "teams"`

| key | type | default | meaning |
|---|---|---|---|
| `url`, `url_file` | secret | required | … |
| `routing_key` | secret | none | PagerDuty's, planted under Teams |

```toml
[destinations.t]
kind = "teams"
url = "https://example.org/teams"
```
"#;

#[test]
fn the_reference_tables_are_read_with_sections_and_kinds() {
    let r = parse_reference(PLANTED_DOC);
    let keys: Vec<(String, Option<String>, String)> = r
        .keys
        .iter()
        .map(|k| (k.section.clone(), k.kind.clone(), k.key.clone()))
        .collect();
    assert!(keys.contains(&("server".into(), None, "listen".into())));
    assert!(keys.contains(&("destinations.*".into(), Some("teams".into()), "url_file".into())));
    assert_eq!(r.kinds.len(), 1);
    assert!(r.kinds[0].example.is_some(), "the example was read");
    assert_eq!(section_path("[[routes]]"), "routes[]");
    assert_eq!(section_path("[routes.when]"), "routes[].when");
    assert_eq!(section_path("[origins.NAME]"), "origins.*");
}

#[test]
fn a_documented_key_the_parser_refuses_is_reported() {
    let problems = documented_but_refused(&parse_reference(PLANTED_DOC));
    let joined = problems.join("\n");
    assert!(
        problems
            .iter()
            .any(|p| p.contains("server.zz_documented_only") && p.contains("refused")),
        "{joined}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("routing_key kind teams") && p.contains("refused")),
        "{joined}"
    );
    assert!(
        !problems.iter().any(|p| p.contains(".listen ") || p.contains(".url ")),
        "{joined}"
    );
}

#[test]
fn a_field_without_docs_is_reported() {
    let source = r#"
        use serde::Deserialize;
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct ServerConfig {
            pub listen: String,
            pub zz_new_key: u32,
            #[serde(rename = "continue")]
            pub continue_: bool,
            #[serde(skip)]
            pub derived: u32,
            #[serde(flatten)]
            pub common: Option<Common>,
        }
        #[derive(Deserialize)]
        pub struct Common { pub zz_flattened: u32 }
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "kebab-case")]
        pub struct Kebab { pub zz_two_words: u32 }
        #[derive(Deserialize)]
        pub struct NotConfig { pub tolerated: u32 }
        #[cfg(test)]
        mod tests {
            #[derive(serde::Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Fixture { zz_in_tests: u32 }
        }
    "#;
    let kind_source = r#"
        #[derive(serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct TeamsConfig { pub url: String, pub zz_teams_only: u32 }
    "#;
    let sources = vec![
        ("src/config/mod.rs".to_owned(), source.to_owned()),
        (
            "src/destinations/teams/config.rs".to_owned(),
            kind_source.to_owned(),
        ),
        (
            "src/destinations/zz_new_kind/config.rs".to_owned(),
            "#[derive(serde::Deserialize)] #[serde(deny_unknown_fields)] pub struct Z { pub url: String }"
                .to_owned(),
        ),
    ];
    let accepted = accepted_keys(&sources).expect("parses");
    let keys: BTreeSet<&str> = accepted.iter().map(|a| a.key.as_str()).collect();
    for k in ["listen", "zz_new_key", "continue", "zz_flattened", "zz-two-words", "url"] {
        assert!(keys.contains(k), "{k} missing from {keys:?}");
    }
    for k in ["continue_", "derived", "tolerated", "zz_in_tests"] {
        assert!(!keys.contains(k), "{k} collected: {keys:?}");
    }
    let problems = accepted_but_undocumented(&accepted, &parse_reference(PLANTED_DOC));
    let joined = problems.join("\n");
    for k in ["zz_new_key", "zz_flattened", "zz-two-words", "zz_teams_only"] {
        assert!(
            problems.iter().any(|p| p.contains(&format!("`{k}`"))),
            "{k} not reported:\n{joined}"
        );
    }
    assert!(
        problems.iter().any(|p| p.contains("zz-new-kind")),
        "a kind without a section not reported:\n{joined}"
    );
    assert!(!problems.iter().any(|p| p.contains("`listen`")), "{joined}");
}
