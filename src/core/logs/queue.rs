//! One output's log records not yet acknowledged: a byte ring of `max_log_buffer` bytes,
//! and during an outage the log part of the outage buffer (`<buffer_dir>/<key>/logs`),
//! whose (older) records go before the ring's.
//!
//! Policy when full, as for samples: the ring moves to the outage buffer when there is a
//! usable one; without one the oldest records are dropped and counted. A ring moved while
//! one of its batches is being written goes whole, that batch included: if the write
//! succeeds, those records are sent again from disk (at least once; outputs key records by
//! [`record_id`](super::record_id), so a replayed copy replaces itself).

use super::LogBatch;
use crate::core::byte_ring::ByteRing;
use crate::core::spill::logs::LogCodec;
use crate::core::spill::{Spill, SpillConfig, Token};
use crate::core::stats::{add, OutputStats};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// Average bytes per record the entry table of the ring is sized for (records smaller
/// than this, on average, make the item count the bound).
const BYTES_PER_ENTRY: usize = 128;

pub struct LogQueue {
    ring: RefCell<ByteRing>,
    spill: RefCell<Option<Spill<LogCodec>>>,
    pub stats: Rc<OutputStats>,
    batch_size: usize,
    /// Whether this outage has written to disk yet (logged once per outage).
    spilled: Cell<bool>,
    scratch: RefCell<LogBatch>,
}

impl LogQueue {
    pub fn new(capacity_bytes: usize, batch_size: usize, stats: Rc<OutputStats>) -> LogQueue {
        let max_items = (capacity_bytes / BYTES_PER_ENTRY).max(16);
        stats.buffer_cap.set(capacity_bytes as u64);
        LogQueue {
            ring: RefCell::new(ByteRing::with_capacity(capacity_bytes, max_items)),
            spill: RefCell::new(None),
            stats,
            batch_size: batch_size.max(1),
            spilled: Cell::new(false),
            scratch: RefCell::new(LogBatch::default()),
        }
    }

    /// Gives the queue its part of the outage buffer.
    pub fn attach_spill(&self, cfg: SpillConfig) {
        let mut spill = self.spill.borrow_mut();
        if spill.is_none() {
            *spill = Some(Spill::with_codec(cfg, self.stats.clone(), LogCodec));
        }
    }

    pub fn has_spill(&self) -> bool {
        self.spill.borrow().is_some()
    }

    /// Records held in memory.
    pub fn len(&self) -> usize {
        self.ring.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.ring.borrow().is_empty()
    }

    /// Whether a full batch waits in memory.
    pub fn batch_full(&self) -> bool {
        self.len() >= self.batch_size
    }

    /// Whether a record of `len` bytes can be taken without dropping an older one.
    pub fn has_room(&self, len: usize) -> bool {
        let ring = self.ring.borrow();
        let disk = self
            .spill
            .borrow()
            .as_ref()
            .is_some_and(|s| !s.is_disabled());
        ring.fits(len) || (disk && len <= ring.capacity())
    }

    /// Appends an encoded record, first moving the ring to disk if it would not fit.
    /// Returns how many records were dropped for it (older ones, or this one when it is
    /// larger than the whole ring).
    pub fn push(&self, record: &[u8]) -> u64 {
        if !self.ring.borrow().fits(record.len()) {
            self.spill_ring();
        }
        let mut ring = self.ring.borrow_mut();
        let dropped = ring.push_overwrite(record).unwrap_or(1);
        self.stats.buffer_len.set(ring.len() as u64);
        if dropped > 0 {
            add(&self.stats.dropped, dropped);
        }
        dropped
    }

    /// Moves the ring to the outage buffer, in frames of a batch each. What cannot be
    /// written stays in memory.
    pub fn spill_ring(&self) {
        let mut spill = self.spill.borrow_mut();
        let Some(spill) = spill.as_mut() else {
            return;
        };
        let mut ring = self.ring.borrow_mut();
        let mut batch = self.scratch.borrow_mut();
        let mut moved = 0;
        while moved < ring.len() {
            batch.clear();
            for i in moved..(moved + self.batch_size).min(ring.len()) {
                if let Some(r) = ring.get(i) {
                    batch.push_encoded(r);
                }
            }
            if !spill.append(std::slice::from_ref(&*batch), &(), 1) {
                break;
            }
            moved += batch.len();
        }
        if moved > 0 && !self.spilled.replace(true) {
            log::warn!(
                "output {}: writing buffered log records to {} until it is back",
                self.stats.name,
                spill.dir().display()
            );
        }
        ring.consume(moved);
        self.stats.buffer_len.set(ring.len() as u64);
    }

    /// The next batch from disk into `out` (older than the ring's), with its token.
    pub fn next_from_disk(&self, out: &mut Vec<LogBatch>) -> Option<Token> {
        self.spill.borrow_mut().as_mut()?.next_batch(&mut (), out)
    }

    pub fn ack_disk(&self, token: Token) {
        if let Some(spill) = self.spill.borrow_mut().as_mut() {
            spill.ack(token);
        }
    }

    /// Copies the oldest batch of the ring into `out`; returns the sequence number that
    /// [`Self::ack`] takes once it is delivered.
    pub fn peek(&self, out: &mut LogBatch) -> u64 {
        out.clear();
        let ring = self.ring.borrow();
        let n = ring.len().min(self.batch_size);
        for i in 0..n {
            if let Some(r) = ring.get(i) {
                out.push_encoded(r);
            }
        }
        ring.head_seq() + n as u64
    }

    /// Removes what a delivered batch from [`Self::peek`] held (what is still there).
    pub fn ack(&self, end_seq: u64) {
        let mut ring = self.ring.borrow_mut();
        ring.consume_to(end_seq);
        self.stats.buffer_len.set(ring.len() as u64);
    }

    /// The output is up again: the next outage logs its first spill again.
    pub fn note_recovered(&self) {
        self.spilled.set(false);
    }

    /// fsyncs the outage buffer when its interval has passed, or now with `force`.
    pub fn sync(&self, force: bool) {
        if let Some(spill) = self.spill.borrow_mut().as_mut() {
            spill.maybe_sync(force);
        }
    }

    /// At shutdown: the disk is tried once more whatever its retry schedule.
    pub fn retry_now(&self) {
        if let Some(spill) = self.spill.borrow_mut().as_mut() {
            spill.retry_now();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn queue(cap: usize, batch: usize) -> LogQueue {
        LogQueue::new(cap, batch, Rc::new(OutputStats::default()))
    }

    fn drain(q: &LogQueue) -> Vec<Vec<u8>> {
        let mut got = Vec::new();
        let mut from_disk = Vec::new();
        while let Some(token) = q.next_from_disk(&mut from_disk) {
            for b in &from_disk {
                got.extend(b.raw().map(<[u8]>::to_vec));
            }
            q.ack_disk(token);
        }
        let mut batch = LogBatch::default();
        loop {
            let end = q.peek(&mut batch);
            if batch.is_empty() {
                return got;
            }
            got.extend(batch.raw().map(<[u8]>::to_vec));
            q.ack(end);
        }
    }

    #[test]
    fn without_a_disk_the_oldest_records_are_dropped_and_counted() {
        let q = queue(40, 4);
        for i in 0..10u8 {
            q.push(&[i; 8]);
        }
        assert_eq!(drain(&q), (5..10u8).map(|i| vec![i; 8]).collect::<Vec<_>>());
        assert_eq!(q.stats.dropped.get(), 5);
        assert_eq!(
            q.push(&[0; 41]),
            1,
            "larger than the ring: refused, counted"
        );
    }

    #[test]
    fn with_a_disk_a_full_ring_moves_there_and_everything_comes_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(40, 3);
        q.attach_spill(SpillConfig {
            dir: dir.path().join("logs"),
            max_bytes: 1 << 20,
            sync_interval: Duration::from_secs(10),
        });
        for i in 0..20u8 {
            assert_eq!(q.push(&[i; 8]), 0);
        }
        assert!(q.stats.disk_samples.get() > 0);
        assert_eq!(drain(&q), (0..20u8).map(|i| vec![i; 8]).collect::<Vec<_>>());
        assert_eq!(q.stats.dropped.get(), 0);
    }

    #[test]
    fn a_batch_spilled_while_written_is_acknowledged_only_for_what_is_still_held() {
        let dir = tempfile::tempdir().unwrap();
        let q = queue(1000, 2);
        q.attach_spill(SpillConfig {
            dir: dir.path().join("logs"),
            max_bytes: 1 << 20,
            sync_interval: Duration::from_secs(10),
        });
        q.push(b"a");
        q.push(b"b");
        let mut batch = LogBatch::default();
        let end = q.peek(&mut batch);
        q.spill_ring();
        q.push(b"c");
        q.ack(end);
        // At least once: the batch written meanwhile comes again from disk.
        assert_eq!(drain(&q), [b"a", b"b", b"c"]);
    }
}
