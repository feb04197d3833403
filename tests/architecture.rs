//! The direction of imports, as ARCHITECTURE.md states it: a module may
//! use the modules of its own layer or of a layer below, never one above,
//! and no two modules may use each other (directly or through others).
//! Read from the source: every `crate::<module>` a file mentions outside
//! comments.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

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

fn layer_of(module: &str) -> usize {
    LAYERS
        .iter()
        .position(|l| l.contains(&module))
        .unwrap_or_else(|| panic!("module {module:?} is in no layer of tests/architecture.rs"))
}

/// module → the modules it uses (with one file where it does).
fn imports() -> BTreeMap<String, BTreeMap<String, String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).unwrap();
            let first = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_str()
                .unwrap();
            let module = first.trim_end_matches(".rs").to_owned();
            if module == "main" || module == "lib" {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for line in text.lines() {
                let code = line.split("//").next().unwrap_or("");
                let mut rest = code;
                while let Some(at) = rest.find("crate::") {
                    rest = &rest[at + "crate::".len()..];
                    let used: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect();
                    if !used.is_empty() && used != module {
                        out.entry(module.clone())
                            .or_default()
                            .entry(used)
                            .or_insert_with(|| rel.display().to_string());
                    }
                }
            }
            out.entry(module).or_default();
        }
    }
    out
}

#[test]
fn no_module_imports_one_above_it() {
    let mut wrong = Vec::new();
    for (module, used) in imports() {
        for (target, file) in used {
            if layer_of(&target) < layer_of(&module) {
                wrong.push(format!("{file}: {module} uses {target}, which is above it"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_two_modules_use_each_other() {
    let graph = imports();
    // Depth-first search for a cycle, reporting its path.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeMap<String, String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_owned());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flat_map(|m| m.keys()) {
            if let Some(c) = visit(next, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn every_module_has_a_layer() {
    for module in imports().keys() {
        layer_of(module);
    }
}
