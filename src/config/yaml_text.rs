//! Options as a person writes them in YAML, on one line: `{ timeout: 5s, password: *** }`.
//!
//! Every plugin's `Config` derives `Serialize` with the same serde attributes as its
//! `Deserialize`, so renamed fields, lower-case enum variants and untagged forms come out
//! as they are read, and no plugin needs printing code. The unit types serialize to their
//! YAML form (`5s`, `30d`, `64MiB`) and a [`Secret`](super::Secret) to `***`.

use serde::Serialize;
use std::fmt::Write as _;
use yaml_serde::Value;

/// `value` as a YAML flow mapping (or sequence, or scalar) on one line. Unset options
/// (`None`) are left out, as a person leaves them out of the file. A value with nothing to
/// show (a plugin without options) is the empty string.
pub fn flow<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = String::new();
    match yaml_serde::to_value(value) {
        Ok(Value::Null) => {}
        Ok(Value::Mapping(m)) if m.values().all(Value::is_null) => {}
        Ok(v) => write_value(&v, &mut out),
        // Only a custom `Serialize` can fail, and then the plan still names the plugin.
        Err(e) => {
            let _ = write!(out, "(options not printable: {e})");
        }
    }
    out
}

fn write_value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push('~'),
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_string(s, out),
        Value::Sequence(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Mapping(map) => {
            let shown: Vec<_> = map.iter().filter(|(_, v)| !v.is_null()).collect();
            if shown.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push_str("{ ");
            for (i, (k, v)) in shown.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(k, out);
                out.push_str(": ");
                write_value(v, out);
            }
            out.push_str(" }");
        }
        // An enum variant with data that no untagged form covers: `{ variant: value }`,
        // serde's external tagging as YAML reads it.
        Value::Tagged(t) => {
            out.push_str("{ ");
            write_string(t.tag.to_string().trim_start_matches('!'), out);
            out.push_str(": ");
            write_value(&t.value, out);
            out.push_str(" }");
        }
    }
}

/// A string plain where YAML reads it back as the same string, double-quoted otherwise
/// (empty, a word YAML reads as a number, bool or null, or flow and comment characters).
fn write_string(s: &str, out: &mut String) {
    // The mask reads as "hidden" to a person; quoting it would suggest a password `***`.
    if is_plain(s) || s == super::secret::MASK {
        out.push_str(s);
        return;
    }
    crate::common::json::write_string(s, out);
}

fn is_plain(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let safe_start = first.is_alphanumeric() || "/_.".contains(first);
    let safe_chars = s
        .chars()
        .all(|c| c.is_alphanumeric() || "/_.-+@=%~".contains(c) || is_plain_colon(s, c));
    safe_start && safe_chars && !s.ends_with(':') && !reads_as_other_type(s)
}

/// A colon stays plain only inside a word (`http://host/`), never before a space.
fn is_plain_colon(s: &str, c: char) -> bool {
    c == ':' && !s.contains(": ")
}

fn reads_as_other_type(s: &str) -> bool {
    matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~"
    ) || s.parse::<f64>().is_ok()
        || s.starts_with('.')
        || s.starts_with("0x")
        || s.starts_with("0o")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Dur, Millis, Secret, Size};
    use std::time::Duration;

    #[derive(Serialize)]
    struct Example {
        timeout: Dur,
        retention: Option<Millis>,
        unset: Option<Millis>,
        max: Size,
        password: Option<Secret>,
        names: Vec<&'static str>,
        url: &'static str,
        word: &'static str,
    }

    #[test]
    fn options_print_as_yaml_a_person_writes() {
        let text = flow(&Example {
            timeout: Dur(Duration::from_secs(5)),
            retention: Some(Millis(30 * 86_400_000)),
            unset: None,
            max: Size(64 << 20),
            password: Some(Secret::new("hunter2")),
            names: vec!["^sd[a-z]$", "", "eth0", "true", "10"],
            url: "http://localhost/nginx_status",
            word: "{name}:{host}",
        });
        assert_eq!(
            text,
            "{ timeout: 5s, retention: 30d, max: 64MiB, password: ***, names: [\"^sd[a-z]$\", \"\", eth0, \"true\", \"10\"], url: http://localhost/nginx_status, word: \"{name}:{host}\" }"
        );
        // `***` is for people (YAML would read it as an alias): the rest reads back.
        let back: yaml_serde::Value = yaml_serde::from_str(&text.replace("***", "x")).unwrap();
        assert_eq!(back["names"][3].as_str(), Some("true"));
        assert_eq!(back["url"].as_str(), Some("http://localhost/nginx_status"));
    }

    #[test]
    fn enum_variants_with_data_print_as_a_one_key_map() {
        #[derive(Serialize)]
        #[serde(rename_all = "lowercase")]
        enum Store {
            File { dir: &'static str },
        }
        assert_eq!(
            flow(&Store::File { dir: "/run/s" }),
            "{ file: { dir: /run/s } }"
        );
    }

    #[test]
    fn nothing_to_show_is_empty() {
        #[derive(Serialize)]
        struct NoOptions {}
        #[derive(Serialize)]
        struct Unit;
        assert_eq!(flow(&NoOptions {}), "");
        assert_eq!(flow(&Unit), "");
    }
}
