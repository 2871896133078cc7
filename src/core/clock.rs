//! Tick arithmetic on wall-clock milliseconds, and their UTC calendar form, kept free of
//! real time so they can be tested.

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

/// What an input's schedule does after the run of `tick_ms`, which ended at `now_ms` and
/// took `took_ms`.
#[derive(Debug, PartialEq, Eq)]
pub enum AfterRun {
    /// Go on with the next tick, even when it is due already: a wake-up that came late by
    /// less than an interval (a busy machine) costs no collection.
    Next,
    /// The run itself took longer than the interval: skip the ticks it overlapped.
    Slow { skipped: i64 },
    /// Several boundaries passed during a quick run: the wall clock stepped forward, or the
    /// agent was stopped or starved that long. Collecting the missed ticks now would stamp
    /// one reading with many times, so they are skipped.
    Realign { skipped: i64 },
}

pub fn after_run(tick_ms: i64, now_ms: i64, interval_ms: i64, took_ms: i64) -> AfterRun {
    let missed = ticks_missed(tick_ms, now_ms, interval_ms);
    if missed <= 0 {
        AfterRun::Next
    } else if took_ms >= interval_ms {
        AfterRun::Slow { skipped: missed }
    } else if missed == 1 {
        AfterRun::Next
    } else {
        AfterRun::Realign { skipped: missed }
    }
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

/// Wall-clock milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian).
pub fn utc_text(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(86_400_000));
    let in_day = ms.rem_euclid(86_400_000);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
}

/// (year, month, day) of a count of days since 1970-01-01 (Howard Hinnant's days-to-civil).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Days since 1970-01-01 of a date (Howard Hinnant's days-from-civil); the caller checks
/// that the date exists.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let (m, d) = (i64::from(month), i64::from(day));
    let y = if m <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_dates_convert_both_ways() {
        for days in [-719_468, -1, 0, 59, 11_016, 19_723, 20_428, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m as u32, d as u32), days, "{y}-{m}-{d}");
        }
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn a_late_wake_up_collects_the_next_tick_and_only_long_gaps_skip() {
        let at = |ms: i64| 10_000 + ms;
        // On time, and late by most of an interval: nothing is skipped.
        assert_eq!(after_run(at(0), at(30), 100, 30), AfterRun::Next);
        assert_eq!(after_run(at(0), at(160), 100, 10), AfterRun::Next);
        // A run longer than the interval skips what it overlapped.
        assert_eq!(
            after_run(at(0), at(250), 100, 250),
            AfterRun::Slow { skipped: 2 }
        );
        // A clock step of a minute during a quick run.
        assert_eq!(
            after_run(at(0), at(60_010), 100, 10),
            AfterRun::Realign { skipped: 600 }
        );
    }

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

    #[test]
    fn utc_text_formats_epoch_milliseconds() {
        assert_eq!(utc_text(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_text(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(utc_text(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
