//! Wires a config into running tasks on one single-threaded executor, and handles
//! signals: SIGTERM/SIGINT stop, SIGHUP reloads.

use crate::config::{self, Config, ConfigError};
use crate::core::clock;
use crate::core::dir_lock::{DirLock, LockError};
use crate::core::hub::{Hub, OutputQueue};
use crate::core::input::{InputRunner, Schedule, Shared};
use crate::core::output::OutputRunner;
use crate::core::spill::Spill;
use crate::core::stats::AgentStats;
use crate::core::SeriesTable;
use crate::inputs::BuildCtx;
use crate::outputs::OutputCtx;
use async_signal::{Signal, Signals};
use futures_lite::{future, StreamExt};
use smol::{LocalExecutor, Task};
use std::cell::RefCell;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long a stop may take: every output gets one last flush within it.
const SHUTDOWN_BUDGET: Duration = Duration::from_millis(4_500);

/// How long `--once` waits between building the inputs and collecting.
const ONCE_BASELINE_SPAN: Duration = Duration::from_secs(1);

/// Inputs and outputs built from one config, not yet running.
pub struct Generation {
    pub config: Config,
    pub inputs: Vec<(InputRunner, Schedule)>,
    pub outputs: Vec<OutputRunner>,
}

/// A config problem found while building plugin `index` of `section` (after parsing): where
/// its option is written in `source` (when the message starts with the option's name), the
/// key path, and why.
pub fn build_error(
    path: &Path,
    source: &str,
    (section, index, name): (&str, usize, &str),
    message: String,
) -> ConfigError {
    let option = config::locate::option_of(&message);
    let at = config::locate::locate(source, section, index, option);
    let message = match option {
        Some(option) => format!(
            "{section}[{index}].{name}.{option}{}",
            &message[option.len()..]
        ),
        None => format!("{section}[{index}].{name}: {message}"),
    };
    ConfigError {
        file: path.into(),
        line: at.map(|(line, _)| line),
        column: at.map(|(_, column)| column),
        message,
    }
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

/// Builds every input and output of `config`. Output queues whose key exists in
/// `old_queues` are carried over, so a reload loses no buffered sample.
pub fn build_generation(
    path: &Path,
    config: Config,
    stats: &Rc<AgentStats>,
    old_queues: &[Rc<OutputQueue>],
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
    for (i, (entry, key)) in config.inputs.iter().zip(&input_keys).enumerate() {
        let input = entry
            .options
            .build(&ctx)
            .map_err(|m| build_error(path, &config.source.0, ("inputs", i, &entry.name), m))?;
        let schedule = Schedule {
            interval: config.input_interval(entry),
            jitter: config.collection_jitter.0,
        };
        inputs.push((InputRunner::new(key, input, stats.input(key)), schedule));
    }
    let output_keys = instance_keys(config.outputs.iter().map(|e| e.name.as_str()));
    let mut outputs = Vec::new();
    for (i, (entry, key)) in config.outputs.iter().zip(&output_keys).enumerate() {
        let octx = OutputCtx {
            hostname: hostname.clone(),
            key: key.clone(),
        };
        let output = entry
            .options
            .build(&octx)
            .map_err(|m| build_error(path, &config.source.0, ("outputs", i, &entry.name), m))?;
        let queue = match old_queues.iter().find(|q| &q.key == key) {
            Some(old) => Rc::new(old.resized(config.max_buffer_size, config.metric_batch_size)),
            None => Rc::new(OutputQueue::new(
                key,
                config.max_buffer_size,
                config.metric_batch_size,
                stats.output(key),
            )),
        };
        outputs.push(OutputRunner::new(key, output, queue));
    }
    stats.retain(&input_keys, &output_keys);
    Ok(Generation {
        config,
        inputs,
        outputs,
    })
}

/// The tasks of the generation that is running.
struct Running {
    inputs: Vec<Task<()>>,
    outputs: Vec<Task<OutputRunner>>,
    stop_outputs: smol::channel::Sender<()>,
}

fn start<'a>(ex: &LocalExecutor<'a>, gen: Generation, shared: &Rc<Shared>) -> Running {
    shared
        .hub
        .set_queues(gen.outputs.iter().map(|o| o.queue.clone()).collect());
    let inputs = gen
        .inputs
        .into_iter()
        .map(|(runner, schedule)| ex.spawn(runner.run(schedule, shared.clone())))
        .collect();
    let (stop_outputs, stop_rx) = smol::channel::bounded(1);
    let flush = gen.config.flush_interval();
    let outputs = gen
        .outputs
        .into_iter()
        .map(|runner| ex.spawn(runner.run(flush, shared.clone(), stop_rx.clone())))
        .collect();
    Running {
        inputs,
        outputs,
        stop_outputs,
    }
}

/// Stops inputs, then outputs; returns the output runners so they can flush once more.
async fn stop(running: Running) -> Vec<OutputRunner> {
    for task in running.inputs {
        task.cancel().await;
    }
    drop(running.stop_outputs);
    let mut runners = Vec::new();
    for task in running.outputs {
        runners.push(task.await);
    }
    runners
}

/// One last flush of every output, bounded by `budget`.
async fn final_flush(runners: &mut [OutputRunner], shared: &Shared, budget: Duration) -> bool {
    let all = async {
        let mut ok = true;
        for r in runners.iter_mut() {
            ok &= r.flush(shared).await;
        }
        ok
    };
    let timeout = async {
        smol::Timer::after(budget).await;
        log::warn!("stopping: outputs did not finish flushing within {budget:?}");
        false
    };
    future::or(all, timeout).await
}

/// Gives every output queue that has none its disk buffer (`buffer_dir/<key>`). Not for
/// `--once` or `check`: those never touch the buffer files.
fn attach_spills(gen: &Generation) {
    for runner in &gen.outputs {
        let q = &runner.queue;
        let mut spill = q.spill.borrow_mut();
        if spill.is_none() {
            *spill = Some(Spill::new(gen.config.spill_config(&q.key), q.stats.clone()));
        }
    }
}

/// Takes `buffer_dir` for this agent. `Err`: another agent runs on it (logged). A directory
/// that cannot be made or locked is only noted (at info: trying the default config as a
/// user does that): the disk buffer, if an output ever needs it, reports its own errors and
/// runs memory-only.
fn lock_buffer_dir(dir: &Path) -> Result<Option<DirLock>, ()> {
    match DirLock::acquire(dir) {
        Ok(lock) => Ok(Some(lock)),
        Err(e @ LockError::Busy { .. }) => {
            log::error!(
                "buffer_dir {} is {e}: two agents on one disk buffer would replay each other's samples twice or lose them; give each agent its own buffer_dir",
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

/// At shutdown: what is still in memory goes to the disk buffer, and that is fsynced.
fn persist_unsent(runners: &mut [OutputRunner], shared: &Shared) {
    for r in runners.iter_mut() {
        r.spill_ring(shared);
        r.sync_spill(true);
        r.forward_disk_drops(shared);
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
    let gen = match build_generation(&path, config, &stats, &[]) {
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
    let mut signals = match Signals::new([Signal::Term, Signal::Int, Signal::Hup]) {
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
        gen.outputs.len()
    );
    let mut running = start(ex, gen, &shared);
    while let Some(signal) = signals.next().await {
        match signal {
            Ok(Signal::Hup) => running = reload(ex, &path, &buffer_dir, running, &shared).await,
            Ok(_) => break,
            Err(e) => log::warn!("signal handling: {e}"),
        }
    }
    let started = Instant::now();
    log::info!("stopping: flushing outputs");
    let mut runners = stop(running).await;
    let flushed = final_flush(&mut runners, &shared, SHUTDOWN_BUDGET).await;
    persist_unsent(&mut runners, &shared);
    let left: usize = runners.iter().map(|r| r.queue.ring.borrow().len()).sum();
    let on_disk: u64 = runners
        .iter()
        .map(|r| r.queue.stats.disk_samples.get())
        .sum();
    if !flushed && left > 0 {
        log::warn!(
            "stopped with {left} samples not delivered (lost: the disk buffer could not take them)"
        );
    }
    if on_disk > 0 {
        log::info!("{on_disk} samples wait in the disk buffer for the next start");
    }
    log::info!("stopped in {:?}", started.elapsed());
    0
}

/// `buffer_dir`: the directory this agent locked at start; a reload keeps it.
async fn reload<'a>(
    ex: &LocalExecutor<'a>,
    path: &Path,
    buffer_dir: &Path,
    running: Running,
    shared: &Rc<Shared>,
) -> Running {
    log::info!("SIGHUP: reloading {}", path.display());
    let mut config = match config::load(path) {
        Ok(c) => c,
        Err(e) => {
            log::error!("reload failed, keeping the running config: {e}");
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
    let queues = shared.hub.queues();
    let gen = match build_generation(path, config, &shared.stats, &queues) {
        Ok(g) => g,
        Err(e) => {
            log::error!("reload failed, keeping the running config: {e}");
            return running;
        }
    };
    attach_spills(&gen);
    let old = stop(running).await;
    drop(old);
    shared.table.borrow_mut().set_host(&gen.config.hostname());
    shared
        .table
        .borrow_mut()
        .set_forget_after(gen.config.forget_series_after());
    crate::logging::set_debug(gen.config.debug);
    log::info!(
        "reloaded: {} inputs, {} outputs",
        gen.inputs.len(),
        gen.outputs.len()
    );
    start(ex, gen, shared)
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
    for (runner, _) in inputs.iter_mut() {
        if let Some(listener) = runner.take_listener() {
            listening.spawn(listener).detach();
        }
    }
    listening.run(smol::Timer::after(ONCE_BASELINE_SPAN)).await;
    let now = clock::now_ms();
    for (mut runner, schedule) in inputs {
        let ts = clock::floor_boundary(now, (schedule.interval.as_millis() as i64).max(1));
        runner.collect_once(ts, shared).await;
    }
    let mut outputs = gen.outputs;
    if final_flush(&mut outputs, shared, Duration::from_secs(30)).await {
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

    #[test]
    fn a_reload_carries_buffered_samples_into_the_new_queue() {
        let stats: Rc<AgentStats> = Rc::default();
        let first = build_generation(
            Path::new("a.yaml"),
            config("max_buffer_size: 10\noutputs: [stdout]\n"),
            &stats,
            &[],
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
        let second = build_generation(
            Path::new("a.yaml"),
            config("max_buffer_size: 3\noutputs: [stdout]\n"),
            &stats,
            &[queue],
        )
        .unwrap();
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

    #[test]
    fn build_errors_name_the_entry_and_point_at_the_option() {
        let text = "inputs:\n  - linux_mem\n  - linux_cpu\n  - linux_net:\n      include_patterns: [\"(\"]\n";
        let err = build_error(
            Path::new("c.yaml"),
            text,
            ("inputs", 2, "linux_net"),
            "include_patterns: invalid pattern `(`".into(),
        );
        assert_eq!(
            err.to_string(),
            "c.yaml:5:7: inputs[2].linux_net.include_patterns: invalid pattern `(`"
        );
        let err = build_error(
            Path::new("c.yaml"),
            text,
            ("inputs", 2, "linux_net"),
            "bad".into(),
        );
        assert_eq!(err.to_string(), "c.yaml:4:5: inputs[2].linux_net: bad");
    }
}
