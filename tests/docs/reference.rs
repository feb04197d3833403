//! The reference's tables: sections, kinds, keys and their types, and
//! each kind's example destination.

/// One key a table of the reference documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DocKey {
    /// `server`, `origins.*`, `routes[]`, `routes[].when`, `destinations.*`…
    pub(crate) section: String,
    /// For destinations, the kind section it is under (`slack`); `None`
    /// for the keys every destination takes.
    pub(crate) kind: Option<String>,
    /// Mode words after the kind in its heading (`API mode`), to tell
    /// two sections of one kind apart.
    pub(crate) variant: String,
    pub(crate) key: String,
    /// The type column, from which the test value is derived.
    pub(crate) ty: String,
}

/// A kind's section: its example destination (the first TOML block).
#[derive(Debug, Clone)]
pub(crate) struct KindSection {
    pub(crate) kind: String,
    pub(crate) variant: String,
    pub(crate) example: Option<toml::Table>,
}

#[derive(Debug, Default)]
pub(crate) struct Reference {
    pub(crate) keys: Vec<DocKey>,
    pub(crate) kinds: Vec<KindSection>,
}

/// `[server]` → `server`, `[origins.NAME]` → `origins.*`, `[[routes]]` →
/// `routes[]`, `[routes.when]` → `routes[].when`.
pub(crate) fn section_path(header: &str) -> String {
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
pub(crate) fn backticked(line: &str) -> Vec<&str> {
    line.split('`').skip(1).step_by(2).collect()
}

pub(crate) fn parse_reference(text: &str) -> Reference {
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

pub(crate) fn first_destination(t: &toml::Table) -> Option<toml::Table> {
    t.get("destinations")?
        .as_table()?
        .values()
        .next()?
        .as_table()
        .cloned()
}
