//! The core's modules depend on each other in one direction, and none of
//! them on the C adapter: every `crate::module` a file of `src/` names
//! outside comments is an edge, and the graph must have no cycle.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The module a file of `src/` belongs to (`optim/lbfgs.rs` → `optim`).
fn module_of(relative: &Path) -> Option<String> {
    let mut parts = relative.components().map(|c| c.as_os_str().to_string_lossy().to_string());
    let first = parts.next()?;
    match parts.next() {
        Some(_) => Some(first),
        None => Some(first.strip_suffix(".rs")?.to_string()),
    }
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Module → the modules it names.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = support::root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let relative = file.strip_prefix(&src).unwrap();
        let Some(module) = module_of(relative) else { continue };
        if module == "lib" || module == "bin" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let names = edges.entry(module.clone()).or_default();
        for line in text.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for piece in line.split("crate::").skip(1) {
                let name: String = piece.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && name != module {
                    names.insert(name);
                }
            }
        }
    }
    edges
}

/// A cycle through `start`, if any (depth-first).
fn cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut found = path[at..].to_vec();
            found.push(node.to_string());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, edges, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|start| visit(start, edges, &mut Vec::new(), &mut done))
}

#[test]
fn core_modules_depend_in_one_direction() {
    let edges = graph();
    assert!(edges.len() >= 15, "found only {} modules under src/", edges.len());
    if let Some(found) = cycle(&edges) {
        panic!("module cycle: {}", found.join(" → "));
    }
}

#[test]
fn no_core_module_uses_the_c_adapter() {
    for (module, names) in graph() {
        if module != "capi" {
            assert!(!names.contains("capi"), "core module `{module}` uses crate::capi");
        }
    }
}

#[test]
fn the_checker_finds_a_cycle() {
    let mut edges = BTreeMap::new();
    edges.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    edges.insert("b".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(cycle(&edges), Some(vec!["a".into(), "b".into(), "a".into()]));
}
