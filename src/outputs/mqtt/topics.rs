//! Topics and payloads of the three layouts, written into buffers the caller reuses.

use crate::core::{Sample, Series};
use std::fmt::Write as _;

/// One topic level from a name or label value: `/`, `+`, `#` and NUL would split the level or
/// make it a wildcard, so they become `_`; an empty value is `_` too (an empty level would
/// make two series share a topic with their neighbours).
pub fn level(text: &str) -> String {
    let mut out = String::with_capacity(text.len().max(1));
    push_level(text, &mut out);
    out
}

pub fn push_level(text: &str, out: &mut String) {
    if text.is_empty() {
        out.push('_');
        return;
    }
    out.extend(
        text.chars()
            .map(|c| if matches!(c, '/' | '+' | '#' | '\0') { '_' } else { c }),
    );
}

/// `<prefix>/<metric>[/<label value>…]`: the values of every label but `host` (which is in
/// the prefix), in label-name order.
pub fn series_topic(prefix: &str, series: &Series, out: &mut String) {
    out.clear();
    out.push_str(prefix);
    out.push('/');
    push_level(&series.name, out);
    for (k, v) in series.labels.iter() {
        if &**k != "host" {
            out.push('/');
            push_level(v, out);
        }
    }
}

/// The `batch` layout's topic level for a series whose input is unknown (read back from a
/// outage buffer written by an older build): its metric family, the name up to the first `_`.
pub fn family(name: &str) -> &str {
    name.split('_').next().unwrap_or(name)
}

/// The bare number of the `value` layout.
pub fn value_payload(value: f64, out: &mut String) {
    out.clear();
    push_number(value, out);
}

/// `{"value":…,"timestamp_ms":…,"labels":{…}}`
pub fn json_payload(s: &Sample, series: &Series, out: &mut String) {
    out.clear();
    out.push_str("{\"value\":");
    push_number(s.value, out);
    let _ = write!(out, ",\"timestamp_ms\":{},\"labels\":", s.ts_ms);
    push_labels(series, out);
    out.push('}');
}

/// One element of a `batch` array: `{"name":…,"value":…,"timestamp_ms":…,"labels":{…}}`.
pub fn batch_item(s: &Sample, series: &Series, out: &mut String) {
    out.push_str("{\"name\":");
    json_string(&series.name, out);
    out.push_str(",\"value\":");
    push_number(s.value, out);
    let _ = write!(out, ",\"timestamp_ms\":{},\"labels\":", s.ts_ms);
    push_labels(series, out);
    out.push('}');
}

fn push_labels(series: &Series, out: &mut String) {
    out.push('{');
    for (i, (k, v)) in series.labels.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_string(k, out);
        out.push(':');
        json_string(v, out);
    }
    out.push('}');
}

/// Samples are finite (the emitter drops the rest); `null` keeps the JSON valid if not.
pub fn push_number(value: f64, out: &mut String) {
    if value.is_finite() {
        let _ = write!(out, "{value}");
    } else {
        out.push_str("null");
    }
}

pub(crate) use crate::common::json::write_string as json_string;
