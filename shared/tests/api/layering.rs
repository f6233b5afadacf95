//! The library's shape, checked: wings whose imports point down (platform, store, billing,
//! realtime, api), no import cycle between its modules, HTTP only at the edge, and no
//! development tooling inside (docs/architecture.md, "Code layout").

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const WINGS: [&str; 5] = ["platform", "store", "billing", "realtime", "api"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module of the crate (`billing::payments`, `api`, ...) with its source text.
fn modules() -> BTreeMap<String, String> {
    fn walk(dir: &Path, prefix: &[String], out: &mut BTreeMap<String, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read src")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        entries.sort();
        for path in entries {
            let name = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default()
                .to_string();
            if path.is_dir() {
                let mut p = prefix.to_vec();
                p.push(name);
                walk(&path, &p, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let mut p = prefix.to_vec();
                if name != "mod" && name != "lib" {
                    p.push(name);
                }
                let text = std::fs::read_to_string(&path).expect("read module");
                out.insert(p.join("::"), text);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(&src(), &[], &mut out);
    out
}

/// The code of a module without its `#[cfg(test)]` tests and comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    text.lines()
        .map(|l| l.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Paths a module names (`crate::a::b::{c, d::e}`, `super::x`, and `use child::y` for its
/// own submodules), as segments from the crate root, brace groups expanded.
fn references(module: &str, text: &str, modules: &BTreeMap<String, String>) -> Vec<Vec<String>> {
    let here: Vec<String> = module
        .split("::")
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let code = code(text);
    let chars: Vec<char> = code.chars().collect();
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        // Not the middle of a word or path, nor a visibility like `pub(super)`.
        if !word(chars[i]) || (i > 0 && (word(chars[i - 1]) || matches!(chars[i - 1], ':' | '('))) {
            i += 1;
            continue;
        }
        let start = i;
        while i < chars.len() && word(chars[i]) {
            i += 1;
        }
        let first: String = chars[start..i].iter().collect();
        let base: Vec<String> = match first.as_str() {
            "crate" => Vec::new(),
            "super" => {
                // A file module's `super` is its parent; a mod.rs's is the grandparent.
                let mut p = here.clone();
                p.pop();
                p
            }
            "self" => here.clone(),
            child
                if {
                    let mut p = here.clone();
                    p.push(child.to_string());
                    modules.contains_key(&p.join("::"))
                } =>
            {
                let mut p = here.clone();
                p.push(child.to_string());
                p
            }
            _ => continue,
        };
        let (paths, end) = use_tree(&chars, i, base);
        out.extend(paths);
        i = end;
    }
    out
}

/// Expands `::a::b::{c, d::{e}}` starting at `i`, each path prefixed with `base`.
fn use_tree(chars: &[char], mut i: usize, mut base: Vec<String>) -> (Vec<Vec<String>>, usize) {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    loop {
        if chars.get(i) == Some(&':') && chars.get(i + 1) == Some(&':') {
            i += 2;
        } else {
            return (vec![base], i);
        }
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        if chars.get(i) == Some(&'{') {
            i += 1;
            let mut paths = Vec::new();
            loop {
                while chars.get(i).is_some_and(|c| c.is_whitespace() || *c == ',') {
                    i += 1;
                }
                match chars.get(i) {
                    None => return (paths, i),
                    Some('}') => return (paths, i + 1),
                    _ => {}
                }
                let start = i;
                while chars.get(i).is_some_and(|c| word(*c)) {
                    i += 1;
                }
                if i == start {
                    // `*` or something else: the group's base is what is named.
                    paths.push(base.clone());
                    i += 1;
                    continue;
                }
                let name: String = chars[start..i].iter().collect();
                let mut next = base.clone();
                if name != "self" {
                    next.push(name);
                }
                let (more, end) = use_tree(chars, i, next);
                paths.extend(more);
                i = end;
                // Skip `as alias`.
                while chars.get(i).is_some_and(|c| *c != ',' && *c != '}') {
                    i += 1;
                }
            }
        }
        let start = i;
        while chars.get(i).is_some_and(|c| word(*c)) {
            i += 1;
        }
        if i == start {
            return (vec![base], i);
        }
        base.push(chars[start..i].iter().collect());
    }
}

/// The module a path lands in, following `pub use child::Name` re-exports.
fn resolve(path: &[String], modules: &BTreeMap<String, String>) -> Option<String> {
    let mut best = None;
    for n in (0..=path.len()).rev() {
        let candidate = path[..n].join("::");
        if let Some(text) = modules.get(&candidate) {
            best = Some((candidate, n));
            let _ = text;
            break;
        }
    }
    let (module, n) = best?;
    if let (Some(name), Some(text)) = (path.get(n), modules.get(&module)) {
        for line in code(text).lines() {
            let line = line.trim();
            if let Some(rest) = line.strip_prefix("pub use ") {
                let mut parts = rest.splitn(2, "::");
                let (Some(child), Some(names)) = (parts.next(), parts.next()) else {
                    continue;
                };
                let names: BTreeSet<&str> = names
                    .trim_matches(|c| c == '{' || c == '}' || c == ';')
                    .split(',')
                    .map(str::trim)
                    .collect();
                if names.contains(name.as_str()) {
                    let target = if module.is_empty() {
                        child.to_string()
                    } else {
                        format!("{module}::{child}")
                    };
                    if modules.contains_key(&target) {
                        return Some(target);
                    }
                }
            }
        }
    }
    Some(module)
}

fn wing(module: &str) -> Option<usize> {
    let top = module.split("::").next()?;
    WINGS.iter().position(|w| *w == top)
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let modules = modules();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in &modules {
        let entry = edges.entry(module.clone()).or_default();
        for path in references(module, text, &modules) {
            if let Some(target) = resolve(&path, &modules) {
                if &target != module && !target.is_empty() {
                    entry.insert(target);
                }
            }
        }
    }
    edges
}

#[test]
fn every_module_lives_in_a_wing_and_imports_only_its_own_or_lower_ones() {
    let mut wrong = Vec::new();
    for (module, targets) in graph() {
        if module.is_empty() {
            continue;
        }
        let Some(from) = wing(&module) else {
            wrong.push(format!("{module} is in no wing ({WINGS:?})"));
            continue;
        };
        for target in targets {
            if wing(&target).is_some_and(|to| to > from) {
                wrong.push(format!("{module} imports {target}, a wing above it"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_two_modules_import_each_other_even_through_others() {
    let graph = graph();
    // Depth-first search for a back edge, reporting the cycle it closes.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if done.contains(node) {
            return;
        }
        if let Some(i) = stack.iter().position(|n| n == node) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(node.to_string());
            cycles.push(cycle.join(" -> "));
            return;
        }
        stack.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, stack, done, cycles);
        }
        stack.pop();
        done.insert(node.to_string());
    }
    let mut cycles = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(cycles.is_empty(), "import cycles:\n{}", cycles.join("\n"));
    assert!(
        graph.values().map(BTreeSet::len).sum::<usize>() > 40,
        "the module graph looks empty: is the parser still reading the sources?"
    );
}

#[test]
fn only_the_edge_knows_lambda_http() {
    for (module, text) in modules() {
        if !module.starts_with("api") {
            assert!(
                !code(&text).contains("lambda_http"),
                "{module} uses lambda_http; only `api` may"
            );
        }
    }
}

#[test]
fn the_library_holds_no_development_tooling() {
    for (module, text) in modules() {
        for needle in [
            "initdb",
            "pg_ctl",
            "Admin123!",
            "local-development-secret",
            "whsec_billwire_local",
        ] {
            assert!(
                !text.contains(needle),
                "{module} contains {needle:?}: development tooling belongs in infra/"
            );
        }
    }
}
