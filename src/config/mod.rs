//! The YAML config: rtcollector's keys, plus roots for /proc and /sys, environment
//! interpolation, secrets, and errors that point at file, line, column and key.

pub mod build_error;
pub mod entry;
pub mod interp;
pub mod limits;
pub mod locate;
pub mod range;
pub mod secret;
pub mod shared;
pub mod units;
pub mod yaml_text;

pub use build_error::BuildError;
pub use entry::{Common, Entry, Registry};
pub use secret::{Secret, SecretStore};
pub use units::{Dur, Millis, Size};

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub type InputEntry = Entry<crate::inputs::Inputs>;
pub type OutputEntry = Entry<crate::outputs::Outputs>;

/// The whole config file, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The file's text, to point at an option whose error is found when its plugin is built.
    #[serde(skip)]
    pub source: Source,
    /// How often inputs collect (a bare number is seconds).
    #[serde(
        default = "default_interval",
        deserialize_with = "range::dur::<_, 100, { range::DAY_MS }>"
    )]
    pub interval: Dur,
    /// How often outputs flush; defaults to `interval`.
    #[serde(
        default,
        deserialize_with = "range::opt_dur::<_, 100, { range::DAY_MS }>"
    )]
    pub flush_interval: Option<Dur>,
    /// Samples each output keeps while it cannot deliver; the oldest go first when full.
    #[serde(
        default = "default_max_buffer_size",
        deserialize_with = "range::count::<_, 1, MAX_BUFFER_SIZE>"
    )]
    pub max_buffer_size: usize,
    /// An output flushes early once this many samples wait.
    #[serde(
        default = "default_batch_size",
        deserialize_with = "range::count::<_, 1, MAX_BATCH_SIZE>"
    )]
    pub metric_batch_size: usize,
    /// Accepted for compatibility with the Python rtcollector: buffering is always reported
    /// in the log.
    #[serde(default)]
    pub warn_on_buffer: bool,
    /// The `host` label; empty means the system hostname.
    #[serde(default)]
    pub hostname: String,
    #[serde(default)]
    pub debug: bool,
    /// Collect once, flush, exit.
    #[serde(default)]
    pub once: bool,
    /// Each input's tick is delayed by a random amount below this.
    #[serde(default, deserialize_with = "range::dur::<_, 0, { range::DAY_MS }>")]
    pub collection_jitter: Dur,
    /// Where /proc is (a container mounts the host's elsewhere); `HOST_PROC` also sets it.
    #[serde(default)]
    pub procfs_root: Option<PathBuf>,
    /// Where /sys is; `HOST_SYS` also sets it.
    #[serde(default)]
    pub sysfs_root: Option<PathBuf>,
    /// Where outputs keep samples they could not deliver (one folder per output key).
    #[serde(default = "default_buffer_dir")]
    pub buffer_dir: PathBuf,
    /// How often the outage buffer on disk is fsynced during an outage (and always at shutdown): a
    /// power loss costs at most this much of the buffered data.
    #[serde(
        default = "default_buffer_sync_interval",
        deserialize_with = "range::dur::<_, 100, { range::HOUR_MS }>"
    )]
    pub buffer_sync_interval: Dur,
    /// Most bytes of each output's outage buffer on disk; the oldest segment is dropped when full.
    #[serde(
        default = "default_max_disk_buffer",
        deserialize_with = "range::size::<_, { 16 * range::KIB }, { range::TIB }>"
    )]
    pub max_disk_buffer: Size,
    /// Bytes of log records each output that takes them keeps in memory (the syslog
    /// input's); the oldest go first when full and no outage buffer takes them.
    #[serde(
        default = "default_max_log_buffer",
        deserialize_with = "range::size::<_, { 64 * range::KIB }, { range::GIB }>"
    )]
    pub max_log_buffer: Size,
    /// Most distinct series the agent tracks; samples of further series are dropped and counted.
    #[serde(
        default = "default_max_series",
        deserialize_with = "range::count::<_, 1, MAX_SERIES>"
    )]
    pub max_series: usize,
    /// A series unseen this long leaves the series table (its slot is reused once nothing
    /// holds it); `0s` keeps every series.
    #[serde(
        default = "default_forget_series_after",
        deserialize_with = "range::dur::<_, 0, { 365 * range::DAY_MS }>"
    )]
    pub forget_series_after: Dur,
    #[serde(default)]
    pub secret_store: Option<SecretStore>,
    #[serde(default)]
    pub inputs: Vec<InputEntry>,
    #[serde(default)]
    pub outputs: Vec<OutputEntry>,
}

/// Upper bounds of the counts: far above any real setting (the defaults are 5 000, 1 000 and
/// 100 000), and low enough that what they size can be allocated: a full ring of 20-byte
/// slots is 200 MB per output, a batch 2.4 MB.
const MAX_BUFFER_SIZE: u64 = 10_000_000;
const MAX_BATCH_SIZE: u64 = 100_000;
const MAX_SERIES: u64 = 10_000_000;

fn default_interval() -> Dur {
    Dur(Duration::from_secs(10))
}
fn default_max_buffer_size() -> usize {
    5000
}
fn default_batch_size() -> usize {
    1000
}
fn default_buffer_dir() -> PathBuf {
    PathBuf::from("/var/lib/rtcollector/buffer")
}
fn default_buffer_sync_interval() -> Dur {
    Dur(Duration::from_secs(10))
}
fn default_max_disk_buffer() -> Size {
    Size(64 << 20)
}
fn default_max_log_buffer() -> Size {
    Size(2 << 20)
}
fn default_max_series() -> usize {
    100_000
}
fn default_forget_series_after() -> Dur {
    Dur(Duration::from_secs(3600))
}

impl Config {
    /// How long an unseen series stays in the series table; `None`: for ever. Never less
    /// than two intervals of the slowest input, whose series would otherwise be forgotten
    /// between its collections (losing their rate baselines every time).
    pub fn forget_series_after(&self) -> Option<Duration> {
        let slowest = self
            .inputs
            .iter()
            .map(|e| e.common.interval.unwrap_or(self.interval).0)
            .max()
            .unwrap_or(self.interval.0);
        Some(self.forget_series_after.0)
            .filter(|d| !d.is_zero())
            .map(|d| d.max(slowest.saturating_mul(2)))
    }

    pub fn flush_interval(&self) -> Duration {
        self.flush_interval.unwrap_or(self.interval).0
    }

    /// The outage buffer on disk of the output with this key.
    pub fn spill_config(&self, key: &str) -> crate::core::spill::SpillConfig {
        crate::core::spill::SpillConfig {
            dir: self.buffer_dir.join(key),
            max_bytes: self.max_disk_buffer.0,
            sync_interval: self.buffer_sync_interval.0,
        }
    }

    pub fn procfs_root(&self) -> PathBuf {
        root(&self.procfs_root, "HOST_PROC", "/proc")
    }

    pub fn sysfs_root(&self) -> PathBuf {
        root(&self.sysfs_root, "HOST_SYS", "/sys")
    }

    pub fn hostname(&self) -> String {
        if !self.hostname.is_empty() {
            return self.hostname.clone();
        }
        nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    }

    pub fn input_interval(&self, entry: &InputEntry) -> Duration {
        entry.common.interval.unwrap_or(self.interval).0
    }
}

fn root(configured: &Option<PathBuf>, env: &str, default: &str) -> PathBuf {
    configured
        .clone()
        .or_else(|| {
            std::env::var_os(env)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(default))
}

/// The text of a config file; never printed (it may hold passwords).
#[derive(Default)]
pub struct Source(pub String);

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Source(..)")
    }
}

/// A config problem, pointing into the file where it can.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub column: Option<usize>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ConfigError {}

/// Only what must be known before the full parse: where secrets come from.
#[derive(Deserialize, Default)]
struct Preamble {
    #[serde(default)]
    secret_store: Option<SecretStore>,
}

/// Reads, interpolates, parses and validates the config file at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = read_bounded(path).map_err(|message| ConfigError {
        file: path.into(),
        line: None,
        column: None,
        message,
    })?;
    let config = parse(path, &text)?;
    require_outputs(path, &config)?;
    Ok(config)
}

/// A config the agent runs needs an output (Telegraf refuses one without, too): without
/// one, every sample would be collected into nothing without a word. Only for a file the
/// agent loads: tests and benches parse configs of inputs alone.
fn require_outputs(path: &Path, config: &Config) -> Result<(), ConfigError> {
    if !config.outputs.is_empty() {
        return Ok(());
    }
    // At `outputs:` when it is written (`outputs: []`), else the file as a whole.
    let at = config
        .source
        .0
        .lines()
        .position(|l| l.starts_with("outputs:"))
        .map(|n| (n + 1, 1));
    Err(ConfigError {
        file: path.into(),
        line: at.map(|a| a.0),
        column: at.map(|a| a.1),
        message: "no outputs: what the inputs collect would go nowhere; add one under `outputs:` (for example `- stdout`)".into(),
    })
}

/// The file's text, refusing one larger than [`limits::MAX_CONFIG_BYTES`] without reading
/// more of it.
fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let cannot_read = |e: std::io::Error| format!("cannot read config: {e}");
    let file = std::fs::File::open(path).map_err(cannot_read)?;
    let mut text = String::new();
    file.take(limits::MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(cannot_read)?;
    if text.len() as u64 > limits::MAX_CONFIG_BYTES {
        return Err(format!(
            "the file is larger than {} KiB; a config is a few KiB (is this the right file?)",
            limits::MAX_CONFIG_BYTES >> 10
        ));
    }
    Ok(text)
}

/// Parses config text; `path` is used in messages.
pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
    // Some Windows editors start a UTF-8 file with a byte order mark; YAML allows it, but
    // the parser reads it as a second document.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let error_at = |(line, column): (usize, usize), message: String| ConfigError {
        file: path.into(),
        line: Some(line),
        column: Some(column),
        message,
    };
    let text = interp::interpolate(text, |name| std::env::var(name).ok())
        .map_err(|e| error_at((e.line, e.column), e.message))?;
    if let Some(at) = limits::too_deep(&text) {
        return Err(error_at(
            at,
            format!(
                "more than {} `[` or `{{` collections inside one another; no config needs that many",
                limits::MAX_FLOW_DEPTH
            ),
        ));
    }
    let yaml_error = |e: yaml_serde::Error| from_yaml_error(path, e);
    // An empty file parses to every default (and is then refused for having no output).
    let text = if text.trim().is_empty() { "{}" } else { &text };
    let preamble: Preamble = yaml_serde::from_str(text).map_err(yaml_error)?;
    let store = preamble.secret_store.unwrap_or_default();
    let mut config: Config =
        secret::with_store(&store, || yaml_serde::from_str(text)).map_err(yaml_error)?;
    config.source = Source(text.to_owned());
    Ok(config)
}

fn from_yaml_error(path: &Path, e: yaml_serde::Error) -> ConfigError {
    let location = e.location();
    let mut message = e.to_string();
    // The location is shown up front, as file:line:column.
    if let Some(at) = message.rfind(" at line ") {
        if message[at..].contains(" column ") {
            message.truncate(at);
        }
    }
    ConfigError {
        file: path.into(),
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
        message: plain_words(&message),
    }
}

/// What serde names by Rust type (`expected usize`), in words a config's author reads.
const TYPE_WORDS: &[(&str, &str)] = &[
    ("u8", "a whole number from 0 to 255"),
    ("u16", "a whole number from 0 to 65535"),
    ("u32", "a whole number from 0 to 4294967295"),
    ("u64", "a whole number, 0 or more"),
    ("usize", "a whole number, 0 or more"),
    ("u128", "a whole number, 0 or more"),
    ("i8", "a whole number from -128 to 127"),
    ("i16", "a whole number from -32768 to 32767"),
    ("i32", "a whole number"),
    ("i64", "a whole number"),
    ("isize", "a whole number"),
    ("i128", "a whole number"),
    ("f32", "a number"),
    ("f64", "a number"),
    ("a boolean", "true or false"),
    ("char", "a single character"),
    ("a string", "text"),
    ("a borrowed string", "text"),
    ("string or map", "text or a map"),
    ("a sequence", "a list"),
    ("a map", "a map of `key: value`"),
    ("unit", "nothing"),
];

/// Rewrites `expected <rust type>` at the end of a message, or before a comma; `expected
/// struct Name` becomes `expected a map of options`.
fn plain_words(message: &str) -> String {
    let Some(at) = message.rfind("expected ") else {
        return message.to_string();
    };
    let (head, tail) = message.split_at(at + "expected ".len());
    let end = tail.find(',').unwrap_or(tail.len());
    let (what, rest) = tail.split_at(end);
    let words = if what.starts_with("struct ") {
        Some("a map of options")
    } else {
        TYPE_WORDS.iter().find(|(t, _)| *t == what).map(|(_, w)| *w)
    };
    match words {
        Some(w) => format!("{head}{w}{rest}"),
        None => message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        parse(Path::new("c.yaml"), text).unwrap_err().to_string()
    }

    #[test]
    fn rust_type_names_become_words() {
        assert_eq!(
            error("hostname: [a]\noutputs: [stdout]\n"),
            "c.yaml:1:11: hostname: invalid type: sequence, expected text"
        );
        assert_eq!(
            error("debug: 5\noutputs: [stdout]\n"),
            "c.yaml:1:8: debug: invalid type: integer `5`, expected true or false"
        );
        assert_eq!(
            plain_words("port: invalid type: string \"x\", expected u16"),
            "port: invalid type: string \"x\", expected a whole number from 0 to 65535"
        );
        assert_eq!(
            plain_words("invalid type: map, expected usize"),
            "invalid type: map, expected a whole number, 0 or more"
        );
        assert_eq!(
            plain_words("invalid type: string \"x\", expected struct Config"),
            "invalid type: string \"x\", expected a map of options"
        );
        assert_eq!(
            plain_words("expected f64, got more"),
            "expected a number, got more"
        );
        assert_eq!(
            plain_words("expected something else"),
            "expected something else"
        );
    }

    #[test]
    fn every_global_number_has_a_range_reported_at_its_value() {
        for (text, at, message) in [
            (
                "interval: 0s",
                "1:11",
                "interval: must be at least 100ms, not 0s (the range is 100ms to 1d)",
            ),
            (
                "interval: 1e300",
                "1:11",
                "interval: must be at most 1d (the range is 100ms to 1d)",
            ),
            (
                "flush_interval: 2d",
                "1:17",
                "flush_interval: must be at most 1d, not 2d",
            ),
            (
                "collection_jitter: 25h",
                "1:20",
                "collection_jitter: must be at most 1d, not 25h (the range is 0s to 1d)",
            ),
            (
                "buffer_sync_interval: 0",
                "1:23",
                "buffer_sync_interval: must be at least 100ms, not 0s (the range is 100ms to 1h)",
            ),
            (
                "max_buffer_size: 0",
                "1:18",
                "max_buffer_size: must be at least 1, not 0 (the range is 1 to 10000000)",
            ),
            (
                "max_buffer_size: 2000000000",
                "1:18",
                "max_buffer_size: must be at most 10000000, not 2000000000",
            ),
            (
                "metric_batch_size: 18446744073709551615",
                "1:20",
                "metric_batch_size: must be at most 100000, not 18446744073709551615 (the range is 1 to 100000)",
            ),
            ("max_series: 0", "1:13", "max_series: must be at least 1, not 0"),
            (
                "max_disk_buffer: 1KiB",
                "1:18",
                "max_disk_buffer: must be at least 16KiB, not 1KiB (the range is 16KiB to 1TiB)",
            ),
            (
                "max_disk_buffer: 2TiB",
                "1:18",
                "size `2TiB` is too large: at most 1TiB",
            ),
            (
                "inputs:\n  - linux_cpu:\n      interval: 99999999999999999999999y",
                "3:17",
                "inputs[0].linux_cpu.interval: duration `99999999999999999999999y` is too long",
            ),
        ] {
            let e = error(&format!("{text}\noutputs: [stdout]\n"));
            assert!(e.starts_with(&format!("c.yaml:{at}: ")), "{text}: {e}");
            assert!(e.contains(message), "{text}: {e}");
        }
    }

    #[test]
    fn the_limits_of_each_range_are_accepted() {
        let c = parse(
            Path::new("c.yaml"),
            "interval: 100ms\nflush_interval: 1d\nmax_buffer_size: 10000000\nmetric_batch_size: 100000\nmax_series: 1\nmax_disk_buffer: 16KiB\noutputs: [stdout]\n",
        )
        .unwrap();
        assert_eq!(c.interval.0, Duration::from_millis(100));
        assert_eq!(c.flush_interval(), Duration::from_secs(86_400));
        assert_eq!(c.max_buffer_size, 10_000_000);
        assert_eq!(c.metric_batch_size, 100_000);
        assert_eq!(c.max_series, 1);
        assert_eq!(c.max_disk_buffer.0, 16 << 10);
    }

    #[test]
    fn a_byte_order_mark_is_not_a_second_document() {
        let c = parse(
            Path::new("c.yaml"),
            "\u{feff}interval: 5s\noutputs: [stdout]\n",
        )
        .unwrap();
        assert_eq!(c.interval.0, Duration::from_secs(5));
    }

    fn load_error(text: &str) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yaml");
        std::fs::write(&path, text).unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!(e.file, path);
        let text = e.to_string();
        text[path.display().to_string().len()..].to_string()
    }

    #[test]
    fn a_config_without_outputs_is_refused() {
        assert_eq!(
            load_error("interval: 5s\n"),
            ": no outputs: what the inputs collect would go nowhere; add one under `outputs:` (for example `- stdout`)"
        );
        assert!(load_error("").contains("no outputs"));
        assert!(load_error("inputs: [linux_cpu]\noutputs: []\n").starts_with(":2:1: no outputs"));
    }

    #[test]
    fn deep_nesting_is_refused_before_parsing() {
        let deep = format!("inputs: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let e = error(&deep);
        assert!(e.starts_with("c.yaml:1:109: more than 100"), "{e}");
    }

    #[test]
    fn a_file_over_the_size_limit_is_not_read_to_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.yaml");
        let mut text = "outputs: [stdout]\n".to_string();
        text.push_str(&"#".repeat(limits::MAX_CONFIG_BYTES as usize));
        std::fs::write(&path, text).unwrap();
        let e = load(&path).unwrap_err();
        assert_eq!(e.line, None);
        assert!(e.message.contains("larger than 1024 KiB"), "{}", e.message);
    }
}
