//! What `exec` reads: command strings split into words, the Python rtcollector's metric
//! lines, and its JSON document. Every decoder checks before it takes, and says what was wrong.

use crate::core::metric::MAX_LABELS;
use std::fmt;

/// Splits a command string into words the way a POSIX shell splits simple words: blanks
/// separate, `'…'` is literal, `"…"` keeps `\"`, `\\`, `\$` and `` \` `` escapes, and a
/// backslash outside quotes takes the next character literally. Nothing is expanded.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unclosed single quote".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('"' | '\\' | '$' | '`')) => word.push(c),
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unclosed double quote".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unclosed double quote".into()),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(c) => word.push(c),
                    None => return Err("a backslash at the end".into()),
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The first shell operator outside quotes (`|`, `&`, `;`, `<`, `>`, `$`, `` ` ``, `(`,
/// `)`): a command string that has one was written for a shell.
pub fn shell_operator(line: &str) -> Option<char> {
    let mut quote = None;
    let mut escaped = false;
    for c in line.chars() {
        if escaped {
            escaped = false;
            continue;
        }
        match (quote, c) {
            (Some('\''), '\'') | (Some('"'), '"') => quote = None,
            (Some('\''), _) => {}
            (_, '\\') => escaped = true,
            (Some('"'), '$' | '`') => return Some(c),
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '|' | '&' | ';' | '<' | '>' | '$' | '`' | '(' | ')') => return Some(c),
            (None, _) => {}
        }
    }
    None
}

/// Labels one metric line may carry (the exec input adds `source` and `cmd`, the agent
/// `host`).
pub const LINE_LABELS: usize = MAX_LABELS - 2;

/// One decoded line of the `metrics` format: `name value [key=value …] [ts=ms]`.
#[derive(Debug, PartialEq)]
pub struct MetricLine<'a> {
    pub name: &'a str,
    pub value: f64,
    pub labels: heapless::Vec<(&'a str, &'a str), LINE_LABELS>,
    /// `ts=` in milliseconds, when given.
    pub ts_ms: Option<i64>,
}

/// Why a line of the `metrics` format was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    NotUtf8,
    BadName,
    NoValue,
    BadValue,
    /// A word after the value that is not `key=value`, or has an empty key or value.
    BadLabel,
    BadTimestamp,
    TooManyLabels,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LineError::NotUtf8 => "not UTF-8",
            LineError::BadName => "the name is not [A-Za-z0-9_.:-]",
            LineError::NoValue => "no value after the name",
            LineError::BadValue => "the value is not a finite number",
            LineError::BadLabel => "a word after the value is not key=value",
            LineError::BadTimestamp => "ts= is not whole milliseconds",
            LineError::TooManyLabels => "too many labels",
        })
    }
}

/// Whether `name` may name a metric or a label: ASCII letters, digits, `_`, `.`, `:`, `-`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'))
}

/// Decodes one line. `Ok(None)`: a blank line or a `#` comment.
pub fn metric_line(raw: &[u8]) -> Result<Option<MetricLine<'_>>, LineError> {
    let line = std::str::from_utf8(raw).map_err(|_| LineError::NotUtf8)?;
    let mut words = line.split_ascii_whitespace();
    let name = match words.next() {
        None => return Ok(None),
        Some(w) if w.starts_with('#') => return Ok(None),
        Some(w) => w,
    };
    if !valid_name(name) {
        return Err(LineError::BadName);
    }
    let value: f64 = words
        .next()
        .ok_or(LineError::NoValue)?
        .parse()
        .map_err(|_| LineError::BadValue)?;
    if !value.is_finite() {
        return Err(LineError::BadValue);
    }
    let mut labels = heapless::Vec::new();
    let mut ts_ms = None;
    for word in words {
        let (k, v) = word.split_once('=').ok_or(LineError::BadLabel)?;
        if !valid_name(k) || v.is_empty() {
            return Err(LineError::BadLabel);
        }
        if k == "ts" {
            ts_ms = Some(v.parse::<i64>().map_err(|_| LineError::BadTimestamp)?);
        } else if let Some(slot) = labels.iter_mut().find(|(key, _)| *key == k) {
            // A repeated key: the last one wins, as in rtcollector.
            slot.1 = v;
        } else {
            labels
                .push((k, v))
                .map_err(|_| LineError::TooManyLabels)?;
        }
    }
    Ok(Some(MetricLine {
        name,
        value,
        labels,
        ts_ms,
    }))
}

/// What a JSON document held: metrics by name, log entries, and how many values were
/// skipped because they were not numbers or had unusable names.
#[derive(Debug, Default, PartialEq)]
pub struct JsonDoc {
    pub metrics: Vec<(String, f64)>,
    pub logs: Vec<(log::Level, String)>,
    /// Log entries past the limit, not logged.
    pub logs_dropped: u64,
    pub skipped: u64,
}

/// Why a JSON document was rejected as a whole.
#[derive(Debug, PartialEq)]
pub enum JsonError {
    Syntax(String),
    /// Valid JSON, but not an object (or `metrics` is not an object).
    Shape(&'static str),
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Syntax(e) => write!(f, "not JSON: {e}"),
            JsonError::Shape(e) => f.write_str(e),
        }
    }
}

/// Decodes the Python rtcollector's JSON: `{"metrics": {name: number, …}, "logs":
/// [{"message": …, "level": …}, …]}`, or a flat object of `name: number`. Booleans count as 1 and 0 (as
/// they did in Python). At most `max_logs` log entries are kept.
pub fn json_doc(bytes: &[u8], max_logs: usize) -> Result<JsonDoc, JsonError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| JsonError::Syntax(e.to_string()))?;
    let serde_json::Value::Object(mut top) = value else {
        return Err(JsonError::Shape("the document is not a JSON object"));
    };
    let mut doc = JsonDoc::default();
    let metrics = match top.remove("metrics") {
        Some(serde_json::Value::Object(m)) => {
            if let Some(logs) = top.remove("logs") {
                log_entries(logs, max_logs, &mut doc);
            }
            m
        }
        Some(_) => return Err(JsonError::Shape("`metrics` is not an object")),
        None => top,
    };
    for (name, v) in metrics {
        let value = match v {
            serde_json::Value::Number(n) => n.as_f64(),
            serde_json::Value::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
            _ => None,
        };
        match value {
            Some(v) if v.is_finite() && valid_name(&name) => doc.metrics.push((name, v)),
            _ => doc.skipped += 1,
        }
    }
    Ok(doc)
}

fn log_entries(logs: serde_json::Value, max: usize, doc: &mut JsonDoc) {
    let serde_json::Value::Array(entries) = logs else {
        doc.skipped += 1;
        return;
    };
    for entry in entries {
        let parsed = match entry {
            serde_json::Value::String(s) => Some((log::Level::Info, s)),
            serde_json::Value::Object(mut o) => match o.remove("message") {
                Some(serde_json::Value::String(m)) => {
                    let level = o.get("level").and_then(|l| l.as_str()).map_or(
                        log::Level::Info,
                        log_level,
                    );
                    Some((level, m))
                }
                _ => None,
            },
            _ => None,
        };
        match parsed {
            Some(p) if doc.logs.len() < max => doc.logs.push(p),
            Some(_) => doc.logs_dropped += 1,
            None => doc.skipped += 1,
        }
    }
}

fn log_level(name: &str) -> log::Level {
    match name.to_ascii_lowercase().as_str() {
        "error" | "err" | "critical" | "crit" | "fatal" | "alert" | "emerg" => log::Level::Error,
        "warn" | "warning" => log::Level::Warn,
        "debug" => log::Level::Debug,
        "trace" => log::Level::Trace,
        _ => log::Level::Info,
    }
}
