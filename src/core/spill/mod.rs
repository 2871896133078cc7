//! An output's outage buffer on flash: a store of CRC-checked frames in segment files,
//! and a codec per item kind that gives the frames meaning ([`codec::Codec`]; samples:
//! [`samples`]). The store (this file and [`scan`]) knows segments, the side files of
//! definitions, the read position, the size cap, damage, the retry after I/O errors and the
//! status; it never looks inside a payload.
//!
//! Nothing touches the disk while the output is healthy. When a flush fails, the output's
//! memory ring is appended here; when the output is back, these items go first, oldest
//! first, one frame per batch. Layout of the directory (one per output key):
//!
//! - `<16 hex digits>.seg`: segments, named by a sequence number, each up to a few hundred
//!   KiB of frames (see [`frame`]); a new process never appends to an old segment, so a torn
//!   tail stays a tail;
//! - `<16 hex digits>.dict`: the side file: definitions (for samples, the names of the
//!   series) that the segments from that number on refer to (up to the next `.dict`),
//!   written once per process and kept until the last of those segments is gone, so that a
//!   segment does not repeat every series' name;
//! - `position`: the read position (segment, offset) and the dropped count, written
//!   atomically (temp file, fsync, rename, fsync of the directory) at most once per sync
//!   interval and at shutdown, and without an fsync at every acknowledged replay batch.
//!
//! Damage never stops the agent: a torn or corrupted frame is skipped and counted, unknown
//! files are ignored, a bad position file means replaying from the oldest segment
//! (at-least-once). A failed write (a full disk) stops only the writing until a retry a
//! minute later, while what is on disk is still replayed; a failed read closes the
//! directory until the retry scans it as a start does.

pub mod codec;
pub mod frame;
#[cfg(feature = "logs")]
pub mod logs;
pub mod samples;
mod scan;
#[cfg(test)]
mod store_tests;
#[cfg(test)]
mod tests;

use super::atomic_file;
use super::backoff::Backoff;
use super::stats::{add, OutputStats};
use codec::{Codec, Summary};
pub use samples::SampleCodec;
use scan::{open_regular, read_frame, scan_dir, Read, Scan};
pub use scan::{status, status_of};
use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

const POSITION: &str = "position";
const POSITION_TMP: &str = "position.tmp";
const MAX_SEGMENT: u64 = 256 << 10;
const MIN_SEGMENT: u64 = 4 << 10;
/// How long an I/O error keeps the buffer memory-only before the disk is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(60);
/// The longest wait between retries of a disk that keeps failing.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// Where and how much.
#[derive(Debug, Clone)]
pub struct SpillConfig {
    pub dir: PathBuf,
    pub max_bytes: u64,
    pub sync_interval: Duration,
}

impl SpillConfig {
    /// Segments are small so that dropping the oldest loses little: an eighth of the cap,
    /// between 4 KiB and 256 KiB.
    fn segment_target(&self) -> u64 {
        (self.max_bytes / 8).clamp(MIN_SEGMENT, MAX_SEGMENT)
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Segment {
    id: u64,
    bytes: u64,
    samples: u64,
    /// Unread samples known to be undeliverable: their series was defined in a damaged
    /// frame. Not promised; counted as dropped when replay passes them.
    lost: u64,
    /// The scan at open read and counted everything before this offset: damage found there
    /// again by replay is not counted twice.
    checked_to: u64,
    first_ts: Option<i64>,
    last_ts: Option<i64>,
}

impl Segment {
    fn note(&mut self, s: &Summary, frame_len: u64) {
        self.bytes += frame_len;
        self.samples += s.items;
        if s.items > 0 {
            self.first_ts = Some(self.first_ts.map_or(s.first_ts, |t| t.min(s.first_ts)));
            self.last_ts = Some(self.last_ts.map_or(s.last_ts, |t| t.max(s.last_ts)));
        }
    }
}

/// Where replay stands: the next frame to read, and how many samples of the head segment
/// were read already (so dropping it counts only the rest).
/// A dictionary file: the series definitions of the segments numbered from `id` up to the
/// next dictionary's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dict {
    id: u64,
    bytes: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Cursor {
    seg: u64,
    offset: u64,
    read: u64,
}

/// A batch handed out by [`Spill::next_batch`], to pass back to [`Spill::ack`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    seg: u64,
    next_offset: u64,
    samples: u64,
}

/// Where [`Spill::append_one`] put a frame, so that a write of the same samples that
/// succeeds meanwhile can mark it delivered ([`Spill::mark_delivered`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRef {
    seg: u64,
    offset: u64,
    next_offset: u64,
    samples: u64,
}

/// What `rtcollector buffer status` prints for one output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiskStatus {
    pub segments: u64,
    /// Bytes of the segments.
    pub bytes: u64,
    /// Bytes of the dictionary files (series names) beside them.
    pub dictionary_bytes: u64,
    pub samples: u64,
    pub oldest_ts: Option<i64>,
    pub newest_ts: Option<i64>,
    pub dropped: u64,
    pub corrupt_frames: u64,
    /// Samples on disk that cannot be replayed (their series was defined in a damaged frame).
    pub undeliverable: u64,
    /// Entries named like segments that cannot be read (a directory, no permission).
    pub unreadable: u64,
}

/// One output's outage buffer: a store of opaque frames in segment files, given meaning by
/// the codec of its item kind.
pub struct Spill<C: Codec = SampleCodec> {
    cfg: SpillConfig,
    stats: Rc<OutputStats>,
    /// `None` until the directory is first needed: a healthy agent creates nothing.
    state: Option<State>,
    /// When an I/O error made the buffer memory-only; the disk is tried again
    /// `retry_after` later.
    disabled_since: Option<Instant>,
    retry_after: Duration,
    /// Where `retry_after` comes from: doubling from a minute up to an hour.
    backoff: Backoff,
    /// Set when the disk is tried again after an error; a new error then doubles
    /// `retry_after` (up to an hour: each retry reads the whole directory), a success resets it.
    retrying: bool,
    /// Set at shutdown: the disk is tried once more whatever the schedule.
    retry_forced: bool,
    codec: C,
    out: Vec<u8>,
    defs: Vec<u8>,
    read_buf: Vec<u8>,
    reader: Reader,
    /// A frame whose samples were delivered from memory after they were spilled, found
    /// behind older frames: replay skips it when it gets there.
    delivered: Option<FrameRef>,
    /// Segments and samples dropped since the outage buffer became full: one line when it
    /// starts, one with the totals when it ends.
    full_streak: Option<(u64, u64)>,
}

/// The replay side's dictionary of the head segment: dictionary index → series id in this
/// process, built from the dictionary file of its segment (read up to `dict_upto`) and the
/// segment's frames read so far (`upto` is where the next frame starts). Segments of one
/// dictionary file share it; a segment of an earlier build has its own.
#[derive(Default)]
struct Reader {
    seg: Option<u64>,
    upto: u64,
    dict_file: Option<u64>,
    dict_upto: u64,
}

struct State {
    segs: VecDeque<Segment>,
    dicts: VecDeque<Dict>,
    /// The dictionary file this process appends to (the last of `dicts`); `None` until the
    /// first segment after an open or after everything was delivered.
    dict_writer: Option<File>,
    cursor: Cursor,
    writer: Option<(u64, File)>,
    /// Segments closed since the last sync, still to be fsynced (at most once per
    /// `buffer_sync_interval`, not at every rotation).
    closed: Vec<File>,
    next_id: u64,
    dropped: u64,
    data_dirty: bool,
    pos_dirty: bool,
    last_sync: Instant,
}

impl Spill {
    /// A buffer of samples; see [`Spill::with_codec`].
    pub fn new(cfg: SpillConfig, stats: Rc<OutputStats>) -> Spill {
        Spill::with_codec(cfg, stats, SampleCodec::default())
    }

    /// Series ids given to other series: the segment being written defines them again
    /// (under their new name) instead of pointing at their earlier definition.
    pub fn forget(&mut self, ids: &[super::metric::SeriesId]) {
        self.codec.forget(ids);
    }

    /// Marks the series ids the replay dictionary refers to (see `Hub::mark_held`).
    pub fn mark_held(&self, held: &mut [bool]) {
        for id in self.codec.interned() {
            if let Some(h) = held.get_mut(id as usize) {
                *h = true;
            }
        }
    }
}

impl<C: Codec> Spill<C> {
    /// Opens `cfg.dir` if it exists (what an earlier run left is replayed); otherwise the
    /// directory is created on the first spill.
    pub fn with_codec(cfg: SpillConfig, stats: Rc<OutputStats>, codec: C) -> Spill<C> {
        let mut backoff = Backoff::new(RETRY_AFTER, MAX_RETRY_AFTER);
        let mut spill = Spill {
            cfg,
            stats,
            state: None,
            disabled_since: None,
            retry_after: backoff.next_delay(),
            backoff,
            retrying: false,
            retry_forced: false,
            codec,
            out: Vec::new(),
            defs: Vec::new(),
            read_buf: Vec::new(),
            reader: Reader::default(),
            delivered: None,
            full_streak: None,
        };
        if spill.cfg.dir.is_dir() {
            if let Err(e) = spill.open() {
                spill.fail("cannot read the buffer directory", &e);
            }
        }
        spill
    }

    pub fn dir(&self) -> &Path {
        &self.cfg.dir
    }

    /// Whether the disk is off now: an error made the buffer memory-only and its retry is
    /// not due yet (once due, the next use tries the disk).
    pub fn is_disabled(&self) -> bool {
        self.disabled_since
            .is_some_and(|since| since.elapsed() < self.retry_after && !self.retry_forced)
    }

    /// The replay side forgets where it was, and its dictionary with the series ids it
    /// holds (they would stay held, never forgotten, until the next outage's replay).
    fn reset_reader(&mut self) {
        self.reader = Reader::default();
        self.codec.reset_reader();
    }

    /// Whether the buffer may be used: not disabled, or disabled long enough ago that the
    /// disk is to be tried again (what replay had read is forgotten: the retry reads the
    /// directory afresh, as a start does).
    fn usable(&mut self) -> bool {
        let Some(since) = self.disabled_since else {
            return true;
        };
        if since.elapsed() < self.retry_after && !self.retry_forced {
            return false;
        }
        log::info!(
            "output {}: trying the buffer directory {} again",
            self.stats.name,
            self.cfg.dir.display()
        );
        self.disabled_since = None;
        self.retrying = true;
        self.retry_forced = false;
        if self.state.is_none() {
            self.reset_reader();
        }
        true
    }

    /// At shutdown: what is still in memory is worth one more try of a disk that failed
    /// (a full disk may have room again now that replay deleted what it sent).
    pub fn retry_now(&mut self) {
        self.retry_forced = true;
    }

    /// Samples on disk not yet acknowledged.
    pub fn pending(&self) -> u64 {
        self.state.as_ref().map_or(0, |st| {
            let total: u64 = st
                .segs
                .iter()
                .map(|s| s.samples.saturating_sub(s.lost))
                .sum();
            total.saturating_sub(st.cursor.read)
        })
    }

    fn fail(&mut self, what: &str, e: &io::Error) {
        if std::mem::take(&mut self.retrying) {
            self.retry_after = self.backoff.next_delay();
        }
        log::error!(
            "output {}: {what} {}: {e}; buffering in memory only, trying the disk again in {:?}",
            self.stats.name,
            self.cfg.dir.display(),
            self.retry_after
        );
        // What was acknowledged since the last sync need not be sent again after the retry.
        if let Some(st) = self.state.as_ref().filter(|st| st.pos_dirty) {
            let _ = write_position(&self.cfg.dir, &st.cursor, st.dropped, true);
        }
        self.disabled_since = Some(Instant::now());
        self.state = None;
        self.reset_reader();
        add(&self.stats.disk_io_errors, 1);
        self.publish();
    }

    /// A write or sync failed (a full disk, most often): new samples stay in memory until
    /// the retry, but what is on disk is still replayed, oldest first, and deleting it as
    /// it is delivered frees the disk. Only when the torn tail cannot be cut off does the
    /// buffer close as after a read error.
    fn fail_write(&mut self, what: &str, e: &io::Error) {
        if !self.stop_writing() {
            self.fail(what, e);
            return;
        }
        if std::mem::take(&mut self.retrying) {
            self.retry_after = self.backoff.next_delay();
        }
        log::error!(
            "output {}: {what} {}: {e}; buffering in memory only (what is already on disk is still sent), trying the disk again in {:?}",
            self.stats.name,
            self.cfg.dir.display(),
            self.retry_after
        );
        self.disabled_since = Some(Instant::now());
        add(&self.stats.disk_io_errors, 1);
        self.publish();
    }

    /// Closes the segment and the dictionary being written, each cut back to its last
    /// whole frame (a cut frees space, so it works on a full disk). False when a cut fails.
    fn stop_writing(&mut self) -> bool {
        let Some(st) = self.state.as_mut() else {
            return false;
        };
        if let Some((id, file)) = st.writer.take() {
            let whole = st.segs.back().filter(|s| s.id == id).map_or(0, |s| s.bytes);
            if file.set_len(whole).is_err() {
                return false;
            }
            st.closed.push(file);
        }
        if let Some(file) = st.dict_writer.take() {
            let whole = st.dicts.back().map_or(0, |d| d.bytes);
            if file.set_len(whole).is_err() {
                return false;
            }
            st.closed.push(file);
        }
        // A dictionary opened for a segment that could not be created: the next one would
        // take its number.
        let newest_seg = st.segs.back().map(|s| s.id);
        if st.dicts.back().is_some_and(|d| newest_seg < Some(d.id)) {
            if let Some(d) = st.dicts.pop_back() {
                let _ = fs::remove_file(dict_path(&self.cfg.dir, d.id));
            }
        }
        true
    }

    fn open(&mut self) -> io::Result<()> {
        create_private_dir(&self.cfg.dir)?;
        let scan = scan_dir(&self.cfg.dir, true, C::census)?;
        // Above every name in use (unreadable entries too) and never below the position's
        // segment: numbers it calls consumed are not reused. `seg_id` never names u64::MAX.
        let next_id = scan
            .newest
            .map_or(0, |id| id + 1)
            .max(scan.position_seg.map_or(0, |p| p + 1));
        self.log_scan_findings(&scan);
        if scan.corrupt_frames > 0 {
            log::warn!(
                "output {}: skipped {} damaged frame(s) in {}",
                self.stats.name,
                scan.corrupt_frames,
                self.cfg.dir.display()
            );
            add(&self.stats.disk_corrupt_frames, scan.corrupt_frames);
        }
        self.state = Some(State {
            segs: scan.segs,
            dicts: scan.dicts,
            dict_writer: None,
            cursor: scan.cursor,
            writer: None,
            closed: Vec::new(),
            next_id,
            dropped: scan.dropped,
            data_dirty: false,
            pos_dirty: false,
            last_sync: Instant::now(),
        });
        let undeliverable: u64 = self
            .state
            .iter()
            .flat_map(|st| &st.segs)
            .map(|s| s.lost)
            .sum();
        if undeliverable > 0 {
            log::warn!(
                "output {}: {undeliverable} samples on disk cannot be sent: their series were named in damaged frames (counted as dropped)",
                self.stats.name
            );
        }
        if self.pending() > 0 {
            log::info!(
                "output {}: {} buffered samples on disk will be sent first",
                self.stats.name,
                self.pending()
            );
        }
        self.publish();
        Ok(())
    }

    /// One line each for what a scan skipped: entries it cannot read, segments found empty.
    fn log_scan_findings(&self, scan: &Scan) {
        if let Some((path, e)) = scan.unreadable.first() {
            log::warn!(
                "output {}: skipped {} unreadable entr{} in {} ({}: {e}); using the rest",
                self.stats.name,
                scan.unreadable.len(),
                if scan.unreadable.len() == 1 {
                    "y"
                } else {
                    "ies"
                },
                self.cfg.dir.display(),
                path.display()
            );
        }
        if let Some(first) = scan.empty.first() {
            log::warn!(
                "output {}: removed {} empty segment(s) in {} (a write that failed, or a power cut before its data was synced: what it held is lost), first {}",
                self.stats.name,
                scan.empty.len(),
                self.cfg.dir.display(),
                seg_path(&self.cfg.dir, *first).display()
            );
        }
    }

    /// Appends `samples` as frames of at most `per_frame` samples. Returns false when they
    /// could not be written (the buffer is off): the caller keeps them in memory.
    pub fn append(&mut self, samples: &[C::Item], table: &C::Table, per_frame: usize) -> bool {
        if !self.usable() {
            return false;
        }
        if samples.is_empty() {
            return true;
        }
        if self.state.is_none() {
            if let Err(e) = self.open() {
                self.fail("cannot create the buffer directory", &e);
                return false;
            }
        }
        for chunk in samples.chunks(per_frame.max(1)) {
            if let Err(e) = self.append_frame(chunk, table) {
                self.fail_write("cannot write to the buffer directory", &e);
                return false;
            }
        }
        self.appended();
        true
    }

    /// Appends `samples` as one frame and says where it is. `None` when it could not be
    /// written (the buffer is off).
    pub fn append_one(&mut self, samples: &[C::Item], table: &C::Table) -> Option<FrameRef> {
        if samples.is_empty() || !self.usable() {
            return None;
        }
        if self.state.is_none() {
            if let Err(e) = self.open() {
                self.fail("cannot create the buffer directory", &e);
                return None;
            }
        }
        match self.append_frame(samples, table) {
            Ok(at) => {
                self.appended();
                Some(at)
            }
            Err(e) => {
                self.fail_write("cannot write to the buffer directory", &e);
                None
            }
        }
    }

    fn appended(&mut self) {
        self.maybe_sync(false);
        self.publish();
        if std::mem::take(&mut self.retrying) {
            self.backoff.reset();
            self.retry_after = self.backoff.next_delay();
        }
    }

    /// The samples of the frame at `at` reached the output by another way (the memory
    /// copy of a batch that was being written when it was spilled): replay skips them.
    pub fn mark_delivered(&mut self, at: FrameRef) {
        let at_cursor = self
            .state
            .as_ref()
            .is_some_and(|st| st.cursor.seg == at.seg && st.cursor.offset == at.offset);
        if at_cursor {
            self.skip_to(at.seg, at.next_offset, at.samples);
            self.publish();
        } else {
            self.delivered = Some(at);
        }
    }

    fn append_frame(&mut self, chunk: &[C::Item], table: &C::Table) -> io::Result<FrameRef> {
        let target = self.cfg.segment_target();
        let Some(st) = self.state.as_mut() else {
            return Err(io::Error::other("buffer not open"));
        };
        let rotate = match (&st.writer, st.segs.back()) {
            (Some((id, _)), Some(last)) => last.id != *id || last.bytes >= target,
            _ => true,
        };
        if rotate {
            let dictionary = self.codec.uses_side_file();
            if st.rotate(&self.cfg.dir, dictionary, self.cfg.max_bytes / 4)? {
                self.codec.start_side_file();
            }
            self.codec.start_segment();
        }
        self.out.clear();
        self.defs.clear();
        let summary = self
            .codec
            .encode(chunk, table, &mut self.out, &mut self.defs)
            .map_err(io::Error::other)?;
        let len = self.out.len() as u64;
        let defs_len = self.defs.len() as u64;
        self.make_room(len + defs_len);
        let Some(st) = self.state.as_mut() else {
            return Err(io::Error::other("buffer not open"));
        };
        if defs_len > 0 {
            // Before the frames that refer to them, in the file and at each sync.
            let (Some(file), Some(dict)) = (st.dict_writer.as_mut(), st.dicts.back_mut()) else {
                return Err(io::Error::other("no open dictionary"));
            };
            file.write_all(&self.defs)?;
            dict.bytes += defs_len;
            add(&self.stats.disk_written_bytes, defs_len);
        }
        let Some((seg, file)) = st.writer.as_mut() else {
            return Err(io::Error::other("no open segment"));
        };
        let seg = *seg;
        let offset = st.segs.back().map_or(0, |s| s.bytes);
        file.write_all(&self.out)?;
        add(&self.stats.disk_written_bytes, len);
        if let Some(last) = st.segs.back_mut() {
            last.note(&summary, len);
        }
        st.data_dirty = true;
        Ok(FrameRef {
            seg,
            offset,
            next_offset: offset + len,
            samples: summary.items,
        })
    }

    /// Drops the oldest segments until `incoming` more bytes fit under `max_disk_buffer`,
    /// counting their unread samples as dropped. The segment being written stays (its
    /// frames refer to the series it defined); segments are an eighth of the cap or less.
    fn make_room(&mut self, incoming: u64) {
        let Some(st) = self.state.as_mut() else {
            return;
        };
        loop {
            let total = st.total_bytes();
            let writing = st.writer.as_ref().map(|(id, _)| *id);
            if total + incoming <= self.cfg.max_bytes
                || st.segs.len() < 2
                || st.segs.front().map(|s| s.id) == writing
            {
                return;
            }
            let Some(oldest) = st.segs.pop_front() else {
                return;
            };
            let lost = if st.cursor.seg == oldest.id {
                oldest.samples.saturating_sub(st.cursor.read)
            } else {
                oldest.samples
            };
            let _ = fs::remove_file(seg_path(&self.cfg.dir, oldest.id));
            st.forget_dicts(&self.cfg.dir);
            st.dropped += lost;
            st.pos_dirty = true;
            add(&self.stats.dropped, lost);
            add(&self.stats.disk_dropped, lost);
            if st.cursor.seg <= oldest.id {
                st.cursor = Cursor {
                    seg: st.segs.front().map_or(st.next_id, |s| s.id),
                    offset: 0,
                    read: 0,
                };
            }
            match self.full_streak.as_mut() {
                Some((segs, samples)) => {
                    *segs += 1;
                    *samples += lost;
                }
                None => {
                    log::warn!(
                        "output {}: outage buffer full ({} bytes): dropping the oldest segments to make room, the first with {lost} samples (the total follows when the outage ends)",
                        self.stats.name,
                        self.cfg.max_bytes
                    );
                    self.full_streak = Some((1, lost));
                }
            }
        }
    }

    /// The output delivers again, or everything is gone or stopping: the totals of the
    /// drops since the outage buffer became full.
    fn end_full_streak(&mut self) {
        if let Some((segs, samples)) = self.full_streak.take() {
            log::warn!(
                "output {}: the full outage buffer dropped {segs} oldest segment(s), {samples} samples in all",
                self.stats.name
            );
        }
    }

    /// The next batch to replay, oldest first, into `out`, its series interned into
    /// `table`. `None` when the disk holds nothing more (the files are removed then).
    pub fn next_batch(&mut self, table: &mut C::Table, out: &mut Vec<C::Item>) -> Option<Token> {
        if self.state.is_none()
            && self.disabled_since.is_some()
            && self.usable()
            && self.cfg.dir.is_dir()
        {
            if let Err(e) = self.open() {
                self.fail("cannot read the buffer directory", &e);
                return None;
            }
        }
        loop {
            let st = self.state.as_mut()?;
            let head = *st.segs.front()?;
            if st.cursor.seg != head.id {
                st.cursor = Cursor {
                    seg: head.id,
                    offset: 0,
                    read: 0,
                };
            }
            let offset = st.cursor.offset;
            if let Err(e) = self.prime_dict(head.id, offset) {
                self.fail("cannot read the buffer directory", &e);
                return None;
            }
            match self.read_at(head.id, offset) {
                Ok(Read::Frame { next_offset }) => {
                    self.reader.upto = next_offset;
                    let decoded = self.codec.decode(&self.read_buf, table, out);
                    match decoded {
                        Ok(lost) => {
                            self.count_lost(lost);
                            if self.take_delivered(head.id, offset) {
                                self.skip_to(head.id, next_offset, out.len() as u64 + lost);
                                out.clear();
                                continue;
                            }
                            if !out.is_empty() {
                                return Some(Token {
                                    seg: head.id,
                                    next_offset,
                                    samples: out.len() as u64 + lost,
                                });
                            }
                            self.skip_to(head.id, next_offset, lost);
                        }
                        Err(_) => {
                            self.note_corrupt(&head, offset);
                            self.skip_to(head.id, next_offset, 0);
                        }
                    }
                }
                Ok(Read::BadCrc { next_offset }) => {
                    self.reader.upto = next_offset;
                    self.note_corrupt(&head, offset);
                    self.skip_to(head.id, next_offset, 0);
                }
                Ok(Read::Skip { resume }) => {
                    self.reader.upto = resume;
                    self.note_corrupt(&head, offset);
                    self.skip_to(head.id, resume, 0);
                }
                Ok(Read::End) => {
                    if !self.finish_head(head.id) {
                        return None;
                    }
                }
                Ok(Read::Damaged) => {
                    self.note_corrupt(&head, offset);
                    if !self.finish_head(head.id) {
                        return None;
                    }
                }
                Err(e) => {
                    self.fail("cannot read the buffer directory", &e);
                    return None;
                }
            }
        }
    }

    fn take_delivered(&mut self, seg: u64, offset: u64) -> bool {
        let hit = self
            .delivered
            .is_some_and(|d| d.seg == seg && d.offset == offset);
        if hit {
            self.delivered = None;
        }
        hit
    }

    /// Replay resumes in the middle of segment `seg` (after a restart): reads the series
    /// definitions of the frames before `offset`.
    fn prime_dict(&mut self, seg: u64, offset: u64) -> io::Result<()> {
        let dict_file = self
            .state
            .as_ref()
            .and_then(|st| dictionary_of(&st.dicts, seg));
        if self.reader.seg != Some(seg) {
            self.reader.seg = Some(seg);
            self.reader.upto = 0;
            if dict_file.is_none() || dict_file != self.reader.dict_file {
                self.codec.reset_reader();
                self.reader.dict_file = dict_file;
                self.reader.dict_upto = 0;
            }
        }
        if let Some(id) = dict_file {
            self.read_dictionary(id)?;
        }
        if self.reader.upto >= offset {
            return Ok(());
        }
        let file = File::open(seg_path(&self.cfg.dir, seg))?;
        let mut at = self.reader.upto;
        while at < offset {
            match read_frame(&file, at, &mut self.read_buf)? {
                Read::Frame { next_offset } => {
                    let _ = self.codec.learn(&self.read_buf);
                    at = next_offset;
                }
                Read::BadCrc { next_offset } => at = next_offset,
                Read::Skip { resume } => at = resume,
                Read::End | Read::Damaged => break,
            }
        }
        self.reader.upto = at;
        Ok(())
    }

    /// Reads the definitions appended to dictionary `id` since the last call.
    fn read_dictionary(&mut self, id: u64) -> io::Result<()> {
        let file = File::open(dict_path(&self.cfg.dir, id))?;
        let mut at = self.reader.dict_upto;
        loop {
            match read_frame(&file, at, &mut self.read_buf)? {
                Read::Frame { next_offset } => {
                    let _ = self.codec.learn(&self.read_buf);
                    at = next_offset;
                }
                Read::BadCrc {
                    next_offset: resume,
                }
                | Read::Skip { resume } => at = resume,
                Read::End | Read::Damaged => break,
            }
        }
        self.reader.dict_upto = at;
        Ok(())
    }

    /// Marks a batch from [`Spill::next_batch`] as delivered.
    pub fn ack(&mut self, token: Token) {
        self.skip_to(token.seg, token.next_offset, token.samples);
        self.note_position();
        self.end_full_streak();
        self.publish();
    }

    /// Writes the read position now, without an fsync (the next sync makes it durable): an
    /// agent killed during a replay then resumes after the last batch the output took,
    /// instead of sending up to a sync interval of batches twice.
    fn note_position(&mut self) {
        let Some(st) = self
            .state
            .as_ref()
            .filter(|st| st.pos_dirty && !st.segs.is_empty())
        else {
            return;
        };
        // A failure here is seen again, and handled, by the next sync's durable write.
        let _ = write_position(&self.cfg.dir, &st.cursor, st.dropped, false);
    }

    fn skip_to(&mut self, seg: u64, offset: u64, samples: u64) {
        if let Some(st) = self.state.as_mut() {
            if st.cursor.seg == seg && offset > st.cursor.offset {
                st.cursor.offset = offset;
                st.cursor.read += samples;
                st.pos_dirty = true;
            }
        }
    }

    /// Samples of a replayed frame that could not be kept. Those the scan foresaw were
    /// logged at open; others (a frame damaged since, a full series table) are logged here.
    fn count_lost(&mut self, lost: u64) {
        if lost == 0 {
            return;
        }
        add(&self.stats.dropped, lost);
        add(&self.stats.disk_dropped, lost);
        let Some(st) = self.state.as_mut() else {
            return;
        };
        st.dropped += lost;
        let foreseen = st.segs.front_mut().map_or(0, |head| {
            let n = head.lost.min(lost);
            head.lost -= n;
            n
        });
        if lost > foreseen {
            log::warn!(
                "output {}: {} samples read from disk could not be kept (series table full, or their series named in a damaged frame)",
                self.stats.name,
                lost - foreseen
            );
        }
    }

    /// Damage at `offset` of `head`: counted and logged unless the scan at open did both.
    fn note_corrupt(&mut self, head: &Segment, offset: u64) {
        if offset < head.checked_to {
            return;
        }
        add(&self.stats.disk_corrupt_frames, 1);
        log::warn!(
            "output {}: skipping a damaged frame in {}",
            self.stats.name,
            seg_path(&self.cfg.dir, head.id).display()
        );
    }

    /// The head segment is read to its end (or its rest is unreadable). Removes it unless
    /// it is still being written; when nothing is left, removes every file. Returns whether
    /// another segment follows.
    fn finish_head(&mut self, id: u64) -> bool {
        let Some(st) = self.state.as_mut() else {
            return false;
        };
        // Only the last segment is ever written to, so a head that is alone is the last.
        if st.segs.len() <= 1 {
            self.clear_all();
            return false;
        }
        st.segs.pop_front();
        let _ = fs::remove_file(seg_path(&self.cfg.dir, id));
        st.forget_dicts(&self.cfg.dir);
        st.cursor = Cursor {
            seg: st.segs.front().map_or(st.next_id, |s| s.id),
            offset: 0,
            read: 0,
        };
        st.pos_dirty = true;
        true
    }

    /// Everything was delivered: the directory is emptied (a healthy agent holds no files).
    fn clear_all(&mut self) {
        let Some(st) = self.state.as_mut() else {
            return;
        };
        st.writer = None;
        st.closed.clear();
        // The position first: a position left behind would name a segment number that a
        // later process, numbering from 0 again, could reuse and then skip.
        let _ = fs::remove_file(self.cfg.dir.join(POSITION));
        for s in st.segs.drain(..) {
            let _ = fs::remove_file(seg_path(&self.cfg.dir, s.id));
        }
        st.dict_writer = None;
        for d in st.dicts.drain(..) {
            let _ = fs::remove_file(dict_path(&self.cfg.dir, d.id));
        }
        st.cursor = Cursor {
            seg: st.next_id,
            offset: 0,
            read: 0,
        };
        st.data_dirty = false;
        st.pos_dirty = false;
        self.reset_reader();
        self.end_full_streak();
        self.publish();
    }

    fn read_at(&mut self, seg: u64, offset: u64) -> io::Result<Read> {
        let file = File::open(seg_path(&self.cfg.dir, seg))?;
        read_frame(&file, offset, &mut self.read_buf)
    }
}

impl<C: Codec> Drop for Spill<C> {
    fn drop(&mut self) {
        self.end_full_streak();
    }
}

impl<C: Codec> Spill<C> {
    /// fsyncs the open segment and writes the position when `force`, or when the last sync
    /// is `buffer_sync_interval` old and something changed.
    pub fn maybe_sync(&mut self, force: bool) {
        // After a failed write the disk is left alone until the retry (a full disk would
        // refuse every position file); replay still notes its position as it goes.
        if self.is_disabled() && !force {
            return;
        }
        let Some(st) = self.state.as_mut() else {
            return;
        };
        if !(st.data_dirty || st.pos_dirty)
            || !(force || st.last_sync.elapsed() >= self.cfg.sync_interval)
        {
            return;
        }
        let result = st.sync(&self.cfg.dir);
        if let Err(e) = result {
            self.fail_write("cannot sync the buffer directory", &e);
        }
    }

    fn publish(&self) {
        let s = &self.stats;
        match &self.state {
            Some(st) => {
                s.disk_segments.set(st.segs.len() as u64);
                s.disk_bytes.set(st.total_bytes());
            }
            None => {
                s.disk_segments.set(0);
                s.disk_bytes.set(0);
            }
        }
        s.disk_samples.set(self.pending());
    }
}

impl State {
    /// Opens the next segment, and a new dictionary file for it (returns true) when this
    /// process has none yet or its own grew past `max_dict` (series that come and go).
    fn rotate(&mut self, dir: &Path, dictionary: bool, max_dict: u64) -> io::Result<bool> {
        // Nothing is fsynced here: new segments' data and names become durable at the
        // next sync (the position write fsyncs the directory).
        if let Some((_, f)) = self.writer.take() {
            self.closed.push(f);
        }
        let id = self.next_id;
        let new_dict = dictionary
            && (self.dict_writer.is_none()
                || self.dicts.back().is_some_and(|d| d.bytes > max_dict));
        if new_dict {
            if let Some(f) = self.dict_writer.take() {
                self.closed.push(f);
            }
            self.dict_writer = Some(create_private_file(&dict_path(dir, id))?);
            self.dicts.push_back(Dict { id, bytes: 0 });
        }
        let file = create_private_file(&seg_path(dir, id))?;
        self.next_id += 1;
        self.writer = Some((id, file));
        self.segs.push_back(Segment {
            id,
            ..Segment::default()
        });
        if self.segs.len() == 1 {
            self.cursor = Cursor {
                seg: id,
                offset: 0,
                read: 0,
            };
        }
        Ok(new_dict)
    }

    fn total_bytes(&self) -> u64 {
        let segs: u64 = self.segs.iter().map(|s| s.bytes).sum();
        segs + self.dicts.iter().map(|d| d.bytes).sum::<u64>()
    }

    /// Removes the dictionaries no remaining segment refers to: those followed by another
    /// at or before the oldest segment.
    fn forget_dicts(&mut self, dir: &Path) {
        let Some(head) = self.segs.front().map(|s| s.id) else {
            return;
        };
        while self.dicts.len() >= 2 && self.dicts[1].id <= head {
            if let Some(d) = self.dicts.pop_front() {
                let _ = fs::remove_file(dict_path(dir, d.id));
            }
        }
    }

    fn sync(&mut self, dir: &Path) -> io::Result<()> {
        // Definitions first: a frame must not outlive the names it refers to.
        if let Some(f) = &self.dict_writer {
            f.sync_data()?;
        }
        for f in self.closed.drain(..) {
            f.sync_data()?;
        }
        if let Some((_, f)) = &self.writer {
            f.sync_data()?;
        }
        if !self.segs.is_empty() {
            write_position(dir, &self.cursor, self.dropped, true)?;
        }
        self.data_dirty = false;
        self.pos_dirty = false;
        self.last_sync = Instant::now();
        Ok(())
    }
}

/// The buffer holds what the agent collected: only its user may read it, whatever the umask.
fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// A new file of the buffer, private to the agent's user.
fn create_private_file(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)
}

fn seg_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}.seg"))
}

fn dict_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}.dict"))
}

/// The dictionary segment `seg` refers to: the last one numbered at or before it.
fn dictionary_of(dicts: &VecDeque<Dict>, seg: u64) -> Option<u64> {
    dicts.iter().rev().find(|d| d.id <= seg).map(|d| d.id)
}

fn seg_id(name: &str) -> Option<u64> {
    file_id(name, ".seg")
}

fn dict_id(name: &str) -> Option<u64> {
    file_id(name, ".dict")
}

fn file_id(name: &str, ext: &str) -> Option<u64> {
    let hex = name.strip_suffix(ext)?;
    if hex.len() != 16 {
        return None;
    }
    // Never u64::MAX: the next segment's number must exist.
    u64::from_str_radix(hex, 16)
        .ok()
        .filter(|&id| id < u64::MAX)
}

#[derive(serde::Serialize, serde::Deserialize)]
struct PositionFile {
    seg: u64,
    offset: u64,
    dropped: u64,
}

/// Temp file, fsync, rename, fsync of the directory: the position is old or new, never torn.
fn write_position(dir: &Path, c: &Cursor, dropped: u64, durable: bool) -> io::Result<()> {
    let body = postcard::to_stdvec(&PositionFile {
        seg: c.seg,
        offset: c.offset,
        dropped,
    })
    .map_err(io::Error::other)?;
    let mut bytes = Vec::with_capacity(body.len() + frame::HEADER_LEN);
    bytes.extend_from_slice(&frame::MAGIC);
    bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&frame::checksum(&body).to_le_bytes());
    bytes.extend_from_slice(&body);
    if durable {
        atomic_file::replace(&dir.join(POSITION), &bytes)
    } else {
        atomic_file::replace_unsynced(&dir.join(POSITION), &bytes)
    }
}

fn read_position(dir: &Path) -> Option<PositionFile> {
    let mut bytes = Vec::new();
    open_regular(&dir.join(POSITION))
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .ok()?;
    let header: &[u8; frame::HEADER_LEN] = bytes.get(..frame::HEADER_LEN)?.try_into().ok()?;
    let frame::Header::Frame { len, crc } = frame::parse_header(header) else {
        return None;
    };
    let body = bytes.get(frame::HEADER_LEN..frame::HEADER_LEN + len)?;
    if !frame::crc_ok(body, crc) {
        return None;
    }
    postcard::from_bytes(body).ok()
}
