//! Wires a config into running tasks on one single-threaded executor, and handles
//! signals: SIGTERM/SIGINT stop, SIGHUP reloads.

use crate::config::{self, BuildError, Config, ConfigError};
use crate::core::clock;
use crate::core::dir_lock::{DirLock, LockError};
use crate::core::hub::{Hub, OutputQueue};
use crate::core::input::{InputRunner, Schedule};
use crate::core::offload;
use crate::core::output::{Buffering, LatestRunner, OutputRunner};
use crate::core::shared::Shared;
use crate::core::stats::AgentStats;
use crate::core::SeriesTable;
use crate::inputs::BuildCtx;
use crate::outputs::OutputCtx;
use crate::signals::{Request, Signals};
use futures_lite::future;
use smol::{LocalExecutor, Task};
use std::cell::RefCell;
use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long a stop may take: every output gets one last flush within it.
const SHUTDOWN_BUDGET: Duration = Duration::from_millis(4_500);

/// The stop the README promises ("within 5 seconds"), less a margin for the rest of the
/// exit: the outputs' goodbyes at a stop get what the flush left of it.
const STOP_PROMISE: Duration = Duration::from_millis(4_900);

/// How long outputs may take to leave their destinations cleanly (MQTT's `offline`) at a
/// stop or reload, after the last flush.
const CLOSE_BUDGET: Duration = Duration::from_secs(2);

/// How long `--once` waits between building the inputs and collecting.
const ONCE_BASELINE_SPAN: Duration = Duration::from_secs(1);

/// Inputs and outputs built from one config, not yet running.
pub struct Generation {
    pub config: Config,
    pub inputs: Vec<(InputRunner, Schedule)>,
    /// What each input was built from, in the order of `inputs`.
    identities: Vec<InputIdentity>,
    pub outputs: Vec<OutputRunner>,
    /// Outputs that keep only the latest value per series: no queue.
    pub latest: Vec<LatestRunner>,
    /// Every output's key, in the config's order (`outputs` and `latest` split it).
    pub output_keys: Vec<String>,
}

/// Everything an input is built from. A reload keeps an input running, with its CPU and
/// rate baselines, when this is the same in the new config.
#[derive(Debug, PartialEq)]
struct InputIdentity {
    key: String,
    /// The options as `check` prints them, or `None` when they cannot be compared: they
    /// hold a secret (printed masked, and a `secret:` may have changed behind the same
    /// text) or name a certificate file read at build (it may have been renewed).
    options: Option<String>,
    schedule: Schedule,
    procfs_root: PathBuf,
    sysfs_root: PathBuf,
    hostname: String,
    state_dir: PathBuf,
}

impl InputIdentity {
    fn same_as(&self, other: &InputIdentity) -> bool {
        self.options.is_some() && self == other
    }
}

/// Options whose file an input reads when it is built.
const FILES_READ_AT_BUILD: &[&str] = &["ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "tls_ca"];

/// Whether options printed as `yaml` depend on more than that text.
fn reads_beyond_its_text(yaml: &str) -> bool {
    yaml.contains(config::secret::MASK)
        || FILES_READ_AT_BUILD
            .iter()
            .any(|key| yaml.contains(&format!("{key}: ")))
}

/// Instance keys: the plugin name, with `#2`, `#3`… for repeats.
pub fn instance_keys<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    names
        .map(|n| {
            let count = seen.entry(n).or_insert(0);
            *count += 1;
            if *count == 1 {
                n.to_string()
            } else {
                format!("{n}#{count}")
            }
        })
        .collect()
}

/// Builds every input and output of `config`, each output with an empty queue unless it
/// keeps only the latest values ([`Buffering::Latest`]).
pub fn build_generation(
    path: &Path,
    config: Config,
    stats: &Rc<AgentStats>,
) -> Result<Generation, ConfigError> {
    let hostname = config.hostname();
    let ctx = BuildCtx {
        procfs_root: config.procfs_root(),
        sysfs_root: config.sysfs_root(),
        hostname: hostname.clone(),
        stats: stats.clone(),
        state_dir: config.buffer_dir.clone(),
    };
    let input_keys = instance_keys(config.inputs.iter().map(|e| e.name.as_str()));
    let mut inputs = Vec::new();
    let mut identities = Vec::new();
    for (i, (entry, key)) in config.inputs.iter().zip(&input_keys).enumerate() {
        let input = entry
            .options
            .build(&ctx)
            .map_err(|e| e.in_config(path, &config.source.0, ("inputs", i, &entry.name)))?;
        let schedule = Schedule {
            interval: config.input_interval(entry),
            jitter: config.collection_jitter.0,
        };
        identities.push(InputIdentity {
            key: key.clone(),
            options: Some(entry.options.yaml()).filter(|o| !reads_beyond_its_text(o)),
            schedule,
            procfs_root: ctx.procfs_root.clone(),
            sysfs_root: ctx.sysfs_root.clone(),
            hostname: ctx.hostname.clone(),
            state_dir: ctx.state_dir.clone(),
        });
        inputs.push((InputRunner::new(key, input, stats.input(key)), schedule));
    }
    let output_keys = instance_keys(config.outputs.iter().map(|e| e.name.as_str()));
    let mut outputs = Vec::new();
    let mut latest = Vec::new();
    let mut claims: Vec<(String, usize)> = Vec::new();
    for (i, (entry, key)) in config.outputs.iter().zip(&output_keys).enumerate() {
        let octx = OutputCtx {
            hostname: hostname.clone(),
            key: key.clone(),
        };
        let at = ("outputs", i, entry.name.as_str());
        let output = entry
            .options
            .build(&octx)
            .map_err(|e| e.in_config(path, &config.source.0, at))?;
        if let Some(claim) = output.claim() {
            if let Some((_, first)) = claims.iter().find(|(what, _)| *what == claim.what) {
                let message = format!("{} is also outputs[{first}]'s: {}", claim.what, claim.why);
                return Err(BuildError::at(claim.option, message).in_config(
                    path,
                    &config.source.0,
                    at,
                ));
            }
            claims.push((claim.what, i));
        }
        match runner_for(key, output, &config, stats) {
            Runner::Queued(runner) => outputs.push(runner),
            Runner::Latest(runner) => latest.push(runner),
        }
    }
    #[allow(unused_mut)]
    let mut stats_keys = output_keys.clone();
    #[cfg(feature = "logs")]
    stats_keys.extend(output_keys.iter().map(|k| log_stats_key(k)));
    stats.retain(&input_keys, &stats_keys);
    Ok(Generation {
        config,
        inputs,
        identities,
        outputs,
        latest,
        output_keys,
    })
}

enum Runner {
    Queued(OutputRunner),
    Latest(LatestRunner),
}

/// The runner for `output`: with a queue of its own, or none for an output that keeps only
/// the latest values ([`Buffering::Latest`]).
fn runner_for(
    key: &str,
    mut output: Box<dyn crate::core::Output>,
    config: &Config,
    stats: &AgentStats,
) -> Runner {
    match output.buffering() {
        Buffering::Queue => {
            #[allow(unused_mut)]
            let mut queue = OutputQueue::new(
                key,
                config.max_buffer_size,
                config.metric_batch_size,
                stats.output(key),
            );
            #[cfg(feature = "logs")]
            {
                let kinds = output.kinds();
                queue.takes_samples = kinds.samples();
                if kinds.logs() {
                    queue.logs = Some(Rc::new(crate::core::logs::queue::LogQueue::new(
                        usize::try_from(config.max_log_buffer.0).unwrap_or(usize::MAX),
                        config.metric_batch_size,
                        stats.output(&log_stats_key(key)),
                    )));
                }
            }
            Runner::Queued(OutputRunner::new(key, output, Rc::new(queue)))
        }
        Buffering::Latest(sink) => Runner::Latest(LatestRunner::new(key, output, sink)),
    }
}

/// The name an output's log counters go by (the `internal` input's `output` label).
#[cfg(feature = "logs")]
pub fn log_stats_key(key: &str) -> String {
    format!("{key}.logs")
}

/// The tasks of the generation that is running.
struct Running {
    inputs: Vec<RunningInput>,
    outputs: Vec<Task<OutputRunner>>,
    latest: Vec<Task<LatestRunner>>,
    stop_outputs: smol::channel::Sender<()>,
}

/// The outputs of a generation once their tasks have ended, to flush and close.
#[derive(Default)]
struct Stopped {
    queued: Vec<OutputRunner>,
    latest: Vec<LatestRunner>,
}

struct RunningInput {
    identity: InputIdentity,
    task: Task<()>,
}

/// Starts `gen`. An input found in `kept` (same identity) goes on as the task it is, and
/// the runner just built for it is dropped.
fn start<'a>(
    ex: &LocalExecutor<'a>,
    gen: Generation,
    shared: &Rc<Shared>,
    mut kept: Vec<RunningInput>,
) -> Running {
    shared
        .hub
        .set_queues(gen.outputs.iter().map(|o| o.queue.clone()).collect());
    shared
        .hub
        .set_latest(gen.latest.iter().map(|o| o.sink.clone()).collect());
    let inputs = gen
        .inputs
        .into_iter()
        .zip(gen.identities)
        .map(|((runner, schedule), identity)| {
            match kept.iter().position(|k| k.identity.same_as(&identity)) {
                Some(at) => kept.swap_remove(at),
                None => RunningInput {
                    task: ex.spawn(runner.run(schedule, shared.clone())),
                    identity,
                },
            }
        })
        .collect();
    let (stop_outputs, stop_rx) = smol::channel::bounded(1);
    let flush = gen.config.flush_interval();
    let outputs = gen
        .outputs
        .into_iter()
        .map(|runner| ex.spawn(runner.run(flush, shared.clone(), stop_rx.clone())))
        .collect();
    let latest = gen
        .latest
        .into_iter()
        .map(|runner| ex.spawn(runner.run(flush, shared.clone(), stop_rx.clone())))
        .collect();
    Running {
        inputs,
        outputs,
        latest,
        stop_outputs,
    }
}

/// Stops inputs, then outputs; returns the output runners so they can flush once more and
/// close.
async fn stop(running: Running) -> Stopped {
    for input in running.inputs {
        input.task.cancel().await;
    }
    stop_outputs(running.outputs, running.latest, running.stop_outputs).await
}

async fn stop_outputs(
    outputs: Vec<Task<OutputRunner>>,
    latest: Vec<Task<LatestRunner>>,
    stop: smol::channel::Sender<()>,
) -> Stopped {
    drop(stop);
    let mut stopped = Stopped::default();
    for task in outputs {
        stopped.queued.push(task.await);
    }
    for task in latest {
        stopped.latest.push(task.await);
    }
    stopped
}

/// Lets every output leave its destination cleanly, all within `budget` ([`CLOSE_BUDGET`]
/// at most); one not done by then is dropped, which leaves without waiting.
async fn close_all(stopped: &mut Stopped, budget: Duration) {
    let closing = async {
        for runner in stopped.queued.iter_mut() {
            runner.close().await;
        }
        for runner in stopped.latest.iter_mut() {
            runner.close().await;
        }
    };
    if within(budget, Box::pin(closing)).await.is_none() {
        log::warn!("outputs did not close within {budget:?}: left without a goodbye");
    }
}

/// Gives each output of `gen` the queue of the stopped output with its key, resized, so a
/// reload loses no buffered sample; the queue of an output the new config dropped goes to
/// its outage buffer on disk. Called once the old outputs have stopped and with no await before the
/// new generation starts: nothing is sent from an old queue after it was copied, and inputs
/// kept running publish to the new queues from their next tick on.
fn adopt_queues(gen: &mut Generation, old: &mut [OutputRunner], shared: &Shared) {
    let (capacity, batch_size) = (gen.config.max_buffer_size, gen.config.metric_batch_size);
    for runner in old.iter_mut() {
        let key = runner.queue.key.clone();
        let unchanged = runner.queue.ring.borrow().capacity() == capacity
            && runner.queue.batch_size == batch_size;
        match gen.outputs.iter_mut().find(|o| o.queue.key == key) {
            Some(new) if unchanged && runner.queue.same_kinds(&new.queue) => {
                new.queue = runner.queue.clone()
            }
            Some(new) => {
                // A smaller ring would drop the oldest: what does not fit goes to disk.
                if runner.queue.ring.borrow().len() > capacity {
                    runner.spill_ring(shared);
                }
                #[allow(unused_mut)]
                let mut queue = runner.queue.resized(capacity, batch_size);
                #[cfg(feature = "logs")]
                queue.take_kinds_of(&new.queue);
                new.queue = Rc::new(queue);
            }
            None => {
                runner.spill_ring(shared);
                runner.sync_spill(true);
            }
        }
    }
}

/// One more flush of every output, in turn; true when each delivered all it had.
async fn flush_all(runners: &mut [OutputRunner], shared: &Shared) -> bool {
    let mut ok = true;
    for r in runners.iter_mut() {
        ok &= r.flush(shared).await;
        r.forward_disk_drops(shared);
    }
    ok
}

/// `work`'s result, or `None` once `budget` has passed (`work` is then dropped).
///
/// `work` is boxed: the futures given here are the largest of the agent (every output's
/// flush), and each caller's own copy inlined into a generic `Or` cost the binary tens of KB.
async fn within<T>(budget: Duration, work: Pin<Box<dyn Future<Output = T> + '_>>) -> Option<T> {
    let timeout = async {
        smol::Timer::after(budget).await;
        None
    };
    future::or(async { Some(work.await) }, timeout).await
}

/// Gives every output queue that has none its outage buffer on disk (`buffer_dir/<key>`). Not for
/// `--once` or `check`: those never touch the buffer files.
fn attach_spills(gen: &Generation) {
    for runner in &gen.outputs {
        let q = &runner.queue;
        q.attach_spills(gen.config.spill_config(&q.key));
    }
}

/// Takes `buffer_dir` for this agent. `Err`: another agent runs on it (logged). A directory
/// that cannot be made or locked is only noted (at info: trying the default config as a
/// user does that): the outage buffer, if an output ever needs it, reports its own errors and
/// runs memory-only.
fn lock_buffer_dir(dir: &Path) -> Result<Option<DirLock>, ()> {
    match DirLock::acquire(dir) {
        Ok(lock) => Ok(Some(lock)),
        Err(e @ LockError::Busy { .. }) => {
            log::error!(
                "buffer_dir {} is {e}: two agents on one outage buffer would replay each other's samples twice or lose them; give each agent its own buffer_dir",
                dir.display()
            );
            Err(())
        }
        Err(LockError::Io(e)) => {
            log::info!(
                "buffer_dir {}: {e}; outputs buffer in memory only unless it becomes usable, and a second agent on it would not be refused",
                dir.display()
            );
            Ok(None)
        }
    }
}

/// At shutdown: what is still in memory goes to the outage buffer on disk, and that is fsynced. From
/// the hub's queues, not the runners: an output given up in the middle of a write still
/// has its queue there, with the batch it was writing.
fn persist_unsent(queues: &[Rc<OutputQueue>], shared: &Shared) {
    let table = shared.table.borrow();
    for q in queues {
        q.retry_spills_now();
        q.spill_ring(&table);
        q.sync_spills(true);
    }
}

fn new_shared(hostname: &str, config: &Config, stats: Rc<AgentStats>) -> Rc<Shared> {
    let mut table = SeriesTable::new(hostname, config.max_series);
    table.set_forget_after(config.forget_series_after());
    Rc::new(Shared {
        table: Rc::new(RefCell::new(table)),
        hub: Rc::new(Hub::default()),
        stats,
    })
}

/// `rtcollector run` on a parsed config. Returns the process exit code.
pub fn run(path: PathBuf, config: Config) -> i32 {
    let ex = LocalExecutor::new();
    // Not `smol::block_on`: it drives the reactor from this thread too, and after each wake
    // async-io's own thread polls for the reactor with backoff (about ten sleeps). Leaving
    // the reactor to that thread alone costs one wake per event instead: measured 0.2 ms
    // less CPU per cycle with the default config at 1 s, same 2 threads (README, Figures).
    futures_lite::future::block_on(ex.run(run_on(&ex, path, config)))
}

async fn run_on(ex: &LocalExecutor<'_>, path: PathBuf, config: Config) -> i32 {
    let hostname = config.hostname();
    let stats: Rc<AgentStats> = Rc::default();
    let shared = new_shared(&hostname, &config, stats.clone());
    let gen = match build_generation(&path, config, &stats) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    if gen.config.once {
        return run_once(gen, &shared).await;
    }
    let buffer_dir = gen.config.buffer_dir.clone();
    let Ok(_buffer_lock) = lock_buffer_dir(&buffer_dir) else {
        return 1;
    };
    attach_spills(&gen);
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            log::error!("cannot install signal handlers: {e}");
            return 1;
        }
    };
    log::info!(
        "rtcollector {} started: {} inputs, {} outputs, host {hostname}",
        env!("CARGO_PKG_VERSION"),
        gen.inputs.len(),
        gen.outputs.len() + gen.latest.len()
    );
    let mut running = start(ex, gen, &shared, Vec::new());
    while signals.next().await == Request::Reload {
        running = reload(ex, &path, &buffer_dir, running, &shared, &signals).await;
    }
    shutdown(running, &shared).await;
    0
}

/// Stops the inputs and gives every output one last flush, all within [`SHUTDOWN_BUDGET`]
/// however long a write hangs; then what is left goes to the outage buffer on disk.
async fn shutdown(running: Running, shared: &Shared) {
    let started = Instant::now();
    log::info!("stopping: flushing outputs");
    let mut stopped = Stopped::default();
    let stop_and_flush = async {
        stopped = stop(running).await;
        flush_all(&mut stopped.queued, shared).await
    };
    let flushed = within(SHUTDOWN_BUDGET, Box::pin(stop_and_flush)).await;
    if flushed.is_none() {
        log::warn!("stopping: outputs did not finish flushing within {SHUTDOWN_BUDGET:?}");
    }
    let queues = shared.hub.queues();
    persist_unsent(&queues, shared);
    let goodbye = STOP_PROMISE
        .saturating_sub(started.elapsed())
        .min(CLOSE_BUDGET);
    close_all(&mut stopped, goodbye).await;
    let left: usize = queues.iter().map(|q| q.ring.borrow().len()).sum();
    let on_disk: u64 = queues.iter().map(|q| q.stats.disk_samples.get()).sum();
    if flushed != Some(true) && left > 0 {
        log::warn!(
            "stopped with {left} samples not delivered (lost: the outage buffer could not take them)"
        );
    }
    if on_disk > 0 {
        log::info!("{on_disk} samples wait in the outage buffer on disk for the next start");
    }
    log::info!("stopped in {:?}", started.elapsed());
}

/// `buffer_dir`: the directory this agent locked at start; a reload keeps it.
async fn reload<'a>(
    ex: &LocalExecutor<'a>,
    path: &Path,
    buffer_dir: &Path,
    running: Running,
    shared: &Rc<Shared>,
    signals: &Signals,
) -> Running {
    log::info!("SIGHUP: reloading {}", path.display());
    let mut config = match load_unless_stopped(path, signals).await {
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            log::error!("reload failed, keeping the running config: {e}");
            return running;
        }
        None => {
            log::info!("reload abandoned: stopping");
            return running;
        }
    };
    if config.buffer_dir != buffer_dir {
        log::warn!(
            "buffer_dir changed to {}: that applies at the next start; {} stays in use",
            config.buffer_dir.display(),
            buffer_dir.display()
        );
        config.buffer_dir = buffer_dir.to_path_buf();
    }
    let mut gen = match build_generation(path, config, &shared.stats) {
        Ok(g) => g,
        Err(e) => {
            log::error!("reload failed, keeping the running config: {e}");
            return running;
        }
    };
    let Running {
        inputs,
        outputs,
        latest,
        stop_outputs: stop,
    } = running;
    let (kept, changed): (Vec<RunningInput>, Vec<RunningInput>) = inputs
        .into_iter()
        .partition(|i| gen.identities.iter().any(|n| i.identity.same_as(n)));
    for input in changed {
        input.task.cancel().await;
    }
    // An output in the middle of a write finishes it first, which can take its whole
    // write timeout: a stop asked for meanwhile gives the old outputs up (their queues
    // stay in the hub, for the shutdown to put on disk) instead of waiting.
    let stopped = async {
        signals.stopped().await;
        None
    };
    let Some(mut old) = future::or(
        async { Some(stop_outputs(outputs, latest, stop).await) },
        stopped,
    )
    .await
    else {
        log::info!("reload abandoned: stopping");
        return Running {
            inputs: kept,
            outputs: Vec::new(),
            latest: Vec::new(),
            stop_outputs: smol::channel::bounded(1).0,
        };
    };
    // Before the new outputs start: an MQTT output's successor connects with the same
    // client id.
    close_all(&mut old, CLOSE_BUDGET).await;
    adopt_queues(&mut gen, &mut old.queued, shared);
    drop(old);
    attach_spills(&gen);
    shared.table.borrow_mut().set_host(&gen.config.hostname());
    shared
        .table
        .borrow_mut()
        .set_forget_after(gen.config.forget_series_after());
    crate::logging::set_debug(gen.config.debug);
    log::info!(
        "reloaded: {} inputs ({} unchanged, kept running), {} outputs",
        gen.inputs.len(),
        kept.len(),
        gen.outputs.len() + gen.latest.len()
    );
    start(ex, gen, shared, kept)
}

/// Stack of the thread that parses a new config: as much as the main thread has, which
/// parses the first one (address space, not memory, until touched).
const CONFIG_STACK: usize = 8 * 1024 * 1024;

/// Reads and parses `path` on a thread of its own, so the inputs and outputs keep running
/// however long that takes; `None` when a stop is requested first (the thread's result is
/// then dropped).
async fn load_unless_stopped(
    path: &Path,
    signals: &Signals,
) -> Option<Result<Config, ConfigError>> {
    let owned = path.to_path_buf();
    let load = async {
        let loaded =
            offload::on_thread("rtc-config", CONFIG_STACK, move || config::load(&owned)).await;
        Some(loaded.unwrap_or_else(|e| {
            Err(ConfigError {
                file: path.into(),
                line: None,
                column: None,
                message: format!("cannot parse the config: {e}"),
            })
        }))
    };
    let stopped = async {
        signals.stopped().await;
        None
    };
    future::or(stopped, load).await
}

/// `once`: every input collects once at the current interval boundary, every output
/// flushes, and the exit code says whether everything was delivered.
async fn run_once(gen: Generation, shared: &Rc<Shared>) -> i32 {
    shared
        .hub
        .set_queues(gen.outputs.iter().map(|o| o.queue.clone()).collect());
    // Inputs that measure over time (CPU percent) took their baseline when built, and
    // listening inputs need time to receive: give them a span worth measuring.
    let mut inputs = gen.inputs;
    let listening = smol::LocalExecutor::new();
    for (runner, schedule) in inputs.iter_mut() {
        if let Some(listener) = runner.take_listener(*schedule, shared) {
            listening.spawn(listener).detach();
        }
    }
    listening.run(smol::Timer::after(ONCE_BASELINE_SPAN)).await;
    let now = clock::now_ms();
    for (mut runner, schedule) in inputs {
        let ts = clock::floor_boundary(now, (schedule.interval.as_millis() as i64).max(1));
        runner.collect_once(ts, shared).await;
    }
    // Outputs that keep only the latest value are pulled from, which a single run cannot
    // wait for: they are not started.
    let mut outputs = Stopped {
        queued: gen.outputs,
        latest: Vec::new(),
    };
    let delivered = within(
        Duration::from_secs(30),
        Box::pin(flush_all(&mut outputs.queued, shared)),
    )
    .await;
    close_all(&mut outputs, CLOSE_BUDGET).await;
    if delivered == Some(true) {
        0
    } else {
        log::error!("not every sample could be delivered");
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::Sample;

    fn config(text: &str) -> Config {
        config::parse(Path::new("test.yaml"), text).expect("valid config")
    }

    #[test]
    fn series_are_kept_at_least_two_intervals_of_the_slowest_input() {
        let c = config(
            "interval: 10s\nforget_series_after: 1m\ninputs:\n  - linux_mem\n  - linux_cpu:\n      interval: 2h\n",
        );
        assert_eq!(c.forget_series_after(), Some(Duration::from_secs(4 * 3600)));
        assert_eq!(
            config("forget_series_after: 0s\n").forget_series_after(),
            None
        );
        assert_eq!(
            config("interval: 10s\n").forget_series_after(),
            Some(Duration::from_secs(3600))
        );
    }

    #[test]
    fn repeated_plugins_get_numbered_keys() {
        let keys = instance_keys(["stdout", "linux_mem", "stdout", "stdout"].into_iter());
        assert_eq!(keys, ["stdout", "linux_mem", "stdout#2", "stdout#3"]);
    }

    fn shared_for_tests(stats: &Rc<AgentStats>) -> Shared {
        Shared {
            table: Rc::new(RefCell::new(SeriesTable::new("h", 100))),
            hub: Rc::new(Hub::default()),
            stats: stats.clone(),
        }
    }

    #[test]
    fn a_reload_carries_buffered_samples_into_the_new_queue() {
        let stats: Rc<AgentStats> = Rc::default();
        let first = build_generation(
            Path::new("a.yaml"),
            config("max_buffer_size: 10\noutputs: [stdout]\n"),
            &stats,
        )
        .unwrap();
        let queue = first.outputs[0].queue.clone();
        let samples: Vec<Sample> = (0..4)
            .map(|i| Sample {
                series: 0,
                ts_ms: i,
                value: i as f64,
            })
            .collect();
        queue.push(&samples);
        let mut second = build_generation(
            Path::new("a.yaml"),
            config("max_buffer_size: 3\noutputs: [stdout]\n"),
            &stats,
        )
        .unwrap();
        let mut old = first.outputs;
        adopt_queues(&mut second, &mut old, &shared_for_tests(&stats));
        let ring = second.outputs[0].queue.ring.borrow();
        let mut held: Vec<Sample> = Vec::new();
        ring.peek_into(usize::MAX, &mut held);
        let kept: Vec<i64> = held.iter().map(|s| s.ts_ms).collect();
        assert_eq!(
            kept,
            [1, 2, 3],
            "the newest samples that fit the new capacity"
        );
        assert_eq!(ring.capacity(), 3);
        assert_eq!(
            second.outputs[0].queue.stats.dropped.get(),
            1,
            "the one that did not fit is counted"
        );
    }

    /// Keeps nothing; declares itself a latest-value output when given a sink.
    struct Pulled(Option<Rc<dyn crate::core::output::LatestSink>>);

    impl crate::core::output::LatestSink for std::cell::Cell<usize> {
        fn accept(&self, samples: &[Sample], _: &SeriesTable) {
            self.set(self.get() + samples.len());
        }
    }

    impl crate::core::Output for Pulled {
        fn write<'a>(
            &'a mut self,
            batch: &'a [Sample],
            _: crate::core::SeriesView<'a>,
        ) -> crate::core::WriteFuture<'a> {
            crate::core::ready_write(Ok(crate::core::WriteReport {
                written: batch.len() as u64,
                rejected: 0,
            }))
        }

        fn buffering(&mut self) -> Buffering {
            match self.0.take() {
                Some(sink) => Buffering::Latest(sink),
                None => Buffering::Queue,
            }
        }
    }

    #[test]
    fn an_output_that_keeps_only_the_latest_values_gets_no_queue_and_its_sink_every_publish() {
        let stats: Rc<AgentStats> = Rc::default();
        let c = config("outputs: [stdout]\n");
        let counted = Rc::new(std::cell::Cell::new(0));
        let Runner::Latest(pulled) = runner_for(
            "pulled",
            Box::new(Pulled(Some(counted.clone()))),
            &c,
            &stats,
        ) else {
            panic!("a latest-value output was given a queue");
        };
        let Runner::Queued(queued) = runner_for("queued", Box::new(Pulled(None)), &c, &stats)
        else {
            panic!("a queued output was given none");
        };
        let mut gen = build_generation(Path::new("a.yaml"), c, &stats).unwrap();
        gen.outputs = vec![queued];
        gen.latest = vec![pulled];
        let shared = Rc::new(shared_for_tests(&stats));
        let ex = LocalExecutor::new();
        let running = start(&ex, gen, &shared, Vec::new());
        let keys: Vec<String> = shared.hub.queues().iter().map(|q| q.key.clone()).collect();
        assert_eq!(keys, ["queued"], "only the queued output has a queue");
        let sample = Sample {
            series: 0,
            ts_ms: 0,
            value: 1.0,
        };
        shared
            .hub
            .publish(&[sample, sample], &shared.table.borrow(), &stats);
        assert_eq!(counted.get(), 2);
        let mut stopped = futures_lite::future::block_on(ex.run(stop(running)));
        assert_eq!((stopped.queued.len(), stopped.latest.len()), (1, 1));
        futures_lite::future::block_on(close_all(&mut stopped, CLOSE_BUDGET));
    }

    fn identities(text: &str) -> Vec<InputIdentity> {
        let stats: Rc<AgentStats> = Rc::default();
        build_generation(Path::new("a.yaml"), config(text), &stats)
            .unwrap()
            .identities
    }

    #[test]
    fn an_input_is_the_same_after_a_reload_only_when_all_it_is_built_from_is() {
        let base = "inputs:\n  - linux_cpu\n  - linux_net:\n      exclude_patterns: [\"^veth\"]\n";
        let before = identities(base);
        let after = identities(&format!("{base}outputs: [stdout]\nmax_buffer_size: 7\n"));
        assert!(
            before[0].same_as(&after[0]),
            "outputs' options do not matter"
        );
        assert!(before[1].same_as(&after[1]));
        let changed = identities(
            "inputs:\n  - linux_cpu\n  - linux_net:\n      exclude_patterns: [\"^docker\"]\n",
        );
        assert!(before[0].same_as(&changed[0]));
        assert!(!before[1].same_as(&changed[1]), "its options changed");
        let slower = identities(&format!("interval: 30s\n{base}"));
        assert!(!before[0].same_as(&slower[0]), "its interval changed");
        let renamed = identities(&format!("hostname: other\n{base}"));
        assert!(!before[0].same_as(&renamed[0]), "the host label changed");
        let moved = identities("inputs:\n  - linux_mem\n  - linux_cpu\n");
        assert!(
            !before[0].same_as(&moved[0]) && before[0].same_as(&moved[1]),
            "matched by what it is, not where it is listed"
        );
    }

    #[test]
    fn an_input_that_names_a_secret_or_a_certificate_is_always_rebuilt() {
        // A password of the redis input, which only builds with the `apps` feature.
        #[cfg(feature = "apps")]
        {
            std::env::set_var("SECRET_RTC_AGENT_TEST", "pw");
            let text = "inputs:\n  - redis:\n      host: 127.0.0.1\n      password: secret:rtc_agent_test\n";
            let before = identities(text);
            assert!(!before[0].same_as(&identities(text)[0]));
        }
        assert!(reads_beyond_its_text(
            "{ urls: [\"https://a\"], tls_ca: /etc/ca.pem }"
        ));
        assert!(!reads_beyond_its_text("{ urls: [\"https://a\"] }"));
    }
}
