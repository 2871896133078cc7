//! The output contract and the loop that drains one output's queue.

use super::hub::OutputQueue;
#[cfg(feature = "logs")]
use super::logs::{queue::LogQueue, LogBatch};
use super::metric::{Sample, SeriesTable};
use super::shared::Shared;
use super::spill::Token;
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

/// See [`Output::deferred`].
pub struct Deferred<'a> {
    pub samples: &'a [u32],
    pub why: &'a str,
}

pub type WriteFuture<'a> = Pin<Box<dyn Future<Output = Result<WriteReport, OutputError>> + 'a>>;
pub type StartFuture<'a> = Pin<Box<dyn Future<Output = Result<(), OutputError>> + 'a>>;
pub type CloseFuture<'a> = Pin<Box<dyn Future<Output = ()> + 'a>>;
pub type ServeFuture = Pin<Box<dyn Future<Output = ()>>>;

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

/// Read access to the series table for a future that outlives one call ([`Output::serve`]).
/// The same rule as [`SeriesView`]: borrow only inside the closure, never across an `.await`.
#[derive(Clone)]
pub struct SeriesHandle(pub Rc<RefCell<SeriesTable>>);

impl SeriesHandle {
    pub fn with<R>(&self, f: impl FnOnce(&SeriesTable) -> R) -> R {
        f(&self.0.borrow())
    }
}

/// Which kinds of items an output takes ([`Output::kinds`]).
#[cfg(feature = "logs")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kinds {
    Samples,
    Logs,
    Both,
}

#[cfg(feature = "logs")]
impl Kinds {
    pub fn samples(self) -> bool {
        self != Kinds::Logs
    }

    pub fn logs(self) -> bool {
        self != Kinds::Samples
    }
}

/// How the agent hands an output its samples.
pub enum Buffering {
    /// Batches from a ring of `max_buffer_size` samples, which goes to the outage buffer while
    /// the output is down: every sample is delivered, in order, or counted as dropped.
    Queue,
    /// No ring and no outage buffer: the hub hands every sample to this sink as it is
    /// published, and the output keeps only the latest value per series itself (an endpoint
    /// that is pulled, such as `/metrics`). Nothing is written or retried.
    Latest(Rc<dyn LatestSink>),
}

/// Where the hub hands the samples of an output that keeps only the latest value per series
/// ([`Buffering::Latest`]); shared by the output with its [`Output::serve`] future.
pub trait LatestSink {
    /// Called at every publish, on the executor: keep it short and allocation-free once a
    /// series is known. Ids are those of `series` now; key a cache by id and
    /// [`SeriesTable::generation`], and drop entries whose [`SeriesTable::kind`] is `None`
    /// (forgotten: nothing holds a latest-value output's ids for it).
    fn accept(&self, samples: &[Sample], series: &SeriesTable);
}

/// A destination for samples.
///
/// Lifecycle, driven by the output's runner: [`Output::start`] before the first write,
/// [`Output::serve`] beside the writes for the runner's life, [`Output::close`] after the
/// last flush at a stop or reload. An output dropped without `close` (a stop that ran out
/// of time) must not block in `Drop`.
/// Something at a destination that only one output may hold (an MQTT client id on a
/// broker): two outputs of one config that claim the same are a config error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// The option that decides it, for the error's position (`client_id`).
    pub option: &'static str,
    /// What is claimed, in words (`client id "rtcollector-h" at 127.0.0.1:1883`).
    pub what: String,
    /// Why two cannot share it, and what to do.
    pub why: &'static str,
}

pub trait Output: 'static {
    /// What this output holds alone at its destination; see [`Claim`]. Default: nothing.
    fn claim(&self) -> Option<Claim> {
        None
    }

    /// Connects or starts what the writes need, before the first of them. A `Retry` is
    /// reported as the output being down and `start` is called again before the next
    /// flush. Default: nothing to start.
    fn start(&mut self) -> StartFuture<'_> {
        Box::pin(std::future::ready(Ok(())))
    }

    /// Writes one batch, oldest sample first. Called again with the same samples after a
    /// [`OutputError::Retry`], so a write must be safe to repeat.
    fn write<'a>(&'a mut self, batch: &'a [Sample], series: SeriesView<'a>) -> WriteFuture<'a>;

    /// For outputs that answer requests (a `/metrics` endpoint): a future that runs on the
    /// executor beside the writes, the output side of [`Input::listen`](super::input::Input::listen),
    /// sharing state with the output. Taken once, when the output has started (a start that
    /// failed is tried again, see [`Output::start`]); dropped when the output stops.
    /// Default: none.
    fn serve(&mut self, _series: SeriesHandle) -> Option<ServeFuture> {
        None
    }

    /// Leaves the destination cleanly (MQTT's `offline` and DISCONNECT), after the last
    /// flush. The caller bounds the time it may take. Default: nothing to close.
    fn close(&mut self) -> CloseFuture<'_> {
        Box::pin(std::future::ready(()))
    }

    /// After a write that returned `Ok`: the samples of the batch it could not deliver now
    /// but may later (a Redis Cluster node that is down while the others write), as indices
    /// into the batch, and why. The runner keeps them in the outage buffer's `deferred`
    /// part and offers them again at every flush, so they wait without holding back the
    /// samples that can go. Default: none (a write succeeds or fails as a whole).
    fn deferred(&self) -> Option<Deferred<'_>> {
        None
    }

    /// Counters of the output's own (a cluster's redirects), each as (name, value), for
    /// the `internal` input; asked after every write. Default: none.
    fn counters(&self, _report: &mut dyn FnMut(&'static str, u64)) {}

    /// How the output takes its samples; asked once, when the agent builds it. Default:
    /// [`Buffering::Queue`].
    fn buffering(&mut self) -> Buffering {
        Buffering::Queue
    }

    /// Which kinds of items the output takes; asked once, when the agent builds it. The
    /// hub gives it only those. Default: samples.
    #[cfg(feature = "logs")]
    fn kinds(&self) -> Kinds {
        Kinds::Samples
    }

    /// Writes one batch of log records, oldest first (see [`LogBatch::records`]), for an
    /// output whose [`Output::kinds`] include logs. The same contract as [`Output::write`]:
    /// called again with the same records after a `Retry`, and a record may come twice (a
    /// replay): key what it stores by the record's id. Default: takes none.
    #[cfg(feature = "logs")]
    fn write_logs<'a>(&'a mut self, _batch: &'a LogBatch) -> WriteFuture<'a> {
        ready_write(Ok(WriteReport::default()))
    }
}

/// An output with whether it has been started, for both kinds of runner.
struct Lifecycle {
    output: Box<dyn Output>,
    started: bool,
}

impl Lifecycle {
    /// Starts the output unless it is; `Err` with why it could not be.
    async fn start(&mut self) -> Result<(), OutputError> {
        if !self.started {
            self.output.start().await?;
            self.started = true;
        }
        Ok(())
    }

    async fn close(&mut self) {
        if std::mem::take(&mut self.started) {
            self.output.close().await;
        }
    }
}

/// Runs `work` with `serve` (if any) beside it, in the same task, until `work` ends.
async fn with_serving<T>(work: impl Future<Output = T>, serve: Option<ServeFuture>) -> T {
    match serve {
        Some(serve) => {
            let serve = async {
                serve.await;
                std::future::pending::<T>().await
            };
            future::or(work, serve).await
        }
        None => work.await,
    }
}

/// Starts the output, retrying every `retry` until it is up or `stop` fires; `false` when
/// stopped first. A failure is logged once, at warn.
async fn start_until_stopped(
    name: &str,
    life: &mut Lifecycle,
    retry: Duration,
    stop: &smol::channel::Receiver<()>,
) -> bool {
    let mut warned = false;
    let starting = async {
        loop {
            match life.start().await {
                Ok(()) => return true,
                Err(e) if !warned => {
                    warned = true;
                    log::warn!("output {name} cannot start: {e}; retrying");
                }
                Err(e) => log::debug!("output {name} cannot start: {e}"),
            }
            smol::Timer::after(retry).await;
        }
    };
    let stopped = async {
        let _ = stop.recv().await;
        false
    };
    future::or(stopped, starting).await
}

/// An output that keeps only the latest value per series ([`Buffering::Latest`]): the hub
/// hands it samples through `sink`; this runs its lifecycle.
pub struct LatestRunner {
    pub name: String,
    life: Lifecycle,
    pub sink: Rc<dyn LatestSink>,
}

impl LatestRunner {
    pub fn new(name: &str, output: Box<dyn Output>, sink: Rc<dyn LatestSink>) -> Self {
        LatestRunner {
            name: name.to_string(),
            life: Lifecycle {
                output,
                started: false,
            },
            sink,
        }
    }

    /// Starts the output and serves until `stop` fires. A failed start is tried again every
    /// `retry`.
    pub async fn run(
        mut self,
        retry: Duration,
        shared: Rc<Shared>,
        stop: smol::channel::Receiver<()>,
    ) -> Self {
        if !start_until_stopped(&self.name, &mut self.life, retry, &stop).await {
            return self;
        }
        let serve = self.life.output.serve(SeriesHandle(shared.table.clone()));
        with_serving(
            async {
                let _ = stop.recv().await;
            },
            serve,
        )
        .await;
        self
    }

    /// See [`Output::close`].
    pub async fn close(&mut self) {
        self.life.close().await;
    }
}

/// The output's own figure (`internal_write_deferred_samples`): samples in the deferred
/// part of its outage buffer.
const DEFERRED: &str = "deferred_samples";

/// How a batch went, for the runner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// Written, or rejected and dropped, as a whole.
    Done,
    /// The output deferred some samples ([`Output::deferred`]); `progress`: others were
    /// written or rejected.
    Partial { progress: bool },
    /// To be sent again as a whole.
    Failed,
}

/// Which part of the outage buffer.
#[derive(Clone, Copy)]
enum Part {
    Main,
    Deferred,
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
    life: Lifecycle,
    pub queue: Rc<OutputQueue>,
    batch: Vec<Sample>,
    /// The deferred samples of `batch`, on their way to disk.
    held: Vec<Sample>,
    /// The outage buffer's drop counts already added to the agent-wide one.
    disk_dropped_seen: u64,
    deferred_dropped_seen: u64,
    /// A batch of log records from the ring (reused).
    #[cfg(feature = "logs")]
    log_batch: LogBatch,
}

impl OutputRunner {
    pub fn new(name: &str, output: Box<dyn Output>, queue: Rc<OutputQueue>) -> Self {
        let batch = Vec::with_capacity(queue.batch_size);
        // Stats outlive a reload; only later drops are new to the agent-wide count.
        let disk_dropped_seen = queue.stats.disk_dropped.get();
        let deferred_dropped_seen = queue.deferred_stats.disk_dropped.get();
        OutputRunner {
            name: name.to_string(),
            life: Lifecycle {
                output,
                started: false,
            },
            queue,
            batch,
            held: Vec::new(),
            disk_dropped_seen,
            deferred_dropped_seen,
            #[cfg(feature = "logs")]
            log_batch: LogBatch::default(),
        }
    }

    /// Sends batches until the queue is empty or a batch fails: first what the disk holds
    /// (older), then the memory ring. Returns false on failure; the failed batch stays.
    /// Starts the output first if it is not (see [`Output::start`]). Samples the output
    /// deferred earlier are offered first (see [`Self::replay_deferred`]).
    pub async fn flush(&mut self, shared: &Shared) -> bool {
        if let Err(e) = self.life.start().await {
            self.note_failure(&e.to_string());
            return false;
        }
        if !self.replay_deferred(shared).await {
            return false;
        }
        #[cfg(feature = "logs")]
        if !self.flush_logs().await {
            return false;
        }
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
            let done = self.done_with(sent, shared);
            self.queue.end_write(done);
            if !done {
                return false;
            }
        }
    }

    /// Sends the log records: the outage buffer's first (older), then the ring's, until
    /// none are left or a batch fails (it stays).
    #[cfg(feature = "logs")]
    async fn flush_logs(&mut self) -> bool {
        let Some(logs) = self.queue.logs.clone() else {
            return true;
        };
        let mut from_disk = Vec::new();
        while let Some(token) = logs.next_from_disk(&mut from_disk) {
            for batch in &from_disk {
                if !self.send_logs(&logs, batch).await {
                    return false;
                }
            }
            logs.ack_disk(token);
        }
        let mut batch = std::mem::take(&mut self.log_batch);
        let done = loop {
            let end = logs.peek(&mut batch);
            if batch.is_empty() {
                break true;
            }
            if !self.send_logs(&logs, &batch).await {
                break false;
            }
            logs.ack(end);
        };
        self.log_batch = batch;
        done
    }

    /// Writes one batch of log records and counts the outcome; false when it is to be
    /// sent again.
    #[cfg(feature = "logs")]
    async fn send_logs(&mut self, logs: &LogQueue, batch: &LogBatch) -> bool {
        let stats = logs.stats.clone();
        let started = Instant::now();
        let result = self.life.output.write_logs(batch).await;
        stats.last_flush_ns.set(started.elapsed().as_nanos() as u64);
        match result {
            Ok(report) => {
                add(&stats.batches, 1);
                add(&stats.written, report.written);
                add(&stats.dropped, report.rejected);
                if report.written + report.rejected > 0 {
                    self.note_recovery();
                }
                true
            }
            Err(OutputError::Reject(msg)) => {
                add(&stats.dropped, batch.len() as u64);
                log::error!(
                    "output {}: dropped a batch of {} log records: {msg}",
                    self.name,
                    batch.len()
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

    /// Whether the batch just sent is done with: written or rejected, or partly so with
    /// the rest kept in the deferred part of the outage buffer. A rest that cannot be kept
    /// there (no disk) makes the whole batch wait, as a failed write does.
    ///
    /// A batch of which nothing went (every sample deferred) waits as a failed one does: it
    /// stays in the ring or the main part, which are sized for an outage, and the output
    /// shows as down. Only the rest of a batch that went in part moves to the deferred part
    /// (a quarter of the disk cap): an agent whose series all live on one down node must not
    /// pour its whole outage into it.
    fn done_with(&mut self, sent: Sent, shared: &Shared) -> bool {
        match sent {
            Sent::Done => true,
            Sent::Failed => false,
            Sent::Partial { progress: false } => {
                let why = self
                    .life
                    .output
                    .deferred()
                    .map_or_else(String::new, |d| d.why.to_string());
                self.note_failure(&why);
                false
            }
            Sent::Partial { progress: true } => {
                let kept = self.keep_deferred(shared);
                if !kept {
                    self.note_failure("part of a batch failed and there is no disk to keep it on");
                }
                kept
            }
        }
    }

    /// Sends the outage buffer's frames, oldest first, until it is empty or a batch fails.
    async fn replay(&mut self, shared: &Shared) -> bool {
        loop {
            let Some(token) = self.next_from_disk(shared, Part::Main) else {
                return true;
            };
            let replaying = Replaying::begin(&self.queue);
            let sent = self.send_batch(shared).await;
            drop(replaying);
            if !self.done_with(sent, shared) {
                return false;
            }
            if let Some(spill) = self.queue.spill.borrow_mut().as_mut() {
                spill.ack(token);
            }
        }
    }

    /// Offers the deferred samples again, oldest first, while whole batches of them go.
    /// A batch that goes in part is taken off the disk once its rest is appended to the
    /// deferred part again; one that does not go at all stays where it is and the flush
    /// goes on with the rest of the queue. So each flush writes at most one batch of
    /// deferred samples to flash again, and none while their destination stays down; the
    /// price is that deferred samples behind one whose destination is still down wait too.
    /// False when the output failed as a whole.
    async fn replay_deferred(&mut self, shared: &Shared) -> bool {
        loop {
            let Some(token) = self.next_from_disk(shared, Part::Deferred) else {
                self.note_deferred_empty();
                return true;
            };
            let replaying = Replaying::begin(&self.queue);
            let sent = self.send_batch(shared).await;
            drop(replaying);
            let ack = match sent {
                Sent::Failed => return false,
                Sent::Partial { progress: false } => return true,
                Sent::Partial { progress: true } => self.keep_deferred(shared),
                Sent::Done => true,
            };
            if ack {
                if let Some(spill) = self.queue.deferred.borrow_mut().as_mut() {
                    spill.ack(token);
                }
            }
            if sent != Sent::Done {
                return true;
            }
        }
    }

    /// The next batch from disk into `self.batch`, with its token to acknowledge.
    fn next_from_disk(&mut self, shared: &Shared, part: Part) -> Option<Token> {
        let cell = match part {
            Part::Main => &self.queue.spill,
            Part::Deferred => &self.queue.deferred,
        };
        let mut spill = cell.borrow_mut();
        let mut table = shared.table.borrow_mut();
        spill.as_mut()?.next_batch(&mut table, &mut self.batch)
    }

    /// Appends the samples of `self.batch` the output deferred to the deferred part of the
    /// outage buffer; false when there is none or it cannot be written.
    fn keep_deferred(&mut self, shared: &Shared) -> bool {
        let Some(deferred) = self.life.output.deferred() else {
            return true;
        };
        let batch = &self.batch;
        self.held.clear();
        self.held.extend(
            deferred
                .samples
                .iter()
                .filter_map(|&i| batch.get(i as usize).copied()),
        );
        let mut spill = self.queue.deferred.borrow_mut();
        let Some(spill) = spill.as_mut() else {
            return false;
        };
        if !spill.append(&self.held, &shared.table.borrow(), self.queue.batch_size) {
            return false;
        }
        let n = self.held.len();
        if self.queue.holding.replace(true) {
            log::debug!(
                "output {}: {n} more samples deferred: {}",
                self.name,
                deferred.why
            );
        } else {
            log::warn!(
                "output {}: {n} samples deferred ({}); kept in {} and tried again at every flush while the rest is written",
                self.name,
                deferred.why,
                spill.dir().display()
            );
        }
        true
    }

    /// The deferred part is empty: the next deferral is news again.
    fn note_deferred_empty(&mut self) {
        if self.queue.holding.replace(false) {
            log::info!("output {}: the deferred samples are written", self.name);
        }
    }

    /// Writes `self.batch` and counts the outcome.
    async fn send_batch(&mut self, shared: &Shared) -> Sent {
        let stats = self.queue.stats.clone();
        let started = Instant::now();
        let result = self
            .life
            .output
            .write(&self.batch, SeriesView(&shared.table))
            .await;
        stats.last_flush_ns.set(started.elapsed().as_nanos() as u64);
        self.life
            .output
            .counters(&mut |name, value| stats.set_own(name, value));
        let sent = self.batch.len() as u64;
        match result {
            Ok(report) => {
                add(&stats.batches, 1);
                add(&stats.written, report.written);
                add(&shared.stats.written, report.written);
                add(&stats.dropped, report.rejected);
                add(&shared.stats.dropped, report.rejected);
                let progress = report.written + report.rejected > 0;
                if progress {
                    self.note_recovery();
                }
                match self.life.output.deferred() {
                    Some(d) if !d.samples.is_empty() => Sent::Partial { progress },
                    _ => Sent::Done,
                }
            }
            Err(OutputError::Reject(msg)) => {
                add(&stats.dropped, sent);
                add(&shared.stats.dropped, sent);
                log::error!(
                    "output {}: dropped a batch of {sent} samples: {msg}",
                    self.name
                );
                Sent::Done
            }
            Err(OutputError::Retry(msg)) => {
                add(&stats.failed_batches, 1);
                self.note_failure(&msg);
                Sent::Failed
            }
        }
    }

    /// Moves the memory ring to the outage buffer (the output is down, or stopping). What
    /// cannot be written stays in memory.
    pub fn spill_ring(&mut self, shared: &Shared) {
        self.queue.spill_ring(&shared.table.borrow());
    }

    /// Adds what the outage buffer dropped since the last call to the agent-wide count
    /// (and the deferred part's drops to the output's), and reports the deferred samples
    /// waiting (`deferred_samples`) once there have been any.
    pub fn forward_disk_drops(&mut self, shared: &Shared) {
        let now = self.queue.stats.disk_dropped.get();
        add(
            &shared.stats.dropped,
            now.wrapping_sub(self.disk_dropped_seen),
        );
        self.disk_dropped_seen = now;
        let deferred = &self.queue.deferred_stats;
        let now = deferred.disk_dropped.get();
        let new = now.wrapping_sub(self.deferred_dropped_seen);
        add(&shared.stats.dropped, new);
        add(&self.queue.stats.dropped, new);
        self.deferred_dropped_seen = now;
        let waiting = deferred.disk_samples.get();
        if waiting > 0
            || self
                .queue
                .stats
                .own
                .borrow()
                .iter()
                .any(|(n, _)| *n == DEFERRED)
        {
            self.queue.stats.set_own(DEFERRED, waiting);
        }
    }

    /// fsyncs the outage buffer when its sync interval has passed, or now with `force`.
    pub fn sync_spill(&self, force: bool) {
        self.queue.sync_spills(force);
    }

    /// See [`Output::close`].
    pub async fn close(&mut self) {
        self.life.close().await;
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
    /// A failed flush moves the memory ring to the outage buffer, as does every full batch
    /// while the output is down. A down output is tried again at every flush tick: the
    /// tick's time is kept across early wake-ups, so no amount of incoming samples can
    /// push the retry away.
    ///
    /// The output is started first, so it connects before the first flush is due; a start
    /// that fails is tried again at every flush (the output is down meanwhile). Once started,
    /// it serves beside the flushes.
    pub async fn run(
        mut self,
        flush_interval: Duration,
        shared: Rc<Shared>,
        stop: smol::channel::Receiver<()>,
    ) -> Self {
        let first_start = async {
            let _ = self.life.start().await;
            true
        };
        let stopped = async {
            let _ = stop.recv().await;
            false
        };
        if !future::or(stopped, first_start).await {
            return self;
        }
        loop {
            // Not started yet: flush (which tries the start again) until it is, then serve.
            let serve = match self.life.started {
                true => self.life.output.serve(SeriesHandle(shared.table.clone())),
                false => None,
            };
            let until_started = !self.life.started;
            let flushing = self.flush_loop(flush_interval, &shared, &stop, until_started);
            if with_serving(flushing, serve).await == LoopEnd::Stopped {
                return self;
            }
        }
    }

    async fn flush_loop(
        &mut self,
        flush_interval: Duration,
        shared: &Rc<Shared>,
        stop: &smol::channel::Receiver<()>,
        until_started: bool,
    ) -> LoopEnd {
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
                Event::Stop => return LoopEnd::Stopped,
                // While down, retry on the flush schedule only; a full batch goes to disk.
                Event::BatchFull if self.queue.stats.down.get() => self.spill_ring(shared),
                Event::BatchFull => self.flush_or_spill(shared).await,
                Event::Tick => {
                    self.flush_or_spill(shared).await;
                    next = next_flush_at(super::clock::now_ms(), every_ms, settle_ms);
                }
            }
            self.sync_spill(false);
            self.forward_disk_drops(shared);
            if until_started && self.life.started {
                return LoopEnd::Started;
            }
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

#[derive(PartialEq)]
enum LoopEnd {
    Stopped,
    Started,
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
    use crate::core::metric::SeriesId;
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

    /// A cluster in miniature: the samples of series named in `down` are deferred, the
    /// others written (recorded in `got`).
    struct Nodes {
        down: Rc<RefCell<Vec<&'static str>>>,
        got: Rc<RefCell<Vec<(String, i64)>>>,
        deferred: Vec<u32>,
    }

    impl Output for Nodes {
        fn write<'a>(&'a mut self, batch: &'a [Sample], series: SeriesView<'a>) -> WriteFuture<'a> {
            self.deferred.clear();
            let down = self.down.borrow();
            let mut written = 0;
            series.with(|t| {
                for (i, s) in batch.iter().enumerate() {
                    let name = t.get(s.series).name.to_string();
                    if down.contains(&name.as_str()) {
                        self.deferred.push(i as u32);
                    } else {
                        self.got.borrow_mut().push((name, s.ts_ms));
                        written += 1;
                    }
                }
            });
            ready_write(Ok(WriteReport {
                written,
                rejected: 0,
            }))
        }

        fn deferred(&self) -> Option<Deferred<'_>> {
            (!self.deferred.is_empty()).then_some(Deferred {
                samples: &self.deferred,
                why: "node down",
            })
        }
    }

    struct Rig {
        _dir: tempfile::TempDir,
        shared: Shared,
        queue: Rc<OutputQueue>,
        runner: OutputRunner,
        down: Rc<RefCell<Vec<&'static str>>>,
        got: Rc<RefCell<Vec<(String, i64)>>>,
        ids: Vec<SeriesId>,
    }

    impl Rig {
        /// Series `a`, `b`, `c` behind a ring with batches of `batch`, with an outage
        /// buffer when `disk`.
        fn new(batch: usize, disk: bool) -> Rig {
            let dir = tempfile::tempdir().unwrap();
            let stats: Rc<AgentStats> = Rc::default();
            let shared = Shared {
                table: Rc::new(RefCell::new(SeriesTable::new("h", 100))),
                hub: Rc::new(Hub::default()),
                stats: stats.clone(),
            };
            let queue = Rc::new(OutputQueue::new(
                "nodes",
                1000,
                batch,
                stats.output("nodes"),
            ));
            if disk {
                queue.attach_spills(SpillConfig {
                    dir: dir.path().join("nodes"),
                    max_bytes: 1 << 20,
                    sync_interval: Duration::from_secs(10),
                });
            }
            let down = Rc::new(RefCell::new(Vec::new()));
            let got = Rc::new(RefCell::new(Vec::new()));
            let nodes = Nodes {
                down: down.clone(),
                got: got.clone(),
                deferred: Vec::new(),
            };
            let runner = OutputRunner::new("nodes", Box::new(nodes), queue.clone());
            let ids = ["a", "b", "c"]
                .iter()
                .map(|n| shared.table.borrow_mut().intern(n, "", &[]).unwrap())
                .collect();
            Rig {
                _dir: dir,
                shared,
                queue,
                runner,
                down,
                got,
                ids,
            }
        }

        /// Queues one sample of every series at `t` and flushes.
        fn tick(&mut self, t: i64) -> bool {
            let samples: Vec<Sample> = self
                .ids
                .iter()
                .map(|&series| Sample {
                    series,
                    ts_ms: t,
                    value: 1.0,
                })
                .collect();
            self.queue.push(&samples);
            self.flush()
        }

        fn flush(&mut self) -> bool {
            let ok = futures_lite::future::block_on(self.runner.flush(&self.shared));
            self.runner.forward_disk_drops(&self.shared);
            ok
        }

        /// The timestamps written for `name`, in the order they were.
        fn got(&self, name: &str) -> Vec<i64> {
            let got = self.got.borrow();
            got.iter()
                .filter(|(n, _)| n == name)
                .map(|(_, t)| *t)
                .collect()
        }

        fn deferred_on_disk(&self) -> u64 {
            self.queue.deferred_stats.disk_samples.get()
        }

        fn deferred_bytes_written(&self) -> u64 {
            self.queue.deferred_stats.disk_written_bytes.get()
        }
    }

    #[test]
    fn a_node_down_holds_back_only_its_own_samples_and_they_follow_in_order() {
        let mut rig = Rig::new(10, true);
        rig.down.borrow_mut().push("a");
        for t in 0..5 {
            assert!(rig.tick(t), "the flush goes on past the deferred samples");
            assert_eq!(rig.got("b"), (0..=t).collect::<Vec<_>>(), "b is current");
            assert_eq!(rig.deferred_on_disk(), t as u64 + 1);
        }
        assert_eq!(rig.queue.ring.borrow().len(), 0);
        assert_eq!(
            rig.queue.stats.disk_samples.get(),
            0,
            "the main part stays empty"
        );
        assert_eq!(
            rig.queue.stats.own.borrow().as_slice(),
            &[(DEFERRED, 5)],
            "internal reports what waits"
        );

        // Flushes with nothing new while the node stays down write nothing to flash.
        let bytes = rig.deferred_bytes_written();
        for _ in 0..3 {
            assert!(rig.flush());
        }
        assert_eq!(rig.deferred_bytes_written(), bytes, "no rewrite while down");
        assert_eq!(rig.deferred_on_disk(), 5);

        rig.down.borrow_mut().clear();
        assert!(rig.tick(5));
        assert_eq!(
            rig.got("a"),
            (0..6).collect::<Vec<_>>(),
            "a's samples in order"
        );
        assert_eq!(rig.got("b"), (0..6).collect::<Vec<_>>());
        assert_eq!(rig.deferred_on_disk(), 0);
        assert_eq!(rig.queue.stats.written.get(), 18);
        assert_eq!(rig.queue.stats.own.borrow().as_slice(), &[(DEFERRED, 0)]);
        assert_eq!(
            std::fs::read_dir(rig._dir.path().join("nodes/deferred"))
                .unwrap()
                .count(),
            0,
            "replayed files are removed"
        );
    }

    #[test]
    fn deferred_samples_that_go_in_part_leave_only_the_rest_on_disk() {
        // Batches of 3: each deferred frame holds a and c of one tick.
        let mut rig = Rig::new(3, true);
        rig.down.borrow_mut().extend(["a", "c"]);
        for t in 0..3 {
            assert!(rig.tick(t));
        }
        assert_eq!(rig.deferred_on_disk(), 6);
        // c's node is back, a's is not: each flush takes one frame apart (c written, a
        // appended again) and then goes on with the queue.
        rig.down.borrow_mut().retain(|n| *n != "c");
        assert!(rig.flush());
        assert_eq!(rig.got("c"), [0]);
        assert_eq!(rig.deferred_on_disk(), 6 - 1);
        assert!(rig.flush());
        assert!(rig.flush());
        assert_eq!(rig.got("c"), [0, 1, 2]);
        assert_eq!(rig.deferred_on_disk(), 3, "a's three samples");
        let bytes = rig.deferred_bytes_written();
        assert!(rig.flush());
        assert_eq!(
            rig.deferred_bytes_written(),
            bytes,
            "a alone: nothing to rewrite"
        );
        rig.down.borrow_mut().clear();
        assert!(rig.flush());
        assert_eq!(rig.got("a"), [0, 1, 2]);
        assert_eq!(rig.got("b"), [0, 1, 2]);
        assert_eq!(rig.deferred_on_disk(), 0);
    }

    #[test]
    fn a_batch_of_which_nothing_goes_waits_like_a_failed_one() {
        let mut rig = Rig::new(10, true);
        rig.down.borrow_mut().extend(["a", "b", "c"]);
        assert!(!rig.tick(0), "nothing went: the output is down");
        assert!(rig.queue.stats.down.get());
        assert_eq!(rig.queue.ring.borrow().len(), 3, "the batch stays queued");
        assert_eq!(
            rig.deferred_on_disk(),
            0,
            "the deferred part is for the rest of a partial batch"
        );
        rig.down.borrow_mut().clear();
        assert!(rig.flush());
        assert_eq!(
            (rig.got("a"), rig.got("b"), rig.got("c")),
            (vec![0], vec![0], vec![0])
        );
    }

    #[test]
    fn without_a_disk_a_batch_that_goes_in_part_is_retried_whole() {
        let mut rig = Rig::new(10, false);
        rig.down.borrow_mut().push("a");
        assert!(!rig.tick(0), "nowhere to keep a's sample: the batch waits");
        assert_eq!(rig.queue.ring.borrow().len(), 3);
        assert!(rig.queue.stats.down.get());
        rig.down.borrow_mut().clear();
        assert!(rig.flush());
        assert_eq!(rig.got("a"), [0]);
        assert_eq!(rig.got("b"), [0, 0], "b was written again with the batch");
    }

    type Events = Rc<RefCell<Vec<String>>>;

    /// Records its lifecycle in `events`; its start fails while `refuse_start` is set.
    struct Recorder {
        events: Events,
        refuse_start: Rc<std::cell::Cell<bool>>,
    }

    impl Output for Recorder {
        fn start(&mut self) -> StartFuture<'_> {
            if self.refuse_start.get() {
                self.events.borrow_mut().push("start refused".into());
                return Box::pin(std::future::ready(Err(OutputError::Retry("no".into()))));
            }
            self.events.borrow_mut().push("start".into());
            Box::pin(std::future::ready(Ok(())))
        }

        fn write<'a>(&'a mut self, batch: &'a [Sample], _: SeriesView<'a>) -> WriteFuture<'a> {
            self.events
                .borrow_mut()
                .push(format!("write {}", batch.len()));
            ready_write(Ok(WriteReport {
                written: batch.len() as u64,
                rejected: 0,
            }))
        }

        fn serve(&mut self, series: SeriesHandle) -> Option<ServeFuture> {
            let events = self.events.clone();
            Some(Box::pin(async move {
                let host = series.with(|t| t.host().to_string());
                events.borrow_mut().push(format!("serving for {host}"));
                std::future::pending::<()>().await
            }))
        }

        fn close(&mut self) -> CloseFuture<'_> {
            self.events.borrow_mut().push("close".into());
            Box::pin(std::future::ready(()))
        }
    }

    fn recorder() -> (Recorder, Events, Rc<std::cell::Cell<bool>>) {
        let events = Rc::new(RefCell::new(Vec::new()));
        let refuse_start = Rc::new(std::cell::Cell::new(false));
        let output = Recorder {
            events: events.clone(),
            refuse_start: refuse_start.clone(),
        };
        (output, events, refuse_start)
    }

    fn shared() -> Rc<Shared> {
        Rc::new(Shared {
            table: Rc::new(RefCell::new(SeriesTable::new("h", 100))),
            hub: Rc::new(Hub::default()),
            stats: Rc::default(),
        })
    }

    /// Runs `task` on a local executor until `events` has `n` entries, then stops it through
    /// its stop channel and returns what it returned.
    fn run_until<T: 'static>(
        events: &Events,
        n: usize,
        task: impl FnOnce(smol::channel::Receiver<()>) -> Pin<Box<dyn Future<Output = T>>>,
    ) -> T {
        let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
        let ex = smol::LocalExecutor::new();
        let running = ex.spawn(task(stop_rx));
        future::block_on(ex.run(async {
            while events.borrow().len() < n {
                smol::future::yield_now().await;
            }
            drop(stop_tx);
            running.await
        }))
    }

    #[test]
    fn a_runner_starts_its_output_serves_beside_the_flushes_and_closes_it_once() {
        let (output, events, _) = recorder();
        let shared = shared();
        let queue = Rc::new(OutputQueue::new("rec", 100, 10, Rc::default()));
        let runner = OutputRunner::new("rec", Box::new(output), queue.clone());
        let s = shared.clone();
        let mut runner = run_until(&events, 2, move |stop| {
            Box::pin(runner.run(Duration::from_secs(3600), s, stop))
        });
        assert_eq!(*events.borrow(), ["start", "serving for h"]);
        let id = shared.table.borrow_mut().intern("m", "", &[]).unwrap();
        let sample = Sample {
            series: id,
            ts_ms: 0,
            value: 1.0,
        };
        queue.push(&[sample, sample]);
        future::block_on(async {
            assert!(runner.flush(&shared).await);
            runner.close().await;
            runner.close().await;
        });
        assert_eq!(
            *events.borrow(),
            ["start", "serving for h", "write 2", "close"],
            "started once, closed once"
        );
    }

    #[test]
    fn an_output_whose_first_start_failed_serves_once_a_flush_has_started_it() {
        let (output, events, refuse_start) = recorder();
        refuse_start.set(true);
        let shared = shared();
        let queue = Rc::new(OutputQueue::new("rec", 100, 10, Rc::default()));
        let runner = OutputRunner::new("rec", Box::new(output), queue);
        let (stop_tx, stop_rx) = smol::channel::bounded::<()>(1);
        let ex = smol::LocalExecutor::new();
        let running = ex.spawn(runner.run(Duration::from_millis(10), shared, stop_rx));
        future::block_on(ex.run(async {
            while events.borrow().is_empty() {
                smol::future::yield_now().await;
            }
            refuse_start.set(false);
            while !events.borrow().iter().any(|e| e.starts_with("serving")) {
                smol::Timer::after(Duration::from_millis(1)).await;
            }
            drop(stop_tx);
            running.await
        }));
        let events = events.borrow();
        assert_eq!(events[0], "start refused");
        assert_eq!(events[events.len() - 2..], ["start", "serving for h"]);
    }

    #[test]
    fn an_output_that_fails_to_start_is_down_and_started_again_at_the_next_flush() {
        let (output, events, refuse_start) = recorder();
        let shared = shared();
        let stats: Rc<AgentStats> = Rc::default();
        let queue = Rc::new(OutputQueue::new("rec", 100, 10, stats.output("rec")));
        let mut runner = OutputRunner::new("rec", Box::new(output), queue.clone());
        let id = shared.table.borrow_mut().intern("m", "", &[]).unwrap();
        queue.push(&[Sample {
            series: id,
            ts_ms: 0,
            value: 1.0,
        }]);
        refuse_start.set(true);
        future::block_on(async {
            assert!(!runner.flush(&shared).await);
            assert!(queue.stats.down.get(), "a failed start is an outage");
            assert_eq!(queue.ring.borrow().len(), 1, "nothing lost");
            runner.close().await;
            refuse_start.set(false);
            assert!(runner.flush(&shared).await);
            runner.close().await;
        });
        assert!(!queue.stats.down.get());
        assert_eq!(
            *events.borrow(),
            ["start refused", "start", "write 1", "close"],
            "an output that never started is not closed"
        );
    }

    /// Keeps the latest value per series, as a `/metrics` endpoint would.
    #[derive(Default)]
    struct Latest(RefCell<Vec<(String, f64)>>);

    impl LatestSink for Latest {
        fn accept(&self, samples: &[Sample], series: &SeriesTable) {
            let mut kept = self.0.borrow_mut();
            for s in samples {
                let name = &*series.get(s.series).name;
                match kept.iter_mut().find(|(n, _)| n == name) {
                    Some(entry) => entry.1 = s.value,
                    None => kept.push((name.to_string(), s.value)),
                }
            }
        }
    }

    #[test]
    fn a_latest_value_output_gets_every_publish_through_its_sink_and_runs_its_lifecycle() {
        let (output, events, _) = recorder();
        let shared = shared();
        let sink = Rc::new(Latest::default());
        shared.hub.set_latest(vec![sink.clone()]);
        let (a, b) = {
            let mut t = shared.table.borrow_mut();
            (
                t.intern("a", "", &[]).unwrap(),
                t.intern("b", "", &[]).unwrap(),
            )
        };
        for (ts_ms, value) in [(0, 1.0), (1000, 2.0)] {
            let batch = [
                Sample {
                    series: a,
                    ts_ms,
                    value,
                },
                Sample {
                    series: b,
                    ts_ms,
                    value: -value,
                },
            ];
            shared
                .hub
                .publish(&batch, &shared.table.borrow(), &shared.stats);
        }
        assert_eq!(
            *sink.0.borrow(),
            [("a".to_string(), 2.0), ("b".to_string(), -2.0)]
        );
        assert!(shared.hub.queues().is_empty());
        let runner = LatestRunner::new("latest", Box::new(output), sink);
        let s = shared.clone();
        let mut runner = run_until(&events, 2, move |stop| {
            Box::pin(runner.run(Duration::from_secs(3600), s, stop))
        });
        future::block_on(runner.close());
        assert_eq!(*events.borrow(), ["start", "serving for h", "close"]);
    }
}

/// Log records through an output's queue: written while the output is up, to disk when a
/// flush fails, and back oldest first (disk, then ring) when it recovers; an output that
/// takes only logs gets no samples.
#[cfg(all(test, feature = "logs"))]
mod log_tests {
    use super::*;
    use crate::core::hub::Hub;
    use crate::core::logs::{encode, LogRecord};
    use crate::core::spill::SpillConfig;
    use crate::core::stats::AgentStats;

    struct LogSink {
        down: Rc<std::cell::Cell<bool>>,
        got: Rc<RefCell<Vec<String>>>,
    }

    impl Output for LogSink {
        fn write<'a>(&'a mut self, batch: &'a [Sample], _: SeriesView<'a>) -> WriteFuture<'a> {
            panic!("a logs-only output was given {} samples", batch.len());
        }

        fn kinds(&self) -> Kinds {
            Kinds::Logs
        }

        fn write_logs<'a>(&'a mut self, batch: &'a LogBatch) -> WriteFuture<'a> {
            if self.down.get() {
                return ready_write(Err(OutputError::Retry("down".into())));
            }
            let mut got = self.got.borrow_mut();
            for (_, r) in batch.records() {
                got.push(r.unwrap().message.into_owned());
            }
            ready_write(Ok(WriteReport {
                written: batch.len() as u64,
                rejected: 0,
            }))
        }
    }

    fn publish(hub: &Hub, msg: &str) {
        let mut buf = Vec::new();
        encode(
            &LogRecord {
                message: msg.into(),
                ..LogRecord::default()
            },
            &mut buf,
        )
        .unwrap();
        assert!(hub.publish_log(&buf));
    }

    #[test]
    fn records_go_to_disk_in_an_outage_and_come_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let stats: Rc<AgentStats> = Rc::default();
        let shared = Shared {
            table: Rc::new(RefCell::new(SeriesTable::new("h", 10))),
            hub: Rc::new(Hub::default()),
            stats: stats.clone(),
        };
        let mut queue = OutputQueue::new("logs", 100, 2, stats.output("logs"));
        queue.takes_samples = false;
        let logs = Rc::new(LogQueue::new(64 << 10, 2, stats.output("logs.logs")));
        queue.logs = Some(logs.clone());
        let queue = Rc::new(queue);
        queue.attach_spills(SpillConfig {
            dir: dir.path().join("logs"),
            max_bytes: 1 << 20,
            sync_interval: Duration::from_secs(10),
        });
        shared.hub.set_queues(vec![queue.clone()]);
        let (down, got) = (Rc::new(std::cell::Cell::new(false)), Rc::default());
        let sink = LogSink {
            down: down.clone(),
            got: Rc::clone(&got),
        };
        let mut runner = OutputRunner::new("logs", Box::new(sink), queue.clone());
        let table = shared.table.clone();
        let id = table.borrow_mut().intern("m", "", &[]).unwrap();
        let sample = Sample {
            series: id,
            ts_ms: 0,
            value: 1.0,
        };
        shared.hub.publish(&[sample], &table.borrow(), &stats);
        assert_eq!(
            queue.ring.borrow().len(),
            0,
            "no samples for a logs-only output"
        );

        publish(&shared.hub, "one");
        assert!(future::block_on(runner.flush(&shared)));
        down.set(true);
        for m in ["two", "three", "four"] {
            publish(&shared.hub, m);
        }
        assert!(!future::block_on(runner.flush(&shared)));
        runner.spill_ring(&shared);
        assert_eq!(logs.len(), 0, "moved to disk");
        assert_eq!(logs.stats.disk_samples.get(), 3);
        publish(&shared.hub, "five");
        down.set(false);
        assert!(future::block_on(runner.flush(&shared)));
        assert_eq!(*got.borrow(), ["one", "two", "three", "four", "five"]);
        assert_eq!(logs.stats.written.get(), 5);
        assert_eq!(logs.stats.disk_samples.get(), 0);
    }
}
