//! The codec of samples: a frame's payload is a postcard-encoded batch of samples, or the
//! identities (name + labels) of the series such batches refer to, since series ids mean
//! nothing to another process.
//!
//! The payload stores each sample as (dictionary index of its series, timestamp delta from the
//! frame's first timestamp, value), all varints except the `f64`. A series is defined once
//! per dictionary (`def_base` is the index of a frame's first definition): in a dictionary
//! file shared by the segments a process writes ([`Encoder`]), or, in segments of earlier
//! builds, in the segment's first frame that uses it. Either way a name costs its bytes
//! once, not once per frame. The price: a damaged definition loses the samples of its
//! series in the frames that refer to it (counted), and reading from the middle of a
//! segment first reads the definitions before.

use super::codec::{Census, Codec, Summary};
use super::frame;
use crate::core::metric::{Sample, SeriesId, SeriesTable};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq)]
pub struct Rec {
    series: u32,
    dt: i64,
    value: f64,
}

#[derive(Serialize)]
struct EncSeries<'a> {
    name: &'a str,
    labels: &'a [(Box<str>, Box<str>)],
}

#[derive(Serialize)]
struct EncBody<'a> {
    base_ts: i64,
    def_base: u32,
    series: &'a [EncSeries<'a>],
    samples: &'a [Rec],
}

#[derive(Deserialize)]
struct DecSeries<'a> {
    #[serde(borrow)]
    name: &'a str,
    #[serde(borrow)]
    labels: Vec<(&'a str, &'a str)>,
}

#[derive(Deserialize)]
struct DecBody<'a> {
    base_ts: i64,
    def_base: u32,
    #[serde(borrow)]
    series: Vec<DecSeries<'a>>,
    samples: Vec<Rec>,
}

/// The writer's side: which series the current dictionary defines, and reused buffers,
/// so spilling allocates per frame at most, never per sample.
///
/// Series are defined in the directory's dictionary file (frames without samples), and
/// sample frames only refer to them, so a segment no longer repeats every series' name:
/// at 50 000 series each 256 KiB segment used to be mostly names. `per_segment` writes the
/// layout of earlier builds (definitions inside the segment's own frames), which replay
/// still reads.
#[derive(Default)]
pub struct Encoder {
    index: HashMap<SeriesId, u32>,
    /// Definitions in the current segment (forgotten ids keep theirs: indices only grow).
    defined: u32,
    new_ids: Vec<SeriesId>,
    recs: Vec<Rec>,
    body: Vec<u8>,
    per_segment: bool,
}

impl Encoder {
    /// The layout of builds before the dictionary file, for tests of what they left.
    #[cfg(test)]
    pub fn per_segment() -> Encoder {
        Encoder {
            per_segment: true,
            ..Encoder::default()
        }
    }

    /// Whether definitions go to a dictionary file rather than into the segment.
    pub fn uses_dictionary_file(&self) -> bool {
        !self.per_segment
    }

    /// Forgets the definitions of these ids: they now name other series, which
    /// the next frame that has them defines anew (the earlier definitions stay, for the samples already
    /// written under them).
    pub fn forget(&mut self, ids: &[SeriesId]) {
        for id in ids {
            self.index.remove(id);
        }
    }

    /// The next frame opens a segment.
    pub fn new_segment(&mut self) {
        if self.per_segment {
            self.index.clear();
            self.defined = 0;
        }
    }

    /// The next frame's definitions open a new dictionary file: every series is defined
    /// again.
    pub fn new_dictionary(&mut self) {
        self.index.clear();
        self.defined = 0;
    }

    /// Appends one frame holding `samples` to `out`, and the definitions of the series the
    /// dictionary lacks as one frame to `defs` (into `out` itself with `per_segment`).
    pub fn encode(
        &mut self,
        samples: &[Sample],
        table: &SeriesTable,
        out: &mut Vec<u8>,
        defs: &mut Vec<u8>,
    ) -> Result<(), postcard::Error> {
        self.new_ids.clear();
        self.recs.clear();
        let def_base = self.defined;
        let base_ts = samples.first().map_or(0, |s| s.ts_ms);
        for s in samples {
            let next = self.defined;
            let idx = *self.index.entry(s.series).or_insert(next);
            if idx == next {
                self.new_ids.push(s.series);
                self.defined += 1;
            }
            self.recs.push(Rec {
                series: idx,
                dt: s.ts_ms.wrapping_sub(base_ts),
                value: s.value,
            });
        }
        let series: Vec<EncSeries> = self
            .new_ids
            .iter()
            .map(|&id| {
                let s = table.get(id);
                EncSeries {
                    name: &s.name,
                    labels: &s.labels,
                }
            })
            .collect();
        // The inputs of the series defined here follow the body, so frames of builds that
        // did not write them still decode (and those builds ignore the trailing bytes).
        let origins: Vec<&str> = self
            .new_ids
            .iter()
            .map(|&id| table.origin(id).unwrap_or(""))
            .collect();
        let recs = std::mem::take(&mut self.recs);
        let result = if self.per_segment {
            let body = EncBody {
                base_ts,
                def_base,
                series: &series,
                samples: &recs,
            };
            self.put(&body, Some(&origins), out)
        } else {
            let definitions = EncBody {
                base_ts,
                def_base,
                series: &series,
                samples: &[],
            };
            let refs = EncBody {
                base_ts,
                def_base: self.defined,
                series: &[],
                samples: &recs,
            };
            if series.is_empty() {
                Ok(())
            } else {
                self.put(&definitions, Some(&origins), defs)
            }
            .and_then(|()| self.put(&refs, None, out))
        };
        self.recs = recs;
        result
    }

    /// Appends `body` and the inputs of its definitions as one frame to `out`.
    fn put(
        &mut self,
        body: &EncBody,
        origins: Option<&[&str]>,
        out: &mut Vec<u8>,
    ) -> Result<(), postcard::Error> {
        let mut buf = std::mem::take(&mut self.body);
        buf.clear();
        buf = postcard::to_extend(body, buf)?;
        if let Some(origins) = origins {
            buf = postcard::to_extend(&origins, buf)?;
        }
        frame::seal(&buf, out);
        self.body = buf;
        Ok(())
    }
}

/// Counts a frame's samples and follows the segment's dictionary: `defined[i]` says
/// whether segment index `i` was defined by a readable frame so far (this frame's
/// definitions are added).
/// Where a frame's definitions go in a dictionary that knows `known` so far. Definitions
/// are written in order, so a frame defines right after the ones before it, or a little
/// later when damaged frames were skipped; an index beyond what any file could define
/// is damage that passed the CRC, refused rather than allocated for.
fn definition_range(body: &DecBody, known: usize) -> Result<(usize, usize), postcard::Error> {
    let base = body.def_base as usize;
    if base > known.saturating_add(frame::MAX_PAYLOAD) {
        return Err(postcard::Error::DeserializeBadEncoding);
    }
    Ok((base, base.saturating_add(body.series.len())))
}

pub fn census(payload: &[u8], defined: &mut Vec<bool>) -> Result<Census, postcard::Error> {
    let body: DecBody = postcard::from_bytes(payload)?;
    let (base, end) = definition_range(&body, defined.len())?;
    if defined.len() < end {
        defined.resize(end, false);
    }
    defined[base..end].fill(true);
    let (mut lo, mut hi, mut undefined) = (i64::MAX, i64::MIN, 0);
    for r in &body.samples {
        let ts = body.base_ts.wrapping_add(r.dt);
        lo = lo.min(ts);
        hi = hi.max(ts);
        if !defined.get(r.series as usize).copied().unwrap_or(false) {
            undefined += 1;
        }
    }
    Ok(Census {
        summary: Summary {
            items: body.samples.len() as u64,
            first_ts: lo,
            last_ts: hi,
        },
        undefined,
    })
}

/// The replay side's dictionary: index → series, for the segments of one dictionary file
/// (or one segment of an earlier build). Definitions are kept as written and interned
/// only when a replayed sample first names them: a dictionary holds every series its
/// process ever defined, which may be more than `max_series`, and most of them may have
/// no sample left to replay. Held in memory: at most the bytes of the definitions read.
#[derive(Default)]
pub struct Dictionary {
    entries: Vec<Entry>,
    /// Definitions not interned yet, each postcard-encoded as (name, labels, input).
    stored: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Entry {
    /// Never defined, or defined in a damaged frame.
    Missing,
    Stored {
        at: usize,
        len: usize,
    },
    Interned(SeriesId),
}

type StoredDef<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a str);

impl Dictionary {
    pub fn clear(&mut self) {
        self.entries.clear();
        self.stored.clear();
    }

    /// The series interned from it so far.
    pub fn interned(&self) -> impl Iterator<Item = SeriesId> + '_ {
        self.entries.iter().filter_map(|e| match e {
            Entry::Interned(id) => Some(*id),
            _ => None,
        })
    }

    /// Records the definitions of a CRC-checked payload; its samples are not read.
    pub fn learn(&mut self, payload: &[u8]) -> Result<(), postcard::Error> {
        let (body, rest): (DecBody, _) = postcard::take_from_bytes(payload)?;
        self.learn_body(&body, rest)
    }

    fn learn_body(&mut self, body: &DecBody, rest: &[u8]) -> Result<(), postcard::Error> {
        // Absent in frames written before series carried their input; an annotation the
        // body does not need, so a part that does not decode costs the inputs, never the
        // samples.
        let origins: Vec<&str> = postcard::from_bytes(rest).unwrap_or_default();
        let (base, end) = definition_range(body, self.entries.len())?;
        if self.entries.len() < end {
            self.entries.resize(end, Entry::Missing);
        }
        for (i, s) in body.series.iter().enumerate() {
            let at = self.stored.len();
            let def: (&str, &[(&str, &str)], &str) =
                (s.name, &s.labels, origins.get(i).copied().unwrap_or(""));
            self.stored = postcard::to_extend(&def, std::mem::take(&mut self.stored))?;
            let len = self.stored.len() - at;
            self.entries[base + i] = Entry::Stored { at, len };
        }
        Ok(())
    }

    /// Decodes a CRC-checked payload into `out` (cleared first): its definitions are
    /// recorded, and the series its samples name are interned into `table`. Returns how
    /// many samples could not be kept (series undefined after a damaged frame, table full).
    pub fn decode(
        &mut self,
        payload: &[u8],
        table: &mut SeriesTable,
        out: &mut Vec<Sample>,
    ) -> Result<u64, postcard::Error> {
        out.clear();
        let (body, rest): (DecBody, _) = postcard::take_from_bytes(payload)?;
        self.learn_body(&body, rest)?;
        let mut lost = 0;
        for r in &body.samples {
            match self.series(r.series as usize, table) {
                Some(series) => out.push(Sample {
                    series,
                    ts_ms: body.base_ts.wrapping_add(r.dt),
                    value: r.value,
                }),
                None => lost += 1,
            }
        }
        Ok(lost)
    }

    /// The series at `index`, interned on its first use.
    fn series(&mut self, index: usize, table: &mut SeriesTable) -> Option<SeriesId> {
        let (at, len) = match *self.entries.get(index)? {
            Entry::Missing => return None,
            Entry::Interned(id) => return Some(id),
            Entry::Stored { at, len } => (at, len),
        };
        let (name, labels, origin): StoredDef =
            postcard::from_bytes(&self.stored[at..at + len]).ok()?;
        // A full table refuses it now; a later sample may find room.
        let id = intern_as_written(table, name, &labels)?;
        if !origin.is_empty() {
            let origin = table.origin_id(origin);
            table.set_origin(id, origin);
        }
        self.entries[index] = Entry::Interned(id);
        Some(id)
    }
}

/// Samples through the outage buffer: the writer's index of defined series and the
/// replay side's dictionary.
#[derive(Default)]
pub struct SampleCodec {
    encoder: Encoder,
    reader: Dictionary,
}

impl SampleCodec {
    /// The layout of builds before the dictionary file, for tests of what they left.
    #[cfg(test)]
    pub fn per_segment() -> SampleCodec {
        SampleCodec {
            encoder: Encoder::per_segment(),
            reader: Dictionary::default(),
        }
    }

    /// See [`Encoder::forget`].
    pub fn forget(&mut self, ids: &[SeriesId]) {
        self.encoder.forget(ids);
    }

    /// The series replay has interned from the current dictionary.
    pub fn interned(&self) -> impl Iterator<Item = SeriesId> + '_ {
        self.reader.interned()
    }
}

impl Codec for SampleCodec {
    type Item = Sample;
    type Table = SeriesTable;

    fn uses_side_file(&self) -> bool {
        self.encoder.uses_dictionary_file()
    }

    fn start_segment(&mut self) {
        self.encoder.new_segment();
    }

    fn start_side_file(&mut self) {
        self.encoder.new_dictionary();
    }

    fn encode(
        &mut self,
        items: &[Sample],
        table: &SeriesTable,
        frame: &mut Vec<u8>,
        side: &mut Vec<u8>,
    ) -> Result<Summary, postcard::Error> {
        self.encoder.encode(items, table, frame, side)?;
        Ok(Summary {
            items: items.len() as u64,
            first_ts: items.iter().map(|s| s.ts_ms).min().unwrap_or(0),
            last_ts: items.iter().map(|s| s.ts_ms).max().unwrap_or(0),
        })
    }

    fn reset_reader(&mut self) {
        self.reader.clear();
    }

    fn learn(&mut self, payload: &[u8]) -> Result<(), postcard::Error> {
        self.reader.learn(payload)
    }

    fn decode(
        &mut self,
        payload: &[u8],
        table: &mut SeriesTable,
        out: &mut Vec<Sample>,
    ) -> Result<u64, postcard::Error> {
        self.reader.decode(payload, table, out)
    }

    fn census(payload: &[u8], defined: &mut Vec<bool>) -> Result<Census, postcard::Error> {
        census(payload, defined)
    }
}

/// Interns a series with the `host` it was written with, which may differ from today's.
fn intern_as_written(
    table: &mut SeriesTable,
    name: &str,
    labels: &[(&str, &str)],
) -> Option<SeriesId> {
    let host = labels.iter().find(|(k, _)| *k == "host").map(|(_, v)| *v);
    match host {
        Some(h) if h != table.host() => {
            let today: Box<str> = table.host().into();
            table.set_host(h);
            let id = table.intern(name, "", labels).ok();
            table.set_host(&today);
            id
        }
        _ => table.intern(name, "", labels).ok(),
    }
}

/// Bytes of one sample encoded on its own with postcard (id, timestamp, value): the
/// yardstick for what buffering costs in flash.
pub fn plain_sample_len(s: &Sample) -> usize {
    postcard::to_stdvec(&(s.series, s.ts_ms, s.value)).map_or(0, |v| v.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_definition_index_no_file_could_reach_is_refused_not_allocated() {
        let series = [EncSeries {
            name: "m",
            labels: &[],
        }];
        let body = EncBody {
            base_ts: 0,
            def_base: u32::MAX,
            series: &series,
            samples: &[],
        };
        let payload = postcard::to_stdvec(&body).unwrap();
        let mut table = SeriesTable::new("h", 10);
        let (mut dict, mut out) = (Dictionary::default(), Vec::new());
        assert!(dict.decode(&payload, &mut table, &mut out).is_err());
        assert!(dict.entries.is_empty(), "nothing was allocated for it");
        let mut defined = Vec::new();
        assert!(census(&payload, &mut defined).is_err());
        assert!(defined.is_empty());
    }
}
