//! The text formats a scrape gets: Prometheus 0.0.4 and OpenMetrics 1.0.
//!
//! One family per metric name, with `# HELP` (the input that collects it) and `# TYPE`; a
//! counter is a `counter` whose samples end in `_total` in both formats (OpenMetrics
//! requires it, Prometheus's naming rules and `promtool check metrics` ask for it in 0.0.4,
//! and the name in Prometheus then does not depend on which format a scraper negotiated),
//! a gauge a `gauge`, a series read back from an older outage buffer without a kind
//! `untyped` (`unknown`). Names are the agent's otherwise; a character Prometheus does not
//! allow in a name becomes `_`. Label values are escaped (`\\`, `\"`, `\n`).

use super::Entry;
use crate::core::{SeriesId, SeriesKind, SeriesTable};
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    OpenMetrics,
}

impl Format {
    /// What the scraper's `Accept` header asks for.
    pub fn of_accept(accept: &str) -> Format {
        match accept.contains("application/openmetrics-text") {
            true => Format::OpenMetrics,
            false => Format::Text,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Writes `live` (sorted by name, see `Latest::live`) into `out`.
pub(super) fn render(
    live: &[(SeriesId, Entry)],
    table: &SeriesTable,
    format: Format,
    timestamps: bool,
    out: &mut Vec<u8>,
) {
    let mut family: Option<&str> = None;
    let mut total = false;
    for &(id, e) in live {
        let series = table.get(id);
        let name = &*series.name;
        if family != Some(name) {
            family = Some(name);
            let kind = table.kind(id).unwrap_or(SeriesKind::Untyped);
            total = kind == SeriesKind::Counter;
            let base = match total {
                true => name.strip_suffix("_total").unwrap_or(name),
                false => name,
            };
            let family_name = |out: &mut Vec<u8>| {
                write_name(out, base);
                if total && format == Format::Text {
                    out.extend_from_slice(b"_total");
                }
            };
            out.extend_from_slice(b"# HELP ");
            family_name(out);
            let _ = match table.origin(id) {
                Some(input) => writeln!(out, " {name} from rtcollector's {input} input"),
                None => writeln!(out, " {name} from rtcollector"),
            };
            out.extend_from_slice(b"# TYPE ");
            family_name(out);
            let _ = writeln!(out, " {}", type_name(kind, format));
        }
        match total {
            true => write_counter_name(out, name.strip_suffix("_total").unwrap_or(name)),
            false => write_name(out, name),
        }
        write_labels(out, &series.labels);
        out.push(b' ');
        write_value(out, e.value);
        if timestamps {
            match format {
                Format::Text => {
                    let _ = write!(out, " {}", e.ts_ms);
                }
                Format::OpenMetrics => {
                    let _ = write!(out, " {}.{:03}", e.ts_ms.div_euclid(1000), e.ts_ms.rem_euclid(1000));
                }
            }
        }
        out.push(b'\n');
    }
    if format == Format::OpenMetrics {
        out.extend_from_slice(b"# EOF\n");
    }
}

fn type_name(kind: SeriesKind, format: Format) -> &'static str {
    match (kind, format) {
        (SeriesKind::Counter, _) => "counter",
        (SeriesKind::Gauge | SeriesKind::Rate, _) => "gauge",
        (SeriesKind::Untyped, Format::Text) => "untyped",
        (SeriesKind::Untyped, Format::OpenMetrics) => "unknown",
    }
}

/// `base_total`: a counter's sample name.
fn write_counter_name(out: &mut Vec<u8>, base: &str) {
    write_name(out, base);
    out.extend_from_slice(b"_total");
}

/// A metric or label name with every character outside `[a-zA-Z0-9_:]` as `_` (and a
/// leading digit prefixed by `_`).
fn write_name(out: &mut Vec<u8>, name: &str) {
    if name.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        out.push(b'_');
    }
    out.extend(name.bytes().map(|b| match b {
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b':' => b,
        _ => b'_',
    }));
}

/// A label name: as [`write_name`], but `:` is not allowed there either (one bad label name
/// would make Prometheus refuse the whole scrape).
fn write_label_name(out: &mut Vec<u8>, name: &str) {
    if name.as_bytes().first().is_none_or(u8::is_ascii_digit) {
        out.push(b'_');
    }
    out.extend(name.bytes().map(|b| match b {
        b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => b,
        _ => b'_',
    }));
}

fn write_labels(out: &mut Vec<u8>, labels: &[(Box<str>, Box<str>)]) {
    if labels.is_empty() {
        return;
    }
    out.push(b'{');
    for (i, (k, v)) in labels.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_label_name(out, k);
        out.extend_from_slice(b"=\"");
        for b in v.bytes() {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'"' => out.extend_from_slice(b"\\\""),
                b'\n' => out.extend_from_slice(b"\\n"),
                b => out.push(b),
            }
        }
        out.push(b'"');
    }
    out.push(b'}');
}

/// Go's float syntax as Prometheus parses it; values are finite (the agent writes no
/// others), integers without a fraction.
fn write_value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else {
        let _ = write!(out, "{v}");
    }
}
