//! Fan-out from inputs to the outputs' buffers.

use super::metric::{Sample, SeriesTable};
use super::output::LatestSink;
use super::ring::Ring;
use super::spill::{FrameRef, Spill, SpillConfig};
use super::stats::{add, AgentStats, OutputStats};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// A [`Sample`] as an output's ring stores it: 20 bytes instead of 24 (no padding after
/// the 4-byte series id), which is 0.4 MB less for a ring of 100 000.
#[derive(Clone, Copy, Default, Debug, PartialEq)]
pub struct Slot {
    series: u32,
    ts_ms: [u32; 2],
    value: [u32; 2],
}

fn split(bits: u64) -> [u32; 2] {
    [bits as u32, (bits >> 32) as u32]
}

fn join(halves: [u32; 2]) -> u64 {
    u64::from(halves[0]) | (u64::from(halves[1]) << 32)
}

impl From<Sample> for Slot {
    fn from(s: Sample) -> Slot {
        Slot {
            series: s.series,
            ts_ms: split(s.ts_ms as u64),
            value: split(s.value.to_bits()),
        }
    }
}

impl From<Slot> for Sample {
    fn from(s: Slot) -> Sample {
        Sample {
            series: s.series,
            ts_ms: join(s.ts_ms) as i64,
            value: f64::from_bits(join(s.value)),
        }
    }
}

/// One output's not-yet-acknowledged samples: the memory ring, and during an outage the
/// outage buffer, whose (older) samples are sent before the ring's.
///
/// Policy when full: the ring is moved to the outage buffer when there is one (also in the
/// middle of a slow write or a long replay); without one, or when the disk fails, the
/// oldest sample is dropped and counted, so an outage keeps the most recent
/// `max_buffer_size` samples. The queue outlives its output task, which is how buffered
/// samples survive a config reload.
///
/// Invariant: everything on disk is older than everything in the ring, so replaying the
/// disk first keeps each series in order.
pub struct OutputQueue {
    pub key: String,
    pub ring: RefCell<Ring<Slot>>,
    pub batch_size: usize,
    wake_tx: smol::channel::Sender<()>,
    pub wake_rx: smol::channel::Receiver<()>,
    pub stats: Rc<OutputStats>,
    /// The outage buffer for outages; `None` means memory only (`--once`, tests).
    /// Shared with the queue a reload makes from this one.
    pub spill: Rc<RefCell<Option<Spill>>>,
    /// The outage buffer's deferred part (`<dir>/deferred`): samples the output deferred
    /// ([`Output::deferred`](super::output::Output::deferred)), offered again at every
    /// flush. Kept apart so that they can wait without holding back the main part. Its own
    /// stats, as it keeps its own files.
    pub deferred: Rc<RefCell<Option<Spill>>>,
    pub deferred_stats: Rc<OutputStats>,
    /// Whether samples are deferred now (logged once until the deferred part is empty).
    pub holding: Rc<Cell<bool>>,
    /// Sequence numbers `[start, end)` of the ring batch the output is writing now.
    inflight: Cell<Option<(u64, u64)>>,
    /// Where a spill put the in-flight batch (as a frame of its own) while it was written.
    inflight_on_disk: Cell<Option<FrameRef>>,
    /// Whether this outage has written to the outage buffer yet (logged once per outage).
    spilled: Cell<bool>,
    /// A batch read back from disk is being written: its ids are held by the replay
    /// dictionary only, which a disk error may reset meanwhile.
    pub replaying: Cell<bool>,
    scratch: RefCell<Vec<Sample>>,
    /// The output's log records, for an output that takes them
    /// ([`Output::kinds`](super::output::Output::kinds)).
    #[cfg(feature = "logs")]
    pub logs: Option<Rc<super::logs::queue::LogQueue>>,
    /// Whether the output takes samples; one that takes only logs gets none.
    #[cfg(feature = "logs")]
    pub takes_samples: bool,
}

impl OutputQueue {
    pub fn new(key: &str, capacity: usize, batch_size: usize, stats: Rc<OutputStats>) -> Self {
        let (wake_tx, wake_rx) = smol::channel::bounded(1);
        stats.buffer_cap.set(capacity as u64);
        let deferred_stats = Rc::new(OutputStats {
            name: format!("{} (deferred)", stats.name),
            ..OutputStats::default()
        });
        OutputQueue {
            key: key.to_string(),
            ring: RefCell::new(Ring::with_capacity(capacity)),
            batch_size: batch_size.max(1),
            wake_tx,
            wake_rx,
            stats,
            spill: Rc::new(RefCell::new(None)),
            deferred: Rc::new(RefCell::new(None)),
            deferred_stats,
            holding: Rc::new(Cell::new(false)),
            inflight: Cell::new(None),
            inflight_on_disk: Cell::new(None),
            spilled: Cell::new(false),
            replaying: Cell::new(false),
            scratch: RefCell::new(Vec::new()),
            #[cfg(feature = "logs")]
            logs: None,
            #[cfg(feature = "logs")]
            takes_samples: true,
        }
    }

    /// Whether the hub gives this queue samples.
    pub fn takes_samples(&self) -> bool {
        #[cfg(feature = "logs")]
        return self.takes_samples;
        #[cfg(not(feature = "logs"))]
        true
    }

    /// Appends an encoded log record, if the output takes them; returns how many records
    /// were dropped for it.
    #[cfg(feature = "logs")]
    pub fn push_log(&self, record: &[u8]) -> u64 {
        let Some(logs) = &self.logs else {
            return 0;
        };
        let dropped = logs.push(record);
        if logs.batch_full() {
            let _ = self.wake_tx.try_send(());
        }
        dropped
    }

    /// Appends samples, first moving the ring to the outage buffer if they would not fit.
    /// Returns how many older samples had to be dropped to make room (none while the disk
    /// takes them).
    pub fn push_or_spill(&self, samples: &[Sample], table: &SeriesTable) -> u64 {
        let free = {
            let ring = self.ring.borrow();
            ring.capacity() - ring.len()
        };
        if samples.len() > free {
            self.spill_ring(table);
        }
        self.push(samples)
    }

    /// Moves the memory ring to the outage buffer (the output is down, stopping, or the ring
    /// is full). What cannot be written stays in memory. A batch being written goes as a
    /// frame of its own, so that the write, if it succeeds, can take that frame back.
    pub fn spill_ring(&self, table: &SeriesTable) {
        #[cfg(feature = "logs")]
        if let Some(logs) = &self.logs {
            logs.spill_ring();
        }
        let mut spill = self.spill.borrow_mut();
        let Some(spill) = spill.as_mut() else {
            return;
        };
        let mut ring = self.ring.borrow_mut();
        let mut buf = self.scratch.borrow_mut();
        let mut moved = 0;
        if let Some((_, end)) = self.inflight.get() {
            if ring.head_seq() < end {
                let still_here = (end - ring.head_seq()) as usize;
                ring.copy_range_into(0, still_here, &mut buf);
                match spill.append_one(&buf, table) {
                    Some(at) => {
                        self.inflight_on_disk.set(Some(at));
                        moved = buf.len();
                    }
                    None => return,
                }
            }
        }
        while moved < ring.len() {
            ring.copy_range_into(moved, self.batch_size, &mut buf);
            if !spill.append(&buf, table, self.batch_size) {
                break;
            }
            moved += buf.len();
        }
        if moved > 0 && !self.spilled.replace(true) {
            log::warn!(
                "output {}: writing buffered samples to {} until it is back",
                self.stats.name,
                spill.dir().display()
            );
        }
        ring.consume(moved);
        self.stats.buffer_len.set(ring.len() as u64);
    }

    /// The output starts writing the ring batch `[start, end)`.
    pub fn begin_write(&self, start: u64, end: u64) {
        self.inflight.set(Some((start, end)));
        self.inflight_on_disk.set(None);
    }

    /// The write of the in-flight batch ended. Its samples leave the ring, or, when a
    /// spill took them to disk meanwhile and the write succeeded, leave the disk.
    pub fn end_write(&self, delivered: bool) {
        let Some((_, end)) = self.inflight.take() else {
            return;
        };
        let on_disk = self.inflight_on_disk.take();
        if !delivered {
            return;
        }
        match on_disk {
            Some(at) => {
                if let Some(spill) = self.spill.borrow_mut().as_mut() {
                    spill.mark_delivered(at);
                }
            }
            None => {
                let mut ring = self.ring.borrow_mut();
                ring.consume_to(end);
                self.stats.buffer_len.set(ring.len() as u64);
            }
        }
    }

    /// fsyncs every part of the outage buffer whose interval has passed, or now with `force`.
    pub fn sync_spills(&self, force: bool) {
        self.each_spill(|spill| spill.maybe_sync(force));
        #[cfg(feature = "logs")]
        if let Some(logs) = &self.logs {
            logs.sync(force);
        }
    }

    /// At shutdown: every part of the outage buffer is tried once more whatever its retry
    /// schedule.
    pub fn retry_spills_now(&self) {
        self.each_spill(Spill::retry_now);
        #[cfg(feature = "logs")]
        if let Some(logs) = &self.logs {
            logs.retry_now();
        }
    }

    /// Runs `f` on each part of the outage buffer there is.
    pub fn each_spill(&self, mut f: impl FnMut(&mut Spill)) {
        for part in [&self.spill, &self.deferred] {
            if let Some(spill) = part.borrow_mut().as_mut() {
                f(spill);
            }
        }
    }

    /// The outage buffer's parts for `dir` (the config's, per output key): the main part
    /// there, the deferred part in `dir/deferred` with a quarter of the size cap of its own,
    /// the log part in `dir/logs` with a cap of its own. A part the queue has keeps it.
    pub fn attach_spills(&self, cfg: SpillConfig) {
        let deferred = SpillConfig {
            dir: cfg.dir.join("deferred"),
            max_bytes: cfg.max_bytes / 4,
            sync_interval: cfg.sync_interval,
        };
        #[cfg(feature = "logs")]
        if let Some(logs) = &self.logs {
            logs.attach_spill(SpillConfig {
                dir: cfg.dir.join("logs"),
                max_bytes: cfg.max_bytes,
                sync_interval: cfg.sync_interval,
            });
        }
        if self.spill.borrow().is_none() {
            *self.spill.borrow_mut() = Some(Spill::new(cfg, self.stats.clone()));
            *self.deferred.borrow_mut() = Some(Spill::new(deferred, self.deferred_stats.clone()));
        }
    }

    /// After a reload: takes the kinds of items `new` (built from the new config) takes. A
    /// log queue both have stays this one's (with what it holds); one only `new` has is
    /// `new`'s; one only this has goes to disk (replayed if logs are taken again later).
    #[cfg(feature = "logs")]
    pub fn take_kinds_of(&mut self, new: &OutputQueue) {
        self.takes_samples = new.takes_samples;
        self.logs = match (self.logs.take(), &new.logs) {
            (Some(old), Some(_)) => Some(old),
            (None, new_logs) => new_logs.clone(),
            (Some(old), None) => {
                old.spill_ring();
                old.sync(true);
                None
            }
        };
    }

    /// Whether `new` takes the same kinds of items.
    pub fn same_kinds(&self, new: &OutputQueue) -> bool {
        #[cfg(feature = "logs")]
        return self.takes_samples == new.takes_samples
            && self.logs.is_some() == new.logs.is_some();
        #[cfg(not(feature = "logs"))]
        {
            let _ = new;
            true
        }
    }

    /// The output is up again: the next outage logs its first spill again.
    pub fn note_recovered(&self) {
        self.spilled.set(false);
        #[cfg(feature = "logs")]
        if let Some(logs) = &self.logs {
            logs.note_recovered();
        }
    }

    /// Appends samples; returns how many older samples had to be dropped to make room.
    pub fn push(&self, samples: &[Sample]) -> u64 {
        let mut ring = self.ring.borrow_mut();
        let mut dropped = 0u64;
        for s in samples {
            dropped += ring.push_overwrite(Slot::from(*s)) as u64;
        }
        self.stats.buffer_len.set(ring.len() as u64);
        if ring.len() >= self.batch_size {
            // A full channel means a wake-up is already pending.
            let _ = self.wake_tx.try_send(());
        }
        dropped
    }

    /// Moves everything into a queue with another capacity (a reload changed it), oldest
    /// first, dropping the oldest if it no longer fits.
    pub fn resized(&self, capacity: usize, batch_size: usize) -> OutputQueue {
        let mut q = OutputQueue::new(&self.key, capacity, batch_size, self.stats.clone());
        q.spill = self.spill.clone();
        q.deferred = self.deferred.clone();
        q.deferred_stats = self.deferred_stats.clone();
        q.holding = self.holding.clone();
        #[cfg(feature = "logs")]
        {
            q.logs = self.logs.clone();
            q.takes_samples = self.takes_samples;
        }
        let ring = self.ring.borrow();
        let mut chunk: Vec<Sample> = Vec::with_capacity(q.batch_size);
        let mut dropped = 0;
        for skip in (0..ring.len()).step_by(q.batch_size) {
            ring.copy_range_into(skip, q.batch_size, &mut chunk);
            dropped += q.push(&chunk);
        }
        add(&q.stats.dropped, dropped);
        q
    }
}

/// All outputs' queues, and the sinks of the outputs that keep only the latest value per
/// series (they have no queue); inputs publish here.
#[derive(Default)]
pub struct Hub {
    queues: RefCell<Vec<Rc<OutputQueue>>>,
    latest: RefCell<Vec<Rc<dyn LatestSink>>>,
}

impl Hub {
    pub fn set_queues(&self, queues: Vec<Rc<OutputQueue>>) {
        *self.queues.borrow_mut() = queues;
    }

    /// The sinks of the latest-value outputs ([`Buffering::Latest`](super::output::Buffering)).
    /// Their ids are not held for them (see [`LatestSink::accept`]).
    pub fn set_latest(&self, sinks: Vec<Rc<dyn LatestSink>>) {
        *self.latest.borrow_mut() = sinks;
    }

    pub fn queues(&self) -> Vec<Rc<OutputQueue>> {
        self.queues.borrow().clone()
    }

    /// Marks in `held` (indexed by series id) every id an output may still use: samples in
    /// a ring (the batch being written included), the dictionary of the segment being
    /// replayed, and every id while a batch no ring holds is being written.
    pub fn mark_held(&self, held: &mut [bool]) {
        for q in self.queues.borrow().iter() {
            // A batch in flight may be in no ring any more (spilled during its write, pushed
            // out of a full ring without a disk, or replayed from disk) and could carry any
            // id: hold them all until it is done.
            if q.replaying.get() || q.inflight.get().is_some() {
                held.fill(true);
                return;
            }
            let ring = q.ring.borrow();
            let (a, b) = ring.as_slices();
            for slot in a.iter().chain(b) {
                if let Some(h) = held.get_mut(slot.series as usize) {
                    *h = true;
                }
            }
            for part in [&q.spill, &q.deferred] {
                if let Some(spill) = part.borrow().as_ref() {
                    spill.mark_held(held);
                }
            }
        }
    }

    /// Series ids freed for other series: the outage buffers' writers define them afresh.
    pub fn forget(&self, ids: &[super::metric::SeriesId]) {
        for q in self.queues.borrow().iter() {
            q.each_spill(|spill| spill.forget(ids));
        }
    }

    /// Whether every queue can take `n` more samples without dropping older ones: its ring
    /// has room, or a usable outage buffer to move the ring to. Latest-value outputs always do.
    pub fn has_room_for(&self, n: usize) -> bool {
        self.queues.borrow().iter().all(|q| {
            if !q.takes_samples() {
                return true;
            }
            let ring = q.ring.borrow();
            let free = ring.capacity() - ring.len();
            let disk = q.spill.borrow().as_ref().is_some_and(|s| !s.is_disabled());
            free >= n || (disk && n <= ring.capacity())
        })
    }

    /// Whether every output that takes logs can take a record of `len` bytes without
    /// dropping older ones.
    #[cfg(feature = "logs")]
    pub fn has_room_for_log(&self, len: usize) -> bool {
        self.queues
            .borrow()
            .iter()
            .filter_map(|q| q.logs.as_ref())
            .all(|logs| logs.has_room(len))
    }

    /// Hands an encoded log record to every output that takes logs (records dropped for it
    /// are counted in each output's log stats). Returns whether any output takes logs.
    #[cfg(feature = "logs")]
    pub fn publish_log(&self, record: &[u8]) -> bool {
        let mut any = false;
        for q in self.queues.borrow().iter() {
            if q.logs.is_some() {
                q.push_log(record);
                any = true;
            }
        }
        any
    }

    pub fn publish(&self, samples: &[Sample], table: &SeriesTable, stats: &AgentStats) {
        if samples.is_empty() {
            return;
        }
        for sink in self.latest.borrow().iter() {
            sink.accept(samples, table);
        }
        for q in self.queues.borrow().iter() {
            if !q.takes_samples() {
                continue;
            }
            let dropped = q.push_or_spill(samples, table);
            if dropped > 0 {
                add(&q.stats.dropped, dropped);
                add(&stats.dropped, dropped);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::spill::SpillConfig;
    use std::time::Duration;

    fn queue_with_disk(dir: &std::path::Path, cap: usize, batch: usize) -> OutputQueue {
        let stats: Rc<AgentStats> = Rc::default();
        let q = OutputQueue::new("o", cap, batch, stats.output("o"));
        *q.spill.borrow_mut() = Some(Spill::new(
            SpillConfig {
                dir: dir.join("o"),
                max_bytes: 1 << 20,
                sync_interval: Duration::from_secs(10),
            },
            q.stats.clone(),
        ));
        q
    }

    fn samples(table: &mut SeriesTable, from: i64, n: i64) -> Vec<Sample> {
        let series = table.intern("m", "", &[]).unwrap();
        (from..from + n)
            .map(|ts_ms| Sample {
                series,
                ts_ms,
                value: 0.0,
            })
            .collect()
    }

    /// Everything the queue still holds, disk first: what the output would send next.
    fn drain(q: &OutputQueue, table: &mut SeriesTable) -> Vec<i64> {
        let mut got = Vec::new();
        let mut batch = Vec::new();
        let mut spill = q.spill.borrow_mut();
        let spill = spill.as_mut().unwrap();
        while let Some(token) = spill.next_batch(table, &mut batch) {
            got.extend(batch.iter().map(|s| s.ts_ms));
            spill.ack(token);
        }
        let ring = q.ring.borrow();
        ring.peek_into(ring.len(), &mut batch);
        got.extend(batch.iter().map(|s| s.ts_ms));
        got
    }

    /// Ids in a ring are held; all are while a batch no ring holds is being written.
    #[test]
    fn held_ids_are_those_in_rings_and_all_during_a_replayed_write() {
        let mut table = SeriesTable::new("h", 10);
        let a = table.intern("a", "", &[]).unwrap();
        let b = table.intern("b", "", &[]).unwrap();
        let stats: Rc<AgentStats> = Rc::default();
        let q = Rc::new(OutputQueue::new("o", 4, 2, stats.output("o")));
        let hub = Hub::default();
        hub.set_queues(vec![q.clone()]);
        q.push_or_spill(
            &[Sample {
                series: b,
                ts_ms: 0,
                value: 1.0,
            }],
            &table,
        );
        let mut held = vec![false; 2];
        hub.mark_held(&mut held);
        assert_eq!((held[a as usize], held[b as usize]), (false, true));
        q.replaying.set(true);
        let mut held = vec![false; 2];
        hub.mark_held(&mut held);
        assert_eq!(held, [true, true]);
    }

    /// A ring that fills while a batch of it is being written goes to disk, the batch as
    /// a frame of its own; then the write's outcome decides whether that frame is sent.
    fn overflow_during_a_write(delivered: bool) -> Vec<i64> {
        let dir = tempfile::tempdir().unwrap();
        let mut table = SeriesTable::new("h", 10);
        let q = queue_with_disk(dir.path(), 10, 4);
        q.push_or_spill(&samples(&mut table, 0, 6), &table);
        let head = q.ring.borrow().head_seq();
        q.begin_write(head, head + 4);
        let dropped = q.push_or_spill(&samples(&mut table, 6, 8), &table);
        assert_eq!(dropped, 0, "the disk took the ring instead");
        assert_eq!(q.stats.disk_samples.get(), 6);
        q.end_write(delivered);
        drain(&q, &mut table)
    }

    #[test]
    fn a_batch_written_while_the_ring_spilled_is_not_sent_again() {
        assert_eq!(overflow_during_a_write(true), (4..14).collect::<Vec<_>>());
    }

    #[test]
    fn a_batch_that_failed_while_the_ring_spilled_is_sent_first_from_disk() {
        assert_eq!(overflow_during_a_write(false), (0..14).collect::<Vec<_>>());
    }

    #[test]
    fn a_delivered_frame_behind_older_frames_is_skipped_when_replay_reaches_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut table = SeriesTable::new("h", 10);
        let q = queue_with_disk(dir.path(), 10, 4);
        // Older samples on disk already, then a ring batch in flight when the ring fills.
        q.push_or_spill(&samples(&mut table, 0, 3), &table);
        q.spill_ring(&table);
        q.push_or_spill(&samples(&mut table, 3, 4), &table);
        let head = q.ring.borrow().head_seq();
        q.begin_write(head, head + 4);
        q.push_or_spill(&samples(&mut table, 7, 9), &table);
        q.end_write(true);
        assert_eq!(
            drain(&q, &mut table),
            [0, 1, 2].into_iter().chain(7..16).collect::<Vec<_>>()
        );
    }

    /// A reload that turns logs on for an output (mqtt's `logs: true`) gives its adopted
    /// queue a log queue; one that turns them off sends what the log queue held to disk.
    #[cfg(feature = "logs")]
    #[test]
    fn a_reload_changes_the_kinds_an_adopted_queue_takes() {
        use crate::core::logs::queue::LogQueue;
        let dir = tempfile::tempdir().unwrap();
        let stats: Rc<AgentStats> = Rc::default();
        let old = OutputQueue::new("o", 10, 5, stats.output("o"));
        let mut new = OutputQueue::new("o", 10, 5, stats.output("o"));
        new.logs = Some(Rc::new(LogQueue::new(1 << 16, 5, stats.output("o.logs"))));
        assert!(!old.same_kinds(&new));
        let mut adopted = old.resized(10, 5);
        adopted.take_kinds_of(&new);
        assert!(adopted.same_kinds(&new));
        adopted.attach_spills(SpillConfig {
            dir: dir.path().join("o"),
            max_bytes: 1 << 20,
            sync_interval: Duration::from_secs(10),
        });
        adopted.push_log(b"kept");
        let logs = adopted.logs.clone().unwrap();
        let mut off = adopted.resized(10, 5);
        off.take_kinds_of(&OutputQueue::new("o", 10, 5, stats.output("o")));
        assert!(off.logs.is_none());
        assert_eq!(
            (logs.len(), logs.stats.disk_samples.get()),
            (0, 1),
            "on disk"
        );
    }

    #[test]
    fn a_slot_is_smaller_and_keeps_every_bit() {
        assert_eq!(std::mem::size_of::<Slot>(), 20);
        for s in [
            Sample {
                series: u32::MAX,
                ts_ms: -1_700_000_000_123,
                value: -0.0,
            },
            Sample {
                series: 7,
                ts_ms: i64::MAX,
                value: f64::MIN_POSITIVE,
            },
        ] {
            let back = Sample::from(Slot::from(s));
            assert_eq!(back.series, s.series);
            assert_eq!(back.ts_ms, s.ts_ms);
            assert_eq!(back.value.to_bits(), s.value.to_bits());
        }
    }
}
