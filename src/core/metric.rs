//! The metric model: a sample is a series id, a millisecond timestamp and an `f64`.
//!
//! Names and labels live once in the [`SeriesTable`]; samples only carry the id, so the
//! hot path moves 24-byte `Copy` values and never allocates once a series is known.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Index of a series in its [`SeriesTable`]. Stable while the series lives; a slot freed
/// after the series went unseen is given to a later series with a new
/// [`SeriesTable::generation`], and only once nothing can still hold the old id.
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

/// What a series' values mean, recorded when it is interned, so an output can say so (a
/// Prometheus endpoint writes `# TYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeriesKind {
    /// A value that is what it is now ([`Emitter::gauge`](super::emit::Emitter::gauge)).
    Gauge,
    /// A monotonic count, as read ([`Emitter::counter`](super::emit::Emitter::counter)).
    Counter,
    /// A per-second rate the agent derived from a counter (the `_rate` series).
    Rate,
    /// Interned without a kind: read back from an outage buffer written by an earlier run (its
    /// frames carry no kind), or a test. Becomes the kind an input interns it with.
    Untyped,
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
    /// [`NO_ORIGIN`] (a series read back from an old outage buffer, a test).
    origin_of: Vec<u16>,
    /// The names of the inputs (config keys such as `linux_cpu`, `exec#2`) seen so far.
    origins: Vec<Box<str>>,
    heads: HashMap<u64, SeriesId, BuildHasherDefault<IdentityHasher>>,
    chain: Vec<Option<SeriesId>>,
    max_series: usize,
    /// Per slot: bumped when the slot is given to another series, so a cache keyed by id
    /// (rate trackers, outputs) can tell its entry belongs to an earlier series.
    generation: Vec<u32>,
    /// Per slot: the newest collection time (ms) the series was interned at.
    last_seen: Vec<i64>,
    /// Per slot: the series' kind; meaningless for a free slot ([`Self::kind`] says `None`).
    kind: Vec<SeriesKind>,
    life: Vec<Life>,
    /// Slots whose series went unseen: no longer found by `intern`, still named for the
    /// samples that may be queued with their id.
    retired: Vec<SeriesId>,
    /// Slots ready for a new series.
    free: Vec<SeriesId>,
    now_ms: i64,
    /// A series unseen for this long is retired; `None`: series are never forgotten.
    forget_after_ms: Option<i64>,
    last_sweep_ms: i64,
    /// Retired series wait to be freed: the last sweep found a collection under way.
    free_pending: bool,
    /// Collections under way: their samples are not published yet, so no slot is freed.
    collecting: u32,
}

/// Where a slot is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Life {
    Live,
    Retired,
    Free,
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
            generation: Vec::new(),
            last_seen: Vec::new(),
            kind: Vec::new(),
            life: Vec::new(),
            retired: Vec::new(),
            free: Vec::new(),
            now_ms: i64::MIN,
            forget_after_ms: None,
            last_sweep_ms: i64::MIN,
            free_pending: false,
            collecting: 0,
        }
    }

    /// Series unseen for `after` are forgotten (see [`SeriesTable::sweep`]); `None` keeps
    /// every series for the life of the table.
    pub fn set_forget_after(&mut self, after: Option<std::time::Duration>) {
        self.forget_after_ms = after.map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    }

    /// A collection stamped `ts_ms` starts: series it interns are seen at that time.
    pub fn begin_collection(&mut self, ts_ms: i64) {
        self.now_ms = self.now_ms.max(ts_ms);
        self.collecting += 1;
    }

    /// The collection begun last has published its samples.
    pub fn end_collection(&mut self) {
        self.collecting = self.collecting.saturating_sub(1);
    }

    /// The slot's generation: changes when the slot is given to another series.
    pub fn generation(&self, id: SeriesId) -> u32 {
        self.generation.get(id as usize).copied().unwrap_or(0)
    }

    /// The place of series `id` in state an output keeps per series id (`states`, grown as
    /// needed), emptied when it holds an earlier series' state: the slot went to another
    /// series since (its generation, as `generation_of` reads it from a state, differs).
    pub fn state_slot<'a, T>(
        &self,
        states: &'a mut Vec<Option<T>>,
        id: SeriesId,
        generation_of: impl Fn(&T) -> u32,
    ) -> &'a mut Option<T> {
        let i = id as usize;
        if states.len() <= i {
            states.resize_with(i + 1, || None);
        }
        let generation = self.generation(id);
        let slot = &mut states[i];
        if slot
            .as_ref()
            .is_some_and(|st| generation_of(st) != generation)
        {
            *slot = None;
        }
        slot
    }

    /// Retires series unseen for the forget time, and frees retired slots nobody holds.
    ///
    /// Retiring only unlinks a series from lookups: a later sighting of the same name gets
    /// a new slot, while samples still queued with the old id keep their name. A retired
    /// slot is freed (and may go to another series) only when `held` says no ring, batch or
    /// replay dictionary holds its id, and no collection is under way (whose samples, not
    /// yet published, could carry it); `freed` then hears of it, so that the outage buffer's
    /// writer defines the id afresh. Caches keyed by id check [`Self::generation`].
    /// Retires at most every quarter of the forget time; frees then, or at the next call
    /// when a collection was under way.
    pub fn sweep(&mut self, held: impl FnOnce(&mut Vec<bool>), freed: impl FnOnce(&[SeriesId])) {
        let Some(after) = self.forget_after_ms else {
            return;
        };
        let due = self.now_ms.saturating_sub(self.last_sweep_ms) >= (after / 4).max(1);
        if due {
            self.last_sweep_ms = self.now_ms;
            self.retire_unseen(after);
        } else if !self.free_pending {
            return;
        }
        // With several inputs one is often mid-collection: try again at the next sweep
        // call rather than a quarter of the forget time later.
        self.free_pending = !self.retired.is_empty() && self.collecting > 0;
        if self.retired.is_empty() || self.collecting > 0 {
            return;
        }
        let mut marks = vec![false; self.series.len()];
        held(&mut marks);
        let ids = self.free_unheld(&marks);
        if !ids.is_empty() {
            freed(&ids);
        }
    }

    fn retire_unseen(&mut self, after: i64) {
        let mut retired = 0u64;
        for id in 0..self.series.len() {
            if self.life[id] == Life::Live && self.now_ms.saturating_sub(self.last_seen[id]) > after
            {
                self.unlink(id as SeriesId);
                self.life[id] = Life::Retired;
                self.retired.push(id as SeriesId);
                retired += 1;
            }
        }
        if retired > 0 {
            log::debug!("series table: {retired} series unseen for {after} ms forgotten");
        }
    }

    /// Frees the retired slots `held` does not mark; returns them.
    fn free_unheld(&mut self, held: &[bool]) -> Vec<SeriesId> {
        let before = self.free.len();
        let (series, life, free) = (&mut self.series, &mut self.life, &mut self.free);
        self.retired.retain(|&id| {
            if held.get(id as usize).copied().unwrap_or(false) {
                return true;
            }
            series[id as usize] = Series {
                name: "".into(),
                labels: Box::new([]),
            };
            life[id as usize] = Life::Free;
            free.push(id);
            false
        });
        self.free[before..].to_vec()
    }

    /// Takes series `id` out of the lookup chains (its name and labels stay).
    fn unlink(&mut self, id: SeriesId) {
        let hash = {
            let s = &self.series[id as usize];
            let mut own: heapless::Vec<(&str, &str), MAX_LABELS> = heapless::Vec::new();
            for (k, v) in s.labels.iter().filter(|(k, _)| &**k != "host") {
                // Interned series never have more labels than fit.
                let _ = own.push((k, v));
            }
            hash_parts(&s.name, "", &own, s.label("host").unwrap_or(""))
        };
        let next = self.chain[id as usize].take();
        match self.heads.get(&hash).copied() {
            Some(head) if head == id => match next {
                Some(n) => {
                    self.heads.insert(hash, n);
                }
                None => {
                    self.heads.remove(&hash);
                }
            },
            Some(head) => {
                let mut cursor = head;
                while let Some(after) = self.chain[cursor as usize] {
                    if after == id {
                        self.chain[cursor as usize] = next;
                        break;
                    }
                    cursor = after;
                }
            }
            None => {}
        }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Later series carry the new host; series already interned keep theirs.
    pub fn set_host(&mut self, host: &str) {
        self.host = host.into();
    }

    /// Series held: live ones and forgotten ones whose slot is not free yet.
    pub fn len(&self) -> usize {
        self.series.len() - self.free.len()
    }

    /// The most series the table holds (`max_series`).
    pub fn max_series(&self) -> usize {
        self.max_series
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn get(&self, id: SeriesId) -> &Series {
        &self.series[id as usize]
    }

    /// The kind series `id` was interned with; `None` once its slot is free (forgotten and
    /// held by nothing). A retired series keeps its kind while queued samples name it.
    pub fn kind(&self, id: SeriesId) -> Option<SeriesKind> {
        match self.life.get(id as usize)? {
            Life::Free => None,
            Life::Live | Life::Retired => Some(self.kind[id as usize]),
        }
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

    /// Finds or creates the series `name + suffix` with `labels` (any order) and this host,
    /// of no particular kind ([`SeriesKind::Untyped`]; an existing series keeps its own).
    pub fn intern(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(&str, &str)],
    ) -> Result<SeriesId, InternError> {
        self.intern_kind(name, suffix, labels, SeriesKind::Untyped)
    }

    /// [`Self::intern`] for a series of `kind`. A series keeps the kind it was created with,
    /// unless that was [`SeriesKind::Untyped`] (read back from disk before an input named it).
    pub fn intern_kind(
        &mut self,
        name: &str,
        suffix: &str,
        labels: &[(&str, &str)],
        kind: SeriesKind,
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
                let i = id as usize;
                self.last_seen[i] = self.now_ms;
                if self.kind[i] == SeriesKind::Untyped {
                    self.kind[i] = kind;
                }
                return Ok(id);
            }
            cursor = self.chain[id as usize];
        }
        if self.len() >= self.max_series {
            return Err(InternError::TableFull);
        }
        Ok(self.insert(hash, name, suffix, &sorted, kind))
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

    fn insert(
        &mut self,
        hash: u64,
        name: &str,
        suffix: &str,
        sorted: &[(&str, &str)],
        kind: SeriesKind,
    ) -> SeriesId {
        let mut full = String::with_capacity(name.len() + suffix.len());
        full.push_str(name);
        full.push_str(suffix);
        let mut labels: Vec<(Box<str>, Box<str>)> = sorted
            .iter()
            .map(|&(k, v)| (Box::from(k), Box::from(v)))
            .collect();
        labels.push(("host".into(), self.host.clone()));
        labels.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let series = Series {
            name: full.into(),
            labels: labels.into(),
        };
        let head = self.heads.get(&hash).copied();
        let id = match self.free.pop() {
            Some(id) => {
                let i = id as usize;
                self.series[i] = series;
                self.origin_of[i] = NO_ORIGIN;
                self.generation[i] = self.generation[i].wrapping_add(1);
                self.last_seen[i] = self.now_ms;
                self.kind[i] = kind;
                self.life[i] = Life::Live;
                self.chain[i] = head;
                id
            }
            None => {
                self.series.push(series);
                self.origin_of.push(NO_ORIGIN);
                self.generation.push(0);
                self.last_seen.push(self.now_ms);
                self.kind.push(kind);
                self.life.push(Life::Live);
                self.chain.push(head);
                (self.series.len() - 1) as SeriesId
            }
        };
        self.heads.insert(hash, id);
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

    fn forgetting_table(max: usize) -> SeriesTable {
        let mut t = SeriesTable::new("h", max);
        t.set_forget_after(Some(std::time::Duration::from_secs(10)));
        t
    }

    /// One collection at `ts_ms` interning `names`.
    fn collect(t: &mut SeriesTable, ts_ms: i64, names: &[&str]) -> Vec<SeriesId> {
        t.begin_collection(ts_ms);
        let ids = names
            .iter()
            .map(|n| t.intern(n, "", &[("k", "v")]).unwrap())
            .collect();
        t.end_collection();
        ids
    }

    #[test]
    fn unseen_series_are_forgotten_and_their_slot_reused_under_a_new_generation() {
        let mut t = forgetting_table(2);
        let old = collect(&mut t, 0, &["a", "b"]);
        assert_eq!(t.intern("c", "", &[]), Err(InternError::TableFull));
        // `a` is seen again, `b` is not.
        collect(&mut t, 9_000, &["a"]);
        t.begin_collection(12_000);
        t.end_collection();
        t.sweep(|_| {}, |_| {});
        assert_eq!(t.len(), 1, "b forgotten, its slot free");
        let c = collect(&mut t, 12_000, &["c"])[0];
        assert_eq!(c, old[1], "b's slot is reused");
        assert_eq!(t.generation(c), t.generation(old[0]) + 1);
        assert_eq!(&*t.get(c).name, "c");
        assert_eq!(collect(&mut t, 12_000, &["a"])[0], old[0], "a is still a");
        // `b` again is a new series: the table is full.
        t.begin_collection(12_000);
        assert_eq!(
            t.intern("b", "", &[("k", "v")]),
            Err(InternError::TableFull)
        );
    }

    #[test]
    fn an_outputs_state_for_a_reused_slot_starts_afresh() {
        let mut t = forgetting_table(2);
        let old = collect(&mut t, 0, &["a", "b"]);
        let mut states: Vec<Option<(u32, &str)>> = Vec::new();
        for (id, name) in [(old[0], "a"), (old[1], "b")] {
            let g = t.generation(id);
            t.state_slot(&mut states, id, |st| st.0)
                .get_or_insert((g, name));
        }
        collect(&mut t, 9_000, &["a"]);
        t.begin_collection(12_000);
        t.end_collection();
        t.sweep(|_| {}, |_| {});
        let c = collect(&mut t, 12_000, &["c"])[0];
        assert_eq!(c, old[1], "b's slot is reused");
        assert_eq!(
            *t.state_slot(&mut states, c, |st| st.0),
            None,
            "b's state is gone"
        );
        assert_eq!(
            t.state_slot(&mut states, old[0], |st| st.0).map(|st| st.1),
            Some("a"),
            "a keeps its state"
        );
    }

    #[test]
    fn a_held_slot_keeps_its_name_until_nothing_holds_it() {
        let mut t = forgetting_table(10);
        let b = collect(&mut t, 0, &["b"])[0];
        t.begin_collection(20_000);
        t.end_collection();
        // Queued samples of `b` hold its id: retired, not freed.
        t.sweep(|held| held[b as usize] = true, |_| {});
        assert_eq!(&*t.get(b).name, "b", "queued samples keep their name");
        let again = collect(&mut t, 20_000, &["b"])[0];
        assert_ne!(again, b, "a retired series is not found again: a new slot");
        assert_eq!(&*t.get(b).name, "b");
        // Nothing holds it any more: freed at the next sweep (a quarter of the time later).
        t.begin_collection(22_500);
        t.end_collection();
        t.sweep(|_| {}, |_| {});
        let c = collect(&mut t, 22_500, &["c"])[0];
        assert_eq!(c, b);
        assert_eq!(&*t.get(c).name, "c");
    }

    #[test]
    fn a_series_keeps_its_first_kind_and_an_untyped_one_takes_the_kind_an_input_gives() {
        let mut t = SeriesTable::new("h", 10);
        let c = t.intern_kind("c", "", &[], SeriesKind::Counter).unwrap();
        assert_eq!(t.intern_kind("c", "", &[], SeriesKind::Gauge), Ok(c));
        assert_eq!(t.kind(c), Some(SeriesKind::Counter));
        // Read back from disk before its input ran again.
        let r = t.intern("c", "_rate", &[]).unwrap();
        assert_eq!(t.kind(r), Some(SeriesKind::Untyped));
        assert_eq!(t.intern_kind("c", "_rate", &[], SeriesKind::Rate), Ok(r));
        assert_eq!(t.kind(r), Some(SeriesKind::Rate));
        assert_eq!(t.intern("c", "_rate", &[]), Ok(r));
        assert_eq!(
            t.kind(r),
            Some(SeriesKind::Rate),
            "untyped does not overwrite"
        );
        assert_eq!(t.kind(99), None, "no such series");
    }

    #[test]
    fn a_forgotten_series_keeps_its_kind_while_held_and_a_reused_slot_takes_the_new_kind() {
        let mut t = forgetting_table(10);
        t.begin_collection(0);
        let c = t.intern_kind("c", "", &[], SeriesKind::Counter).unwrap();
        t.end_collection();
        t.begin_collection(20_000);
        t.end_collection();
        t.sweep(|held| held[c as usize] = true, |_| {});
        assert_eq!(
            t.kind(c),
            Some(SeriesKind::Counter),
            "retired, still queued"
        );
        t.begin_collection(22_500);
        t.end_collection();
        t.sweep(|_| {}, |_| {});
        assert_eq!(t.kind(c), None, "freed: no kind");
        t.begin_collection(22_500);
        let g = t.intern_kind("g", "", &[], SeriesKind::Gauge).unwrap();
        t.end_collection();
        assert_eq!(g, c, "the slot is reused");
        assert_eq!(t.kind(g), Some(SeriesKind::Gauge));
    }

    #[test]
    fn nothing_is_freed_while_a_collection_is_under_way() {
        let mut t = forgetting_table(10);
        let b = collect(&mut t, 0, &["b"])[0];
        t.begin_collection(20_000);
        t.sweep(|_| {}, |_| {});
        assert_eq!(
            t.len(),
            1,
            "retired, not freed: a collection may hold its id"
        );
        assert_eq!(&*t.get(b).name, "b");
        t.end_collection();
    }

    #[test]
    fn without_a_forget_time_series_stay() {
        let mut t = SeriesTable::new("h", 10);
        collect(&mut t, 0, &["a"]);
        t.begin_collection(i64::MAX / 2);
        t.end_collection();
        t.sweep(|_| unreachable!(), |_| unreachable!());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn forgetting_one_series_of_a_hash_chain_keeps_the_others_found() {
        let mut t = forgetting_table(10_000);
        let names: Vec<String> = (0..3000).map(|i| format!("m{i}")).collect();
        let refs: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
        let ids = collect(&mut t, 0, &refs);
        let kept: Vec<&str> = refs.iter().copied().filter(|n| !n.ends_with('7')).collect();
        collect(&mut t, 9_000, &kept);
        t.begin_collection(12_000);
        t.end_collection();
        t.sweep(|_| {}, |_| {});
        assert_eq!(t.len(), kept.len());
        for (name, id) in refs.iter().zip(&ids) {
            if !name.ends_with('7') {
                assert_eq!(collect(&mut t, 12_000, &[name])[0], *id, "{name}");
            }
        }
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
