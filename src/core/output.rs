//! The output contract and the loop that drains one output's queue.

use super::hub::OutputQueue;
use super::input::Shared;
use super::metric::{Sample, SeriesTable};
use super::stats::add;
use futures_lite::future;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How a batch went.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WriteReport {
    /// Samples the destination accepted.
    pub written: u64,
    /// Samples the destination refused one by one (for example older than retention):
    /// retrying them would fail the same way, so they are dropped and counted.
    pub rejected: u64,
}

/// Why a whole batch failed.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputError {
    /// The destination is unreachable or refused us as a whole (connection, auth): keep
    /// the batch and try again later.
    Retry(String),
    /// The batch itself cannot be written, now or later: drop it and count it.
    Reject(String),
}

impl fmt::Display for OutputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OutputError::Retry(m) | OutputError::Reject(m) => f.write_str(m),
        }
    }
}

pub type WriteFuture<'a> = Pin<Box<dyn Future<Output = Result<WriteReport, OutputError>> + 'a>>;

/// Wraps a synchronous write as a [`WriteFuture`].
pub fn ready_write(result: Result<WriteReport, OutputError>) -> WriteFuture<'static> {
    Box::pin(std::future::ready(result))
}

/// Read access to series names and labels for encoding. Borrow only inside the closure,
/// never across an `.await`: inputs intern new series while an output waits on I/O.
pub struct SeriesView<'a>(pub &'a RefCell<SeriesTable>);

impl SeriesView<'_> {
    pub fn with<R>(&self, f: impl FnOnce(&SeriesTable) -> R) -> R {
        f(&self.0.borrow())
    }
}

/// A destination for samples.
pub trait Output: 'static {
    /// Writes one batch, oldest sample first. Called again with the same samples after a
    /// [`OutputError::Retry`], so a write must be safe to repeat.
    fn write<'a>(&'a mut self, batch: &'a [Sample], series: SeriesView<'a>) -> WriteFuture<'a>;
}

/// An output with its queue and the scheduler's state for it.
pub struct OutputRunner {
    pub name: String,
    output: Box<dyn Output>,
    pub queue: Rc<OutputQueue>,
    batch: Vec<Sample>,
    failing: bool,
}

impl OutputRunner {
    pub fn new(name: &str, output: Box<dyn Output>, queue: Rc<OutputQueue>) -> Self {
        let batch = Vec::with_capacity(queue.batch_size);
        OutputRunner {
            name: name.to_string(),
            output,
            queue,
            batch,
            failing: false,
        }
    }

    /// Sends batches until the queue is empty or a batch fails. Returns false on failure;
    /// the failed batch stays queued.
    pub async fn flush(&mut self, shared: &Shared) -> bool {
        let stats = self.queue.stats.clone();
        loop {
            let start_seq = {
                let ring = self.queue.ring.borrow();
                ring.peek_into(self.queue.batch_size, &mut self.batch);
                ring.head_seq()
            };
            if self.batch.is_empty() {
                return true;
            }
            let started = Instant::now();
            let result = self
                .output
                .write(&self.batch, SeriesView(&shared.table))
                .await;
            stats.last_flush_ns.set(started.elapsed().as_nanos() as u64);
            let sent = self.batch.len() as u64;
            match result {
                Ok(report) => {
                    self.acknowledge(start_seq + sent);
                    add(&stats.batches, 1);
                    add(&stats.written, report.written);
                    add(&shared.stats.written, report.written);
                    add(&stats.dropped, report.rejected);
                    add(&shared.stats.dropped, report.rejected);
                    self.note_recovery();
                }
                Err(OutputError::Reject(msg)) => {
                    self.acknowledge(start_seq + sent);
                    add(&stats.dropped, sent);
                    add(&shared.stats.dropped, sent);
                    log::error!(
                        "output {}: dropped a batch of {sent} samples: {msg}",
                        self.name
                    );
                }
                Err(OutputError::Retry(msg)) => {
                    add(&stats.failed_batches, 1);
                    self.note_failure(&msg);
                    return false;
                }
            }
        }
    }

    fn acknowledge(&self, seq: u64) {
        let mut ring = self.queue.ring.borrow_mut();
        ring.consume_to(seq);
        self.queue.stats.buffer_len.set(ring.len() as u64);
    }

    fn note_failure(&mut self, msg: &str) {
        let ring = self.queue.ring.borrow();
        if self.failing {
            log::debug!("output {}: still failing: {msg}", self.name);
        } else {
            log::warn!(
                "output {} is down: {msg}; buffering in memory ({} of {} samples used, oldest dropped when full) and retrying",
                self.name,
                ring.len(),
                ring.capacity()
            );
            self.failing = true;
        }
    }

    fn note_recovery(&mut self) {
        if self.failing {
            log::info!("output {} is up again", self.name);
            self.failing = false;
        }
    }

    /// Flushes every `flush_interval` (a moment after the boundary, so the inputs of that
    /// tick are in), early when a full batch is waiting, and once more when `stop` fires.
    pub async fn run(
        mut self,
        flush_interval: Duration,
        shared: Rc<Shared>,
        stop: smol::channel::Receiver<()>,
    ) -> Self {
        let every_ms = (flush_interval.as_millis() as i64).max(1);
        let settle_ms = (every_ms / 4).min(500);
        let wake = self.queue.wake_rx.clone();
        loop {
            let next = super::clock::next_boundary(super::clock::now_ms(), every_ms) + settle_ms;
            let tick = async {
                super::input::sleep_until_wall(next).await;
                Event::Tick
            };
            let batch_full = async {
                let _ = wake.recv().await;
                Event::BatchFull
            };
            let stopped = async {
                let _ = stop.recv().await;
                Event::Stop
            };
            match future::or(stopped, future::or(batch_full, tick)).await {
                Event::Stop => return self,
                // While down, retry on the flush schedule only, not on every full batch.
                Event::BatchFull if self.failing => {}
                Event::BatchFull | Event::Tick => {
                    self.flush(&shared).await;
                }
            }
        }
    }
}

enum Event {
    Tick,
    BatchFull,
    Stop,
}
