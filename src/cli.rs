//! The command line: parse arguments, dispatch, map outcomes to exit codes
//! (0 fine, 1 runtime failure, 2 bad usage or bad config).

use crate::agent;
use crate::config::{self, Config, Registry};
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
    buffer status  per output: samples, segments, bytes, time span and drops of its disk
                   buffer (read from the files; the agent need not run)
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

#[derive(Debug, Default)]
struct Args {
    command: Option<String>,
    sub: Option<String>,
    config: Option<PathBuf>,
    once: bool,
    debug: bool,
}

fn parse_args(argv: Vec<OsString>) -> Result<Args, lexopt::Error> {
    use lexopt::prelude::*;
    let mut args = Args::default();
    let mut parser = lexopt::Parser::from_args(argv);
    while let Some(arg) = parser.next()? {
        match arg {
            Short('c') | Long("config") => args.config = Some(parser.value()?.into()),
            Long("once") => args.once = true,
            Long("debug") => args.debug = true,
            Short('h') | Long("help") => args.command = Some("help".into()),
            Short('V') | Long("version") => args.command = Some("version".into()),
            Value(v) if args.command.is_none() => args.command = Some(v.string()?),
            Value(v) if args.command.as_deref() == Some("buffer") && args.sub.is_none() => {
                args.sub = Some(v.string()?)
            }
            _ => return Err(arg.unexpected()),
        }
    }
    Ok(args)
}

pub fn main(argv: Vec<OsString>) -> i32 {
    let args = match parse_args(argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}\n\n{HELP}");
            return 2;
        }
    };
    match args.command.as_deref() {
        Some("run") => run(&args),
        Some("check") => check(&args),
        Some("buffer") if args.sub.as_deref() == Some("status") => buffer_status(&args),
        Some("buffer") => {
            eprintln!("error: use `rtcollector buffer status`\n\n{HELP}");
            2
        }
        Some("inputs") => list::<Inputs>(),
        Some("outputs") => list::<Outputs>(),
        Some("sample-config") => {
            print!("{}", sample_config());
            0
        }
        Some("version") => {
            println!("rtcollector {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Some("help") | None => {
            print!("{HELP}");
            if args.command.is_none() {
                2
            } else {
                0
            }
        }
        Some(other) => {
            eprintln!("error: unknown command `{other}`\n\n{HELP}");
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
            Ok(st) => print!("{}", status_text(&key, &cfg.dir, &memory, &st)),
            Err(e) => {
                eprintln!(
                    "error: output {key}: cannot read its disk buffer {}: {e}",
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
    let ts = |t: Option<i64>| t.map_or_else(|| "-".to_string(), utc_text);
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

/// Milliseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ` (proleptic Gregorian).
fn utc_text(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let in_day = ms.rem_euclid(86_400_000);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000
    )
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
    for (entry, runner) in c.outputs.iter().zip(&gen.outputs) {
        let _ = writeln!(s, "  {:<16} {}", runner.name, entry.options.yaml());
        let _ = writeln!(
            s,
            "  {:<16} buffer: {} samples in memory (oldest dropped when full), batches of {}",
            "", c.max_buffer_size, c.metric_batch_size
        );
        let _ = writeln!(
            s,
            "  {:<16} outage buffer on disk: {} (up to {}, fsync every {})",
            "",
            c.spill_config(&runner.name).dir.display(),
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

    #[test]
    fn utc_text_formats_epoch_milliseconds() {
        assert_eq!(utc_text(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_text(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(utc_text(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

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

    #[test]
    fn buffer_takes_one_subcommand() {
        let a = parse_args(
            ["buffer", "status", "-c", "x.yaml"]
                .map(OsString::from)
                .to_vec(),
        )
        .unwrap();
        assert_eq!(a.command.as_deref(), Some("buffer"));
        assert_eq!(a.sub.as_deref(), Some("status"));
        assert!(parse_args(["buffer", "status", "more"].map(OsString::from).to_vec()).is_err());
    }
}
