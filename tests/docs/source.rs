//! Accepted → documented: the keys the config structs accept, read from
//! the source with `syn`.

use super::reference::{DocKey, Reference};
use std::collections::BTreeSet;

/// One key the configuration accepts, and where it is declared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Accepted {
    pub(crate) file: String,
    pub(crate) item: String,
    pub(crate) key: String,
    /// `src/destinations/<kind>/…`: the kind (`teams-legacy` from
    /// `teams_legacy`).
    pub(crate) kind: Option<String>,
    /// Declared under `src/destinations/`.
    pub(crate) destination: bool,
}

/// A Deserialize item's keys before `flatten` is resolved.
pub(crate) struct Item {
    pub(crate) file: String,
    pub(crate) name: String,
    pub(crate) deny_unknown: bool,
    pub(crate) keys: Vec<String>,
    /// Types (last path segment) of flattened fields.
    pub(crate) flattened: Vec<String>,
    /// A kind-tagged enum's newtype variants: (the kind as serde reads
    /// the variant's name, the variant's type).
    pub(crate) variants: Vec<(String, String)>,
}

/// `serde(...)` name-value and flag arguments of these attributes.
pub(crate) fn serde_args(attrs: &[syn::Attribute]) -> Vec<(String, Option<String>)> {
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

pub(crate) fn derives_deserialize(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("derive"))
        .any(|a| {
            let mut found = false;
            let _ = a.parse_nested_meta(|m| {
                if m.path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "Deserialize")
                {
                    found = true;
                }
                Ok(())
            });
            found
        })
}

pub(crate) fn is_cfg_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg")
            && a.meta
                .require_list()
                .is_ok_and(|l| l.tokens.to_string().contains("test"))
    })
}

/// A field name as serde reads it under `rename_all`.
pub(crate) fn renamed(ident: &str, rule: Option<&str>) -> String {
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

/// `TeamsLegacy` → `teams_legacy`.
pub(crate) fn snake(pascal: &str) -> String {
    let mut out = String::new();
    for (i, c) in pascal.chars().enumerate() {
        if c.is_uppercase() && i > 0 {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// The last path segment of a type, through `Option<…>` and `Box<…>`.
pub(crate) fn type_name(ty: &syn::Type) -> String {
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
pub(crate) fn field_keys(fields: &syn::FieldsNamed, rule: Option<&str>, item: &mut Item) {
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

pub(crate) fn collect_items(file: &str, items: &[syn::Item], out: &mut Vec<Item>) {
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
                    variants: Vec::new(),
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
                let variant_rule = args
                    .iter()
                    .find(|(k, _)| k == "rename_all")
                    .and_then(|(_, v)| v.as_deref());
                let tag = args
                    .iter()
                    .find(|(k, _)| k == "tag")
                    .and_then(|(_, v)| v.clone());
                // A kind-tagged enum is a config dispatcher: a root whether
                // or not it says deny_unknown_fields (serde puts that on
                // the variants' structs).
                let mut item = Item {
                    file: file.to_owned(),
                    name: e.ident.to_string(),
                    deny_unknown: tag.is_some()
                        || args.iter().any(|(k, _)| k == "deny_unknown_fields"),
                    keys: tag.clone().into_iter().collect(),
                    flattened: Vec::new(),
                    variants: Vec::new(),
                };
                for v in &e.variants {
                    let vargs = serde_args(&v.attrs);
                    let kind = vargs
                        .iter()
                        .find(|(k, v)| k == "rename" && v.is_some())
                        .and_then(|(_, v)| v.clone())
                        .unwrap_or_else(|| renamed(&snake(&v.ident.to_string()), variant_rule));
                    match &v.fields {
                        syn::Fields::Named(named) => field_keys(named, fields_rule, &mut item),
                        // `Kind(KindConfig)`: the variant's struct holds the keys.
                        syn::Fields::Unnamed(u) if tag.is_some() => {
                            if let Some(f) = u.unnamed.first() {
                                item.variants.push((kind, type_name(&f.ty)));
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
pub(crate) fn secret_keys(sources: &[(String, String)]) -> Option<Vec<String>> {
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
pub(crate) fn accepted_keys(sources: &[(String, String)]) -> Result<Vec<Accepted>, String> {
    let mut items = Vec::new();
    for (path, text) in sources {
        let file = syn::parse_file(text).map_err(|e| format!("{path}: {e}"))?;
        collect_items(path, &file.items, &mut items);
    }
    let secret = secret_keys(sources).unwrap_or_default();
    // An item's keys with its flattened items' (by type name).
    let keys_of = |root: &Item| {
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
        keys.extend(files);
        keys
    };
    let mut out = Vec::new();
    for root in items.iter().filter(|i| i.deny_unknown) {
        let (kind, destination) = kind_of(&root.file);
        for key in keys_of(root) {
            out.push(Accepted {
                file: root.file.clone(),
                item: root.name.clone(),
                key,
                kind: kind.clone(),
                destination,
            });
        }
        // A kind-tagged enum: each variant's keys belong to its kind.
        for (kind, ty) in &root.variants {
            for variant in items.iter().filter(|i| &i.name == ty) {
                for key in keys_of(variant) {
                    out.push(Accepted {
                        file: root.file.clone(),
                        item: format!("{}::{ty}", root.name),
                        key,
                        kind: Some(kind.clone()),
                        destination: true,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// `src/destinations/teams_legacy/config.rs` → (`teams-legacy`, true).
pub(crate) fn kind_of(path: &str) -> (Option<String>, bool) {
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
pub(crate) fn accepted_but_undocumented(accepted: &[Accepted], r: &Reference) -> Vec<String> {
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
            // A kind read from an enum variant must have its section;
            // one read from a folder name may just be spelled otherwise.
            (Some(kind), _) if a.item.contains("::") => {
                problems.insert(format!(
                    "kind {kind:?} ({} in {}) has no `kind = \"{kind}\"` section in docs/configuration.md",
                    a.item, a.file
                ));
                continue;
            }
            (Some(_), _) => r.keys.iter().any(|k| in_destinations(k) && k.key == a.key),
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
