//! `deserialize_with` helpers that give an option its allowed range while keeping its plain
//! type: `#[serde(deserialize_with = "range::dur::<_, 100, DAY_MS>")]`. The range is checked
//! while the value is parsed, so an error names the file, line, column and key like any other
//! bad value. Durations are bounded in milliseconds, sizes in bytes.

use super::units::Bounded;
use super::{Dur, Millis, Size};
use serde::{Deserialize, Deserializer};

pub const SECOND_MS: u64 = 1_000;
pub const MINUTE_MS: u64 = 60 * SECOND_MS;
pub const HOUR_MS: u64 = 60 * MINUTE_MS;
pub const DAY_MS: u64 = 24 * HOUR_MS;
pub const YEAR_MS: u64 = 365 * DAY_MS;
pub const KIB: u64 = 1 << 10;
pub const MIB: u64 = 1 << 20;
pub const GIB: u64 = 1 << 30;
pub const TIB: u64 = 1 << 40;

pub fn dur<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<Dur, D::Error> {
    Bounded::<Dur, MIN, MAX>::deserialize(d).map(|b| b.0)
}

pub fn opt_dur<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<Option<Dur>, D::Error> {
    Option::<Bounded<Dur, MIN, MAX>>::deserialize(d).map(|b| b.map(|b| b.0))
}

pub fn opt_millis<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<Option<Millis>, D::Error> {
    Option::<Bounded<Millis, MIN, MAX>>::deserialize(d).map(|b| b.map(|b| b.0))
}

pub fn millis<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<Millis, D::Error> {
    Bounded::<Millis, MIN, MAX>::deserialize(d).map(|b| b.0)
}

pub fn size<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<Size, D::Error> {
    Bounded::<Size, MIN, MAX>::deserialize(d).map(|b| b.0)
}

pub fn opt_size<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<Option<Size>, D::Error> {
    Option::<Bounded<Size, MIN, MAX>>::deserialize(d).map(|b| b.map(|b| b.0))
}

pub fn count<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<usize, D::Error> {
    Bounded::<usize, MIN, MAX>::deserialize(d).map(|b| b.0)
}

/// A TCP or UDP port: 1 to 65535.
pub fn port<'de, D: Deserializer<'de>>(d: D) -> Result<u16, D::Error> {
    Bounded::<u16, 1, 65535>::deserialize(d).map(|b| b.0)
}

pub fn opt_port<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    Option::<Bounded<u16, 1, 65535>>::deserialize(d).map(|b| b.map(|b| b.0))
}

/// A Redis database number: 0 to 2^31-1 (Redis keeps the count of databases in an int).
pub fn redis_db<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Bounded::<i64, 0, { i32::MAX as u64 }>::deserialize(d).map(|b| b.0)
}

/// A 7-bit I2C address a device can have: 0x03 to 0x77 (the rest are reserved).
pub fn opt_i2c_address<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u8>, D::Error> {
    Option::<Bounded<u8, 0x03, 0x77>>::deserialize(d).map(|b| b.map(|b| b.0))
}

pub fn whole<'de, D: Deserializer<'de>, T, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<T, D::Error>
where
    Bounded<T, MIN, MAX>: Deserialize<'de>,
{
    Bounded::<T, MIN, MAX>::deserialize(d).map(|b| b.0)
}

/// A network or command timeout: 10ms to 1h.
pub fn timeout<'de, D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
    dur::<D, 10, HOUR_MS>(d)
}

/// How often a plugin looks for added or removed devices: 0 (every collection) to 1d.
pub fn rescan<'de, D: Deserializer<'de>>(d: D) -> Result<Dur, D::Error> {
    dur::<D, 0, DAY_MS>(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    struct Opts {
        #[serde(default, deserialize_with = "dur::<_, 100, DAY_MS>")]
        every: Dur,
        #[serde(default, deserialize_with = "opt_dur::<_, 100, DAY_MS>")]
        maybe: Option<Dur>,
        #[serde(default, deserialize_with = "count::<_, 1, 1000>")]
        n: usize,
        #[serde(default, deserialize_with = "opt_size::<_, KIB, MIB>")]
        bytes: Option<Size>,
        #[serde(default, deserialize_with = "port")]
        port: u16,
    }

    fn parse(text: &str) -> Result<Opts, String> {
        yaml_serde::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn values_in_range_pass() {
        let o = parse("every: 1d\nmaybe: 100ms\nn: 1000\nbytes: 1MiB\nport: 65535\n").unwrap();
        assert_eq!(o.every.0.as_millis(), 86_400_000);
        assert_eq!(o.maybe.map(|d| d.0.as_millis()), Some(100));
        assert_eq!(o.n, 1000);
        assert_eq!(o.bytes, Some(Size(1 << 20)));
        assert_eq!(o.port, 65535);
        assert!(parse("maybe: null\n").unwrap().maybe.is_none());
    }

    #[test]
    fn values_out_of_range_name_the_range_and_the_line() {
        let e = parse("n: 5\nevery: 0s\n").unwrap_err();
        assert!(
            e.contains("every: must be at least 100ms, not 0s (the range is 100ms to 1d)"),
            "{e}"
        );
        assert!(e.contains("line 2 column 8"), "{e}");
        let e = parse("every: 99999999999999999999999y\n").unwrap_err();
        assert!(e.contains("too long: at most 100y"), "{e}");
        let e = parse("every: 1e300\n").unwrap_err();
        assert!(
            e.contains("every: must be at most 1d (the range is 100ms to 1d)"),
            "{e}"
        );
        let e = parse("maybe: 2d\n").unwrap_err();
        assert!(
            e.contains("maybe: must be at most 1d, not 2d (the range is 100ms to 1d)"),
            "{e}"
        );
        let e = parse("n: 0\n").unwrap_err();
        assert!(
            e.contains("n: must be at least 1, not 0 (the range is 1 to 1000)"),
            "{e}"
        );
        let e = parse("n: 18446744073709551615\n").unwrap_err();
        assert!(
            e.contains("n: must be at most 1000, not 18446744073709551615"),
            "{e}"
        );
        let e = parse("n: -3\n").unwrap_err();
        assert!(
            e.contains("n: -3 is not a whole number from 1 to 1000"),
            "{e}"
        );
        let e = parse("n: many\n").unwrap_err();
        assert!(e.contains("expected a whole number from 1 to 1000"), "{e}");
        let e = parse("bytes: 2MiB\n").unwrap_err();
        assert!(
            e.contains("bytes: must be at most 1MiB, not 2MiB (the range is 1KiB to 1MiB)"),
            "{e}"
        );
        let e = parse("port: 0\n").unwrap_err();
        assert!(
            e.contains("port: must be at least 1, not 0 (the range is 1 to 65535)"),
            "{e}"
        );
        let e = parse("port: 70000\n").unwrap_err();
        assert!(e.contains("port: must be at most 65535, not 70000"), "{e}");
    }
}
