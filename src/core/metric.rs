//! The metric model: a sample is a series id, a millisecond timestamp and an `f64`.
//!
//! Names and labels live once in the [`SeriesTable`]; samples only carry the id, so the
//! hot path moves 24-byte `Copy` values and never allocates once a series is known.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Index of a series in its [`SeriesTable`]. Stable for the life of the process.
pub type SeriesId = u32;

/// Most labels a sample may carry besides `host`. Inputs here use at most four.
pub const MAX_LABELS: usize = 12;

/// One measurement.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub series: SeriesId,
    pub ts_ms: i64,
    pub value: f64,
}

/// A metric name with its sorted labels (always including `host`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series {
    pub name: Box<str>,
    /// Sorted by label name; names are unique.
    pub labels: Box<[(Box<str>, Box<str>)]>,
}

impl Series {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| &**k == name)
            .map(|(_, v)| &**v)
    }
}

/// Why a series could not be interned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InternError {
    TooManyLabels,
    TableFull,
}

/// Interns `(name, labels, host)` to a [`SeriesId`].
///
/// Lookups hash the borrowed parts and walk a collision chain, so finding a known series
/// allocates nothing; only the first sight of a series copies its strings.
/// "No input known" in [`SeriesTable::origin`].
pub const NO_ORIGIN: u16 = u16::MAX;

pub struct SeriesTable {
    host: Box<str>,
    series: Vec<Series>,
    /// Per series: the index in `origins` of the input that wrote it first, or
    /// [`NO_ORIGIN`] (a series read back from an old disk buffer, a test).
    origin_of: Vec<u16>,
    /// The names of the inputs (config keys such as `linux_cpu`, `exec#2`) seen so far.
    origins: Vec<Box<str>>,
    heads: HashMap<u64, SeriesId, BuildHasherDefault<IdentityHasher>>,
    chain: Vec<Option<SeriesId>>,
    max_series: usize,
}

impl SeriesTable {
    pub fn new(host: &str, max_series: usize) -> Self {
        SeriesTable {
            host: host.into(),
            series: Vec::new(),
            origin_of: Vec::new(),
            origins: Vec::new(),
            heads: HashMap::default(),
            chain: Vec::new(),
            max_series,
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Later series carry the new host; series already interned keep theirs.
    pub fn set_host(&mut self, host: &str) {
        self.host = host.into();
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// The most series the table holds (`max_series`).
    pub fn max_series(&self) -> usize {
        self.max_series
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    pub fn get(&self, id: SeriesId) -> &Series {
        &self.series[id as usize]
    }

    /// The number naming input `name` in [`SeriesTable::set_origin`]; stable for the table's
    /// life. Inputs are few, so a scan beats a map.
    pub fn origin_id(&mut self, name: &str) -> u16 {
        if let Some(i) = self.origins.iter().position(|o| &**o == name) {
            return i as u16;
        }
        // More distinct input names than this cannot be configured in practice; the last
        // slot is shared rather than failing.
        if self.origins.len() >= NO_ORIGIN as usize - 1 {
            return NO_ORIGIN - 1;
        }
        self.origins.push(name.into());
        (self.origins.len() - 1) as u16
    }

    /// Records which input writes series `id`, unless one already did.
    pub fn set_origin(&mut self, id: SeriesId, origin: u16) {
        if let Some(slot) = self.origin_of.get_mut(id as usize) {
            if *slot == NO_ORIGIN {
                *slot = origin;
            }
        }
    }

    /// The name of the input that wrote series `id` first, if known.
    pub fn origin(&self, id: SeriesId) -> Option<&str> {
        let i = *self.origin_of.get(id as usize)?;
        self.origins.get(i as usize).map(|o| &**o)
    }

    /// Finds or creates the series `name + suffix` with `labels` (any order) and this host.
    pub fn intern(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(&str, &str)],
    ) -> Result<SeriesId, InternError> {
        let mut sorted: heapless::Vec<(&str, &str), MAX_LABELS> = heapless::Vec::new();
        for &(k, v) in labels {
            if k != "host" {
                sorted
                    .push((k, v))
                    .map_err(|_| InternError::TooManyLabels)?;
            }
        }
        sorted.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let hash = hash_parts(name, suffix, &sorted, &self.host);
        let mut cursor = self.heads.get(&hash).copied();
        while let Some(id) = cursor {
            if self.matches(id, name, suffix, &sorted) {
                return Ok(id);
            }
            cursor = self.chain[id as usize];
        }
        if self.series.len() >= self.max_series {
            return Err(InternError::TableFull);
        }
        Ok(self.insert(hash, name, suffix, &sorted))
    }

    fn matches(&self, id: SeriesId, name: &str, suffix: &str, sorted: &[(&str, &str)]) -> bool {
        let s = &self.series[id as usize];
        let full = &*s.name;
        let name_ok = full.len() == name.len() + suffix.len()
            && full.starts_with(name)
            && full.ends_with(suffix);
        if !name_ok || s.labels.len() != sorted.len() + 1 {
            return false;
        }
        let mut own = s.labels.iter().filter(|(k, _)| &**k != "host");
        let same_labels = sorted
            .iter()
            .all(|&(k, v)| own.next().is_some_and(|(ok, ov)| &**ok == k && &**ov == v));
        same_labels && s.label("host") == Some(&*self.host)
    }

    fn insert(&mut self, hash: u64, name: &str, suffix: &str, sorted: &[(&str, &str)]) -> SeriesId {
        let mut full = String::with_capacity(name.len() + suffix.len());
        full.push_str(name);
        full.push_str(suffix);
        let mut labels: Vec<(Box<str>, Box<str>)> = sorted
            .iter()
            .map(|&(k, v)| (Box::from(k), Box::from(v)))
            .collect();
        labels.push(("host".into(), self.host.clone()));
        labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let id = self.series.len() as SeriesId;
        self.series.push(Series {
            name: full.into(),
            labels: labels.into(),
        });
        self.origin_of.push(NO_ORIGIN);
        self.chain.push(self.heads.insert(hash, id));
        id
    }
}

fn hash_parts(name: &str, suffix: &str, sorted: &[(&str, &str)], host: &str) -> u64 {
    let mut h = FxHasher::default();
    // Byte by byte, so `("a_rate", "")` and `("a", "_rate")` hash alike.
    for b in name.bytes().chain(suffix.bytes()) {
        h.add(b as u64);
    }
    h.write_u8(0xff);
    for (k, v) in sorted {
        h.write(k.as_bytes());
        h.write_u8(0xfe);
        h.write(v.as_bytes());
        h.write_u8(0xff);
    }
    h.write(host.as_bytes());
    h.finish()
}

/// The rustc hash: fast, and good enough for keys that are not attacker-chosen.
#[derive(Default)]
struct FxHasher {
    hash: u64,
}

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let word = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
            self.add(word);
        }
        for &b in chunks.remainder() {
            self.add(b as u64);
        }
    }
    fn finish(&self) -> u64 {
        self.hash
    }
}

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

/// The table's keys are already hashes.
#[derive(Default)]
struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_parts_give_same_id_in_any_label_order() {
        let mut t = SeriesTable::new("pi4", 100);
        let a = t
            .intern("net_rx_bytes", "", &[("iface", "eth0"), ("x", "1")])
            .unwrap();
        let b = t
            .intern("net_rx_bytes", "", &[("x", "1"), ("iface", "eth0")])
            .unwrap();
        assert_eq!(a, b);
        assert_eq!(t.len(), 1);
        let s = t.get(a);
        assert_eq!(&*s.name, "net_rx_bytes");
        let labels: Vec<(&str, &str)> = s.labels.iter().map(|(k, v)| (&**k, &**v)).collect();
        assert_eq!(labels, [("host", "pi4"), ("iface", "eth0"), ("x", "1")]);
    }

    #[test]
    fn suffix_is_part_of_the_name() {
        let mut t = SeriesTable::new("h", 100);
        let raw = t.intern("net_rx_bytes", "", &[]).unwrap();
        let rate = t.intern("net_rx_bytes", "_rate", &[]).unwrap();
        let joined = t.intern("net_rx_bytes_rate", "", &[]).unwrap();
        assert_ne!(raw, rate);
        assert_eq!(rate, joined);
        assert_eq!(&*t.get(rate).name, "net_rx_bytes_rate");
    }

    #[test]
    fn different_values_and_hosts_are_different_series() {
        let mut t = SeriesTable::new("a", 100);
        let eth0 = t.intern("m", "", &[("iface", "eth0")]).unwrap();
        let eth1 = t.intern("m", "", &[("iface", "eth1")]).unwrap();
        t.set_host("b");
        let other_host = t.intern("m", "", &[("iface", "eth0")]).unwrap();
        assert_eq!(
            3,
            [eth0, eth1, other_host]
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len()
        );
        assert_eq!(t.get(other_host).label("host"), Some("b"));
    }

    #[test]
    fn host_label_from_input_is_ignored() {
        let mut t = SeriesTable::new("real", 100);
        let id = t.intern("m", "", &[("host", "fake")]).unwrap();
        assert_eq!(t.get(id).label("host"), Some("real"));
    }

    #[test]
    fn table_is_bounded() {
        let mut t = SeriesTable::new("h", 2);
        t.intern("a", "", &[]).unwrap();
        t.intern("b", "", &[]).unwrap();
        assert_eq!(t.intern("c", "", &[]), Err(InternError::TableFull));
        assert!(t.intern("a", "", &[]).is_ok());
    }

    #[test]
    fn colliding_hashes_are_told_apart() {
        let mut t = SeriesTable::new("h", 10_000);
        let ids: Vec<_> = (0..5000)
            .map(|i| t.intern("m", "", &[("i", &i.to_string())]).unwrap())
            .collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(t.get(*id).label("i"), Some(&*i.to_string()));
            assert_eq!(t.intern("m", "", &[("i", &i.to_string())]).unwrap(), *id);
        }
    }
}
