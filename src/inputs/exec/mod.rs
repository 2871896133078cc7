//! `exec`: runs commands each interval and reads metrics from what they print, in
//! rtcollector's line format or its JSON document.
//!
//! Commands run concurrently, each in its own process group, without a shell unless asked.
//! A command still running at `timeout` is killed with everything it started; its output is
//! dropped, never half-read. Output beyond [`STDOUT_CAP`] is read and discarded (counted), so
//! a chatty command can neither block on a full pipe nor grow the agent's memory.

pub mod parse;

use crate::config::Dur;
use crate::core::input::ListenFuture;
use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::inputs::BuildCtx;
use futures_lite::{future, AsyncRead, AsyncReadExt};
use parse::{JsonDoc, LineError};
use serde::Deserialize;
use smol::Timer;
use std::future::Future;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::{ExitStatus, Stdio};
use std::task::Poll;
use std::time::Duration;

/// The commented config sample for `sample-config`.
pub const SAMPLE: &str = "\
# Runs commands each interval and reads metrics from what they print.
- exec:
    # A string (split into words as a shell would, but run without one) or a list of
    # arguments. Every command runs at the same time as the others.
    commands:
      - \"/usr/local/bin/report-temp --sensor 0\"
    # json: {\"metrics\": {\"name\": 1.5, ...}, \"logs\": [{\"message\": \"...\", \"level\": \"info\"}]}
    # metrics: one line per sample, `name value [key=value ...] [ts=milliseconds]`
    data_format: json
    # A command still running after this is killed, with every process it started.
    timeout: 5s
    # Read the output of a command that exits with a non-zero status (skipped otherwise).
    ignore_error: false
    # Run each command string through `/bin/sh -c` (pipes, redirections, variables).
    shell: false
    # Directory the commands run in (default: the agent's).
    # working_dir: /opt/scripts
    # Variables added to the agent's environment, as NAME=value.
    environment: []
";

/// Standard output kept per command and run; more is read and discarded.
pub const STDOUT_CAP: usize = 1024 * 1024;
/// Standard error kept per command and run (for the error message); more is discarded.
pub const STDERR_CAP: usize = 4 * 1024;
/// Log entries of one JSON document that go to the agent log; more are counted.
pub const MAX_LOGS: usize = 20;
/// How long a killed command may take to be reaped before it is left to the reaper.
const REAP_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub commands: Vec<CommandLine>,
    pub data_format: DataFormat,
    pub timeout: Dur,
    pub ignore_error: bool,
    pub shell: bool,
    pub working_dir: Option<PathBuf>,
    pub environment: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            commands: Vec::new(),
            // rtcollector's default.
            data_format: DataFormat::Json,
            timeout: Dur(Duration::from_secs(5)),
            ignore_error: false,
            shell: false,
            working_dir: None,
            environment: Vec::new(),
        }
    }
}

/// A command as written: one string, or the program and its arguments.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum CommandLine {
    Line(String),
    Argv(Vec<String>),
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum DataFormat {
    Json,
    Metrics,
}

/// A command ready to start.
#[derive(Debug, PartialEq)]
pub struct Prepared {
    pub program: String,
    pub args: Vec<String>,
    /// The `cmd` label: the command as written (a list joined by spaces).
    pub label: String,
}

/// Turns one configured command into a program and arguments.
pub fn prepare(cmd: &CommandLine, shell: bool) -> Result<Prepared, String> {
    match cmd {
        CommandLine::Line(line) if shell => Ok(Prepared {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), line.clone()],
            label: line.clone(),
        }),
        CommandLine::Line(line) => {
            if let Some(op) = parse::shell_operator(line) {
                return Err(format!(
                    "commands: `{line}` uses `{op}`, which needs a shell: set `shell: true`, or write the command as a list of arguments"
                ));
            }
            let mut words = parse::split_words(line).map_err(|e| format!("commands: `{line}`: {e}"))?;
            if words.is_empty() {
                return Err("commands: an empty command".into());
            }
            let program = words.remove(0);
            Ok(Prepared {
                program,
                args: words,
                label: line.clone(),
            })
        }
        CommandLine::Argv(argv) if shell => Err(format!(
            "commands: {argv:?}: with `shell: true` write each command as one string"
        )),
        CommandLine::Argv(argv) => match argv.split_first() {
            Some((program, args)) if !program.is_empty() => Ok(Prepared {
                program: program.clone(),
                args: args.to_vec(),
                label: argv.join(" "),
            }),
            _ => Err("commands: an empty command".into()),
        },
    }
}

/// `NAME=value` entries of `environment`.
fn environment(entries: &[String]) -> Result<Vec<(String, String)>, String> {
    entries
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => {
                Ok((k.to_string(), v.to_string()))
            }
            _ => Err(format!("environment: `{e}` is not NAME=value")),
        })
        .collect()
}

pub fn build(cfg: &Config, _ctx: &BuildCtx) -> Result<Exec, String> {
    if cfg.commands.is_empty() {
        return Err("commands: list at least one command to run".into());
    }
    if cfg.timeout.0.is_zero() {
        return Err("timeout: must be more than 0".into());
    }
    let commands = cfg
        .commands
        .iter()
        .map(|c| prepare(c, cfg.shell))
        .collect::<Result<Vec<_>, _>>()?;
    let runs = commands.iter().map(|_| Run::default()).collect();
    let totals = commands.iter().map(|_| Totals::default()).collect();
    Ok(Exec {
        commands,
        settings: Settings {
            timeout: cfg.timeout.0,
            working_dir: cfg.working_dir.clone(),
            env: environment(&cfg.environment)?,
        },
        format: cfg.data_format,
        ignore_error: cfg.ignore_error,
        runs,
        totals,
    })
}

/// How every command is started.
struct Settings {
    timeout: Duration,
    working_dir: Option<PathBuf>,
    env: Vec<(String, String)>,
}

/// What one run of a command left; its buffers are kept for the next run.
#[derive(Default)]
struct Run {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    stdout_discarded: u64,
    outcome: Option<Outcome>,
}

enum Outcome {
    Exited(ExitStatus),
    TimedOut,
    NotStarted(io::Error),
    WaitFailed(io::Error),
}

/// Per command, since the agent started.
#[derive(Default)]
struct Totals {
    malformed: u64,
    discarded_bytes: u64,
    timeouts: u64,
}

pub struct Exec {
    commands: Vec<Prepared>,
    settings: Settings,
    format: DataFormat,
    ignore_error: bool,
    runs: Vec<Run>,
    totals: Vec<Totals>,
}

impl Input for Exec {
    fn collect<'a>(&'a mut self, em: &'a mut Emitter<'_>) -> CollectFuture<'a> {
        Box::pin(async move {
            run_all(&self.commands, &self.settings, &mut self.runs).await;
            for i in 0..self.commands.len() {
                self.report(i, em);
            }
            Ok(())
        })
    }

    /// smol's process reaper, driven inside this input's task: without a task driving it,
    /// async-process starts a thread of its own (`async-process`) at the first command.
    fn listen(&mut self) -> Option<ListenFuture> {
        Some(Box::pin(async {
            smol::process::driver().await;
        }))
    }
}

impl Exec {
    /// Emits what command `i` printed, or notes why it could not be read.
    fn report(&mut self, i: usize, em: &mut Emitter<'_>) {
        let cmd = &self.commands[i];
        let run = &self.runs[i];
        let totals = &mut self.totals[i];
        totals.discarded_bytes += run.stdout_discarded;
        let readable = match &run.outcome {
            Some(Outcome::Exited(status)) if status.success() || self.ignore_error => true,
            Some(Outcome::Exited(status)) => {
                em.partial_failure(InputError::new(format!(
                    "`{}` {}{} (output skipped; set ignore_error: true to read it anyway)",
                    cmd.label,
                    describe(status),
                    stderr_hint(&run.stderr)
                )));
                false
            }
            Some(Outcome::TimedOut) => {
                totals.timeouts += 1;
                em.partial_failure(InputError::new(format!(
                    "`{}` still running after timeout ({}ms): killed, output dropped",
                    cmd.label,
                    self.settings.timeout.as_millis()
                )));
                false
            }
            Some(Outcome::NotStarted(e)) => {
                let dir = match &self.settings.working_dir {
                    Some(d) if !d.is_dir() => format!(" (working_dir {} is not a directory)", d.display()),
                    _ => String::new(),
                };
                em.partial_failure(InputError::new(format!(
                    "cannot run `{}`: {e}{dir}",
                    cmd.program
                )));
                false
            }
            Some(Outcome::WaitFailed(e)) => {
                em.partial_failure(InputError::new(format!("`{}`: {e}", cmd.label)));
                false
            }
            None => false,
        };
        if readable {
            let malformed = match self.format {
                DataFormat::Metrics => emit_lines(cmd, run, em),
                DataFormat::Json => emit_json(cmd, run, em),
            };
            totals.malformed += malformed;
        }
        let labels = [("cmd", cmd.label.as_str())];
        em.gauge("exec_malformed_lines", &labels, totals.malformed as f64);
        em.gauge("exec_discarded_bytes", &labels, totals.discarded_bytes as f64);
        em.gauge("exec_timeouts", &labels, totals.timeouts as f64);
    }
}

fn describe(status: &ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        _ => status.to_string(),
    }
}

/// `: <first line of stderr>`, shortened, when there is one.
fn stderr_hint(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    match text.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => format!(": {}", shorten(line, 200)),
        None => String::new(),
    }
}

fn shorten(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((at, _)) => &s[..at],
        None => s,
    }
}

/// Emits each good line of `metrics` format output; returns how many were skipped. When
/// the output was cut at the cap, its last (incomplete) line is dropped too.
fn emit_lines(cmd: &Prepared, run: &Run, em: &mut Emitter<'_>) -> u64 {
    let mut text = &run.stdout[..];
    if run.stdout_discarded > 0 {
        let end = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        text = &text[..end];
    }
    let mut malformed = 0;
    let mut first: Option<(usize, LineError)> = None;
    for (n, raw) in text.split(|&b| b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        match parse::metric_line(raw) {
            Ok(Some(line)) => emit_line(cmd, &line, em),
            Ok(None) => {}
            Err(e) => {
                malformed += 1;
                first.get_or_insert((n + 1, e));
            }
        }
    }
    if let Some((line, e)) = first {
        em.partial_failure(InputError::new(format!(
            "`{}`: {malformed} malformed line(s) skipped; the first, line {line}: {e}",
            cmd.label
        )));
    }
    malformed
}

/// One sample with `source=exec`, `cmd` and the line's labels (which win on a clash, as in
/// rtcollector).
///
/// `ts=` is checked but the sample carries the collection's tick timestamp, as every sample
/// of a collection does.
fn emit_line(cmd: &Prepared, line: &parse::MetricLine<'_>, em: &mut Emitter<'_>) {
    let mut labels: heapless::Vec<(&str, &str), { crate::core::metric::MAX_LABELS }> =
        heapless::Vec::new();
    for base in [("source", "exec"), ("cmd", cmd.label.as_str())] {
        if !line.labels.iter().any(|(k, _)| *k == base.0) {
            // Cannot overflow: LINE_LABELS + 2 == MAX_LABELS.
            let _ = labels.push(base);
        }
    }
    for l in &line.labels {
        let _ = labels.push(*l);
    }
    em.gauge(line.name, &labels, line.value);
}

/// Emits the metrics of a JSON document and logs its log entries; returns how many values
/// (or whole documents) were skipped.
fn emit_json(cmd: &Prepared, run: &Run, em: &mut Emitter<'_>) -> u64 {
    let doc = match parse::json_doc(&run.stdout, MAX_LOGS) {
        Ok(doc) => doc,
        Err(e) => {
            let cut = if run.stdout_discarded > 0 {
                format!(" (output cut at {STDOUT_CAP} bytes)")
            } else {
                String::new()
            };
            em.partial_failure(InputError::new(format!(
                "`{}`: output skipped: {e}{cut}",
                cmd.label
            )));
            return 1;
        }
    };
    let JsonDoc {
        metrics,
        logs,
        logs_dropped,
        skipped,
    } = doc;
    let labels = [("source", "exec"), ("cmd", cmd.label.as_str())];
    for (name, value) in &metrics {
        em.gauge(name, &labels, *value);
    }
    for (level, message) in logs {
        log::log!(level, "exec `{}`: {}", cmd.label, shorten(&message, 1000));
    }
    if logs_dropped > 0 {
        log::info!(
            "exec `{}`: {logs_dropped} more log entries not logged (at most {MAX_LOGS} per run)",
            cmd.label
        );
    }
    if skipped > 0 {
        em.partial_failure(InputError::new(format!(
            "`{}`: {skipped} value(s) skipped: not a number, or a name outside [A-Za-z0-9_.:-]",
            cmd.label
        )));
    }
    skipped
}

/// Runs every command at once and waits for all of them (each bounded by the timeout).
async fn run_all(commands: &[Prepared], settings: &Settings, runs: &mut [Run]) {
    let mut pending: Vec<Option<Pin<Box<dyn Future<Output = ()> + '_>>>> = commands
        .iter()
        .zip(runs.iter_mut())
        .map(|(cmd, run)| Some(Box::pin(run_one(cmd, settings, run)) as Pin<Box<dyn Future<Output = ()>>>))
        .collect();
    future::poll_fn(|cx| {
        let mut busy = false;
        for slot in pending.iter_mut() {
            if let Some(f) = slot {
                if f.as_mut().poll(cx).is_ready() {
                    *slot = None;
                } else {
                    busy = true;
                }
            }
        }
        if busy {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
}

/// Starts `cmd` in a new process group, reads its output (capped) and waits for it; kills
/// the whole group at the timeout.
async fn run_one(cmd: &Prepared, settings: &Settings, run: &mut Run) {
    run.stdout.clear();
    run.stderr.clear();
    run.stdout_discarded = 0;
    let mut command = std::process::Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .envs(settings.env.iter().map(|(k, v)| (k, v)));
    // Its own group, so a timeout also kills what a script started (`sleep`, pipelines).
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    if let Some(dir) = &settings.working_dir {
        command.current_dir(dir);
    }
    // Stdio is set on smol's Command: converting resets what std's had.
    let mut command = smol::process::Command::from(command);
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(c) => c,
        Err(e) => {
            run.outcome = Some(Outcome::NotStarted(e));
            return;
        }
    };
    let mut guard = GroupGuard {
        pid: child.id(),
        armed: true,
    };
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let Run {
        stdout: out_buf,
        stderr: err_buf,
        stdout_discarded,
        ..
    } = run;
    let work = async {
        let (discarded, _) = future::zip(
            read_capped(stdout, out_buf, STDOUT_CAP),
            read_capped(stderr, err_buf, STDERR_CAP),
        )
        .await;
        *stdout_discarded = discarded;
        Some(child.status().await)
    };
    let timer = async {
        Timer::after(settings.timeout).await;
        None
    };
    let finished = future::or(work, timer).await;
    // Reaped below, or killed here: either way the group needs nothing more on drop.
    guard.armed = false;
    run.outcome = Some(match finished {
        Some(Ok(status)) => Outcome::Exited(status),
        Some(Err(e)) => Outcome::WaitFailed(e),
        None => {
            kill_group(child.id());
            let reaped = async {
                let _ = child.status().await;
            };
            future::or(reaped, async {
                Timer::after(REAP_GRACE).await;
            })
            .await;
            Outcome::TimedOut
        }
    });
}

/// Kills the command's process group when a run is abandoned half way (the agent stops or
/// reloads), so nothing the command started outlives it.
struct GroupGuard {
    pid: u32,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            kill_group(self.pid);
        }
    }
}

/// SIGKILL to the command's process group. The child has not been reaped yet, so its id
/// (which is the group's) cannot have been reused.
fn kill_group(pid: u32) {
    use nix::sys::signal::{killpg, Signal};
    if let Err(e) = killpg(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL) {
        log::debug!("exec: killing process group {pid}: {e}");
    }
}

/// Reads `src` to its end, keeping the first `cap` bytes in `buf`; returns how many more
/// were read and discarded. A read error ends the read (the exit status tells the rest).
async fn read_capped(src: Option<impl AsyncRead + Unpin>, buf: &mut Vec<u8>, cap: usize) -> u64 {
    let Some(mut src) = src else {
        return 0;
    };
    let mut chunk = [0u8; 4096];
    let mut discarded = 0u64;
    loop {
        match src.read(&mut chunk).await {
            Ok(0) => return discarded,
            Ok(n) => {
                let keep = n.min(cap - buf.len());
                buf.extend_from_slice(&chunk[..keep]);
                discarded += (n - keep) as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return discarded,
        }
    }
}

#[cfg(test)]
mod tests;
