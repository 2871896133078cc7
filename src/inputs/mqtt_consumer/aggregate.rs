//! Readings of an interval, per series: a plug that publishes every second is one sample per
//! interval. Bounded: at most `max_series` series (readings of further ones are dropped and
//! counted); series silent for an hour are forgotten. A known series is found by its key in
//! a reused buffer, without allocating.

use super::formats::{Kind, Sink};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What a gauge's interval writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum How {
    #[default]
    Last,
    Mean,
    Min,
    Max,
}

struct Acc {
    name: String,
    labels: Vec<(String, String)>,
    kind: Kind,
    how: How,
    last: f64,
    sum: f64,
    min: f64,
    max: f64,
    count: u64,
    /// The last collection that had readings of it (ms).
    seen: i64,
}

impl Acc {
    fn value(&self) -> f64 {
        match (self.kind, self.how) {
            (Kind::Counter, _) | (Kind::Gauge, How::Last) => self.last,
            (Kind::Gauge, How::Mean) => self.sum / self.count as f64,
            (Kind::Gauge, How::Min) => self.min,
            (Kind::Gauge, How::Max) => self.max,
        }
    }
}

pub struct Aggregate {
    max_series: usize,
    index: HashMap<String, usize>,
    accs: Vec<Acc>,
    key: String,
    /// How the gauges of the topic being parsed are aggregated.
    pub how: How,
    /// Readings dropped because the table of series was full.
    pub refused: u64,
    /// The time of the last collection (ms).
    now_ms: i64,
}

/// How long a series may stay silent before it is forgotten.
pub const FORGET_MS: i64 = 3_600_000;

impl Aggregate {
    pub fn new(max_series: usize) -> Self {
        Aggregate {
            max_series,
            index: HashMap::new(),
            accs: Vec::new(),
            key: String::new(),
            how: How::Last,
            refused: 0,
            now_ms: 0,
        }
    }

    pub fn series(&self) -> usize {
        self.accs.len()
    }

    /// Hands every series with readings this interval to `emit`, then starts the next
    /// interval at `now_ms`; forgets series silent for longer than `forget_ms`.
    pub fn drain(&mut self, now_ms: i64, forget_ms: i64, mut emit: impl FnMut(&str, &[(&str, &str)], f64, Kind)) {
        let mut labels: Vec<(&str, &str)> = Vec::new();
        for acc in &mut self.accs {
            if acc.count == 0 {
                continue;
            }
            labels.clear();
            labels.extend(acc.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
            emit(&acc.name, &labels, acc.value(), acc.kind);
            acc.count = 0;
            acc.sum = 0.0;
            acc.seen = now_ms;
        }
        self.now_ms = now_ms;
        let silent = |a: &Acc| now_ms.saturating_sub(a.seen) > forget_ms;
        if self.accs.iter().any(silent) {
            self.accs.retain(|a| !silent(a));
            self.index.clear();
            for (i, a) in self.accs.iter().enumerate() {
                let mut key = String::new();
                push_key(&a.name, a.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())), &mut key);
                self.index.insert(key, i);
            }
        }
    }
}

fn push_key<'a>(name: &str, labels: impl Iterator<Item = (&'a str, &'a str)>, out: &mut String) {
    out.clear();
    out.push_str(name);
    for (k, v) in labels {
        out.push('\0');
        out.push_str(k);
        out.push('\0');
        out.push_str(v);
    }
}

impl Sink for Aggregate {
    fn put(&mut self, name: &str, labels: &[(&str, &str)], value: f64, kind: Kind) {
        let mut key = std::mem::take(&mut self.key);
        push_key(name, labels.iter().copied(), &mut key);
        let slot = match self.index.get(key.as_str()) {
            Some(i) => Some(*i),
            None if self.accs.len() >= self.max_series => None,
            None => {
                self.accs.push(Acc {
                    name: name.to_string(),
                    labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                    kind,
                    how: self.how,
                    last: 0.0,
                    sum: 0.0,
                    min: f64::INFINITY,
                    max: f64::NEG_INFINITY,
                    count: 0,
                    seen: self.now_ms,
                });
                self.index.insert(key.clone(), self.accs.len() - 1);
                Some(self.accs.len() - 1)
            }
        };
        self.key = key;
        let Some(i) = slot else {
            self.refused += 1;
            return;
        };
        let acc = &mut self.accs[i];
        if acc.count == 0 {
            acc.min = value;
            acc.max = value;
        }
        acc.last = value;
        acc.sum += value;
        acc.min = acc.min.min(value);
        acc.max = acc.max.max(value);
        acc.count += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Row = (String, Vec<(String, String)>, f64);

    fn drained(a: &mut Aggregate) -> Vec<Row> {
        let mut got = Vec::new();
        let next = a.now_ms + 1000;
        a.drain(next, 10_000, |n, l, v, _| {
            got.push((n.to_string(), l.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), v))
        });
        got
    }

    #[test]
    fn an_interval_writes_last_mean_min_or_max_and_counters_their_last() {
        for (how, want) in [(How::Last, 2.0), (How::Mean, 3.0), (How::Min, 2.0), (How::Max, 4.0)] {
            let mut a = Aggregate::new(10);
            a.how = how;
            for v in [3.0, 4.0, 2.0] {
                a.put("p_w", &[("device", "plug")], v, Kind::Gauge);
            }
            a.put("e_kwh", &[], 7.0, Kind::Counter);
            a.put("e_kwh", &[], 8.0, Kind::Counter);
            let got = drained(&mut a);
            assert_eq!(got[0].2, want, "{how:?}");
            assert_eq!(got[1].2, 8.0);
            assert!(drained(&mut a).is_empty(), "nothing new, nothing written");
        }
    }

    #[test]
    fn series_beyond_the_cap_are_dropped_and_counted_and_silent_ones_forgotten() {
        let mut a = Aggregate::new(2);
        for name in ["a", "b", "c", "c"] {
            a.put(name, &[], 1.0, Kind::Gauge);
        }
        assert_eq!(a.refused, 2);
        assert_eq!(drained(&mut a).len(), 2);
        for _ in 0..11 {
            a.put("a", &[], 1.0, Kind::Gauge);
            drained(&mut a);
        }
        assert_eq!(a.series(), 1, "b was forgotten");
        a.put("c", &[], 1.0, Kind::Gauge);
        assert_eq!(a.refused, 2, "room for c again");
    }
}
