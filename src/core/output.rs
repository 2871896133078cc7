//! The output contract and the loop that drains one output's queue.

use super::hub::OutputQueue;
use super::metric::{Sample, SeriesTable};
use super::shared::Shared;
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

/// A replayed batch being written (see `OutputQueue::replaying`); ends when the write
/// does or is cancelled.
struct Replaying(Rc<OutputQueue>);

impl Replaying {
    fn begin(queue: &Rc<OutputQueue>) -> Self {
        queue.replaying.set(true);
        Replaying(queue.clone())
    }
}

impl Drop for Replaying {
    fn drop(&mut self) {
        self.0.replaying.set(false);
    }
}

/// An output with its queue and the scheduler's state for it.
pub struct OutputRunner {
    pub name: String,
    output: Box<dyn Output>,
    pub queue: Rc<OutputQueue>,
    batch: Vec<Sample>,
    /// The disk buffer's drop count already added to the agent-wide one.
    disk_dropped_seen: u64,
}

impl OutputRunner {
    pub fn new(name: &str, output: Box<dyn Output>, queue: Rc<OutputQueue>) -> Self {
        let batch = Vec::with_capacity(queue.batch_size);
        // Stats outlive a reload; only later drops are new to the agent-wide count.
        let disk_dropped_seen = queue.stats.disk_dropped.get();
        OutputRunner {
            name: name.to_string(),
            output,
            queue,
            batch,
            disk_dropped_seen,
        }
    }

    /// Sends batches until the queue is empty or a batch fails: first what the disk holds
    /// (older), then the memory ring. Returns false on failure; the failed batch stays.
    pub async fn flush(&mut self, shared: &Shared) -> bool {
        loop {
            // Before every ring batch, not once: a write that outlasts a full ring sends the
            // ring (older samples) to disk, which must go before the ring's newer ones.
            if !self.replay(shared).await {
                return false;
            }
            let start_seq = {
                let ring = self.queue.ring.borrow();
                ring.peek_into(self.queue.batch_size, &mut self.batch);
                ring.head_seq()
            };
            if self.batch.is_empty() {
                return true;
            }
            self.queue
                .begin_write(start_seq, start_seq + self.batch.len() as u64);
            let sent = self.send_batch(shared).await;
            self.queue.end_write(sent);
            if !sent {
                return false;
            }
        }
    }

    /// Sends the disk buffer's frames, oldest first, until it is empty or a batch fails.
    async fn replay(&mut self, shared: &Shared) -> bool {
        loop {
            let token = {
                let mut spill = self.queue.spill.borrow_mut();
                let Some(spill) = spill.as_mut() else {
                    return true;
                };
                let mut table = shared.table.borrow_mut();
                match spill.next_batch(&mut table, &mut self.batch) {
                    Some(t) => t,
                    None => return true,
                }
            };
            let replaying = Replaying::begin(&self.queue);
            let sent = self.send_batch(shared).await;
            drop(replaying);
            if !sent {
                return false;
            }
            if let Some(spill) = self.queue.spill.borrow_mut().as_mut() {
                spill.ack(token);
            }
        }
    }

    /// Writes `self.batch` and counts the outcome. True when the batch is done with
    /// (written, or rejected and dropped), false when it must be retried.
    async fn send_batch(&mut self, shared: &Shared) -> bool {
        let stats = self.queue.stats.clone();
        let started = Instant::now();
        let result = self
            .output
            .write(&self.batch, SeriesView(&shared.table))
            .await;
        stats.last_flush_ns.set(started.elapsed().as_nanos() as u64);
        let sent = self.batch.len() as u64;
        match result {
            Ok(report) => {
                add(&stats.batches, 1);
                add(&stats.written, report.written);
                add(&shared.stats.written, report.written);
                add(&stats.dropped, report.rejected);
                add(&shared.stats.dropped, report.rejected);
                self.note_recovery();
                true
            }
            Err(OutputError::Reject(msg)) => {
                add(&stats.dropped, sent);
                add(&shared.stats.dropped, sent);
                log::error!(
                    "output {}: dropped a batch of {sent} samples: {msg}",
                    self.name
                );
                true
            }
            Err(OutputError::Retry(msg)) => {
                add(&stats.failed_batches, 1);
                self.note_failure(&msg);
                false
            }
        }
    }

    /// Moves the memory ring to the disk buffer (the output is down, or stopping). What
    /// cannot be written stays in memory.
    pub fn spill_ring(&mut self, shared: &Shared) {
        self.queue.spill_ring(&shared.table.borrow());
    }

    /// Adds what the disk buffer dropped since the last call to the agent-wide count.
    pub fn forward_disk_drops(&mut self, shared: &Shared) {
        let now = self.queue.stats.disk_dropped.get();
        add(
            &shared.stats.dropped,
            now.wrapping_sub(self.disk_dropped_seen),
        );
        self.disk_dropped_seen = now;
    }

    /// fsyncs the disk buffer when its sync interval has passed, or now with `force`.
    pub fn sync_spill(&self, force: bool) {
        if let Some(spill) = self.queue.spill.borrow_mut().as_mut() {
            spill.maybe_sync(force);
        }
    }

    fn note_failure(&mut self, msg: &str) {
        let ring = self.queue.ring.borrow();
        if self.queue.stats.down.replace(true) {
            log::debug!("output {}: still failing: {msg}", self.name);
        } else {
            log::warn!(
                "output {} is down: {msg}; {} of {} samples in memory{}",
                self.name,
                ring.len(),
                ring.capacity(),
                self.buffering_plan()
            );
        }
    }

    /// What happens to the samples while the output is down, as far as this run knows.
    /// A queue without an outage buffer is `--once`'s (the agent attaches one to every queue
    /// otherwise), which makes one attempt and no retry.
    fn buffering_plan(&self) -> &'static str {
        match self.queue.spill.borrow().as_ref() {
            None => " (this run keeps no outage buffer and does not retry)",
            Some(spill) if spill.is_disabled() => {
                ", memory only while the outage buffer is unusable; retrying"
            }
            Some(_) => ", then on disk; retrying",
        }
    }

    fn note_recovery(&mut self) {
        if self.queue.stats.down.replace(false) {
            log::info!("output {} is up again", self.name);
            self.queue.note_recovered();
        }
    }

    /// Flushes every `flush_interval` (a moment after the boundary, so the inputs of that
    /// tick are in), early when a full batch is waiting, and once more when `stop` fires.
    /// A failed flush moves the memory ring to the disk buffer, as does every full batch
    /// while the output is down. A down output is tried again at every flush tick: the
    /// tick's time is kept across early wake-ups, so no amount of incoming samples can
    /// push the retry away.
    pub async fn run(
        mut self,
        flush_interval: Duration,
        shared: Rc<Shared>,
        stop: smol::channel::Receiver<()>,
    ) -> Self {
        let every_ms = i64::try_from(flush_interval.as_millis())
            .unwrap_or(i64::MAX / 2)
            .max(1);
        let settle_ms = (every_ms / 4).min(500);
        let wake = self.queue.wake_rx.clone();
        let mut next = next_flush_at(super::clock::now_ms(), every_ms, settle_ms);
        loop {
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
                // While down, retry on the flush schedule only; a full batch goes to disk.
                Event::BatchFull if self.queue.stats.down.get() => self.spill_ring(&shared),
                Event::BatchFull => self.flush_or_spill(&shared).await,
                Event::Tick => {
                    self.flush_or_spill(&shared).await;
                    next = next_flush_at(super::clock::now_ms(), every_ms, settle_ms);
                }
            }
            self.sync_spill(false);
            self.forward_disk_drops(&shared);
        }
    }

    async fn flush_or_spill(&mut self, shared: &Shared) {
        if !self.flush(shared).await {
            self.spill_ring(shared);
        }
    }
}

/// The first flush time after `now_ms`: `settle_ms` past an interval boundary.
fn next_flush_at(now_ms: i64, every_ms: i64, settle_ms: i64) -> i64 {
    super::clock::next_boundary(now_ms - settle_ms, every_ms) + settle_ms
}

enum Event {
    Tick,
    BatchFull,
    Stop,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::hub::Hub;
    use crate::core::spill::{Spill, SpillConfig};
    use crate::core::stats::AgentStats;

    /// Fails while `down` is set; records what it accepted.
    struct Fake {
        down: Rc<std::cell::Cell<bool>>,
        got: Rc<RefCell<Vec<(String, i64)>>>,
    }

    impl Output for Fake {
        fn write<'a>(&'a mut self, batch: &'a [Sample], series: SeriesView<'a>) -> WriteFuture<'a> {
            if self.down.get() {
                return ready_write(Err(OutputError::Retry("down".into())));
            }
            series.with(|t| {
                let mut got = self.got.borrow_mut();
                got.extend(
                    batch
                        .iter()
                        .map(|s| (t.get(s.series).name.to_string(), s.ts_ms)),
                );
            });
            ready_write(Ok(WriteReport {
                written: batch.len() as u64,
                rejected: 0,
            }))
        }
    }

    #[test]
    fn a_failed_flush_moves_the_ring_to_disk_and_recovery_sends_disk_then_ring_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let stats: Rc<AgentStats> = Rc::default();
        let shared = Shared {
            table: Rc::new(RefCell::new(SeriesTable::new("h", 100))),
            hub: Rc::new(Hub::default()),
            stats: stats.clone(),
        };
        let queue = Rc::new(OutputQueue::new("fake", 1000, 10, stats.output("fake")));
        *queue.spill.borrow_mut() = Some(Spill::new(
            SpillConfig {
                dir: dir.path().join("fake"),
                max_bytes: 1 << 20,
                sync_interval: Duration::from_secs(10),
            },
            queue.stats.clone(),
        ));
        let down = Rc::new(std::cell::Cell::new(true));
        let got = Rc::new(RefCell::new(Vec::new()));
        let fake = Fake {
            down: down.clone(),
            got: got.clone(),
        };
        let mut runner = OutputRunner::new("fake", Box::new(fake), queue.clone());
        let ids: Vec<_> = ["a", "b"]
            .iter()
            .map(|n| shared.table.borrow_mut().intern(n, "", &[]).unwrap())
            .collect();
        let tick = |t: i64| -> Vec<Sample> {
            ids.iter()
                .map(|&series| Sample {
                    series,
                    ts_ms: t,
                    value: 1.0,
                })
                .collect()
        };
        futures_lite::future::block_on(async {
            for t in 0..5 {
                queue.push(&tick(t));
                assert!(!runner.flush(&shared).await);
                runner.spill_ring(&shared);
                assert_eq!(queue.ring.borrow().len(), 0, "the ring went to disk");
            }
            assert_eq!(queue.stats.disk_samples.get(), 10);
            queue.push(&tick(5));
            down.set(false);
            assert!(runner.flush(&shared).await);
        });
        let want: Vec<(String, i64)> = (0..6)
            .flat_map(|t| [("a".to_string(), t), ("b".to_string(), t)])
            .collect();
        assert_eq!(
            *got.borrow(),
            want,
            "disk first, then memory, each series in order"
        );
        assert_eq!(queue.stats.disk_samples.get(), 0);
        assert!(queue.stats.disk_written_bytes.get() > 0);
        assert_eq!(
            std::fs::read_dir(dir.path().join("fake")).unwrap().count(),
            0,
            "replayed files are removed"
        );
    }
}
