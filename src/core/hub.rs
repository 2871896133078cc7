//! Fan-out from inputs to the outputs' buffers.

use super::metric::Sample;
use super::ring::Ring;
use super::stats::{add, AgentStats, OutputStats};
use std::cell::RefCell;
use std::rc::Rc;

/// One output's not-yet-acknowledged samples.
///
/// Policy when full: the oldest sample is dropped and counted, so an outage keeps the most
/// recent `max_buffer_size` samples. The queue outlives its output task, which is how
/// buffered samples survive a config reload.
pub struct OutputQueue {
    pub key: String,
    pub ring: RefCell<Ring<Sample>>,
    pub batch_size: usize,
    wake_tx: smol::channel::Sender<()>,
    pub wake_rx: smol::channel::Receiver<()>,
    pub stats: Rc<OutputStats>,
}

impl OutputQueue {
    pub fn new(key: &str, capacity: usize, batch_size: usize, stats: Rc<OutputStats>) -> Self {
        let (wake_tx, wake_rx) = smol::channel::bounded(1);
        stats.buffer_cap.set(capacity as u64);
        OutputQueue {
            key: key.to_string(),
            ring: RefCell::new(Ring::with_capacity(capacity)),
            batch_size: batch_size.max(1),
            wake_tx,
            wake_rx,
            stats,
        }
    }

    /// Appends samples; returns how many older samples had to be dropped to make room.
    pub fn push(&self, samples: &[Sample]) -> u64 {
        let mut ring = self.ring.borrow_mut();
        let mut dropped = 0u64;
        for s in samples {
            dropped += ring.push_overwrite(*s) as u64;
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
        let q = OutputQueue::new(&self.key, capacity, batch_size, self.stats.clone());
        let ring = self.ring.borrow();
        let (a, b) = ring.as_slices();
        let dropped = q.push(a) + q.push(b);
        add(&q.stats.dropped, dropped);
        q
    }
}

/// All outputs' queues; inputs publish here.
#[derive(Default)]
pub struct Hub {
    queues: RefCell<Vec<Rc<OutputQueue>>>,
}

impl Hub {
    pub fn set_queues(&self, queues: Vec<Rc<OutputQueue>>) {
        *self.queues.borrow_mut() = queues;
    }

    pub fn queues(&self) -> Vec<Rc<OutputQueue>> {
        self.queues.borrow().clone()
    }

    pub fn publish(&self, samples: &[Sample], stats: &AgentStats) {
        if samples.is_empty() {
            return;
        }
        for q in self.queues.borrow().iter() {
            let dropped = q.push(samples);
            if dropped > 0 {
                add(&q.stats.dropped, dropped);
                add(&stats.dropped, dropped);
            }
        }
    }
}
