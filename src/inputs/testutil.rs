//! Running an input against a fixture tree in unit tests.

use crate::core::metric::SeriesTable;
use crate::core::rate::RateTracker;
use crate::core::{Emitter, Input, InputError, Sample};
use crate::inputs::BuildCtx;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// `tests/fixtures/<name>`.
pub fn fixture_dir(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The build context of fixture `name` (its `proc` and `sys` folders).
pub fn fixture_ctx(name: &str) -> BuildCtx {
    let dir = fixture_dir(name);
    BuildCtx::with_roots(dir.join("proc"), dir.join("sys"))
}

/// Samples of one collection, keyed `name` or `name{label=value,…}` (labels sorted, no host).
#[derive(Debug, Default)]
pub struct Collected {
    pub samples: BTreeMap<String, f64>,
    /// Samples stamped with their source's own time instead of the tick's (exec's `ts=`).
    pub own_timestamps: BTreeMap<String, i64>,
    pub error: Option<InputError>,
}

impl std::ops::Index<&str> for Collected {
    type Output = f64;
    fn index(&self, key: &str) -> &f64 {
        self.samples
            .get(key)
            .unwrap_or_else(|| panic!("no sample `{key}`; have: {:#?}", self.samples.keys()))
    }
}

impl Collected {
    pub fn get(&self, key: &str) -> Option<f64> {
        self.samples.get(key).copied()
    }
    pub fn has(&self, key: &str) -> bool {
        self.samples.contains_key(key)
    }
    /// Keys that start with `prefix`.
    pub fn keys_starting(&self, prefix: &str) -> Vec<&str> {
        self.samples
            .keys()
            .filter(|k| k.starts_with(prefix))
            .map(|k| k.as_str())
            .collect()
    }
}

/// An input with its own series table and rate state, collected on demand.
pub struct Harness {
    table: RefCell<SeriesTable>,
    rates: RateTracker,
    input: Box<dyn Input>,
    buf: Vec<Sample>,
    own_timestamps: bool,
}

impl Harness {
    pub fn new(input: Box<dyn Input>) -> Self {
        Harness {
            table: RefCell::new(SeriesTable::new("testhost", 100_000)),
            rates: RateTracker::default(),
            input,
            buf: Vec::new(),
            own_timestamps: false,
        }
    }

    /// For inputs whose source may give a sample's time: those land in
    /// `Collected::own_timestamps` instead of failing the tick-timestamp check.
    pub fn allowing_own_timestamps(mut self) -> Self {
        self.own_timestamps = true;
        self
    }

    pub fn collect(&mut self, ts_ms: i64) -> Collected {
        self.buf.clear();
        let mut em = Emitter::new(&self.table, &mut self.rates, &mut self.buf, ts_ms);
        let result = futures_lite::future::block_on(self.input.collect(&mut em));
        let partial = em.take_partial_failure();
        let mut c = Collected {
            error: result.err().or(partial),
            ..Default::default()
        };
        let table = self.table.borrow();
        for s in &self.buf {
            let series = table.get(s.series);
            let mut key = series.name.to_string();
            let labels: Vec<String> = series
                .labels
                .iter()
                .filter(|(k, _)| &**k != "host")
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            if !labels.is_empty() {
                key = format!("{key}{{{}}}", labels.join(","));
            }
            if s.ts_ms != ts_ms {
                assert!(
                    self.own_timestamps,
                    "every sample carries the tick timestamp: `{key}` has {}",
                    s.ts_ms
                );
                c.own_timestamps.insert(key.clone(), s.ts_ms);
            }
            let previous = c.samples.insert(key.clone(), s.value);
            assert!(
                previous.is_none(),
                "sample `{key}` written twice in one collection"
            );
        }
        c
    }
}

/// Builds an input on fixture `name` and collects once; panics if the collection failed.
pub fn collect_fixture(name: &str, build: impl FnOnce(&BuildCtx) -> Box<dyn Input>) -> Collected {
    let ctx = fixture_ctx(name);
    let c = Harness::new(build(&ctx)).collect(1_700_000_000_000);
    assert!(c.error.is_none(), "collection failed: {:?}", c.error);
    c
}

/// An input's `SAMPLE` checked by the real config loader as a list item under `inputs:`,
/// then its options read on their own (to compare with `Config::default()`).
pub fn sample_options<C: serde::de::DeserializeOwned>(sample: &str) -> C {
    let text: String = sample.lines().map(|l| format!("  {l}\n")).collect();
    crate::config::parse(std::path::Path::new("sample"), &format!("inputs:\n{text}"))
        .expect("SAMPLE is a valid config");
    let mut items: Vec<BTreeMap<String, C>> = yaml_serde::from_str(sample).unwrap();
    items.pop().unwrap().into_values().next().unwrap()
}

/// Writes each of `bad` into `file` and asserts the collection fails naming the file and
/// writes nothing; then removes the file and asserts that fails too.
pub fn assert_bad_contents_rejected(h: &mut Harness, file: &std::path::Path, bad: &[&str]) {
    for (i, text) in bad.iter().enumerate() {
        std::fs::write(file, text).unwrap();
        let got = h.collect(1_000 + i as i64);
        let e = got.error.unwrap_or_else(|| panic!("accepted: {text:?}"));
        assert!(e.0.contains(&*file.to_string_lossy()), "{e}");
        assert!(
            got.samples.is_empty(),
            "nothing half-read is written: {text:?}"
        );
    }
    std::fs::remove_file(file).unwrap();
    assert!(h.collect(1_000_000).error.is_some());
}
