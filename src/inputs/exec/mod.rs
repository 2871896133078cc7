//! `exec`: runs commands each interval and reads metrics from what they print, in
//! the Python rtcollector's line format or its JSON document.
//!
//! Commands run concurrently, without a shell unless asked, through the inputs' shared
//! runner ([`command`]): each in its own process group, killed with everything it started
//! at `timeout` (its output is then dropped, never half-read), output beyond [`STDOUT_CAP`]
//! read and discarded (counted), and no reaper thread.

pub mod parse;

use crate::config::{BuildError, Dur};
use crate::config::range;
use crate::core::{CollectFuture, Emitter, Input, InputError};
use crate::inputs::support::command::{self, Captured, Limits, Outcome};
use crate::inputs::BuildCtx;
use futures_lite::future;
use parse::{JsonDoc, LineError};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitStatus;
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

#[derive(Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub commands: Vec<CommandLine>,
    pub data_format: DataFormat,
    #[serde(deserialize_with = "range::timeout")]
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
            // The Python rtcollector's default.
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
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(untagged)]
pub enum CommandLine {
    Line(String),
    Argv(Vec<String>),
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
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
pub fn prepare(cmd: &CommandLine, shell: bool) -> Result<Prepared, BuildError> {
    match cmd {
        CommandLine::Line(line) if shell => Ok(Prepared {
            program: "/bin/sh".into(),
            args: vec!["-c".into(), line.clone()],
            label: line.clone(),
        }),
        CommandLine::Line(line) => {
            if let Some(op) = parse::shell_operator(line) {
                return Err(BuildError::at("commands", format!(
                    "`{line}` uses `{op}`, which needs a shell: set `shell: true`, or write the command as a list of arguments"
                )));
            }
            let mut words = parse::split_words(line).map_err(|e| BuildError::at("commands", format!("`{line}`: {e}")))?;
            if words.is_empty() {
                return Err(BuildError::at("commands", "an empty command"));
            }
            let program = words.remove(0);
            Ok(Prepared {
                program,
                args: words,
                label: line.clone(),
            })
        }
        CommandLine::Argv(argv) if shell => Err(BuildError::at(
            "commands",
            format!("{argv:?}: with `shell: true` write each command as one string"),
        )),
        CommandLine::Argv(argv) => match argv.split_first() {
            Some((program, args)) if !program.is_empty() => Ok(Prepared {
                program: program.clone(),
                args: args.to_vec(),
                label: argv.join(" "),
            }),
            _ => Err(BuildError::at("commands", "an empty command")),
        },
    }
}

/// `NAME=value` entries of `environment`.
fn environment(entries: &[String]) -> Result<Vec<(String, String)>, BuildError> {
    entries
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) if !k.is_empty() && !k.contains('\0') && !v.contains('\0') => {
                Ok((k.to_string(), v.to_string()))
            }
            _ => Err(BuildError::at("environment", format!("`{e}` is not NAME=value"))),
        })
        .collect()
}

pub fn build(cfg: &Config, _ctx: &BuildCtx) -> Result<Exec, BuildError> {
    if cfg.commands.is_empty() {
        return Err(BuildError::at("commands", "list at least one command to run"));
    }
    if cfg.timeout.0.is_zero() {
        return Err(BuildError::at("timeout", "must be more than 0"));
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
            limits: Limits {
                timeout: cfg.timeout.0,
                stdout_cap: STDOUT_CAP,
                stderr_cap: STDERR_CAP,
                reap_grace: REAP_GRACE,
            },
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
    limits: Limits,
    working_dir: Option<PathBuf>,
    env: Vec<(String, String)>,
}

/// What one run of a command left; its buffers are kept for the next run.
#[derive(Default)]
struct Run {
    out: Captured,
    outcome: Option<Outcome>,
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
}

impl Exec {
    /// Emits what command `i` printed, or notes why it could not be read.
    fn report(&mut self, i: usize, em: &mut Emitter<'_>) {
        let cmd = &self.commands[i];
        let run = &self.runs[i];
        let totals = &mut self.totals[i];
        totals.discarded_bytes += run.out.stdout_discarded;
        let readable = match &run.outcome {
            Some(Outcome::Exited(status)) if status.success() || self.ignore_error => true,
            Some(Outcome::Exited(status)) => {
                em.partial_failure(InputError::new(format!(
                    "`{}` {}{} (output skipped; set ignore_error: true to read it anyway)",
                    cmd.label,
                    describe(status),
                    stderr_hint(&run.out.stderr)
                )));
                false
            }
            Some(Outcome::TimedOut { .. }) => {
                totals.timeouts += 1;
                em.partial_failure(InputError::new(format!(
                    "`{}` still running after timeout ({}ms): killed, output dropped",
                    cmd.label,
                    self.settings.limits.timeout.as_millis()
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
    let mut text = &run.out.stdout[..];
    if run.out.stdout_discarded > 0 {
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
/// rtcollector), stamped with the line's `ts=` when it has one, else the tick.
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
    match line.ts_ms {
        Some(ts_ms) => em.gauge_at(line.name, &labels, line.value, ts_ms),
        None => em.gauge(line.name, &labels, line.value),
    }
}

/// The syslog severity of a log entry's level (`error` 3, `warn` 4, `info` 6, `debug` 7).
#[cfg(feature = "logs")]
fn severity_of(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// Emits the metrics of a JSON document and logs its log entries; returns how many values
/// (or whole documents) were skipped.
fn emit_json(cmd: &Prepared, run: &Run, em: &mut Emitter<'_>) -> u64 {
    let doc = match parse::json_doc(&run.out.stdout, MAX_LOGS) {
        Ok(doc) => doc,
        Err(e) => {
            let cut = if run.out.stdout_discarded > 0 {
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
    for (i, (level, message)) in logs.into_iter().enumerate() {
        log::log!(level, "exec `{}`: {}", cmd.label, shorten(&message, 1000));
        #[cfg(feature = "logs")]
        em.log(&crate::core::logs::LogRecord {
            seq: i as u64,
            severity: severity_of(level),
            facility: 1,
            appname: "exec".into(),
            message: message.as_str().into(),
            source: cmd.label.as_str().into(),
            ..Default::default()
        });
        let _ = i;
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

/// Runs `cmd` once through the shared runner: a new process group, output capped, the
/// whole group killed at the timeout.
async fn run_one(cmd: &Prepared, settings: &Settings, run: &mut Run) {
    let mut command = std::process::Command::new(&cmd.program);
    command
        .args(&cmd.args)
        .envs(settings.env.iter().map(|(k, v)| (k, v)));
    if let Some(dir) = &settings.working_dir {
        command.current_dir(dir);
    }
    run.outcome = Some(command::run(command, &settings.limits, &mut run.out).await);
}

#[cfg(test)]
mod tests;
