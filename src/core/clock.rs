//! Tick arithmetic on wall-clock milliseconds, kept free of real time so it can be tested.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The first interval boundary strictly after `now_ms` (Telegraf's `round_interval`).
pub fn next_boundary(now_ms: i64, interval_ms: i64) -> i64 {
    (now_ms.div_euclid(interval_ms) + 1) * interval_ms
}

/// The interval boundary at or before `now_ms`.
pub fn floor_boundary(now_ms: i64, interval_ms: i64) -> i64 {
    now_ms.div_euclid(interval_ms) * interval_ms
}

/// How many ticks after `tick_ms` have already passed at `now_ms` and must be skipped.
pub fn ticks_missed(tick_ms: i64, now_ms: i64, interval_ms: i64) -> i64 {
    (next_boundary(now_ms, interval_ms) - tick_ms) / interval_ms - 1
}

/// A jitter in `[0, max_ms)` that differs per input (seeded by its name) and per tick.
pub fn jitter_ms(seed: u64, tick_ms: i64, max_ms: i64) -> i64 {
    if max_ms <= 0 {
        return 0;
    }
    let mut x = seed ^ (tick_ms as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x % max_ms as u64) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        assert_eq!(next_boundary(12_345, 10_000), 20_000);
        assert_eq!(next_boundary(20_000, 10_000), 30_000);
        assert_eq!(floor_boundary(12_345, 10_000), 10_000);
        assert_eq!(floor_boundary(20_000, 10_000), 20_000);
    }

    #[test]
    fn a_run_within_its_interval_misses_nothing() {
        assert_eq!(ticks_missed(10_000, 15_000, 10_000), 0);
    }

    #[test]
    fn a_slow_run_skips_the_ticks_it_overran() {
        assert_eq!(ticks_missed(10_000, 20_000, 10_000), 1);
        assert_eq!(ticks_missed(10_000, 35_000, 10_000), 2);
    }

    #[test]
    fn jitter_stays_in_range_and_varies() {
        let values: Vec<i64> = (0..50).map(|t| jitter_ms(7, t * 1000, 500)).collect();
        assert!(values.iter().all(|&j| (0..500).contains(&j)));
        assert!(values.iter().any(|&j| j != values[0]));
        assert_eq!(jitter_ms(7, 0, 0), 0);
    }
}
