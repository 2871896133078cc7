//! Human durations (`500ms`, `10s`, `1h30m`, `7d`, `1y`) and sizes (`64KiB`, `16MiB`, `500MB`).

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration in config. A bare number means seconds (rtcollector's `interval: 10`).
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

/// Parses `10s`, `1h30m`, `1.5h` or `250ms` into milliseconds.
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
    Ok((value * per as f64).round() as u64)
}

/// Accepts a non-negative number (scaled by `per_unit`) or a string parsed by `parse`.
struct NumberOrText<'a> {
    expecting: &'a str,
    per_unit: u64,
    parse: fn(&str) -> Result<u64, String>,
}

impl Visitor<'_> for NumberOrText<'_> {
    type Value = u64;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.expecting)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u64, E> {
        v.checked_mul(self.per_unit)
            .ok_or_else(|| E::custom("value too large"))
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
        Ok((v * self.per_unit as f64).round() as u64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u64, E> {
        (self.parse)(v).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberOrText {
            expecting: "a duration such as 10s, 5m or a number of seconds",
            per_unit: 1_000,
            parse: parse_duration_ms,
        })
        .map(|ms| Dur(Duration::from_millis(ms)))
    }
}

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberOrText {
            expecting: "a duration such as 7d, 1y or a number of milliseconds",
            per_unit: 1,
            parse: parse_duration_ms,
        })
        .map(Millis)
    }
}

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumberOrText {
            expecting: "a size such as 64KiB, 16MiB or a number of bytes",
            per_unit: 1,
            parse: parse_size,
        })
        .map(Size)
    }
}

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
    if ms == 0 {
        return f.write_str("0s");
    }
    for (unit, per) in UNITS_MS.iter().rev() {
        if ms >= *per && ms % per == 0 {
            return write!(f, "{}{unit}", ms / per);
        }
    }
    write!(f, "{ms}ms")
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
