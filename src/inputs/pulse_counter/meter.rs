//! The arithmetic of one S0 meter: energy from counted pulses, power from the interval
//! between the last two, and debounce by timestamp. Pure: time comes in as arguments
//! (CLOCK_MONOTONIC nanoseconds, the clock of the kernel's edge events).

const NS_PER_HOUR: f64 = 3_600e9;

#[derive(Debug, Clone, PartialEq)]
pub struct Meter {
    wh_per_pulse: f64,
    debounce_ns: u64,
    /// Energy counted before this run (the persisted value).
    base_wh: f64,
    /// Pulses counted in this run. Energy is `base + pulses × wh_per_pulse`, not a running
    /// float sum, so no rounding error builds up over millions of pulses.
    pulses: u64,
    last_ns: Option<u64>,
    interval_ns: Option<u64>,
    bounced: u64,
}

/// What became of one edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Counted,
    /// Closer to the previous counted pulse than the debounce time: contact bounce or
    /// noise, not a pulse.
    Bounced,
}

impl Meter {
    /// `impulses_per_kwh` is the meter's constant, printed on it (`1000 imp/kWh`).
    pub fn new(impulses_per_kwh: f64, debounce_ns: u64) -> Meter {
        Meter {
            wh_per_pulse: 1000.0 / impulses_per_kwh,
            debounce_ns,
            base_wh: 0.0,
            pulses: 0,
            last_ns: None,
            interval_ns: None,
            bounced: 0,
        }
    }

    /// Continues from an energy counted before a restart.
    pub fn restore(&mut self, energy_wh: f64) {
        self.base_wh = energy_wh;
    }

    /// One edge at `ts_ns`.
    pub fn on_pulse(&mut self, ts_ns: u64) -> Verdict {
        if let Some(last) = self.last_ns {
            let since = ts_ns.saturating_sub(last);
            if since < self.debounce_ns || ts_ns < last {
                self.bounced += 1;
                return Verdict::Bounced;
            }
            self.interval_ns = Some(since);
        }
        self.last_ns = Some(ts_ns);
        self.pulses += 1;
        Verdict::Counted
    }

    pub fn energy_wh(&self) -> f64 {
        self.base_wh + self.pulses as f64 * self.wh_per_pulse
    }

    pub fn bounced(&self) -> u64 {
        self.bounced
    }

    /// Power in W at `now_ns`: one pulse's energy over the interval between the last two
    /// pulses. When the next pulse is overdue (longer since the last pulse than that
    /// interval), the power can be at most one pulse's energy over the time since the last
    /// pulse, so that bound is reported: a load switched off decays toward 0 instead of
    /// staying at its last value. `None` until two pulses were counted.
    pub fn power_w(&self, now_ns: u64) -> Option<f64> {
        let interval = self.interval_ns?;
        let since = now_ns.saturating_sub(self.last_ns?);
        let span = interval.max(since).max(1);
        Some(self.wh_per_pulse * NS_PER_HOUR / span as f64)
    }
}
