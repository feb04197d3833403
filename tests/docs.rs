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

#[path = "docs/parser.rs"]
mod parser;
#[path = "docs/reference.rs"]
mod reference;
#[path = "docs/source.rs"]
mod source;

use parser::documented_but_refused;
use reference::{parse_reference, section_path, Reference};
use source::{accepted_but_undocumented, accepted_keys, secret_keys};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

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
            let rel = p.strip_prefix(root()).unwrap_or(&p).display().to_string();
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
    assert!(keys.contains(&(
        "destinations.*".into(),
        Some("teams".into()),
        "url_file".into()
    )));
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
        !problems
            .iter()
            .any(|p| p.contains(".listen ") || p.contains(".url ")),
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
            "src/destinations/mod.rs".to_owned(),
            r#"
            #[derive(serde::Deserialize)]
            #[serde(tag = "kind", rename_all = "kebab-case")]
            pub enum DestinationConfig { Teams(TeamsConfig), ZzNewKind(ZzConfig) }
            #[derive(serde::Deserialize)]
            pub struct ZzConfig { pub url: String }
            "#
            .to_owned(),
        ),
    ];
    let accepted = accepted_keys(&sources).expect("parses");
    let keys: BTreeSet<&str> = accepted.iter().map(|a| a.key.as_str()).collect();
    for k in [
        "listen",
        "zz_new_key",
        "continue",
        "zz_flattened",
        "zz-two-words",
        "url",
        "kind",
    ] {
        assert!(keys.contains(k), "{k} missing from {keys:?}");
    }
    for k in ["continue_", "derived", "tolerated", "zz_in_tests"] {
        assert!(!keys.contains(k), "{k} collected: {keys:?}");
    }
    let problems = accepted_but_undocumented(&accepted, &parse_reference(PLANTED_DOC));
    let joined = problems.join("\n");
    for k in [
        "zz_new_key",
        "zz_flattened",
        "zz-two-words",
        "zz_teams_only",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(&format!("`{k}`"))),
            "{k} not reported:\n{joined}"
        );
    }
    assert!(
        problems.iter().any(|p| p.contains("kind \"zz-new-kind\"")),
        "a kind without a section not reported:\n{joined}"
    );
    assert!(!problems.iter().any(|p| p.contains("`listen`")), "{joined}");
}
