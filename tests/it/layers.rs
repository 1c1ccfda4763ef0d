//! Layers point one way (STYLE.md): no import circle between top-level modules of `src/`, none
//! between the files of `src/sources/`, and `model` imports nothing from the rest of the crate.
//!
//! The graph comes from the source text, not the compiler: every `crate::X` path in
//! `src/X/**` or `src/X.rs` (in `use` lines and inline paths alike, tests included) is an edge to
//! top-level module X. Comments are skipped. Needs no servers.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// An import graph: module → modules it imports → where (file:line) the first such import is.
type Graph = BTreeMap<String, BTreeMap<String, String>>;

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The lines of a file with `//` comments (doc comments too) removed.
fn code_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read source file")
        .lines()
        .map(|line| match line.find("//") {
            // `s3://` and other URLs in strings are not comments.
            Some(at) if !line[..at].ends_with(':') => line[..at].to_string(),
            _ => line.to_string(),
        })
        .collect()
}

/// The first segments of the paths that follow `prefix` (e.g. `crate::`) on a line, expanding
/// one level of braces: `crate::{model::Rows, sources}` gives `model` and `sources`.
fn segments_after(line: &str, prefix: &str) -> Vec<String> {
    let ident = |text: &str| -> String {
        text.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut found = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find(prefix) {
        let preceded_by_ident = rest[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
        rest = &rest[at + prefix.len()..];
        if preceded_by_ident {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            found.extend(
                group[..end]
                    .split(',')
                    .map(|item| ident(item.trim()))
                    .filter(|name| !name.is_empty()),
            );
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

fn add_edge(graph: &mut Graph, from: &str, to: &str, path: &Path, line: usize) {
    let targets = graph.entry(from.to_string()).or_default();
    if from != to {
        targets.entry(to.to_string()).or_insert_with(|| {
            let shown = path.strip_prefix(src().parent().unwrap()).unwrap_or(path);
            format!("{}:{}", shown.display(), line + 1)
        });
    }
}

/// Edges between top-level modules: `crate::X` in a file of module Y is Y → X.
fn top_level_graph() -> Graph {
    let root = src();
    let mut graph = Graph::new();
    for path in rust_files(&root) {
        let relative = path.strip_prefix(&root).expect("under src");
        let first = relative.components().next().expect("a component");
        let module = Path::new(first.as_os_str())
            .file_stem()
            .expect("a name")
            .to_string_lossy()
            .to_string();
        if module == "lib" || module == "main" {
            continue;
        }
        for (number, line) in code_lines(&path).iter().enumerate() {
            for target in segments_after(line, "crate::") {
                add_edge(&mut graph, &module, &target, &path, number);
            }
        }
        graph.entry(module).or_default();
    }
    graph
}

/// Edges between the files of `src/sources/` (`mod.rs` is `mod`): `super::X` or
/// `crate::sources::X` names sibling file X, or an item of `mod.rs`; `X::` in `mod.rs` names
/// child file X. Test modules (after the first `#[cfg(test)]`) are skipped: their `super` is the
/// file itself.
fn sources_graph() -> Graph {
    let dir = src().join("sources");
    let files: BTreeSet<String> = rust_files(&dir)
        .iter()
        .filter(|p| p.parent() == Some(dir.as_path()))
        .map(|p| p.file_stem().unwrap().to_string_lossy().to_string())
        .collect();
    let mut graph = Graph::new();
    for file in &files {
        let path = dir.join(format!("{file}.rs"));
        graph.entry(file.clone()).or_default();
        let lines = code_lines(&path);
        let lines = lines.iter().take_while(|l| !l.contains("#[cfg(test)]"));
        for (number, line) in lines.enumerate() {
            if line.trim_start().starts_with("mod ") || line.trim_start().starts_with("pub mod ") {
                continue;
            }
            let mut targets = segments_after(line, "super::");
            targets.extend(segments_after(line, "crate::sources::"));
            let mut named: Vec<String> = targets
                .into_iter()
                .map(|t| {
                    if files.contains(&t) {
                        t
                    } else {
                        "mod".to_string()
                    }
                })
                .collect();
            if file == "mod" {
                for child in &files {
                    if !segments_after(line, &format!("{child}::")).is_empty()
                        || line.contains(&format!(" {child}::"))
                    {
                        named.push(child.clone());
                    }
                }
            }
            for target in named {
                add_edge(&mut graph, file, &target, &path, number);
            }
        }
    }
    graph
}

/// A circle in `graph`, as the modules along it with where each import is, or `None`.
fn find_circle(graph: &Graph) -> Option<Vec<String>> {
    fn visit(
        graph: &Graph,
        node: &str,
        done: &mut BTreeSet<String>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut circle = path[start..].to_vec();
            circle.push(node.to_string());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flat_map(|t| t.keys()) {
            if let Some(circle) = visit(graph, next, done, path) {
                return Some(circle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|node| visit(graph, node, &mut done, &mut Vec::new()))
}

fn describe_circle(graph: &Graph, circle: &[String]) -> String {
    circle
        .windows(2)
        .map(|pair| format!("{} → {} ({})", pair[0], pair[1], graph[&pair[0]][&pair[1]]))
        .collect::<Vec<_>>()
        .join("\n  ")
}

#[test]
fn top_level_modules_import_no_circle() {
    let graph = top_level_graph();
    assert!(graph.contains_key("sources") && graph.contains_key("model"));
    if let Some(circle) = find_circle(&graph) {
        panic!(
            "import circle between top-level modules:\n  {}",
            describe_circle(&graph, &circle)
        );
    }
}

#[test]
fn model_is_the_bottom_layer() {
    let graph = top_level_graph();
    let imports: Vec<String> = graph["model"]
        .iter()
        .map(|(to, at)| format!("{to} ({at})"))
        .collect();
    assert!(imports.is_empty(), "`model` imports {imports:?}");
}

#[test]
fn sources_files_import_no_circle() {
    let graph = sources_graph();
    assert!(
        graph["delta"].contains_key("table_format"),
        "the scan sees delta → table_format"
    );
    if let Some(circle) = find_circle(&graph) {
        panic!(
            "import circle between files of src/sources:\n  {}",
            describe_circle(&graph, &circle)
        );
    }
}

/// The lake source knows no table format: formats reach it through the registry, so a new
/// format is one file plus one line in `registry::TABLE_FORMATS`.
#[test]
fn the_lake_source_names_no_table_format() {
    let graph = sources_graph();
    let formats: Vec<&str> = lakecheck::registry::TABLE_FORMATS
        .iter()
        .map(|f| f.name)
        .collect();
    assert!(formats.len() >= 5, "{formats:?}");
    for file in ["delta", "dms", "files", "hudi"] {
        assert!(
            !graph["lake"].contains_key(file),
            "lake.rs imports the format file `{file}`"
        );
        assert!(
            graph[file].contains_key("table_format"),
            "`{file}` implements TableFormat"
        );
    }
}

#[test]
fn a_circle_is_found_and_shown() {
    let mut graph = Graph::new();
    graph
        .entry("a".into())
        .or_default()
        .insert("b".into(), "a.rs:1".into());
    graph
        .entry("b".into())
        .or_default()
        .insert("c".into(), "b.rs:2".into());
    graph
        .entry("c".into())
        .or_default()
        .insert("a".into(), "c.rs:3".into());
    let circle = find_circle(&graph).expect("a circle");
    assert_eq!(
        describe_circle(&graph, &circle),
        "a → b (a.rs:1)\n  b → c (b.rs:2)\n  c → a (c.rs:3)"
    );
    graph.get_mut("c").unwrap().clear();
    assert_eq!(find_circle(&graph), None);
    assert_eq!(
        segments_after("use crate::{model::Rows, sources};", "crate::"),
        ["model", "sources"]
    );
}
