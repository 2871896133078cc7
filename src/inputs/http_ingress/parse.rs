//! The bodies `http_ingress` takes: pollect's JSON document and two line formats. Every
//! error is a sentence for the 400 answer; nothing here panics on any input.

use std::fmt::Write as _;

/// The most labels one sample may carry.
pub const MAX_LABELS: usize = 10;

/// One value of a body.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Point {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Milliseconds since the epoch, when the line gave them.
    pub ts_ms: Option<i64>,
}

/// Fills `out` from a body; on error, `out` holds what came before it (the caller drops it all).
pub fn body(bytes: &[u8], json: bool, out: &mut Vec<Point>) -> Result<(), String> {
    out.clear();
    let text = std::str::from_utf8(bytes).map_err(|_| "the body is not UTF-8".to_string())?;
    if json || text.trim_start().starts_with('{') {
        pollect_json(text, out)
    } else {
        lines(text, out)
    }
}

/// pollect's document: `{"metrics": {"<name>": {"value": 1, "labels": {"k": "v"}}}}`; a
/// metric may also be a bare number (`{"metrics": {"<name>": 1}}`).
fn pollect_json(text: &str, out: &mut Vec<Point>) -> Result<(), String> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("the body is not JSON: {e}"))?;
    let metrics = doc
        .get("metrics")
        .and_then(|m| m.as_object())
        .ok_or("the JSON body has no `metrics` object")?;
    for (name, entry) in metrics {
        check_name(name)?;
        let mut point = Point {
            name: name.clone(),
            ..Point::default()
        };
        match entry {
            serde_json::Value::Object(fields) => {
                point.value = match fields.get("value") {
                    Some(v) => number(v).ok_or_else(|| format!("metric `{name}`: `value` is not a number"))?,
                    None => return Err(format!("metric `{name}` has no `value`")),
                };
                if let Some(labels) = fields.get("labels") {
                    json_labels(name, labels, &mut point.labels)?;
                }
            }
            other => {
                point.value = number(other).ok_or_else(|| {
                    format!("metric `{name}`: not a number nor an object with `value`")
                })?;
            }
        }
        if !point.value.is_finite() {
            return Err(format!("metric `{name}`: the value is not finite"));
        }
        out.push(point);
    }
    Ok(())
}

fn number(v: &serde_json::Value) -> Option<f64> {
    match v {
        serde_json::Value::Number(n) => n.as_f64(),
        serde_json::Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

fn json_labels(
    name: &str,
    labels: &serde_json::Value,
    out: &mut Vec<(String, String)>,
) -> Result<(), String> {
    let labels = labels
        .as_object()
        .ok_or_else(|| format!("metric `{name}`: `labels` is not an object"))?;
    for (key, value) in labels {
        check_label(key)?;
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => return Err(format!("metric `{name}`: label `{key}` is not a string")),
        };
        push_label(out, key, text)?;
    }
    Ok(())
}

/// Lines, one sample each, in either form (blank lines and `#` comments are skipped):
/// `name{label="v",…} value [timestamp_ms]` (Prometheus' text form) or
/// `name value [key=value …] [ts=milliseconds]` (the `exec` input's `metrics` format).
fn lines(text: &str, out: &mut Vec<Point>) -> Result<(), String> {
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let point = line_point(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        out.push(point);
    }
    if out.is_empty() {
        return Err("the body holds no sample".into());
    }
    Ok(())
}

fn line_point(line: &str) -> Result<Point, String> {
    let name_end = line
        .find(|c: char| c == '{' || c.is_ascii_whitespace())
        .unwrap_or(line.len());
    let name = &line[..name_end];
    check_name(name)?;
    let mut point = Point {
        name: name.to_string(),
        ..Point::default()
    };
    let mut rest = &line[name_end..];
    let braces = rest.starts_with('{');
    if braces {
        rest = brace_labels(&rest[1..], &mut point.labels)?;
    }
    let mut words = rest.split_ascii_whitespace();
    let value = words.next().ok_or("no value")?;
    point.value = value
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("`{value}` is not a finite number"))?;
    for word in words {
        if braces {
            if point.ts_ms.is_some() {
                return Err(format!("unexpected `{word}` after the timestamp"));
            }
            point.ts_ms = Some(millis(word)?);
            continue;
        }
        let (key, value) = word
            .split_once('=')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty())
            .ok_or_else(|| format!("`{word}` is not key=value"))?;
        if key == "ts" {
            point.ts_ms = Some(millis(value)?);
        } else {
            check_label(key)?;
            push_label(&mut point.labels, key, value.to_string())?;
        }
    }
    Ok(point)
}

fn millis(word: &str) -> Result<i64, String> {
    word.parse::<i64>()
        .ok()
        .filter(|t| *t >= 0)
        .ok_or_else(|| format!("`{word}` is not a time in whole milliseconds"))
}

/// Reads `key="value",…}` and returns what follows the closing brace.
fn brace_labels<'a>(mut text: &'a str, out: &mut Vec<(String, String)>) -> Result<&'a str, String> {
    loop {
        text = text.trim_start();
        if let Some(rest) = text.strip_prefix('}') {
            return Ok(rest);
        }
        let (key, after) = text.split_once('=').ok_or("a label without `=`")?;
        let key = key.trim();
        check_label(key)?;
        let after = after
            .trim_start()
            .strip_prefix('"')
            .ok_or_else(|| format!("label `{key}`: the value must be in double quotes"))?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err(format!("label `{key}`: no closing quote")),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => return Err(format!("label `{key}`: no closing quote")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        push_label(out, key, value)?;
        text = after[end + 1..].trim_start();
        if let Some(rest) = text.strip_prefix(',') {
            text = rest;
        } else if !text.starts_with('}') {
            return Err("labels must be separated by `,` and closed by `}`".into());
        }
    }
}

/// Adds a label; a repeated key keeps its last value.
fn push_label(out: &mut Vec<(String, String)>, key: &str, value: String) -> Result<(), String> {
    if let Some(slot) = out.iter_mut().find(|(k, _)| k == key) {
        slot.1 = value;
        return Ok(());
    }
    if out.len() >= MAX_LABELS {
        return Err(format!("more than {MAX_LABELS} labels"));
    }
    out.push((key.to_string(), value));
    Ok(())
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 200
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

fn check_name(name: &str) -> Result<(), String> {
    if valid_name(name) {
        return Ok(());
    }
    let mut e = String::from("`");
    // A name of any length or content must not make the answer long or odd.
    let shown: String = name.chars().take(40).filter(|c| !c.is_control()).collect();
    let _ = write!(e, "{shown}` is not a metric name (A-Z a-z 0-9 _ . : -)");
    Err(e)
}

fn check_label(key: &str) -> Result<(), String> {
    if valid_name(key) {
        return Ok(());
    }
    let shown: String = key.chars().take(40).filter(|c| !c.is_control()).collect();
    Err(format!("`{shown}` is not a label name (A-Z a-z 0-9 _ . : -)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<Point>, String> {
        let mut out = Vec::new();
        body(text.as_bytes(), false, &mut out).map(|()| out)
    }

    fn point(name: &str, labels: &[(&str, &str)], value: f64, ts_ms: Option<i64>) -> Point {
        Point {
            name: name.into(),
            labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            value,
            ts_ms,
        }
    }

    #[test]
    fn pollect_documents_give_values_and_labels() {
        let got = parse(r#"{"metrics": {"backup_size": {"value": 12.5, "labels": {"host": "nas", "disk": 2}}, "jobs": 3}}"#);
        assert_eq!(
            got.unwrap(),
            [
                point("backup_size", &[("disk", "2"), ("host", "nas")], 12.5, None),
                point("jobs", &[], 3.0, None),
            ]
        );
    }

    #[test]
    fn both_line_forms_give_values_labels_and_times() {
        let got = parse("# comment\nroom_temp{room=\"kit\\\"chen\",floor=\"1\"} 21.5 1700000000000\n\ncpu_temp 72.4 host=pi ts=1716734400123\nup 1\n");
        assert_eq!(
            got.unwrap(),
            [
                point("room_temp", &[("room", "kit\"chen"), ("floor", "1")], 21.5, Some(1_700_000_000_000)),
                point("cpu_temp", &[("host", "pi")], 72.4, Some(1_716_734_400_123)),
                point("up", &[], 1.0, None),
            ]
        );
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        for (body, reason) in [
            ("", "no sample"),
            ("{", "not JSON"),
            (r#"{"x": 1}"#, "no `metrics`"),
            (r#"{"metrics": {"a": "high"}}"#, "not a number"),
            (r#"{"metrics": {"a b": 1}}"#, "not a metric name"),
            (r#"{"metrics": {"a": {"labels": {}}}}"#, "no `value`"),
            (r#"{"metrics": {"a": {"value": 1, "labels": {"k": [1]}}}}"#, "not a string"),
            ("temp", "no value"),
            ("temp nan", "not a finite number"),
            ("temp{room=kitchen} 1", "double quotes"),
            ("temp{room=\"k} 1", "no closing quote"),
            ("temp{room=\"k\" x=\"y\"} 1", "separated"),
            ("temp 1 room", "not key=value"),
            ("temp 1 ts=soon", "whole milliseconds"),
            ("temp{a=\"1\"} 1 2 3", "after the timestamp"),
            ("t 1 a=1 b=1 c=1 d=1 e=1 f=1 g=1 h=1 i=1 j=1 k=1", "more than 10 labels"),
        ] {
            let e = parse(body).unwrap_err();
            assert!(e.contains(reason), "{body:?}: {e}");
        }
        let mut out = Vec::new();
        assert!(body(&[0xff, 0xfe], false, &mut out).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn garbage_never_panics() {
        let mut out = Vec::new();
        let mut seed = 1u64;
        let alphabet = b"{}\"=,\\ \n#a1.e-+x\x00\xc3";
        for _ in 0..20_000 {
            let len = (seed % 40) as usize;
            let mut buf = Vec::with_capacity(len);
            for _ in 0..len {
                seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                buf.push(alphabet[(seed >> 33) as usize % alphabet.len()]);
            }
            let _ = body(&buf, false, &mut out);
            let _ = body(&buf, true, &mut out);
        }
    }
}
