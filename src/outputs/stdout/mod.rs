//! `stdout`: samples as JSON lines (for pipes and tests) or an aligned table (for people).

use crate::core::{ready_write, Output, Sample, SeriesTable, SeriesView, WriteFuture, WriteReport};
use crate::common::json::write_string as json_string;
use crate::outputs::OutputCtx;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::io::Write as _;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Prints samples: `text` is a readable table per flush, `json` one object per line.
- stdout:
    format: text
";

#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON object per line.
    Json,
    /// An aligned table per flush.
    #[default]
    Text,
}

#[derive(Debug, Default, Deserialize, Serialize)]
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

impl Stdout {
    fn print(&self) -> Result<(), crate::core::OutputError> {
        let mut out = std::io::stdout().lock();
        out.write_all(self.text.as_bytes())
            .and_then(|_| out.flush())
            .map_err(|e| crate::core::OutputError::Retry(format!("cannot write to stdout: {e}")))
    }
}

/// `2026-12-06T10:00:00.000Z err daemon nas smartd[12]: message`, one line per record.
#[cfg(feature = "logs")]
fn encode_log_text(record: &crate::core::logs::LogRecord<'_>, out: &mut String) {
    use crate::core::logs::{facility_name, severity_name};
    let _ = write!(
        out,
        "{} {} {} {} {}",
        crate::core::clock::utc_text(record.ts_ms),
        severity_name(record.severity),
        facility_name(record.facility),
        if record.hostname.is_empty() { "-" } else { &record.hostname },
        if record.appname.is_empty() { "-" } else { &record.appname },
    );
    if !record.procid.is_empty() {
        let _ = write!(out, "[{}]", record.procid);
    }
    out.push_str(": ");
    // One record, one line: a message's own line breaks are shown escaped.
    for c in record.message.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('\n');
}

impl Output for Stdout {
    #[cfg(feature = "logs")]
    fn kinds(&self) -> crate::core::output::Kinds {
        crate::core::output::Kinds::Both
    }

    #[cfg(feature = "logs")]
    fn write_logs<'a>(&'a mut self, batch: &'a crate::core::logs::LogBatch) -> WriteFuture<'a> {
        self.text.clear();
        let mut written = 0;
        for (_, record) in batch.records() {
            let Ok(record) = record else { continue };
            match self.format {
                Format::Json => {
                    self.text.push_str("{\"log\":");
                    crate::common::log_json::write_record(&record, &mut self.text);
                    self.text.push_str("}\n");
                }
                Format::Text => encode_log_text(&record, &mut self.text),
            }
            written += 1;
        }
        let result = self.print().map(|()| WriteReport {
            written,
            rejected: batch.len() as u64 - written,
        });
        ready_write(result)
    }

    fn write<'a>(&'a mut self, batch: &'a [Sample], series: SeriesView<'a>) -> WriteFuture<'a> {
        self.text.clear();
        series.with(|table| match self.format {
            Format::Json => encode_json(batch, table, &mut self.text),
            Format::Text => encode_text(batch, table, &mut self.text),
        });
        let result = self.print().map(|()| WriteReport {
            written: batch.len() as u64,
            rejected: 0,
        });
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

/// A table: series (name and labels other than host), rounded value, time; one block per flush.
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
        let _ = write!(out, "{:pad$}  ", "", pad = pad);
        write_readable(s.value, out);
        out.push('\n');
    }
}

/// Significant digits the text table shows of a fraction.
const READABLE_DIGITS: i32 = 6;

/// `value` rounded for a person: up to six significant digits, trailing zeros dropped.
///
/// Digits left of the point are never rounded away: a counter of 123456789 (or a rate
/// of 123456789.4) must read as that integer, not as 1.23457e8, since people compare
/// counters digit by digit. Integers print as integers (`42`, not `42.0`). Magnitudes
/// below 1e-4 use exponent form, where fixed notation would be mostly zeros.
fn write_readable(value: f64, out: &mut String) {
    let magnitude = value.abs();
    if !value.is_finite() || value.fract() == 0.0 {
        let _ = write!(out, "{value}");
        return;
    }
    // Rounded by arithmetic and printed in the shortest form that reads back the same,
    // not with a precision (`{:.3}`): exact-precision float formatting costs the minimal
    // binary several KB.
    let start = out.len();
    if magnitude < 1e-4 {
        let mut exponent = magnitude.log10().floor() as i32;
        let mut mantissa = round_to(value / 10f64.powi(exponent), READABLE_DIGITS - 1);
        if mantissa.abs() >= 10.0 {
            mantissa /= 10.0;
            exponent += 1;
        }
        let _ = write!(out, "{mantissa}e{exponent}");
        return;
    }
    let int_digits = magnitude.log10().floor() as i32 + 1;
    let decimals = (READABLE_DIGITS - int_digits).max(0);
    let _ = write!(out, "{}", round_to(value, decimals));
    trim_fraction_zeros(out, start);
}

/// `value` rounded to `decimals` places.
fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// Drops trailing zeros (and a bare point) of the number written at `out[start..]`.
fn trim_fraction_zeros(out: &mut String, start: usize) {
    if !out[start..].contains('.') {
        return;
    }
    let kept = out.trim_end_matches('0').trim_end_matches('.').len();
    out.truncate(kept.max(start + 1));
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

    fn readable(value: f64) -> String {
        let mut out = String::from("x");
        write_readable(value, &mut out);
        out.split_off(1)
    }

    #[test]
    fn text_values_are_rounded_to_six_significant_digits() {
        assert_eq!(readable(54.24430641821946), "54.2443");
        assert_eq!(readable(0.1 + 0.2), "0.3");
        assert_eq!(readable(-7.123456789), "-7.12346");
        assert_eq!(readable(0.000123456789), "0.000123457");
        assert_eq!(readable(99.99999999), "100");
        assert_eq!(readable(2.5e-7), "2.5e-7");
        assert_eq!(readable(1.234567891e-9), "1.23457e-9");
    }

    #[test]
    fn text_integers_and_large_values_keep_every_integer_digit() {
        assert_eq!(readable(42.0), "42");
        assert_eq!(readable(0.0), "0");
        assert_eq!(readable(18_446_744_073_709.0), "18446744073709");
        assert_eq!(readable(9_007_199_254_740_991.0), "9007199254740991");
        assert_eq!(readable(123_456_789.4), "123456789");
        assert_eq!(readable(1234.5678), "1234.57");
        assert_eq!(readable(f64::NAN), "NaN");
        assert_eq!(readable(f64::INFINITY), "inf");
    }

    #[test]
    fn json_keeps_full_precision() {
        let mut t = SeriesTable::new("pi4", 10);
        let id = t.intern("x", "", &[]).unwrap();
        let mut out = String::new();
        let batch = [Sample { series: id, ts_ms: 0, value: 54.24430641821946 }];
        encode_json(&batch, &t, &mut out);
        assert!(out.contains("\"value\":54.24430641821946,"), "{out}");
    }
}
