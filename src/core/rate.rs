//! Counters to per-second rates: the one place that decides what a counter step means.

use super::metric::SeriesId;
use std::collections::HashMap;

/// Remembers the previous reading of each counter series.
#[derive(Default)]
pub struct RateTracker {
    prev: HashMap<SeriesId, Reading>,
}

#[derive(Clone, Copy)]
struct Reading {
    value: f64,
    ts_ms: i64,
    /// The series slot's generation: a reading of a forgotten series whose slot went to
    /// another series is no baseline for it.
    generation: u32,
}

impl RateTracker {
    /// Records `value` at `ts_ms` and returns the per-second rate since the previous reading.
    ///
    /// `None` for the first reading, for a decrease (a counter reset or wrap: the true
    /// increase is unknown, and a negative rate would be a lie) and for a step that does not
    /// move forward in time.
    pub fn observe(&mut self, series: SeriesId, value: f64, ts_ms: i64) -> Option<f64> {
        self.observe_generation(series, 0, value, ts_ms)
    }

    /// [`RateTracker::observe`] for a series whose slot has this
    /// [`generation`](super::metric::SeriesTable::generation).
    pub fn observe_generation(
        &mut self,
        series: SeriesId,
        generation: u32,
        value: f64,
        ts_ms: i64,
    ) -> Option<f64> {
        let now = Reading {
            value,
            ts_ms,
            generation,
        };
        let before = self.prev.insert(series, now)?;
        if before.generation != generation {
            return None;
        }
        let dt_ms = ts_ms - before.ts_ms;
        if dt_ms <= 0 || value < before.value || !value.is_finite() {
            return None;
        }
        Some((value - before.value) * 1000.0 / dt_ms as f64)
    }

    /// Forgets series not seen for longer than `max_age_ms`, so vanished interfaces or
    /// processes do not hold memory forever.
    pub fn forget_older_than(&mut self, now_ms: i64, max_age_ms: i64) {
        self.prev.retain(|_, r| now_ms - r.ts_ms <= max_age_ms);
    }

    pub fn len(&self) -> usize {
        self.prev.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prev.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_reading_gives_no_rate() {
        let mut r = RateTracker::default();
        assert_eq!(r.observe(1, 100.0, 10_000), None);
    }

    #[test]
    fn steady_increase_gives_per_second_rate() {
        let mut r = RateTracker::default();
        r.observe(1, 100.0, 10_000);
        assert_eq!(r.observe(1, 1100.0, 20_000), Some(100.0));
        assert_eq!(r.observe(1, 1100.0, 30_000), Some(0.0));
    }

    #[test]
    fn decrease_is_a_reset_and_the_next_step_counts_from_the_new_value() {
        let mut r = RateTracker::default();
        r.observe(1, 4_294_967_000.0, 0);
        assert_eq!(r.observe(1, 500.0, 10_000), None);
        assert_eq!(r.observe(1, 1500.0, 20_000), Some(100.0));
    }

    #[test]
    fn series_are_independent() {
        let mut r = RateTracker::default();
        r.observe(1, 0.0, 0);
        r.observe(2, 0.0, 0);
        assert_eq!(r.observe(1, 10.0, 1000), Some(10.0));
        assert_eq!(r.observe(2, 20.0, 1000), Some(20.0));
    }

    #[test]
    fn same_timestamp_gives_no_rate() {
        let mut r = RateTracker::default();
        r.observe(1, 0.0, 1000);
        assert_eq!(r.observe(1, 10.0, 1000), None);
    }

    #[test]
    fn a_reading_of_an_earlier_series_in_the_slot_is_no_baseline() {
        let mut r = RateTracker::default();
        r.observe_generation(1, 0, 100.0, 0);
        assert_eq!(r.observe_generation(1, 1, 5000.0, 10_000), None);
        assert_eq!(r.observe_generation(1, 1, 5100.0, 20_000), Some(10.0));
    }

    #[test]
    fn old_series_are_forgotten() {
        let mut r = RateTracker::default();
        r.observe(1, 0.0, 0);
        r.observe(2, 0.0, 50_000);
        r.forget_older_than(60_000, 30_000);
        assert_eq!(r.len(), 1);
        assert_eq!(r.observe(1, 5.0, 61_000), None);
    }
}
