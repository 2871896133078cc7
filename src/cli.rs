//! The command line: parse arguments, dispatch, map outcomes to exit codes
//! (0 fine, 1 runtime failure, 2 bad usage or bad config).

use crate::agent;
use crate::config::{self, Config, Registry};
use crate::core::clock;
use crate::core::stats::AgentStats;
use crate::inputs::Inputs;
use crate::outputs::Outputs;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::rc::Rc;

const SYSTEM_CONFIG: &str = "/etc/rtcollector/config.yaml";
const LOCAL_CONFIG: &str = "config/rtcollector.yaml";

const HELP: &str = "\
rtcollector — a small metrics agent for RedisTimeSeries and MQTT

USAGE:
    rtcollector run [--config PATH] [--once] [--debug]
    rtcollector check [--config PATH]
    rtcollector buffer status [--config PATH]
    rtcollector inputs | outputs
    rtcollector sample-config
    rtcollector --version | --help

COMMANDS:
    run            collect and ship metrics until SIGTERM/SIGINT (SIGHUP reloads the config)
    check          validate the config and print what would run, secrets masked
    buffer status  per output: samples, segments, bytes, time span and drops of its outage
                   buffer on disk (read from the files; the agent need not run)
    inputs         list the built-in inputs
    outputs        list the built-in outputs
    sample-config  print a complete commented config

OPTIONS:
    -c, --config PATH   config file (default: /etc/rtcollector/config.yaml if it exists,
                        else config/rtcollector.yaml)
        --once          collect once, flush, exit
        --debug         log at debug level

EXIT STATUS: 0 success, 1 runtime failure, 2 usage or config error.
";

/// What the command line asks for, decided once from the words given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Run,
    Check,
    BufferStatus,
    ListInputs,
    ListOutputs,
    SampleConfig,
    Version,
    Help,
    /// No command at all: the help, as a usage error.
    NoCommand,
}

/// The parsed command line: the mode and the options that go with it.
#[derive(Debug)]
struct Args {
    mode: Mode,
    config: Option<PathBuf>,
    once: bool,
    debug: bool,
}

/// Parses `argv` (without the program name); `Err` is the usage error to print.
fn parse_args(argv: Vec<OsString>) -> Result<Args, String> {
    use lexopt::prelude::*;
    let (mut command, mut sub): (Option<String>, Option<String>) = (None, None);
    let (mut config, mut once, mut debug) = (None, false, false);
    let mut parser = lexopt::Parser::from_args(argv);
    let usage = |e: lexopt::Error| e.to_string();
    while let Some(arg) = parser.next().map_err(usage)? {
        match arg {
            Short('c') | Long("config") => config = Some(parser.value().map_err(usage)?.into()),
            Long("once") => once = true,
            Long("debug") => debug = true,
            Short('h') | Long("help") => command = Some("help".into()),
            Short('V') | Long("version") => command = Some("version".into()),
            Value(v) if command.is_none() => command = Some(v.string().map_err(usage)?),
            Value(v) if command.as_deref() == Some("buffer") && sub.is_none() => {
                sub = Some(v.string().map_err(usage)?)
            }
            _ => return Err(arg.unexpected().to_string()),
        }
    }
    Ok(Args {
        mode: mode_of(command.as_deref(), sub.as_deref())?,
        config,
        once,
        debug,
    })
}

/// The mode a command (and `buffer`'s subcommand) names.
fn mode_of(command: Option<&str>, sub: Option<&str>) -> Result<Mode, String> {
    Ok(match command {
        None => Mode::NoCommand,
        Some("run") => Mode::Run,
        Some("check") => Mode::Check,
        Some("buffer") if sub == Some("status") => Mode::BufferStatus,
        Some("buffer") => return Err("use `rtcollector buffer status`".into()),
        Some("inputs") => Mode::ListInputs,
        Some("outputs") => Mode::ListOutputs,
        Some("sample-config") => Mode::SampleConfig,
        Some("version") => Mode::Version,
        Some("help") => Mode::Help,
        Some(other) => return Err(format!("unknown command `{other}`")),
    })
}

pub fn main(argv: Vec<OsString>) -> i32 {
    let args = match parse_args(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\n\n{HELP}");
            return 2;
        }
    };
    match args.mode {
        Mode::Run => run(&args),
        Mode::Check => check(&args),
        Mode::BufferStatus => buffer_status(&args),
        Mode::ListInputs => list::<Inputs>(),
        Mode::ListOutputs => list::<Outputs>(),
        Mode::SampleConfig => {
            print!("{}", sample_config());
            0
        }
        Mode::Version => {
            println!("rtcollector {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Mode::Help => {
            print!("{HELP}");
            0
        }
        Mode::NoCommand => {
            print!("{HELP}");
            2
        }
    }
}

/// `--config`, else the first default path that exists; without either, which paths were
/// tried and what to do.
fn config_path(args: &Args) -> Result<PathBuf, String> {
    if let Some(path) = &args.config {
        return Ok(path.clone());
    }
    let tried = [SYSTEM_CONFIG, LOCAL_CONFIG];
    if let Some(found) = tried.iter().find(|p| Path::new(p).exists()) {
        return Ok(PathBuf::from(found));
    }
    let cwd = std::env::current_dir()
        .map(|d| format!(" (in {})", d.display()))
        .unwrap_or_default();
    Err(format!(
        "no config file: tried {SYSTEM_CONFIG} and {LOCAL_CONFIG}{cwd}; name one with --config PATH (`rtcollector sample-config` prints a complete one)"
    ))
}

fn load(args: &Args) -> Result<(PathBuf, Config), i32> {
    let path = config_path(args).map_err(|e| {
        eprintln!("error: {e}");
        2
    })?;
    match config::load(&path) {
        Ok(mut c) => {
            c.once |= args.once;
            c.debug |= args.debug;
            Ok((path, c))
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(2)
        }
    }
}

fn run(args: &Args) -> i32 {
    let (path, config) = match load(args) {
        Ok(x) => x,
        Err(code) => return code,
    };
    crate::logging::init(config.debug);
    agent::run(path, config)
}

fn check(args: &Args) -> i32 {
    let (path, config) = match load(args) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let stats: Rc<AgentStats> = Rc::default();
    match agent::build_generation(&path, config, &stats) {
        Ok(gen) => {
            print!("{}", describe(&path, &gen));
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
            2
        }
    }
}

fn buffer_status(args: &Args) -> i32 {
    let (_, config) = match load(args) {
        Ok(x) => x,
        Err(code) => return code,
    };
    let holder = crate::core::dir_lock::holder(&config.buffer_dir);
    println!("{}", lock_text(&config.buffer_dir, &holder));
    let memory = memory_text(&holder);
    let keys = agent::instance_keys(config.outputs.iter().map(|e| e.name.as_str()));
    let mut code = 0;
    for key in keys {
        let cfg = config.spill_config(&key);
        match crate::core::spill::status(&cfg.dir) {
            Ok(st) => {
                print!("{}", status_text(&key, &cfg.dir, &memory, &st));
                print!("{}", deferred_text(&cfg.dir.join("deferred")));
            }
            Err(e) => {
                eprintln!(
                    "error: output {key}: cannot read its outage buffer {}: {e}",
                    cfg.dir.display()
                );
                code = 1;
            }
        }
    }
    code
}

/// Whether an agent runs on `dir`, as `buffer status` prints it.
fn lock_text(dir: &Path, holder: &std::io::Result<Option<u32>>) -> String {
    let state = match holder {
        Ok(Some(pid)) => format!("in use by rtcollector pid {pid}"),
        Ok(None) => "no agent running on it".to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => "does not exist".to_string(),
        Err(e) => format!("cannot tell whether an agent runs on it: {e}"),
    };
    format!("buffer_dir {}: {state}", dir.display())
}

/// What `buffer status` can say of the memory ring: it lives in the running agent, which
/// this command cannot look into.
fn memory_text(holder: &std::io::Result<Option<u32>>) -> String {
    match holder {
        Ok(Some(pid)) => format!("not visible from here (held by pid {pid}; its internal input reports internal_write_buffer_size)"),
        Ok(None) => "0 (no agent is running)".to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            "0 (no agent is running)".to_string()
        }
        Err(_) => "unknown (cannot tell whether an agent runs)".to_string(),
    }
}

/// One output's buffer, as `buffer status` prints it.
fn status_text(key: &str, dir: &Path, memory: &str, st: &crate::core::spill::DiskStatus) -> String {
    let ts = |t: Option<i64>| t.map_or_else(|| "-".to_string(), clock::utc_text);
    let mut text = format!(
        "output {key}\n  dir: {}\n  samples in memory: {memory}\n  samples on disk: {}\n  segments: {}\n  bytes on disk: {}\n  oldest: {}\n  newest: {}\n  dropped: {}\n  damaged frames: {}\n",
        dir.display(),
        st.samples,
        st.segments,
        st.bytes + st.dictionary_bytes,
        ts(st.oldest_ts),
        ts(st.newest_ts),
        st.dropped,
        st.corrupt_frames
    );
    if st.undeliverable > 0 {
        text.push_str(&format!(
            "  undeliverable: {} (their series were named in damaged frames)\n",
            st.undeliverable
        ));
    }
    if st.unreadable > 0 {
        text.push_str(&format!(
            "  unreadable entries: {} (skipped)\n",
            st.unreadable
        ));
    }
    text
}

/// The deferred part of an output's buffer (samples a cluster node could not take), when
/// there is one.
fn deferred_text(dir: &Path) -> String {
    if !dir.is_dir() {
        return String::new();
    }
    match crate::core::spill::status(dir) {
        Ok(st) => format!(
            "  deferred samples on disk: {} ({} bytes, in {})\n",
            st.samples,
            st.bytes + st.dictionary_bytes,
            dir.display()
        ),
        Err(e) => format!("  deferred samples: cannot read {}: {e}\n", dir.display()),
    }
}

/// The resolved plan. Options print as YAML (`config::yaml_text`), secrets as `***`.
fn describe(path: &Path, gen: &agent::Generation) -> String {
    use std::fmt::Write;
    let c = &gen.config;
    let mut s = String::new();
    let _ = writeln!(s, "config: {} (valid)", path.display());
    let _ = writeln!(s, "hostname: {}", c.hostname());
    let _ = writeln!(
        s,
        "interval: {}  flush_interval: {}  collection_jitter: {}",
        c.interval,
        config::Dur(c.flush_interval()),
        c.collection_jitter
    );
    let _ = writeln!(
        s,
        "procfs_root: {}  sysfs_root: {}",
        c.procfs_root().display(),
        c.sysfs_root().display()
    );
    let _ = writeln!(s, "inputs ({}):", c.inputs.len());
    for (entry, (runner, schedule)) in c.inputs.iter().zip(&gen.inputs) {
        let _ = writeln!(
            s,
            "  {:<16} every {:<6} {}",
            runner.name,
            config::Dur(schedule.interval).to_string(),
            entry.options.yaml()
        );
    }
    let _ = writeln!(s, "outputs ({}):", c.outputs.len());
    for (entry, key) in c.outputs.iter().zip(&gen.output_keys) {
        let _ = writeln!(s, "  {:<16} {}", key, entry.options.yaml());
        if gen.latest.iter().any(|l| &l.name == key) {
            let _ = writeln!(
                s,
                "  {:<16} keeps the latest value of each series (no buffer, no outage buffer)",
                ""
            );
            continue;
        }
        let _ = writeln!(
            s,
            "  {:<16} buffer: {} samples in memory (oldest dropped when full), batches of {}",
            "", c.max_buffer_size, c.metric_batch_size
        );
        let _ = writeln!(
            s,
            "  {:<16} outage buffer on disk: {} (up to {}, fsync every {})",
            "",
            c.spill_config(key).dir.display(),
            c.max_disk_buffer,
            c.buffer_sync_interval
        );
    }
    s
}

fn list<R: Registry>() -> i32 {
    for (name, about) in R::known() {
        println!("{name:<16} {about}");
    }
    0
}

/// A complete config: the global keys, then each input's and output's own sample.
pub fn sample_config() -> String {
    let mut s = String::from(include_str!("../config/sample-header.yaml"));
    s.push_str("\ninputs:\n");
    for (name, _) in Inputs::known() {
        s.push_str(&indent(crate::inputs::sample(name).unwrap_or_default()));
    }
    s.push_str("\noutputs:\n");
    for (name, _) in Outputs::known() {
        s.push_str(&indent(crate::outputs::sample(name).unwrap_or_default()));
    }
    s
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|l| {
            if l.is_empty() {
                "\n".to_string()
            } else {
                format!("  {l}\n")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan's options of every built-in plugin, in the sample config and with every
    /// default, read back as YAML give the same options: `check` prints what a person
    /// writes (no Rust debug forms) and loses nothing.
    #[test]
    fn every_plugin_prints_options_that_read_back_the_same() {
        let sample = config::parse(Path::new("sample.yaml"), &sample_config()).unwrap();
        let mut checked = 0;
        for entry in &sample.inputs {
            assert_reads_back::<Inputs>(&entry.name, &*entry.options, entry.options.yaml());
            checked += 1;
        }
        for entry in &sample.outputs {
            assert_reads_back::<Outputs>(&entry.name, &*entry.options, entry.options.yaml());
            checked += 1;
        }
        assert_eq!(checked, Inputs::known().len() + Outputs::known().len());
        for (name, _) in Inputs::known() {
            let options = Inputs::defaults(name).unwrap();
            assert_reads_back::<Inputs>(name, &*options, options.yaml());
        }
        for (name, _) in Outputs::known() {
            let options = Outputs::defaults(name).unwrap();
            assert_reads_back::<Outputs>(name, &*options, options.yaml());
        }
    }

    fn assert_reads_back<R: Registry>(name: &str, options: &R::Options, text: String) {
        for debug_form in [
            "Some(", "None", "Dur(", "Millis(", "Size(", "Config", "\"***\"",
        ] {
            assert!(!text.contains(debug_form), "{name}: {text}");
        }
        let yaml = if text.is_empty() { "{}" } else { &text };
        let back = R::deserialize(name, yaml_serde::Deserializer::from_str(yaml))
            .unwrap_or_else(|e| panic!("{name}: {e}: {text}"))
            .unwrap();
        assert_eq!(
            format!("{back:?}"),
            format!("{options:?}"),
            "{name}: {text}"
        );
    }

    fn args(words: &[&str]) -> Result<Args, String> {
        parse_args(words.iter().map(OsString::from).collect())
    }

    #[test]
    fn buffer_takes_one_subcommand() {
        let a = args(&["buffer", "status", "-c", "x.yaml"]).unwrap();
        assert_eq!(a.mode, Mode::BufferStatus);
        assert_eq!(a.config, Some(PathBuf::from("x.yaml")));
        assert!(args(&["buffer", "status", "more"]).is_err());
        assert_eq!(
            args(&["buffer", "list"]).unwrap_err(),
            "use `rtcollector buffer status`"
        );
        assert!(args(&["buffer"]).is_err());
    }

    #[test]
    fn each_command_is_one_mode_and_help_wins_after_a_command() {
        let mode = |words: &[&str]| args(words).map(|a| a.mode);
        assert_eq!(mode(&[]), Ok(Mode::NoCommand));
        assert_eq!(mode(&["run", "--once"]), Ok(Mode::Run));
        assert_eq!(mode(&["run", "--help"]), Ok(Mode::Help));
        assert_eq!(mode(&["-V"]), Ok(Mode::Version));
        assert_eq!(mode(&["sample-config"]), Ok(Mode::SampleConfig));
        assert_eq!(
            mode(&["frobnicate"]),
            Err("unknown command `frobnicate`".into())
        );
        let a = args(&["run", "--once", "--debug", "--config", "c.yaml"]).unwrap();
        assert!(a.once && a.debug);
        assert_eq!(a.config, Some(PathBuf::from("c.yaml")));
    }
}
