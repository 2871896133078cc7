//! What one collection read, kept in reused cells: walked columns (index → value) and the
//! numbers of single OIDs; and the wrap-aware counter arithmetic of `mode: rate`.

use super::ber::Oid;
use super::pdu::Value;
use std::collections::HashMap;
use std::fmt::Write;

/// A counter's width: how far it counts before it wraps to 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Width {
    /// Not a counter (INTEGER, Gauge32, TimeTicks, a number in a string).
    None,
    Bits32,
    Bits64,
}

/// A numeric reading: as f64 for gauges, the exact integer for counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Num {
    pub value: f64,
    pub raw: u64,
    pub width: Width,
}

/// The number an SNMP value stands for, if any. A string holding a number (UCD's `laLoad`
/// is "0.15") counts as one.
pub fn number(v: &Value<'_>) -> Option<Num> {
    let gauge = |value: f64| Num { value, raw: 0, width: Width::None };
    match *v {
        Value::Integer(i) => Some(gauge(i as f64)),
        Value::Gauge32(g) => Some(gauge(g as f64)),
        Value::TimeTicks(t) => Some(gauge(t as f64)),
        Value::Counter32(c) => Some(Num { value: c as f64, raw: c as u64, width: Width::Bits32 }),
        Value::Counter64(c) => Some(Num { value: c as f64, raw: c, width: Width::Bits64 }),
        Value::Octets(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim_matches(|c: char| c.is_whitespace() || c == '\0').parse::<f64>().ok())
            .filter(|f| f.is_finite())
            .map(gauge),
        _ => None,
    }
}

/// The text of a value for a label: strings as they are (invalid UTF-8 replaced, trailing NULs
/// cut), numbers in decimal, addresses dotted.
pub fn text_into(v: &Value<'_>, out: &mut String) {
    out.clear();
    match *v {
        Value::Octets(b) => {
            let b = b.strip_suffix(&[0]).unwrap_or(b);
            out.push_str(&String::from_utf8_lossy(b));
        }
        Value::IpAddress(a) => {
            let _ = write!(out, "{}.{}.{}.{}", a[0], a[1], a[2], a[3]);
        }
        Value::Integer(i) => {
            let _ = write!(out, "{i}");
        }
        Value::Counter32(n) | Value::Gauge32(n) | Value::TimeTicks(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Counter64(n) => {
            let _ = write!(out, "{n}");
        }
        _ => {}
    }
}

/// One row of a walked column.
#[derive(Debug, Default)]
pub struct Cell {
    /// The OID's arcs after the column, dotted (`3` for ifIndex 3).
    pub index: String,
    pub num: Option<Num>,
    pub text: String,
}

/// A walked column; its cells are reused from one collection to the next.
#[derive(Debug)]
pub struct Column {
    pub oid: Oid,
    cells: Vec<Cell>,
    len: usize,
    /// Set when no metric needs this column but as the fallback of column N: it is walked
    /// only when N (walked before it) came back empty.
    pub only_fallback_of: Option<usize>,
}

/// The most rows one walk keeps, so that a huge table cannot exhaust memory.
pub const MAX_ROWS: usize = 10_000;

impl Column {
    pub fn new(oid: Oid) -> Self {
        Column { oid, cells: Vec::new(), len: 0, only_fallback_of: None }
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    pub fn rows(&self) -> &[Cell] {
        &self.cells[..self.len]
    }

    /// Adds the value of `oid` (under this column) as the next row.
    pub fn push(&mut self, oid: &Oid, v: &Value<'_>) {
        if self.len == self.cells.len() {
            self.cells.push(Cell::default());
        }
        let cell = &mut self.cells[self.len];
        self.len += 1;
        cell.index.clear();
        for (i, arc) in oid.suffix(&self.oid).iter().enumerate() {
            if i > 0 {
                cell.index.push('.');
            }
            let _ = write!(cell.index, "{arc}");
        }
        cell.num = number(v);
        text_into(v, &mut cell.text);
    }

    /// The row of `index`; `hint` is where it usually is (columns of one table come in the
    /// same order), so the lookup is one comparison in the common case.
    pub fn find(&self, index: &str, hint: usize) -> Option<&Cell> {
        let rows = self.rows();
        match rows.get(hint) {
            Some(c) if c.index == index => Some(c),
            _ => rows.iter().find(|c| c.index == index),
        }
    }
}

/// The increase of a counter from `prev` to `now`. A counter of known width that went down
/// wrapped if the wrapped increase is under half its range; otherwise it was reset (the device
/// restarted, the counter was cleared) and there is no increase to tell.
pub fn counter_delta(prev: u64, now: u64, width: Width) -> Option<u64> {
    if now >= prev {
        return Some(now - prev);
    }
    let max = match width {
        Width::Bits32 => u32::MAX as u64,
        Width::Bits64 => u64::MAX,
        Width::None => return None,
    };
    let wrapped = (max - prev).checked_add(now)?.checked_add(1)?;
    (wrapped <= max / 2).then_some(wrapped)
}

/// The last reading of one series, for its rate.
#[derive(Debug, Clone, Copy)]
struct Prev {
    num: Num,
    ts_ms: i64,
    cycle: u64,
}

/// Per-series previous readings of one metric, keyed by row (the walk's index, the range's
/// value, or "" for a single OID). Rows not seen in a collection are dropped after it.
#[derive(Debug, Default)]
pub struct Rates {
    prev: HashMap<String, Prev>,
}

impl Rates {
    /// The per-second rate since the previous reading of `key`, and remembers this one.
    pub fn observe(&mut self, key: &str, num: Num, ts_ms: i64, cycle: u64) -> Option<f64> {
        let now = Prev { num, ts_ms, cycle };
        let Some(prev) = self.prev.get_mut(key) else {
            self.prev.insert(key.to_string(), now);
            return None;
        };
        let before = std::mem::replace(prev, now);
        let secs = (ts_ms - before.ts_ms) as f64 / 1000.0;
        if secs <= 0.0 {
            return None;
        }
        let increase = if num.width == Width::None || before.num.width != num.width {
            let d = num.value - before.num.value;
            // Not a counter: a decrease is not a wrap and gives no rate.
            (d >= 0.0).then_some(d)?
        } else {
            counter_delta(before.num.raw, num.raw, num.width)? as f64
        };
        Some(increase / secs)
    }

    /// Forgets rows that the collection `cycle` did not see.
    pub fn sweep(&mut self, cycle: u64) {
        self.prev.retain(|_, p| p.cycle == cycle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(raw: u64, width: Width) -> Num {
        Num { value: raw as f64, raw, width }
    }

    #[test]
    fn counters_wrap_at_their_width() {
        assert_eq!(counter_delta(10, 25, Width::Bits32), Some(15));
        assert_eq!(counter_delta(u32::MAX as u64 - 499, 500, Width::Bits32), Some(1000));
        assert_eq!(counter_delta(u64::MAX - 9, 10, Width::Bits64), Some(20));
        // A drop from the middle of the range is a reset, not a wrap.
        assert_eq!(counter_delta(1_000_000, 100, Width::Bits32), None);
        assert_eq!(counter_delta(1 << 40, 5, Width::Bits64), None);
        assert_eq!(counter_delta(7, 3, Width::None), None);
    }

    #[test]
    fn rates_span_the_tick_timestamps_and_skip_resets() {
        let mut r = Rates::default();
        assert_eq!(r.observe("1", counter(u32::MAX as u64 - 999, Width::Bits32), 10_000, 1), None);
        assert_eq!(r.observe("1", counter(1000, Width::Bits32), 12_000, 2), Some(1000.0));
        assert_eq!(r.observe("1", counter(10, Width::Bits32), 14_000, 3), None, "a reset");
        assert_eq!(r.observe("1", counter(30, Width::Bits32), 15_000, 4), Some(20.0));
        r.sweep(4);
        assert_eq!(r.prev.len(), 1);
        r.sweep(5);
        assert!(r.prev.is_empty());
    }

    #[test]
    fn strings_with_numbers_are_numbers() {
        assert_eq!(number(&Value::Octets(b"0.15")).map(|n| n.value), Some(0.15));
        assert_eq!(number(&Value::Octets(b"eth0")), None);
        assert_eq!(number(&Value::Octets(b"NaN")), None);
        let mut s = String::new();
        text_into(&Value::IpAddress([10, 0, 0, 1]), &mut s);
        assert_eq!(s, "10.0.0.1");
    }
}
