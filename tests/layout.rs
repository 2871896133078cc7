//! The module layout's one rule: no plugin imports another plugin. Inputs do not reach into
//! outputs nor outputs into inputs; what both need lives in `src/common`, which (like
//! `src/core`) imports neither; `src/core` does not import `src/common` either. Within one kind, what two plugins share lives in its
//! `support` folder (inputs) or in `src/common`, not in one of the two.

use std::fs;
use std::path::{Path, PathBuf};

/// Each folder under `src/` with the plugin kinds its files must not name.
const RULES: [(&str, &[&str]); 4] = [
    ("inputs", &["outputs"]),
    ("outputs", &["inputs"]),
    ("common", &["inputs", "outputs"]),
    // The core lies beneath the clients' room too (common builds on its offload, backoff).
    ("core", &["inputs", "outputs", "common"]),
];

#[test]
fn no_plugin_kind_imports_another_and_common_and_core_import_neither() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let mut files = 0;
    for (folder, forbidden) in RULES {
        for file in rust_files(&src.join(folder)) {
            files += 1;
            let text = fs::read_to_string(&file).unwrap();
            for (line, module) in paths_into(&text, forbidden) {
                found.push(format!("{}:{line}: uses `{module}`", file.display()));
            }
        }
    }
    assert!(
        files > 100,
        "only {files} files found under {}",
        src.display()
    );
    assert!(
        found.is_empty(),
        "imports across the layout:\n{}",
        found.join("\n")
    );
}

#[test]
fn no_plugin_imports_another_of_its_kind() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    for kind in ["inputs", "outputs"] {
        let plugins = plugin_folders(&src.join(kind));
        assert!(plugins.len() >= 3, "{kind}: only {plugins:?}");
        for plugin in &plugins {
            let others: Vec<String> = plugins
                .iter()
                .filter(|p| *p != plugin)
                .map(|p| format!("{kind}::{p}"))
                .collect();
            let others: Vec<&str> = others.iter().map(String::as_str).collect();
            for file in rust_files(&src.join(kind).join(plugin)) {
                let text = fs::read_to_string(&file).unwrap();
                for (line, module) in paths_into(&text, &others) {
                    found.push(format!("{}:{line}: uses `{module}`", file.display()));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "plugins importing plugins:\n{}",
        found.join("\n")
    );
}

/// The plugin folders of one kind: every folder but the shared `support`.
fn plugin_folders(dir: &Path) -> Vec<String> {
    let mut out: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|name| name != "support")
        .collect();
    out.sort();
    out
}

#[test]
fn the_check_sees_every_way_of_writing_the_path() {
    let outputs = &["outputs"][..];
    for code in [
        "use crate::outputs::redistimeseries::Conn;",
        "use super::super::outputs::mqtt;",
        "let f = crate::outputs::stdout::json_string;",
        "use crate::{core::Sample, outputs::OutputCtx};",
        "use crate::{\n    config::Dur,\n    outputs,\n};",
        "use rtcollector::outputs::Outputs;",
    ] {
        assert_eq!(paths_into(code, outputs).len(), 1, "not seen: {code}");
    }
    for code in [
        "// see crate::outputs::mqtt for the other side",
        "//! `crate::outputs` is not imported here",
        "let outputs = 3;",
        "use crate::common::redis::Conn;",
        "use crate::{core::Sample, inputs::BuildCtx};",
    ] {
        assert!(paths_into(code, outputs).is_empty(), "wrongly seen: {code}");
    }
    let sensors = &["inputs::sensors"][..];
    let seen = paths_into("use crate::inputs::sensors::attr::IntAttr;", sensors);
    assert_eq!(seen, [(1, "inputs::sensors".to_string())]);
    assert!(paths_into("use crate::inputs::support::Known;", sensors).is_empty());
}

/// `(line, module)` for every path in `text` that starts at the crate root (`crate::`,
/// `super::…`, `rtcollector::`, or a `crate::{…}` group) and names one of `modules`.
/// Comments are left out; a path split over lines inside a group is still seen.
fn paths_into(text: &str, modules: &[&str]) -> Vec<(usize, String)> {
    let code: Vec<&str> = text
        .lines()
        .map(|l| l.find("//").map_or(l, |at| &l[..at]))
        .collect();
    let mut found = Vec::new();
    let mut group_depth = 0usize;
    for (i, line) in code.iter().enumerate() {
        for module in modules {
            let rooted = ["crate::", "super::", "rtcollector::"]
                .iter()
                .any(|root| names_word(line, &format!("{root}{module}")));
            let in_group =
                (group_depth > 0 || line.contains("crate::{")) && names_word(line, module);
            if rooted || in_group {
                found.push((i + 1, module.to_string()));
            }
        }
        if line.contains("crate::{") || group_depth > 0 {
            group_depth += line.matches('{').count();
            group_depth = group_depth.saturating_sub(line.matches('}').count());
        }
    }
    found
}

/// Whether `word` stands in `line` as a path of its own, not as part of a longer name
/// (`outputs::` and `outputs,` do; `outputs_seen` does not).
fn names_word(line: &str, word: &str) -> bool {
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        let starts = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        let ends = after.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        starts && ends
    })
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out
}
