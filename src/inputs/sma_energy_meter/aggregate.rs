//! Per-meter accumulators over one collection interval: the average (and min, max) of
//! power, current, voltage, power factor and frequency over the interval's datagrams, and
//! the last value of each energy counter. Bounded: at most [`MAX_METERS`] meters.

use super::wire::{version_text, Datagram, Records, DECODE_ERRORS};
use std::time::{Duration, Instant};

/// Meters tracked at once; datagrams of further serials are counted as `too_many_meters`.
/// A home has one meter or Home Manager, rarely a few more sharing the group.
pub const MAX_METERS: usize = 16;
/// A meter silent this long is forgotten, freeing its place for a new serial.
pub const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// Tickers remembered per meter to recognise a datagram received twice.
const RECENT_TICKERS: usize = 4;

/// The `phase` label of each column of a metric.
pub const PHASES: [&str; 4] = ["total", "L1", "L2", "L3"];

/// Where an averaged value comes from.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// A type-4 record of this OBIS index.
    Record(u8),
    /// Import minus export, two type-4 records.
    Net(u8, u8),
}

/// An averaged metric: name, raw steps per unit (10 for 0.1 W), source per phase column.
pub struct Averaged {
    pub name: &'static str,
    pub per_unit: f64,
    pub sources: [Option<Source>; 4],
}

const fn per_phase(index: u8) -> [Option<Source>; 4] {
    [
        Some(Source::Record(index)),
        Some(Source::Record(index + 20)),
        Some(Source::Record(index + 40)),
        Some(Source::Record(index + 60)),
    ]
}

const fn phases_only(index: u8) -> [Option<Source>; 4] {
    [
        None,
        Some(Source::Record(index)),
        Some(Source::Record(index + 20)),
        Some(Source::Record(index + 40)),
    ]
}

const NET: [Option<Source>; 4] = [
    Some(Source::Net(1, 2)),
    Some(Source::Net(21, 22)),
    Some(Source::Net(41, 42)),
    Some(Source::Net(61, 62)),
];

pub const AVERAGED: [Averaged; 11] = [
    Averaged { name: "sma_em_power_import_w", per_unit: 10.0, sources: per_phase(1) },
    Averaged { name: "sma_em_power_export_w", per_unit: 10.0, sources: per_phase(2) },
    Averaged { name: "sma_em_power_net_w", per_unit: 10.0, sources: NET },
    Averaged { name: "sma_em_reactive_import_var", per_unit: 10.0, sources: per_phase(3) },
    Averaged { name: "sma_em_reactive_export_var", per_unit: 10.0, sources: per_phase(4) },
    Averaged { name: "sma_em_apparent_import_va", per_unit: 10.0, sources: per_phase(9) },
    Averaged { name: "sma_em_apparent_export_va", per_unit: 10.0, sources: per_phase(10) },
    Averaged { name: "sma_em_power_factor", per_unit: 1000.0, sources: per_phase(13) },
    Averaged { name: "sma_em_frequency_hz", per_unit: 1000.0, sources: [Some(Source::Record(14)), None, None, None] },
    Averaged { name: "sma_em_current_a", per_unit: 1000.0, sources: phases_only(31) },
    Averaged { name: "sma_em_voltage_v", per_unit: 1000.0, sources: phases_only(32) },
];

/// Energy counters (raw Ws, written in Wh, varh, VAh): name and the OBIS index of the total;
/// the phases are +20, +40, +60.
pub const COUNTERS: [(&str, u8); 6] = [
    ("sma_em_energy_import_wh", 1),
    ("sma_em_energy_export_wh", 2),
    ("sma_em_reactive_energy_import_varh", 3),
    ("sma_em_reactive_energy_export_varh", 4),
    ("sma_em_apparent_energy_import_vah", 9),
    ("sma_em_apparent_energy_export_vah", 10),
];

/// Raw Ws to Wh.
pub const WS_PER_WH: f64 = 3600.0;

/// Reasons a datagram was not used: the decoder's, then the aggregator's.
pub const REASONS: [&str; DECODE_ERRORS + 3] = [
    "not_speedwire",
    "discovery",
    "other_protocol",
    "truncated",
    "bad_header",
    "bad_length",
    "bad_record",
    "no_end_tag",
    "duplicate",
    "serial_filtered",
    "too_many_meters",
];
pub const DUPLICATE: usize = DECODE_ERRORS;
pub const SERIAL_FILTERED: usize = DECODE_ERRORS + 1;
pub const TOO_MANY_METERS: usize = DECODE_ERRORS + 2;

/// Sum, count, min and max of raw values over an interval.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Acc {
    pub sum: i64,
    pub n: u32,
    pub min: i64,
    pub max: i64,
}

impl Acc {
    fn add(&mut self, v: i64) {
        if self.n == 0 {
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.sum += v;
        self.n += 1;
    }

    /// The average; `None` when nothing was added.
    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum as f64 / self.n as f64)
    }
}

/// One interval of one meter.
#[derive(Debug, Clone, Default)]
pub struct Interval {
    pub datagrams: u32,
    pub averaged: [[Acc; 4]; AVERAGED.len()],
    pub last: [[Option<u64>; 4]; COUNTERS.len()],
}

impl Interval {
    fn add(&mut self, r: &Records) {
        self.datagrams += 1;
        for (metric, accs) in AVERAGED.iter().zip(self.averaged.iter_mut()) {
            for (source, acc) in metric.sources.iter().zip(accs.iter_mut()) {
                let value = match source {
                    Some(Source::Record(i)) => r.current(*i).map(i64::from),
                    Some(Source::Net(import, export)) => r
                        .current(*import)
                        .zip(r.current(*export))
                        .map(|(i, e)| i64::from(i) - i64::from(e)),
                    None => None,
                };
                if let Some(v) = value {
                    acc.add(v);
                }
            }
        }
        for ((_, index), last) in COUNTERS.iter().zip(self.last.iter_mut()) {
            for (phase, slot) in last.iter_mut().enumerate() {
                if let Some(v) = r.counter(index + 20 * phase as u8) {
                    *slot = Some(v);
                }
            }
        }
    }
}

/// A meter seen on the group, with its labels formatted once.
#[derive(Debug)]
pub struct Meter {
    pub serial: u32,
    pub serial_text: String,
    susy_id: u16,
    pub susy_text: String,
    version: Option<[u8; 4]>,
    pub version_text: String,
    recent: [u32; RECENT_TICKERS],
    recent_len: usize,
    recent_next: usize,
    /// Datagrams used since the agent started.
    pub datagrams: u64,
    pub interval: Interval,
    /// Intervals in a row before the current one without a datagram.
    pub silent_intervals: u32,
    last_seen: Instant,
}

impl Meter {
    fn new(d: &Datagram, now: Instant) -> Self {
        Meter {
            serial: d.serial,
            serial_text: d.serial.to_string(),
            susy_id: d.susy_id,
            susy_text: d.susy_id.to_string(),
            version: None,
            version_text: "unknown".into(),
            recent: [0; RECENT_TICKERS],
            recent_len: 0,
            recent_next: 0,
            datagrams: 0,
            interval: Interval::default(),
            silent_intervals: 0,
            last_seen: now,
        }
    }

    fn seen_ticker(&self, ticker: u32) -> bool {
        self.recent[..self.recent_len].contains(&ticker)
    }

    fn remember_ticker(&mut self, ticker: u32) {
        self.recent[self.recent_next] = ticker;
        self.recent_next = (self.recent_next + 1) % RECENT_TICKERS;
        self.recent_len = (self.recent_len + 1).min(RECENT_TICKERS);
    }

    fn note_identity(&mut self, d: &Datagram) {
        if d.version.is_some() && d.version != self.version {
            self.version = d.version;
            self.version_text = d.version.map(version_text).unwrap_or_default();
        }
        if d.susy_id != self.susy_id {
            self.susy_id = d.susy_id;
            self.susy_text = d.susy_id.to_string();
        }
    }
}

/// What became of one decoded datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Used,
    /// Counted under this index of [`REASONS`].
    Rejected(usize),
}

/// Every meter's interval, and the rejection counters since the agent started.
#[derive(Debug, Default)]
pub struct Aggregate {
    pub meters: Vec<Meter>,
    /// Only these serials are used; empty: all.
    serials: Vec<u32>,
    pub rejected: [u64; REASONS.len()],
}

impl Aggregate {
    pub fn new(serials: &[u32]) -> Self {
        Aggregate {
            meters: Vec::with_capacity(MAX_METERS),
            serials: serials.to_vec(),
            rejected: [0; REASONS.len()],
        }
    }

    /// Counts a datagram the decoder refused.
    pub fn reject(&mut self, reason: usize) {
        self.rejected[reason] += 1;
    }

    /// Adds one decoded datagram to its meter's interval.
    pub fn add(&mut self, d: &Datagram, now: Instant) -> Outcome {
        let outcome = self.place(d, now);
        if let Outcome::Rejected(reason) = outcome {
            self.rejected[reason] += 1;
        }
        outcome
    }

    fn place(&mut self, d: &Datagram, now: Instant) -> Outcome {
        if !self.serials.is_empty() && !self.serials.contains(&d.serial) {
            return Outcome::Rejected(SERIAL_FILTERED);
        }
        let meter = match self.meters.iter().position(|m| m.serial == d.serial) {
            Some(i) => &mut self.meters[i],
            None if self.meters.len() < MAX_METERS => {
                self.meters.push(Meter::new(d, now));
                self.meters.last_mut().expect("just pushed")
            }
            None => return Outcome::Rejected(TOO_MANY_METERS),
        };
        if meter.seen_ticker(d.ticker_ms) {
            return Outcome::Rejected(DUPLICATE);
        }
        meter.remember_ticker(d.ticker_ms);
        meter.note_identity(d);
        meter.interval.add(&d.records);
        meter.datagrams += 1;
        meter.last_seen = now;
        Outcome::Used
    }

    /// Forgets meters silent for [`FORGET_AFTER`]; returns how many.
    pub fn forget_silent(&mut self, now: Instant) -> usize {
        let before = self.meters.len();
        self.meters
            .retain(|m| now.saturating_duration_since(m.last_seen) < FORGET_AFTER);
        before - self.meters.len()
    }

    /// Starts a new interval for every meter.
    pub fn reset_intervals(&mut self) {
        for m in &mut self.meters {
            m.silent_intervals = match m.interval.datagrams {
                0 => m.silent_intervals.saturating_add(1),
                _ => 0,
            };
            m.interval = Interval::default();
        }
    }

    /// Datagrams used in the current interval, over all meters.
    pub fn interval_datagrams(&self) -> u32 {
        self.meters.iter().map(|m| m.interval.datagrams).sum()
    }
}
