//! What an input writes its readings into during one collection.

use super::metric::{InternError, Sample, SeriesKind, SeriesTable};
use super::rate::RateTracker;
use std::cell::RefCell;
use std::fmt;

/// Why one collection failed or was incomplete. Built only on the error path.
#[derive(Debug, Clone, PartialEq)]
pub struct InputError(pub String);

impl InputError {
    pub fn new(msg: impl Into<String>) -> Self {
        InputError(msg.into())
    }

    pub fn io(path: &std::path::Path, e: &std::io::Error) -> Self {
        InputError(format!("{}: {e}", path.display()))
    }

    pub fn parse(path: &std::path::Path, what: impl fmt::Display) -> Self {
        InputError(format!("{}: {what}", path.display()))
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InputError {}

/// Collects samples for one input at one timestamp.
///
/// Every sample of a collection carries the same tick timestamp, so series line up across
/// inputs and hosts. Non-finite values are never written.
pub struct Emitter<'a> {
    table: &'a RefCell<SeriesTable>,
    rates: &'a mut RateTracker,
    out: &'a mut Vec<Sample>,
    ts_ms: i64,
    unstorable: u64,
    refused_for_room: u64,
    partial: Option<InputError>,
    origin: u16,
    /// Where log records go (`Emitter::log`); none in tests and benches.
    #[cfg(feature = "logs")]
    hub: Option<&'a super::hub::Hub>,
}

impl<'a> Emitter<'a> {
    pub fn new(
        table: &'a RefCell<SeriesTable>,
        rates: &'a mut RateTracker,
        out: &'a mut Vec<Sample>,
        ts_ms: i64,
    ) -> Self {
        Emitter {
            table,
            rates,
            out,
            ts_ms,
            unstorable: 0,
            refused_for_room: 0,
            partial: None,
            origin: crate::core::metric::NO_ORIGIN,
            #[cfg(feature = "logs")]
            hub: None,
        }
    }

    /// Sends log records to the outputs that take logs, through `hub`.
    #[cfg(feature = "logs")]
    pub fn set_hub(&mut self, hub: &'a super::hub::Hub) {
        self.hub = Some(hub);
    }

    /// Hands a log record to every output that takes logs (stamped with the collection's
    /// time unless it has its own, and with the agent's host name unless it names one).
    /// Returns false when none takes logs. A full log queue drops its oldest records
    /// (counted) rather than wait: a collection never waits on an output.
    #[cfg(feature = "logs")]
    pub fn log(&mut self, record: &super::logs::LogRecord<'_>) -> bool {
        let Some(hub) = self.hub else {
            return false;
        };
        let mut record = record.clone();
        if record.ts_ms == 0 {
            record.ts_ms = self.ts_ms;
        }
        if record.received_ms == 0 {
            record.received_ms = super::clock::now_ms();
        }
        let host;
        if record.hostname.is_empty() {
            host = self.table.borrow().host().to_string();
            record.hostname = host.as_str().into();
        }
        let mut buf = Vec::new();
        super::logs::encode(&record, &mut buf).is_ok() && hub.publish_log(&buf)
    }

    pub fn ts_ms(&self) -> i64 {
        self.ts_ms
    }

    /// A value that is what it is now.
    pub fn gauge(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.gauge_suffixed(name, "", labels, value);
    }

    /// A gauge stamped with a time its source gave (exec's `ts=`), not the tick's.
    pub fn gauge_at(&mut self, name: &str, labels: &[(&str, &str)], value: f64, ts_ms: i64) {
        if !value.is_finite() {
            return;
        }
        if let Some(series) = self.intern(name, "", labels, SeriesKind::Gauge) {
            self.out.push(Sample {
                series,
                ts_ms,
                value,
            });
        }
    }

    /// A gauge named `name + suffix`, without building the joined name per sample.
    pub fn gauge_suffixed(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        self.push_now(name, suffix, labels, value, SeriesKind::Gauge);
    }

    /// A per-second rate derived from a counter (see [`Emitter::rate_only`]), named
    /// `name + suffix` (`_rate`, `_bits_rate`), so outputs know it for a rate.
    pub fn rate_suffixed(&mut self, name: &str, suffix: &str, labels: &[(&str, &str)], rate: f64) {
        self.push_now(name, suffix, labels, rate, SeriesKind::Rate);
    }

    fn push_now(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(&str, &str)],
        value: f64,
        kind: SeriesKind,
    ) {
        if !value.is_finite() {
            return;
        }
        if let Some(series) = self.intern(name, suffix, labels, kind) {
            self.out.push(Sample {
                series,
                ts_ms: self.ts_ms,
                value,
            });
        }
    }

    /// A monotonic counter: writes the raw value as `name` and its per-second rate as
    /// `name_rate` (from the second reading on, and not across a reset). Returns the rate
    /// so an input can derive more from it (for example bits per second).
    pub fn counter(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> Option<f64> {
        self.push_now(name, "", labels, value, SeriesKind::Counter);
        let rate = self.rate_only(name, labels, value)?;
        self.rate_suffixed(name, "_rate", labels, rate);
        Some(rate)
    }

    /// A counter's raw value alone, for an input that derives its rate itself (snmp: rates
    /// across 32- and 64-bit counter wraps, which the core's tracker takes for resets).
    pub fn counter_value(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.push_now(name, "", labels, value, SeriesKind::Counter);
    }

    /// The per-second rate of a counter without writing the counter or the rate.
    pub fn rate_only(&mut self, name: &str, labels: &[(&str, &str)], value: f64) -> Option<f64> {
        if !value.is_finite() {
            return None;
        }
        let raw = self.intern(name, "", labels, SeriesKind::Counter)?;
        let generation = self.table.borrow().generation(raw);
        self.rates
            .observe_generation(raw, generation, value, self.ts_ms)
    }

    /// Notes a failure that spoiled part of the collection while the rest went on.
    /// The first one is reported; all count.
    pub fn partial_failure(&mut self, e: InputError) {
        if self.partial.is_none() {
            self.partial = Some(e);
        }
    }

    pub fn take_partial_failure(&mut self) -> Option<InputError> {
        self.partial.take()
    }

    /// Samples refused because the series table is full or a sample had too many labels.
    pub fn unstorable(&self) -> u64 {
        self.unstorable
    }

    /// Of [`Emitter::unstorable`], those refused because the table had no room for a new
    /// series (`max_series`).
    pub fn refused_for_room(&self) -> u64 {
        self.refused_for_room
    }

    pub fn emitted(&self) -> usize {
        self.out.len()
    }

    /// Marks every series this emitter writes as the input `origin`'s
    /// ([`SeriesTable::origin_id`]).
    pub fn set_origin(&mut self, origin: u16) {
        self.origin = origin;
    }

    fn intern(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(&str, &str)],
        kind: SeriesKind,
    ) -> Option<u32> {
        let mut table = self.table.borrow_mut();
        match table.intern_kind(name, suffix, labels, kind) {
            Ok(id) => {
                table.set_origin(id, self.origin);
                Some(id)
            }
            Err(InternError::TooManyLabels) => {
                self.unstorable += 1;
                None
            }
            Err(InternError::TableFull) => {
                self.unstorable += 1;
                self.refused_for_room += 1;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(table: &RefCell<SeriesTable>, out: &[Sample]) -> Vec<(String, f64)> {
        let t = table.borrow();
        out.iter()
            .map(|s| (t.get(s.series).name.to_string(), s.value))
            .collect()
    }

    #[test]
    fn counter_writes_raw_then_rate_from_the_second_reading() {
        let table = RefCell::new(SeriesTable::new("h", 100));
        let mut rates = RateTracker::default();
        let mut out = Vec::new();
        Emitter::new(&table, &mut rates, &mut out, 0).counter("c", &[], 10.0);
        assert_eq!(names(&table, &out), [("c".into(), 10.0)]);
        out.clear();
        let rate = Emitter::new(&table, &mut rates, &mut out, 10_000).counter("c", &[], 110.0);
        assert_eq!(rate, Some(10.0));
        assert_eq!(
            names(&table, &out),
            [("c".into(), 110.0), ("c_rate".into(), 10.0)]
        );
    }

    #[test]
    fn gauges_counters_and_their_rates_are_interned_with_their_kind() {
        let table = RefCell::new(SeriesTable::new("h", 100));
        let mut rates = RateTracker::default();
        let mut out = Vec::new();
        for ts in [0, 10_000] {
            let mut em = Emitter::new(&table, &mut rates, &mut out, ts);
            em.gauge("g", &[], 1.0);
            em.gauge_at("e", &[], 1.0, 5);
            if let Some(rate) = em.counter("c", &[], (ts / 1000) as f64) {
                em.rate_suffixed("c", "_bits_rate", &[], rate * 8.0);
            }
            em.rate_only("q", &[], 1.0);
        }
        let t = table.borrow();
        let kinds: Vec<(String, f64, Option<SeriesKind>)> = out
            .iter()
            .map(|s| (t.get(s.series).name.to_string(), s.value, t.kind(s.series)))
            .collect();
        let g = Some(SeriesKind::Gauge);
        let c = Some(SeriesKind::Counter);
        let r = Some(SeriesKind::Rate);
        assert_eq!(
            kinds,
            [
                ("g".into(), 1.0, g),
                ("e".into(), 1.0, g),
                ("c".into(), 0.0, c),
                ("g".into(), 1.0, g),
                ("e".into(), 1.0, g),
                ("c".into(), 10.0, c),
                ("c_rate".into(), 1.0, r),
                ("c_bits_rate".into(), 8.0, r),
            ]
        );
        drop(t);
        let q = table.borrow_mut().intern("q", "", &[]).unwrap();
        assert_eq!(
            table.borrow().kind(q),
            c,
            "a counter read only for its rate"
        );
    }

    #[test]
    fn non_finite_values_are_not_written() {
        let table = RefCell::new(SeriesTable::new("h", 100));
        let mut rates = RateTracker::default();
        let mut out = Vec::new();
        let mut em = Emitter::new(&table, &mut rates, &mut out, 0);
        em.gauge("g", &[], f64::NAN);
        em.gauge("g", &[], f64::INFINITY);
        assert_eq!(em.emitted(), 0);
    }

    #[test]
    fn full_table_counts_unstorable_samples() {
        let table = RefCell::new(SeriesTable::new("h", 1));
        let mut rates = RateTracker::default();
        let mut out = Vec::new();
        let mut em = Emitter::new(&table, &mut rates, &mut out, 0);
        em.gauge("a", &[], 1.0);
        em.gauge("b", &[], 1.0);
        assert_eq!(em.emitted(), 1);
        assert_eq!(em.unstorable(), 1);
        assert_eq!(em.refused_for_room(), 1);
        let many: Vec<(String, String)> = (0..13).map(|i| (format!("k{i}"), "v".into())).collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(k, v)| (&**k, &**v)).collect();
        em.gauge("a", &many, 1.0);
        assert_eq!(em.unstorable(), 2);
        assert_eq!(em.refused_for_room(), 1);
    }
}
