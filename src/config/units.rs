//! Human durations (`500ms`, `10s`, `1h30m`, `7d`, `1y`) and sizes (`64KiB`, `16MiB`, `500MB`).

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration in config. A bare number means seconds (the Python rtcollector's `interval: 10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

/// A duration where a bare number means milliseconds (RedisTimeSeries' `retention: 86400000`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Millis(pub u64);

/// A byte size. A bare number means bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Size(pub u64);

const UNITS_MS: &[(&str, u64)] = &[
    ("ms", 1),
    ("s", 1_000),
    ("m", 60_000),
    ("h", 3_600_000),
    ("d", 86_400_000),
    ("w", 7 * 86_400_000),
    ("y", 365 * 86_400_000),
];

/// The longest duration any option takes (100 years): far above any real setting, and
/// small enough that milliseconds fit an `i64` timestamp offset with room to add.
pub const MAX_DURATION_MS: u64 = 100 * 365 * 86_400_000;

/// The largest size any option takes (1 TiB).
pub const MAX_SIZE: u64 = 1 << 40;

/// Parses `10s`, `1h30m`, `1.5h` or `250ms` into milliseconds, at most [`MAX_DURATION_MS`].
pub fn parse_duration_ms(text: &str) -> Result<u64, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration".into());
    }
    let mut rest = t;
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let value: f64 = num.parse().map_err(|_| bad_duration(t))?;
        let per = UNITS_MS
            .iter()
            .find(|(u, _)| *u == unit.trim())
            .map(|(_, ms)| *ms)
            .ok_or_else(|| bad_duration(t))?;
        total += value * per as f64;
        rest = next;
    }
    // `as` saturates: 1e300 or 99999999999999999999999y would become u64::MAX silently.
    if total > MAX_DURATION_MS as f64 {
        return Err(format!("duration `{t}` is too long: at most 100y"));
    }
    Ok(total.round() as u64)
}

fn bad_duration(t: &str) -> String {
    format!(
        "invalid duration `{t}`: use a number with a unit, such as 500ms, 10s, 5m, 12h, 7d or 1y"
    )
}

const UNITS_BYTES: &[(&str, u64)] = &[
    ("", 1),
    ("B", 1),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("TB", 1_000_000_000_000),
    ("TiB", 1 << 40),
    ("K", 1 << 10),
    ("M", 1 << 20),
    ("G", 1 << 30),
];

pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let num_len = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_len);
    let bad = || {
        format!(
            "invalid size `{t}`: use bytes or a number with a unit, such as 64KiB, 16MiB or 500MB"
        )
    };
    let value: f64 = num.parse().map_err(|_| bad())?;
    let per = UNITS_BYTES
        .iter()
        .find(|(u, _)| *u == unit.trim())
        .map(|(_, b)| *b)
        .ok_or_else(bad)?;
    let bytes = value * per as f64;
    if bytes > MAX_SIZE as f64 {
        return Err(format!("size `{t}` is too large: at most 1TiB"));
    }
    Ok(bytes.round() as u64)
}

/// How a bound is written in a message.
#[derive(Clone, Copy)]
enum Unit {
    Duration,
    Size,
}

impl Unit {
    fn show(self, v: u64) -> String {
        match self {
            Unit::Duration if v == 0 => "0s".into(),
            Unit::Duration => fmt_ms_string(v),
            Unit::Size => Size(v).to_string(),
        }
    }
}

/// Accepts a non-negative number (scaled by `per_unit`) or a string parsed by `parse`, in
/// `min..=max`. The range is checked here, inside the visitor, so that an error carries the
/// value's line and column.
struct NumberOrText<'a> {
    expecting: &'a str,
    per_unit: u64,
    parse: fn(&str) -> Result<u64, String>,
    unit: Unit,
    min: u64,
    max: u64,
}

impl NumberOrText<'_> {
    fn in_range<E: de::Error>(&self, v: u64) -> Result<u64, E> {
        out_of_range(v, self.min, self.max, |v| self.unit.show(v)).map_or(Ok(v), Err)
    }

    fn too_large<E: de::Error>(&self) -> E {
        E::custom(format!(
            "must be at most {} (the range is {} to {})",
            self.unit.show(self.max),
            self.unit.show(self.min),
            self.unit.show(self.max)
        ))
    }
}

impl Visitor<'_> for NumberOrText<'_> {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        let scaled = v
            .checked_mul(self.per_unit)
            .ok_or_else(|| self.too_large())?;
        self.in_range(scaled)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v)
            .map_err(|_| E::custom(format!("{v} is negative; expected {}", self.expecting)))
            .and_then(|v| self.visit_u64(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        if v < 0.0 || !v.is_finite() {
            return Err(E::custom(format!("{v} is not {}", self.expecting)));
        }
        let scaled = v * self.per_unit as f64;
        if scaled > self.max as f64 {
            return Err(self.too_large());
        }
        self.in_range(scaled.round() as u64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        let parsed = (self.parse)(v).map_err(E::custom)?;
        self.in_range(parsed)
    }
}

/// `must be at least 100ms, not 10ms (the range is 100ms to 1d)` when `v` is outside
/// `min..=max`.
fn out_of_range<E: de::Error>(
    v: u64,
    min: u64,
    max: u64,
    show: impl Fn(u64) -> String,
) -> Option<E> {
    let (side, bound) = if v < min {
        ("least", min)
    } else if v > max {
        ("most", max)
    } else {
        return None;
    };
    Some(E::custom(format!(
        "must be at {side} {}, not {} (the range is {} to {})",
        show(bound),
        show(v),
        show(min),
        show(max)
    )))
}

fn duration_in<'de, D: Deserializer<'de>>(
    d: D,
    per_unit: u64,
    min_ms: u64,
    max_ms: u64,
) -> Result<u64, D::Error> {
    d.deserialize_any(NumberOrText {
        expecting: if per_unit == 1 {
            "a duration such as 7d, 1y or a number of milliseconds"
        } else {
            "a duration such as 10s, 5m or a number of seconds"
        },
        per_unit,
        parse: parse_duration_ms,
        unit: Unit::Duration,
        min: min_ms,
        max: max_ms.min(MAX_DURATION_MS),
    })
}

fn size_in<'de, D: Deserializer<'de>>(d: D, min: u64, max: u64) -> Result<u64, D::Error> {
    d.deserialize_any(NumberOrText {
        expecting: "a size such as 64KiB, 16MiB or a number of bytes",
        per_unit: 1,
        parse: parse_size,
        unit: Unit::Size,
        min,
        max: max.min(MAX_SIZE),
    })
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        duration_in(d, 1_000, 0, MAX_DURATION_MS).map(|ms| Dur(Duration::from_millis(ms)))
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        duration_in(d, 1, 0, MAX_DURATION_MS).map(Millis)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        size_in(d, 0, MAX_SIZE).map(Size)
    }
}

/// An option's value with its allowed range in the type: `Bounded<Dur, 100, 86_400_000>`
/// is a duration from 100ms to 1d, `Bounded<usize, 1, 10>` a whole number from 1 to 10.
/// Durations are bounded in milliseconds, sizes in bytes. Used through the
/// `deserialize_with` helpers in [`super::range`], so that the options keep plain types.
pub struct Bounded<T, const MIN: u64, const MAX: u64>(pub T);

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<Dur, MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        duration_in(d, 1_000, MIN, MAX).map(|ms| Bounded(Dur(Duration::from_millis(ms))))
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<Millis, MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        duration_in(d, 1, MIN, MAX).map(|ms| Bounded(Millis(ms)))
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<Size, MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        size_in(d, MIN, MAX).map(|b| Bounded(Size(b)))
    }
}

/// A whole number in `min..=max`, checked inside the visitor (see [`NumberOrText`]).
struct WholeIn {
    min: u64,
    max: u64,
}

impl WholeIn {
    fn check<E: de::Error>(&self, v: u64) -> Result<u64, E> {
        out_of_range(v, self.min, self.max, |v| v.to_string()).map_or(Ok(v), Err)
    }

    /// For what does not fit a u64 (negative, or past 2^64 and read as a float).
    fn not_whole<E: de::Error>(&self, v: impl fmt::Display) -> E {
        E::custom(format!(
            "{v} is not a whole number from {} to {}",
            self.min, self.max
        ))
    }
}

impl Visitor<'_> for WholeIn {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a whole number from {} to {}", self.min, self.max)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        self.check(v)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u64, E> {
        u64::try_from(v)
            .map_err(|_| self.not_whole(v))
            .and_then(|v| self.check(v))
    }
    /// YAML reads `1e6` and integers past u64 as floats.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<u64, E> {
        if v.fract() == 0.0 && v >= 0.0 && v <= self.max as f64 {
            return self.check(v as u64);
        }
        Err(self.not_whole(v))
    }
}

macro_rules! bounded_whole {
    ($($t:ty),*) => {$(
        impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Bounded<$t, MIN, MAX> {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                const { assert!(MIN <= MAX && MAX <= <$t>::MAX as u64) };
                let v = d.deserialize_any(WholeIn { min: MIN, max: MAX })?;
                // In range, and the range fits the type (asserted above).
                Ok(Bounded(v as $t))
            }
        }
    )*};
}
bounded_whole!(u8, u16, u32, u64, usize, i64);

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt_ms(self.0.as_millis() as u64, f)
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt_ms(self.0, f)
    }
}

fn fmt_ms(ms: u64, f: &mut fmt::Formatter) -> fmt::Result {
    f.write_str(&fmt_ms_string(ms))
}

/// `5000` → `5s`: the largest unit that divides exactly.
fn fmt_ms_string(ms: u64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    for (unit, per) in UNITS_MS.iter().rev() {
        if ms >= *per && ms % per == 0 {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

/// The unit that writes `bytes` with the smallest exact number (`64MiB`, `500MB`), or
/// plain bytes.
impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let exact = UNITS_BYTES
            .iter()
            .filter(|(unit, per)| unit.len() > 1 && self.0 >= *per && self.0 % per == 0)
            .min_by_key(|(_, per)| self.0 / per);
        match exact {
            Some((unit, per)) => write!(f, "{}{unit}", self.0 / per),
            None => write!(f, "{}", self.0),
        }
    }
}

/// The unit types serialize as their YAML form, for `check`'s plan.
macro_rules! serialize_as_text {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
serialize_as_text!(Dur, Millis, Size);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("500ms"), Ok(500));
        assert_eq!(parse_duration_ms("10s"), Ok(10_000));
        assert_eq!(parse_duration_ms("5m"), Ok(300_000));
        assert_eq!(parse_duration_ms("12h"), Ok(43_200_000));
        assert_eq!(parse_duration_ms("7d"), Ok(604_800_000));
        assert_eq!(parse_duration_ms("1y"), Ok(31_536_000_000));
        assert_eq!(parse_duration_ms("1h30m"), Ok(5_400_000));
        assert_eq!(parse_duration_ms("1.5s"), Ok(1_500));
        assert!(parse_duration_ms("10").is_err());
        assert!(parse_duration_ms("ten seconds").is_err());
        assert!(parse_duration_ms("5 parsecs").is_err());
        assert!(parse_duration_ms("").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64KiB"), Ok(65_536));
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("500MB"), Ok(500_000_000));
        assert_eq!(parse_size("1024"), Ok(1024));
        assert!(parse_size("12 bananas").is_err());
    }

    #[test]
    fn bare_numbers_use_the_type_unit() {
        let d: Dur = yaml_serde::from_str("10").unwrap();
        assert_eq!(d.0, Duration::from_secs(10));
        let m: Millis = yaml_serde::from_str("86400000").unwrap();
        assert_eq!(m.0, 86_400_000);
        let m: Millis = yaml_serde::from_str("7d").unwrap();
        assert_eq!(m.0, 604_800_000);
        let s: Size = yaml_serde::from_str("64KiB").unwrap();
        assert_eq!(s.0, 65_536);
        assert!(yaml_serde::from_str::<Dur>("-5").is_err());
    }

    #[test]
    fn display_picks_the_largest_exact_unit() {
        assert_eq!(Dur(Duration::from_secs(10)).to_string(), "10s");
        assert_eq!(Dur(Duration::from_millis(1500)).to_string(), "1500ms");
        assert_eq!(Millis(604_800_000).to_string(), "1w");
        assert_eq!(Millis(86_400_000 * 2).to_string(), "2d");
        assert_eq!(Millis(30 * 86_400_000).to_string(), "30d");
        assert_eq!(Dur(Duration::ZERO).to_string(), "0s");
    }

    #[test]
    fn sizes_display_in_the_unit_with_the_smallest_exact_number() {
        assert_eq!(Size(64 << 20).to_string(), "64MiB");
        assert_eq!(Size(32_768).to_string(), "32KiB");
        assert_eq!(Size(500_000_000).to_string(), "500MB");
        assert_eq!(Size(1_000).to_string(), "1KB");
        assert_eq!(Size(1_000_001).to_string(), "1000001");
        assert_eq!(Size(0).to_string(), "0");
        for s in [
            Size(64 << 20),
            Size(500_000_000),
            Size(1_000_001),
            Size(3 << 30),
        ] {
            assert_eq!(parse_size(&s.to_string()), Ok(s.0));
        }
    }
}
