//! `stdout`: samples as JSON lines (for pipes and tests) or an aligned table (for people).

use crate::core::{ready_write, Output, Sample, SeriesTable, SeriesView, WriteFuture, WriteReport};
use crate::outputs::OutputCtx;
use serde::Deserialize;
use std::fmt::Write as _;
use std::io::Write as _;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Prints samples: `text` is a readable table per flush, `json` one object per line.
- stdout:
    format: text
";

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// An aligned table per flush.
    #[default]
    Text,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub format: Format,
}

pub struct Stdout {
    format: Format,
    text: String,
}

pub fn build(cfg: &Config, _ctx: &OutputCtx) -> Result<Stdout, String> {
    Ok(Stdout {
        format: cfg.format,
        text: String::new(),
    })
}

impl Output for Stdout {
    fn write<'a>(&'a mut self, batch: &'a [Sample], series: SeriesView<'a>) -> WriteFuture<'a> {
        self.text.clear();
        series.with(|table| match self.format {
            Format::Json => encode_json(batch, table, &mut self.text),
            Format::Text => encode_text(batch, table, &mut self.text),
        });
        let mut out = std::io::stdout().lock();
        let result = out
            .write_all(self.text.as_bytes())
            .and_then(|_| out.flush())
            .map(|_| WriteReport {
                written: batch.len() as u64,
                rejected: 0,
            })
            .map_err(|e| crate::core::OutputError::Retry(format!("cannot write to stdout: {e}")));
        ready_write(result)
    }
}

/// `{"name":…,"labels":{…},"value":…,"timestamp_ms":…}` per line.
pub fn encode_json(batch: &[Sample], table: &SeriesTable, out: &mut String) {
    for s in batch {
        let series = table.get(s.series);
        out.push_str("{\"name\":");
        json_string(&series.name, out);
        out.push_str(",\"labels\":{");
        for (i, (k, v)) in series.labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            json_string(k, out);
            out.push(':');
            json_string(v, out);
        }
        let _ = writeln!(out, "}},\"value\":{},\"timestamp_ms\":{}}}", s.value, s.ts_ms);
    }
}

/// A JSON string literal of `s` (shared with the MQTT output's payloads).
pub(crate) fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A table: series (name and labels other than host), value, time; one block per flush.
pub fn encode_text(batch: &[Sample], table: &SeriesTable, out: &mut String) {
    let Some(first) = batch.first() else { return };
    let mut width = 0;
    for s in batch {
        let start = out.len();
        write_series_text(table, s.series, out);
        width = width.max(out.len() - start);
        out.truncate(start);
    }
    let _ = writeln!(
        out,
        "--- {} samples from {} at {} ---",
        batch.len(),
        table.get(first.series).label("host").unwrap_or("?"),
        format_time(first.ts_ms)
    );
    for s in batch {
        let start = out.len();
        write_series_text(table, s.series, out);
        let pad = width.saturating_sub(out.len() - start);
        let _ = writeln!(out, "{:pad$}  {}", "", s.value, pad = pad);
    }
}

fn write_series_text(table: &SeriesTable, id: u32, out: &mut String) {
    let series = table.get(id);
    out.push_str(&series.name);
    let mut first = true;
    for (k, v) in series.labels.iter().filter(|(k, _)| &**k != "host") {
        out.push(if first { '{' } else { ',' });
        first = false;
        let _ = write!(out, "{k}={v}");
    }
    if !first {
        out.push('}');
    }
}

/// UTC time of day, enough to tell flushes apart without a date library.
fn format_time(ts_ms: i64) -> String {
    let secs = ts_ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_line_has_every_field_and_escapes_strings() {
        let mut t = SeriesTable::new("pi4", 10);
        let id = t.intern("net_rx_bytes", "", &[("iface", "we\"ird")]).unwrap();
        let mut out = String::new();
        encode_json(
            &[Sample {
                series: id,
                ts_ms: 1_700_000_000_000,
                value: 1024.5,
            }],
            &t,
            &mut out,
        );
        assert_eq!(
            out,
            "{\"name\":\"net_rx_bytes\",\"labels\":{\"host\":\"pi4\",\"iface\":\"we\\\"ird\"},\"value\":1024.5,\"timestamp_ms\":1700000000000}\n"
        );
    }

    #[test]
    fn text_table_aligns_values() {
        let mut t = SeriesTable::new("pi4", 10);
        let a = t.intern("mem_used_percent", "", &[]).unwrap();
        let b = t.intern("cpu_usage_percent", "", &[("cpu", "total")]).unwrap();
        let mut out = String::new();
        let batch = [
            Sample { series: a, ts_ms: 3_600_000, value: 42.0 },
            Sample { series: b, ts_ms: 3_600_000, value: 7.5 },
        ];
        encode_text(&batch, &t, &mut out);
        assert_eq!(
            out,
            "--- 2 samples from pi4 at 01:00:00Z ---\nmem_used_percent              42\ncpu_usage_percent{cpu=total}  7.5\n"
        );
    }
}
