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
    rtcollector inputs | outputs
    rtcollector sample-config
    rtcollector --version | --help

COMMANDS:
    run            collect and ship metrics until SIGTERM/SIGINT (SIGHUP reloads the config)
    check          validate the config and print what would run, secrets masked
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

fn config_path(args: &Args) -> PathBuf {
    args.config.clone().unwrap_or_else(|| {
        if Path::new(SYSTEM_CONFIG).exists() {
            SYSTEM_CONFIG.into()
        } else {
            LOCAL_CONFIG.into()
        }
    })
}

fn load(args: &Args) -> Result<(PathBuf, Config), i32> {
    let path = config_path(args);
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
    match agent::build_generation(&path, config, &stats, &[]) {
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

/// The resolved plan. Options print through `Debug`, where secrets show as `***`.
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
            options_text(&entry.options)
        );
    }
    let _ = writeln!(s, "outputs ({}):", c.outputs.len());
    for (entry, runner) in c.outputs.iter().zip(&gen.outputs) {
        let _ = writeln!(s, "  {:<16} {}", runner.name, options_text(&entry.options));
        let _ = writeln!(
            s,
            "  {:<16} buffer: {} samples in memory (oldest dropped when full), batches of {}",
            "", c.max_buffer_size, c.metric_batch_size
        );
    }
    s
}

/// `Config { a: 1 }` → `{ a: 1 }`; an option-less `Config` → nothing.
fn options_text(options: &impl std::fmt::Debug) -> String {
    let text = format!("{options:?}");
    text.strip_prefix("Config").unwrap_or(&text).trim().to_string()
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
