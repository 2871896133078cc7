//! An input built in the test process and collected on demand, its samples keyed as
//! `name{label=value,…}` (without `host`): for tests that hold an input's figures against a
//! peer's own view of them (snmpd, PostgreSQL, MariaDB).

use rtcollector::core::metric::SeriesTable;
use rtcollector::core::rate::RateTracker;
use rtcollector::core::{Emitter, Input, Sample};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// The series table, rate state and sample buffer one input's collections write into.
pub struct Collector {
    table: RefCell<SeriesTable>,
    rates: RateTracker,
    buf: Vec<Sample>,
}

impl Default for Collector {
    fn default() -> Self {
        Collector {
            table: RefCell::new(SeriesTable::new("test", 100_000)),
            rates: RateTracker::default(),
            buf: Vec::new(),
        }
    }
}

impl Collector {
    /// One collection of `input` at `ts_ms`: the samples, or the error.
    pub fn collect(
        &mut self,
        input: &mut impl Input,
        ts_ms: i64,
    ) -> Result<BTreeMap<String, f64>, String> {
        match self.collect_partly(input, ts_ms) {
            (samples, None) => Ok(samples),
            (_, Some(e)) => Err(e),
        }
    }

    /// One collection: what it wrote, and the error (a partial failure writes the rest).
    pub fn collect_partly(
        &mut self,
        input: &mut impl Input,
        ts_ms: i64,
    ) -> (BTreeMap<String, f64>, Option<String>) {
        self.buf.clear();
        let mut em = Emitter::new(&self.table, &mut self.rates, &mut self.buf, ts_ms);
        let result = smol::block_on(input.collect(&mut em));
        let partial = em.take_partial_failure();
        let error = result.err().or(partial).map(|e| e.0);
        let table = self.table.borrow();
        let samples = self
            .buf
            .iter()
            .map(|s| {
                let series = table.get(s.series);
                let labels: Vec<String> = series
                    .labels
                    .iter()
                    .filter(|(k, _)| &**k != "host")
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                (format!("{}{{{}}}", series.name, labels.join(",")), s.value)
            })
            .collect();
        (samples, error)
    }
}

/// The sample `key`; fails naming the keys there are.
pub fn get(got: &BTreeMap<String, f64>, key: &str) -> f64 {
    *got.get(key)
        .unwrap_or_else(|| panic!("no `{key}` in {:#?}", got.keys().collect::<Vec<_>>()))
}
