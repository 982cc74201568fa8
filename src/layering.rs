//! Checks of the crate's shape, read from the source:
//! - layering: no module imports a module that imports it back, at the top level
//!   (`pipeline`, `serve`, ...) and among the modules of each (`serve::api`,
//!   `serve::transfers`, ...), by the `crate::NAME` and `super::NAME` paths outside
//!   comments and test modules;
//! - errors: one chaining style. An error's message says everything, its cause included,
//!   and `source()` returns nothing, so whoever prints an error (main, a log line, an API
//!   answer, a dead letter) prints it once, whole, with `{e}`. `#[error(transparent)]`
//!   wrappers pass both through.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Pairs allowed to import each other (none): a pair that must, for a while, goes here with
/// its reason, and leaves once it no longer does (the test says so).
const KNOWN: &[(&str, &str)] = &[];

type Graph = BTreeMap<String, BTreeSet<String>>;

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its test module and comments.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let lines = text
        .lines()
        .map(|l| l.split("//").next().unwrap_or_default());
    lines.collect::<Vec<_>>().join("\n")
}

/// The names that follow `prefix` in `code`.
fn names_after<'a>(code: &'a str, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    code.match_indices(prefix).filter_map(move |(at, _)| {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
            return None;
        }
        let rest = &code[at + prefix.len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        Some(&rest[..end])
    })
}

/// Edges between top-level modules, and between the modules of each (as `top::module`).
fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let module = |p: &Path| -> Vec<String> {
        let rel = p.strip_prefix(&src).unwrap_or(p);
        let mut parts: Vec<String> = rel.iter().map(|c| c.to_string_lossy().into()).collect();
        if let Some(last) = parts.last_mut() {
            *last = last.trim_end_matches(".rs").to_owned();
        }
        if parts.last().is_some_and(|l| l == "mod") {
            parts.pop();
        }
        parts
    };
    let tops: BTreeSet<String> = files
        .iter()
        .filter_map(|f| module(f).first().cloned())
        .collect();
    let mut graph = Graph::new();
    for file in &files {
        let parts = module(file);
        let Some(top) = parts
            .first()
            .filter(|t| !["lib", "main"].contains(&t.as_str()))
        else {
            continue;
        };
        let text = code(&std::fs::read_to_string(file).unwrap_or_default());
        let mut edge = |from: String, to: String| {
            if from != to {
                graph.entry(from).or_default().insert(to);
            }
        };
        for name in names_after(&text, "crate::").filter(|n| tops.contains(*n)) {
            edge(top.clone(), name.to_owned());
        }
        let Some(sub) = parts.get(1) else {
            continue;
        };
        let siblings = format!("crate::{top}::");
        let up = "super::".repeat(parts.len() - 1);
        for name in names_after(&text, &siblings).chain(names_after(&text, &up)) {
            let sibling = src.join(top).join(name);
            if sibling.is_dir() || sibling.with_extension("rs").is_file() {
                edge(format!("{top}::{sub}"), format!("{top}::{name}"));
            }
        }
    }
    graph
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = graph();
    let reaches = |from: &str, to: &str| {
        let (mut seen, mut todo) = (BTreeSet::new(), vec![from.to_owned()]);
        while let Some(node) = todo.pop() {
            for next in graph.get(&node).into_iter().flatten() {
                if next == to {
                    return true;
                }
                if seen.insert(next.clone()) {
                    todo.push(next.clone());
                }
            }
        }
        false
    };
    let mut cycles = BTreeSet::new();
    for (from, tos) in &graph {
        for to in tos.iter().filter(|to| reaches(to, from)) {
            let pair = if from < to { (from, to) } else { (to, from) };
            cycles.insert((pair.0.clone(), pair.1.clone()));
        }
    }
    let known: BTreeSet<(String, String)> = KNOWN
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let new: Vec<_> = cycles.iter().filter(|c| !known.contains(*c)).collect();
    assert!(new.is_empty(), "modules that import each other: {new:?}");
    let gone: Vec<_> = known.iter().filter(|k| !cycles.contains(*k)).collect();
    assert!(
        gone.is_empty(),
        "no longer a cycle, take off KNOWN: {gone:?}"
    );
}

/// The error variants (`#[error(...)]` and what follows up to the next one) of a file.
fn error_variants(text: &str) -> Vec<&str> {
    let mut starts: Vec<usize> = text.match_indices("#[error(").map(|(at, _)| at).collect();
    starts.push(text.len());
    starts.windows(2).map(|w| &text[w[0]..w[1]]).collect()
}

#[test]
fn errors_print_their_cause_and_return_no_source() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut wrong = Vec::new();
    for file in &files {
        let text = code(&std::fs::read_to_string(file).unwrap_or_default());
        for variant in error_variants(&text) {
            // The variant's lines, up to the next attribute or doc comment, or the enum's end.
            let ends = |l: &&str| {
                let l = l.trim_start();
                l.starts_with("#[") || l.starts_with("///") || l.starts_with('}')
            };
            let lines = variant.lines().skip(1).take_while(|l| !ends(l));
            let fields = lines.collect::<Vec<_>>().join("\n");
            let transparent = variant.starts_with("#[error(transparent)]");
            let returns = fields.contains("#[source]")
                || fields
                    .split(|c: char| c.is_whitespace() || "{(,".contains(c))
                    .any(|word| word == "source:")
                || (fields.contains("#[from]") && !transparent);
            if returns {
                let name = fields.lines().next().unwrap_or_default().trim();
                wrong.push(format!("{}: {name}", file.display()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "errors that return a source (name the field `cause` and print it): {wrong:?}"
    );
}
