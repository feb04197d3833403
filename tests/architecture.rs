//! The direction of imports, as ARCHITECTURE.md ("Layers") states it,
//! checked file by file on the parsed source:
//!
//! - a module uses modules of a layer below its own, never one above;
//! - within a layer, only the pairs listed in [`SAME_LAYER`] (and in
//!   ARCHITECTURE.md);
//! - no two files use each other, directly or through others, inside a
//!   folder as across folders (`src/` and `bench/` alike);
//! - nothing in `src/` reaches into `bench/` (bench is a binary built on
//!   the library: it may use anything public the library offers).
//!
//! Every `use` tree is read (grouped imports, renames, `pub use`), and every
//! path in the code (expressions, types, patterns, macro arguments, serde's
//! `with = "…"` strings): `crate::`, `super::` and `self::` are resolved
//! against the file's module path, a name brought in by a `use` or a child
//! module's name against what it stands for. A path is an edge to the file
//! of the longest module it names. Test-only code (`#[cfg(test)]` items and
//! modules, inline or in their own file) may use what it tests: it is held
//! to the direction of the layers, not to the rules on circles and pairs.
//!
//! The checker's own tests plant each kind of violation once in synthetic
//! sources and assert it is reported.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::{self, Visit};

/// Top to bottom. A module not listed here fails the test: place it.
const LAYERS: &[&[&str]] = &[
    &["cli"],
    &["app"],
    &["ingress", "pipeline", "delivery", "silence", "preview"],
    &["live"],
    &["destinations"],
    &["route", "render", "enrich", "store", "coord"],
    &[
        "config",
        "event",
        "secret",
        "telemetry",
        "http",
        "recent",
        "signing",
        "action_link",
        "sealed",
    ],
];

/// The imports allowed between two modules of one layer, (user, used).
/// Each is also listed in ARCHITECTURE.md, with why; keep this list short:
/// a pair used both ways is a circle, and a new pair is a decision.
const SAME_LAYER: &[(&str, &str)] = &[
    ("ingress", "pipeline"),
    ("ingress", "preview"),
    ("ingress", "silence"),
    ("silence", "pipeline"),
    ("pipeline", "delivery"),
    ("route", "enrich"),
    ("render", "enrich"),
    ("coord", "store"),
    ("action_link", "config"),
    ("config", "event"),
    ("config", "http"),
    ("config", "secret"),
    ("config", "signing"),
];

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Edge {
    from: String,
    to: String,
    /// The path as written in `from`, to find it.
    via: String,
    /// Written in test-only code.
    test: bool,
}

/// The crate a file belongs to and its module path in that crate:
/// `src/ingress/hooks.rs` → ("src", ["ingress", "hooks"]).
fn module_of(file: &str) -> (String, Vec<String>) {
    let mut parts: Vec<String> = file.split('/').map(str::to_owned).collect();
    let krate = parts.remove(0);
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    let root = parts.is_empty() && (stem == "lib" || stem == "main");
    if stem != "mod" && !root {
        parts.push(stem.to_owned());
    }
    // The daemon's binary is a crate of its own, on top of the library.
    if krate == "src" && parts.is_empty() && stem == "main" {
        return ("bin".to_owned(), parts);
    }
    (krate, parts)
}

fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|a| {
        a.path().is_ident("cfg") && {
            let tokens = a.meta.require_list().map(|l| l.tokens.to_string());
            tokens.is_ok_and(|t| {
                t.split(|c: char| !c.is_alphanumeric() && c != '_')
                    .any(|w| w == "test")
            })
        }
    })
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    use syn::Item::*;
    match item {
        Const(i) => &i.attrs,
        Enum(i) => &i.attrs,
        ExternCrate(i) => &i.attrs,
        Fn(i) => &i.attrs,
        ForeignMod(i) => &i.attrs,
        Impl(i) => &i.attrs,
        Macro(i) => &i.attrs,
        Mod(i) => &i.attrs,
        Static(i) => &i.attrs,
        Struct(i) => &i.attrs,
        Trait(i) => &i.attrs,
        TraitAlias(i) => &i.attrs,
        Type(i) => &i.attrs,
        Union(i) => &i.attrs,
        Use(i) => &i.attrs,
        _ => &[],
    }
}

/// A `use` tree flattened: each leaf's full path and the name it binds.
fn flatten_use(
    tree: &syn::UseTree,
    prefix: &[String],
    out: &mut Vec<(Vec<String>, Option<String>)>,
) {
    let with = |name: &syn::Ident| {
        let mut p = prefix.to_vec();
        p.push(name.to_string());
        p
    };
    match tree {
        syn::UseTree::Path(p) => flatten_use(&p.tree, &with(&p.ident), out),
        syn::UseTree::Name(n) if n.ident == "self" => {
            out.push((prefix.to_vec(), prefix.last().cloned()));
        }
        syn::UseTree::Name(n) => out.push((with(&n.ident), Some(n.ident.to_string()))),
        syn::UseTree::Rename(r) if r.ident == "self" => {
            out.push((prefix.to_vec(), Some(r.rename.to_string())));
        }
        syn::UseTree::Rename(r) => out.push((with(&r.ident), Some(r.rename.to_string()))),
        syn::UseTree::Glob(_) => out.push((prefix.to_vec(), None)),
        syn::UseTree::Group(g) => {
            for t in &g.items {
                flatten_use(t, prefix, out);
            }
        }
    }
}

/// Paths written inside a macro's tokens (`info!(x = %crate::a::f())`,
/// maud's `html! { (super::views::frame()) }`): an identifier followed by
/// `::identifier` at least once.
fn token_paths(tokens: TokenStream, out: &mut Vec<Vec<String>>) {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    let colon =
        |t: Option<&TokenTree>| matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ':');
    let mut i = 0;
    while i < tokens.len() {
        match &tokens[i] {
            TokenTree::Group(g) => {
                token_paths(g.stream(), out);
                i += 1;
            }
            TokenTree::Ident(first) => {
                let global = i >= 2 && colon(tokens.get(i - 1)) && colon(tokens.get(i - 2));
                let mut segs = vec![first.to_string()];
                let mut j = i + 1;
                while colon(tokens.get(j)) && colon(tokens.get(j + 1)) {
                    match tokens.get(j + 2) {
                        Some(TokenTree::Ident(next)) => segs.push(next.to_string()),
                        _ => break,
                    }
                    j += 3;
                }
                if segs.len() >= 2 && !global {
                    out.push(segs);
                }
                i = j.max(i + 1);
            }
            _ => i += 1,
        }
    }
}

/// What one scope (a file, or an inline module in it) mentions.
#[derive(Default)]
struct Mentions<'ast> {
    test_depth: usize,
    /// `use` leaves in order: path, bound name, test-only.
    uses: Vec<(Vec<String>, Option<String>, bool)>,
    /// Other paths of two segments or more, test-only.
    paths: Vec<(Vec<String>, bool)>,
    /// Inline modules, to read as scopes of their own, test-only.
    inline: Vec<(&'ast syn::ItemMod, bool)>,
    /// Files named by `include!`, `include_str!`, `include_bytes!`.
    includes: Vec<String>,
}

impl<'ast> Visit<'ast> for Mentions<'ast> {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        let test = is_test(item_attrs(item));
        self.test_depth += usize::from(test);
        match item {
            syn::Item::Mod(m) if m.content.is_some() => self.inline.push((m, self.test_depth > 0)),
            syn::Item::Mod(_) => {}
            _ => visit::visit_item(self, item),
        }
        self.test_depth -= usize::from(test);
    }

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        let mut leaves = Vec::new();
        flatten_use(&item.tree, &[], &mut leaves);
        let test = self.test_depth > 0;
        self.uses
            .extend(leaves.into_iter().map(|(p, n)| (p, n, test)));
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        if path.leading_colon.is_none() && path.segments.len() >= 2 {
            let segs = path.segments.iter().map(|s| s.ident.to_string()).collect();
            self.paths.push((segs, self.test_depth > 0));
        }
        visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        let name = mac.path.segments.last().map(|s| s.ident.to_string());
        if matches!(
            name.as_deref(),
            Some("include" | "include_str" | "include_bytes")
        ) {
            if let Ok(lit) = mac.parse_body::<syn::LitStr>() {
                self.includes.push(lit.value());
            }
        }
        let mut found = Vec::new();
        token_paths(mac.tokens.clone(), &mut found);
        let test = self.test_depth > 0;
        self.paths.extend(found.into_iter().map(|p| (p, test)));
        visit::visit_macro(self, mac);
    }

    fn visit_attribute(&mut self, attr: &'ast syn::Attribute) {
        // serde's `with = "crate::x"`, `default = "super::f"` and the like.
        fn strings(tokens: TokenStream, out: &mut Vec<String>) {
            for t in tokens {
                match t {
                    TokenTree::Group(g) => strings(g.stream(), out),
                    TokenTree::Literal(l) => {
                        if let Ok(s) = syn::parse_str::<syn::LitStr>(&l.to_string()) {
                            out.push(s.value());
                        }
                    }
                    _ => {}
                }
            }
        }
        if let syn::Meta::List(list) = &attr.meta {
            let mut found = Vec::new();
            strings(list.tokens.clone(), &mut found);
            for s in found {
                let segs: Vec<String> = s.split("::").map(str::to_owned).collect();
                let plain = segs
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_alphanumeric() || c == '_'));
                if segs.len() >= 2 && plain {
                    self.paths.push((segs, self.test_depth > 0));
                }
            }
        }
        visit::visit_attribute(self, attr);
    }
}

/// Everything known about the sources before their paths are resolved.
struct Crates {
    /// (crate, module path) → the file that holds it (inline modules
    /// belong to their file).
    modules: BTreeMap<(String, Vec<String>), String>,
    /// Modules that exist only under `#[cfg(test)]`.
    test_modules: BTreeSet<(String, Vec<String>)>,
    /// (crate, module path) → the names its `use` items bind, as written.
    names: BTreeMap<(String, Vec<String>), BTreeMap<String, Vec<String>>>,
}

/// How deep a chain of re-exports is followed (a loop ends there).
const DEPTH: usize = 16;

impl Crates {
    fn file_of(&self, krate: &str, path: &[String]) -> Option<(&String, usize)> {
        (0..=path.len()).rev().find_map(|n| {
            self.modules
                .get(&(krate.to_owned(), path[..n].to_vec()))
                .map(|f| (f, n))
        })
    }

    fn is_module(&self, krate: &str, path: &[String]) -> bool {
        self.modules
            .contains_key(&(krate.to_owned(), path.to_vec()))
    }

    fn is_test(&self, krate: &str, path: &[String]) -> bool {
        (0..=path.len()).any(|n| {
            self.test_modules
                .contains(&(krate.to_owned(), path[..n].to_vec()))
        })
    }

    fn name(&self, krate: &str, scope: &[String], name: &str) -> Option<&Vec<String>> {
        self.names
            .get(&(krate.to_owned(), scope.to_vec()))?
            .get(name)
    }

    /// The absolute path `segs` stands for in a scope, followed through
    /// re-exports to where the item is (a `use super::Config` in a child
    /// of `store` that imports `crate::config::Config` is a use of
    /// `config`, not of `store/mod.rs`), or `None` when it names something
    /// outside the crate (std, a dependency, the library seen from bench).
    fn resolve(
        &self,
        krate: &str,
        scope: &[String],
        segs: &[String],
        depth: usize,
    ) -> Option<Vec<String>> {
        if depth > DEPTH {
            return None;
        }
        let (mut base, rest) = match segs.first()?.as_str() {
            "crate" => (Vec::new(), &segs[1..]),
            "self" => (scope.to_vec(), &segs[1..]),
            "super" => {
                let climbs = segs.iter().take_while(|s| *s == "super").count();
                let mut base = scope.to_vec();
                for _ in 0..climbs {
                    base.pop()?;
                }
                (base, &segs[climbs..])
            }
            first => {
                let mut child = scope.to_vec();
                child.push(first.to_owned());
                if self.is_module(krate, &child) {
                    (scope.to_vec(), segs)
                } else {
                    let named = self.name(krate, scope, first)?;
                    (self.resolve(krate, scope, named, depth + 1)?, &segs[1..])
                }
            }
        };
        base.extend(rest.iter().filter(|s| *s != "self").cloned());
        Some(self.follow(krate, base, depth))
    }

    /// An item a module only imports is where that import leads.
    fn follow(&self, krate: &str, abs: Vec<String>, depth: usize) -> Vec<String> {
        let Some((_, n)) = self.file_of(krate, &abs) else {
            return abs;
        };
        if n >= abs.len() {
            return abs;
        }
        let Some(named) = self.name(krate, &abs[..n], &abs[n]) else {
            return abs;
        };
        match self.resolve(krate, &abs[..n], named, depth + 1) {
            Some(mut there) => {
                there.extend(abs[n + 1..].iter().cloned());
                there
            }
            None => abs,
        }
    }
}

struct Parsed {
    file: String,
    krate: String,
    module: Vec<String>,
    ast: syn::File,
}

/// Module declarations: inline modules, `#[cfg(test)]` modules and any
/// `#[path]` that leads a file of `src/` out of it.
fn declare(
    items: &[syn::Item],
    file: &str,
    krate: &str,
    scope: &[String],
    crates: &mut Crates,
    problems: &mut Vec<String>,
) {
    for item in items {
        let syn::Item::Mod(m) = item else { continue };
        let mut child = scope.to_vec();
        child.push(m.ident.to_string());
        if is_test(&m.attrs) {
            crates
                .test_modules
                .insert((krate.to_owned(), child.clone()));
        }
        if let Some((_, inner)) = &m.content {
            crates
                .modules
                .insert((krate.to_owned(), child.clone()), file.to_owned());
            declare(inner, file, krate, &child, crates, problems);
        }
        for attr in &m.attrs {
            if let syn::Meta::NameValue(nv) = &attr.meta {
                if nv.path.is_ident("path") {
                    if let syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(s),
                        ..
                    }) = &nv.value
                    {
                        reach_out(file, &s.value(), "#[path]", problems);
                    }
                }
            }
        }
    }
}

/// A file of `src/` that names a file of `bench/` depends on it.
fn reach_out(file: &str, target: &str, how: &str, problems: &mut Vec<String>) {
    if !file.starts_with("src/") {
        return;
    }
    let mut joined = PathBuf::from(file);
    joined.pop();
    let mut clean = PathBuf::new();
    for c in joined.join(target).components() {
        match c {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            other => clean.push(other),
        }
    }
    if clean.starts_with("bench") {
        problems.push(format!(
            "{file}: {how} {target:?} reaches into bench/, which nothing in src/ may depend on"
        ));
    }
}

/// Read the sources (path from the crate's folder, text) into edges
/// between files, and the problems found on the way.
fn edges(sources: &[(String, String)]) -> (Vec<Edge>, Vec<String>) {
    let mut problems = Vec::new();
    let mut crates = Crates {
        modules: BTreeMap::new(),
        test_modules: BTreeSet::new(),
        names: BTreeMap::new(),
    };
    let mut parsed = Vec::new();
    for (file, text) in sources {
        let (krate, module) = module_of(file);
        let ast = match syn::parse_file(text) {
            Ok(ast) => ast,
            Err(e) => {
                problems.push(format!("{file}: does not parse: {e}"));
                continue;
            }
        };
        crates
            .modules
            .insert((krate.clone(), module.clone()), file.clone());
        parsed.push(Parsed {
            file: file.clone(),
            krate,
            module,
            ast,
        });
    }
    for p in &parsed {
        declare(
            &p.ast.items,
            &p.file,
            &p.krate,
            &p.module,
            &mut crates,
            &mut problems,
        );
    }
    // Every scope (a file, an inline module) with what it mentions.
    let mut scopes = Vec::new();
    for p in &parsed {
        let mut top = Mentions::default();
        for item in &p.ast.items {
            top.visit_item(item);
        }
        let file_test = crates.is_test(&p.krate, &p.module);
        let mut todo = vec![(p.module.clone(), file_test, top)];
        while let Some((scope, scope_test, mut mentions)) = todo.pop() {
            for (m, test) in std::mem::take(&mut mentions.inline) {
                let mut inner = Mentions::default();
                if let Some((_, items)) = &m.content {
                    for item in items {
                        inner.visit_item(item);
                    }
                }
                let mut child = scope.clone();
                child.push(m.ident.to_string());
                todo.push((child, scope_test || test, inner));
            }
            let names = crates
                .names
                .entry((p.krate.clone(), scope.clone()))
                .or_default();
            for (segs, bound, _) in &mentions.uses {
                if let Some(name) = bound.as_ref().filter(|n| *n != "_") {
                    names.insert(name.clone(), segs.clone());
                }
            }
            scopes.push((p, scope, scope_test, mentions));
        }
    }
    let mut out = BTreeSet::new();
    for (p, scope, scope_test, mentions) in &scopes {
        for inc in &mentions.includes {
            reach_out(&p.file, inc, "include", &mut problems);
        }
        let uses = mentions.uses.iter().map(|(segs, _, test)| (segs, *test));
        let paths = mentions.paths.iter().map(|(segs, test)| (segs, *test));
        for (segs, test) in uses.chain(paths) {
            let Some(abs) = crates.resolve(&p.krate, scope, segs, 0) else {
                continue;
            };
            let Some((to, _)) = crates.file_of(&p.krate, &abs) else {
                continue;
            };
            if *to == p.file {
                continue;
            }
            out.insert(Edge {
                from: p.file.clone(),
                to: to.clone(),
                via: segs.join("::"),
                test: test || *scope_test,
            });
        }
    }
    // One edge per (from, to, test): the first path that makes it.
    let mut seen = BTreeSet::new();
    let edges = out
        .into_iter()
        .filter(|e| seen.insert((e.from.clone(), e.to.clone(), e.test)))
        .collect();
    (edges, problems)
}

fn top_module(file: &str) -> Option<String> {
    let (krate, module) = module_of(file);
    (krate == "src").then(|| module.first().cloned()).flatten()
}

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// Every violation of the rules in the module doc, one line each (a
/// circle takes a line per edge in it).
fn check(sources: &[(String, String)]) -> Vec<String> {
    let (edges, mut problems) = edges(sources);
    let mut unplaced = BTreeSet::new();
    for (file, _) in sources {
        if let Some(m) = top_module(file) {
            if layer_of(&m).is_none() {
                unplaced.insert(m);
            }
        }
    }
    for m in unplaced {
        problems.push(format!(
            "module {m:?} is in no layer of tests/architecture.rs: place it"
        ));
    }
    for e in &edges {
        let (Some(from), Some(to)) = (top_module(&e.from), top_module(&e.to)) else {
            continue;
        };
        let (Some(lf), Some(lt)) = (layer_of(&from), layer_of(&to)) else {
            continue;
        };
        let test = if e.test { " (test code)" } else { "" };
        if lt < lf {
            problems.push(format!(
                "{} → {}: {from} uses {to}, which is above it ({}){test}",
                e.from, e.to, e.via
            ));
        } else if lt == lf
            && from != to
            && !e.test
            && !SAME_LAYER.contains(&(from.as_str(), to.as_str()))
        {
            problems.push(format!(
                "{} → {}: {from} uses {to}, of the same layer, a pair not listed ({})",
                e.from, e.to, e.via
            ));
        }
    }
    problems.extend(circles(&edges));
    problems
}

/// Tarjan's strongly connected components over the non-test edges: each
/// component of two files or more is a circle, reported with its edges.
fn circles(edges: &[Edge]) -> Vec<String> {
    let mut graph: BTreeMap<&str, Vec<&Edge>> = BTreeMap::new();
    for e in edges.iter().filter(|e| !e.test) {
        graph.entry(&e.from).or_default().push(e);
        graph.entry(&e.to).or_default();
    }
    struct Tarjan<'a> {
        graph: &'a BTreeMap<&'a str, Vec<&'a Edge>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        components: Vec<Vec<&'a str>>,
    }
    impl<'a> Tarjan<'a> {
        fn visit(&mut self, v: &'a str) {
            let i = self.index.len();
            self.index.insert(v, i);
            self.low.insert(v, i);
            self.stack.push(v);
            self.on_stack.insert(v);
            for e in &self.graph[v] {
                let w = e.to.as_str();
                if !self.index.contains_key(w) {
                    self.visit(w);
                    let lw = self.low[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(lw);
                } else if self.on_stack.contains(w) {
                    let iw = self.index[w];
                    let lv = self.low.get_mut(v).unwrap();
                    *lv = (*lv).min(iw);
                }
            }
            if self.low[v] == self.index[v] {
                let mut component = Vec::new();
                while let Some(w) = self.stack.pop() {
                    self.on_stack.remove(w);
                    component.push(w);
                    if w == v {
                        break;
                    }
                }
                if component.len() > 1 {
                    component.sort();
                    self.components.push(component);
                }
            }
        }
    }
    let mut t = Tarjan {
        graph: &graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        components: Vec::new(),
    };
    for v in graph.keys() {
        if !t.index.contains_key(v) {
            t.visit(v);
        }
    }
    let mut out = Vec::new();
    for component in &t.components {
        out.push(format!("circle between {}:", component.join(", ")));
        for v in component {
            for e in &graph[v] {
                if component.contains(&e.to.as_str()) {
                    out.push(format!("  {} → {} ({})", e.from, e.to, e.via));
                }
            }
        }
    }
    out
}

/// Every `.rs` file under `dir`, as (path from the crate's folder, text).
fn read_tree(root: &Path, dir: &str, out: &mut Vec<(String, String)>) {
    let mut stack = vec![root.join(dir)];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path.strip_prefix(root).unwrap();
                let rel = rel
                    .components()
                    .map(|c| c.as_os_str().to_str().unwrap())
                    .collect::<Vec<_>>();
                out.push((rel.join("/"), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    out.sort();
}

/// Circles inside one folder still waiting to be broken, named in
/// ARCHITECTURE.md (Layers) as known debt: a circle whose files are all
/// under one of these folders is printed, not failed on. Any other
/// circle, and any new file joining one of these, fails. Empty this list;
/// never add to it.
const KNOWN_CIRCLES: &[&str] = &["src/destinations/"];

/// `problems` without the circles inside a `KNOWN_CIRCLES` folder (each
/// printed to stderr so the debt stays visible).
fn known_circles_apart(problems: Vec<String>) -> Vec<String> {
    let mut out = Vec::new();
    let mut skipping = false;
    for p in problems {
        if let Some(files) = p.strip_prefix("circle between ") {
            let files = files.trim_end_matches(':');
            skipping = KNOWN_CIRCLES
                .iter()
                .any(|dir| files.split(", ").all(|f| f.starts_with(dir)));
        } else if !p.starts_with("  ") {
            skipping = false;
        }
        if skipping {
            eprintln!("known debt: {p}");
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn imports_point_down_without_circles() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = Vec::new();
    read_tree(root, "src", &mut sources);
    read_tree(root, "bench", &mut sources);
    assert!(sources.len() > 50, "read {} files", sources.len());
    let problems = known_circles_apart(check(&sources));
    assert!(
        problems.is_empty(),
        "{} violations of ARCHITECTURE.md's layers:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn the_layers_match_architecture_md() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md"))
            .unwrap();
    let section = text
        .split("## Layers")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("ARCHITECTURE.md has a Layers section");
    // Words may wrap across lines.
    let section = section.split_whitespace().collect::<Vec<_>>().join(" ");
    for layer in LAYERS {
        let line = layer.join(", ");
        assert!(
            section.contains(&line),
            "ARCHITECTURE.md's layers lack the line {line:?}"
        );
    }
    for (user, used) in SAME_LAYER {
        let pair = format!("`{user}` → `{used}`");
        assert!(
            section.contains(&pair),
            "ARCHITECTURE.md's same-layer list lacks {pair}"
        );
    }
}

/// The checker over synthetic sources: each kind of violation, planted
/// once, is reported; what is allowed is not.
mod checker {
    use super::check;

    fn run(files: &[(&str, &str)]) -> Vec<String> {
        let sources: Vec<(String, String)> = files
            .iter()
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect();
        check(&sources)
    }

    fn reports(problems: &[String], needle: &str) {
        assert!(
            problems.iter().any(|p| p.contains(needle)),
            "expected a report containing {needle:?}, got:\n{}",
            problems.join("\n")
        );
    }

    const BASE: &[(&str, &str)] = &[
        (
            "src/lib.rs",
            "pub mod app; pub mod route; pub mod config; pub mod render; pub mod enrich;",
        ),
        ("src/app.rs", "pub struct App;"),
        ("src/config/mod.rs", "mod load; pub struct Config;"),
        ("src/config/load.rs", "pub fn load() {}"),
        ("src/render/mod.rs", "pub fn render() {}"),
        ("src/enrich/mod.rs", "pub fn enrich() {}"),
    ];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<String> {
        let mut files: Vec<(&str, &str)> = BASE.to_vec();
        for (f, t) in extra {
            files.retain(|(g, _)| g != f);
            files.push((f, t));
        }
        run(&files)
    }

    #[test]
    fn clean_sources_pass() {
        let problems = with(&[(
            "src/route.rs",
            "use crate::config::{Config, load::load};\n\
             fn f() { crate::config::load::load(); }\n\
             #[cfg(test)] mod tests { use super::*; use crate::app::App; }",
        )]);
        // A test module may use what it tests; the upward import in it is
        // still reported, as test code.
        assert_eq!(problems.len(), 1, "{problems:?}");
        reports(&problems, "(test code)");
    }

    #[test]
    fn an_upward_import_fails() {
        let problems = with(&[("src/route.rs", "use crate::app::App;")]);
        reports(
            &problems,
            "src/route.rs → src/app.rs: route uses app, which is above it",
        );
    }

    #[test]
    fn a_grouped_import_hiding_an_upward_one_fails() {
        let problems = with(&[("src/route.rs", "use crate::{config::Config, app::App};")]);
        reports(&problems, "src/route.rs → src/app.rs");
        assert!(
            !problems.iter().any(|p| p.contains("src/config")),
            "{problems:?}"
        );
    }

    #[test]
    fn a_path_in_an_expression_or_a_macro_counts() {
        let problems = with(&[("src/route.rs", "fn f() { let _ = crate::app::App; }")]);
        reports(&problems, "src/route.rs → src/app.rs");
        let problems = with(&[(
            "src/route.rs",
            "fn f() { tracing::info!(x = ?crate::app::App); }",
        )]);
        reports(&problems, "src/route.rs → src/app.rs");
    }

    #[test]
    fn a_super_climb_fails() {
        let problems = with(&[
            ("src/lib.rs", "pub mod app; pub mod config;"),
            (
                "src/config/load.rs",
                "fn f() { let _ = super::super::app::App; }",
            ),
        ]);
        reports(
            &problems,
            "src/config/load.rs → src/app.rs: config uses app, which is above it",
        );
    }

    #[test]
    fn a_name_brought_in_by_use_is_followed() {
        let problems = with(&[(
            "src/route.rs",
            "use crate as top; use top::app; fn f() { app::App; }",
        )]);
        reports(&problems, "src/route.rs → src/app.rs");
    }

    #[test]
    fn a_two_file_circle_inside_one_folder_fails() {
        let problems = with(&[
            ("src/config/mod.rs", "mod load; mod validate;"),
            (
                "src/config/load.rs",
                "use super::validate::check; pub fn load() {}",
            ),
            (
                "src/config/validate.rs",
                "pub fn check() { super::load::load(); }",
            ),
        ]);
        reports(
            &problems,
            "circle between src/config/load.rs, src/config/validate.rs",
        );
        reports(
            &problems,
            "src/config/validate.rs → src/config/load.rs (super::load::load)",
        );
    }

    #[test]
    fn a_circle_through_a_parent_module_fails() {
        let problems = with(&[
            (
                "src/config/mod.rs",
                "mod load; pub use load::load; pub struct Config;",
            ),
            ("src/config/load.rs", "use super::Config; pub fn load() {}"),
        ]);
        reports(
            &problems,
            "circle between src/config/load.rs, src/config/mod.rs",
        );
    }

    #[test]
    fn an_import_is_followed_to_where_the_item_is() {
        // `super::Config` in a child of render names what render/mod.rs
        // imports from config: a use of config, not of render/mod.rs.
        let problems = with(&[
            (
                "src/render/mod.rs",
                "mod slack; use crate::config::Config; pub fn render() { slack::f(); }",
            ),
            ("src/render/slack.rs", "use super::Config; pub fn f() {}"),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_same_layer_import_not_listed_fails() {
        let problems = with(&[("src/enrich/mod.rs", "use crate::render::render;")]);
        reports(&problems, "src/enrich/mod.rs → src/render/mod.rs: enrich uses render, of the same layer, a pair not listed");
        // The listed pair, the other way, passes.
        let problems = with(&[("src/render/mod.rs", "use crate::enrich::enrich;")]);
        assert!(problems.is_empty(), "{problems:?}");
    }

    #[test]
    fn a_bench_circle_fails() {
        let problems = with(&[
            ("bench/main.rs", "mod flood; use hookrelay::app::App; pub struct Args; fn main() { flood::flood(); }"),
            ("bench/flood.rs", "use crate::Args; pub fn flood() {}"),
        ]);
        reports(&problems, "circle between bench/flood.rs, bench/main.rs");
        assert_eq!(problems.len(), 3, "{problems:?}");
    }

    #[test]
    fn src_reaching_into_bench_fails() {
        let problems = with(&[("src/route.rs", "#[path = \"../bench/flood.rs\"] mod flood;")]);
        reports(
            &problems,
            "src/route.rs: #[path] \"../bench/flood.rs\" reaches into bench/",
        );
        let problems = with(&[(
            "src/route.rs",
            "const X: &str = include_str!(\"../bench/main.rs\");",
        )]);
        reports(&problems, "reaches into bench/");
    }

    #[test]
    fn a_module_without_a_layer_fails() {
        let problems = with(&[("src/newthing.rs", "")]);
        reports(&problems, "module \"newthing\" is in no layer");
    }

    #[test]
    fn test_only_files_may_use_what_they_test() {
        let problems = with(&[
            (
                "src/render/mod.rs",
                "#[cfg(test)] mod tests; pub fn render() {}",
            ),
            (
                "src/render/tests.rs",
                "use super::render; use crate::render::render as r;",
            ),
        ]);
        assert!(problems.is_empty(), "{problems:?}");
    }
}
