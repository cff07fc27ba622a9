//! The layers' arrows (docs/architecture.md), enforced: every `crate::…`
//! path in `src/` is read, per top-level module, and checked against the
//! table of what each layer may use. A new arrow that points back up, or
//! any cycle between top-level modules, fails here with the file and line
//! that made it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Layer → the layers it may use. Everything above the pure core may use
/// the pure core (`plan`, `topology`, `certs`, `dns`, `spec`, `digest`,
/// `secret`).
const ALLOWED: &[(&str, &[&str])] = &[
    (
        "commands",
        &[
            "apply",
            "verify",
            "engine",
            "output",
            "plan",
            "topology",
            "certs",
            "dns",
            "spec",
            "digest",
            "secret",
            "transport",
        ],
    ),
    (
        "apply",
        &[
            "engine",
            "providers",
            "transport",
            "output",
            "plan",
            "topology",
            "certs",
            "dns",
            "spec",
            "digest",
            "secret",
        ],
    ),
    (
        "verify",
        &[
            "engine",
            "providers",
            "transport",
            "output",
            "plan",
            "topology",
            "certs",
            "dns",
            "spec",
            "digest",
            "secret",
        ],
    ),
    (
        "engine",
        &[
            "modules",
            "providers",
            "transport",
            "output",
            "plan",
            "topology",
            "certs",
            "dns",
            "spec",
            "digest",
            "secret",
        ],
    ),
    (
        "modules",
        &[
            "plan", "topology", "certs", "dns", "spec", "digest", "secret",
        ],
    ),
    (
        "providers",
        &[
            "transport",
            "plan",
            "topology",
            "certs",
            "dns",
            "spec",
            "digest",
            "secret",
        ],
    ),
    ("output", &["plan", "topology", "spec", "digest", "secret"]),
    (
        "plan",
        &["topology", "certs", "dns", "spec", "digest", "secret"],
    ),
    ("topology", &["spec", "digest", "secret"]),
    ("certs", &["spec", "digest", "secret"]),
    ("dns", &["spec", "digest", "secret"]),
    ("spec", &["secret"]),
    ("transport", &["secret"]),
    ("digest", &[]),
    ("secret", &[]),
];

/// One `crate::X` use: from which file and line, to which layer.
#[derive(Debug, Clone)]
struct Use {
    file: PathBuf,
    line: usize,
    to: String,
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ is readable") {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to (`src/plan/diff.rs` → `plan`,
/// `src/secret.rs` → `secret`); `None` for the crate roots.
fn layer_of(file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src()).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    match first {
        "lib.rs" | "main.rs" => None,
        f => Some(f.trim_end_matches(".rs").to_string()),
    }
}

/// Every top-level module named by `crate::…` in `text`, with its line:
/// plain paths (`crate::plan::Change`) and groups
/// (`use crate::{plan::Change, spec}`). Comments are skipped.
fn uses_in(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_group: Option<usize> = None; // line of `use crate::{`
    let mut depth = 0usize;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_start();
        if line.starts_with("//") {
            continue;
        }
        if let Some(start) = in_group {
            // Inside `use crate::{ … }`: the first segment of each item.
            for item in line.split(',') {
                let item = item.trim().trim_start_matches('{').trim();
                if depth == 1
                    && let Some(name) = item
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                    && !name.is_empty()
                {
                    out.push((start, name.to_string()));
                }
                depth += item.matches('{').count();
                depth = depth.saturating_sub(item.matches('}').count());
            }
            if depth == 0 {
                in_group = None;
            }
            continue;
        }
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                depth = 1;
                in_group = Some(i + 1);
                for item in group.split(',') {
                    let item = item.trim();
                    if depth == 1
                        && let Some(name) = item
                            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                            .next()
                        && !name.is_empty()
                    {
                        out.push((i + 1, name.to_string()));
                    }
                    depth += item.matches('{').count();
                    depth = depth.saturating_sub(item.matches('}').count());
                }
                if depth == 0 {
                    in_group = None;
                }
                break;
            }
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.push((i + 1, name));
            }
        }
    }
    out
}

fn all_uses() -> BTreeMap<String, Vec<Use>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut by_layer: BTreeMap<String, Vec<Use>> = BTreeMap::new();
    for file in files {
        let Some(layer) = layer_of(&file) else {
            continue;
        };
        let text = std::fs::read_to_string(&file).expect("a source file is readable");
        for (line, to) in uses_in(&text) {
            if to != layer {
                by_layer.entry(layer.clone()).or_default().push(Use {
                    file: file.clone(),
                    line,
                    to,
                });
            }
        }
    }
    by_layer
}

#[test]
fn every_arrow_is_allowed() {
    let allowed: BTreeMap<&str, BTreeSet<&str>> = ALLOWED
        .iter()
        .map(|(l, to)| (*l, to.iter().copied().collect()))
        .collect();
    let mut wrong = Vec::new();
    for (layer, uses) in all_uses() {
        let Some(ok) = allowed.get(layer.as_str()) else {
            wrong.push(format!(
                "src/{layer}: a top-level module the arrows table does not know; add it to tests/arrows.rs and docs/architecture.md"
            ));
            continue;
        };
        for u in uses {
            if !ok.contains(u.to.as_str()) {
                wrong.push(format!(
                    "{}:{}: `{layer}` uses `{}`, which it may not (it may use: {})",
                    u.file.display(),
                    u.line,
                    u.to,
                    ok.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "forbidden arrows:\n{}", wrong.join("\n"));
}

#[test]
fn no_cycle_between_top_level_modules() {
    let graph: BTreeMap<String, BTreeSet<String>> = all_uses()
        .into_iter()
        .map(|(l, uses)| (l, uses.into_iter().map(|u| u.to).collect()))
        .collect();
    // Depth-first search with colours; a grey node met again closes a cycle.
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(1) => {
                let at = path.iter().position(|p| p == n).unwrap_or(0);
                let mut cycle = path[at..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            Some(2) => return None,
            _ => {}
        }
        state.insert(n.to_string(), 1);
        path.push(n.to_string());
        for m in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, graph, state, path) {
                return Some(c);
            }
        }
        path.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in graph.keys() {
        let mut path = Vec::new();
        if let Some(cycle) = visit(n, &graph, &mut state, &mut path) {
            panic!("a cycle between top-level modules: {}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_reader_sees_plain_paths_and_groups() {
    let text = "use crate::plan::Change;\nuse crate::{spec::Spec, secret};\n// crate::apply in a comment\nlet x = crate::dns::rrset::RRset::default();\nuse crate::{\n    engine::{self, Prepared},\n    output::Progress,\n};\n";
    let got: Vec<(usize, String)> = uses_in(text);
    let names: Vec<&str> = got.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["plan", "spec", "secret", "dns", "engine", "output"]);
    assert_eq!(got[4].0, 5);
}
