//! The agent's JSON lines (stdout output, `format: json`) read back by key.

use serde_json::Value;
use std::collections::BTreeMap;

/// One JSON line of the stdout output, keyed like the unit tests: `name{label=value,…}`
/// with labels sorted and `host` left out.
pub fn key_of(v: &Value) -> String {
    let name = v["name"].as_str().expect("name").to_string();
    let labels: Vec<String> = v["labels"]
        .as_object()
        .expect("labels")
        .iter()
        .filter(|(k, _)| *k != "host")
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
        .collect();
    if labels.is_empty() {
        name
    } else {
        format!("{name}{{{}}}", labels.join(","))
    }
}

/// All JSON samples of an output, by key (the last value wins). Log records (`{"log":…}`
/// lines) are left out.
pub fn samples(out: &str) -> BTreeMap<String, Value> {
    out.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<Value>(l).expect("JSON line"))
        .filter(|v| v.get("log").is_none())
        .map(|v| (key_of(&v), v))
        .collect()
}

/// The value of sample `key`; fails naming the keys there are.
pub fn value(got: &BTreeMap<String, Value>, key: &str) -> f64 {
    got.get(key)
        .and_then(|v| v["value"].as_f64())
        .unwrap_or_else(|| panic!("no `{key}` in {:#?}", got.keys().collect::<Vec<_>>()))
}
